"""A lesson is a folder: what the engine grades, read from data (see docs/contract.md, "A lesson").

    assignments/<id>/     what students and the engine read (in a wheel: autograder/lessons/<id>/;
        <id>.ipynb         a course keeps its copy in DIR/lessons/<id>/, which grading reads)
        lesson.toml   the spec: targets, their signatures, inputs and shapes, checks and cases
                      (or the name of one of the engine's standard sets, `checks.toml`),
                      weights, points, tolerances, the self-check's seed, the mistake catalogue
        lesson.py     the lesson's code: the forward pass (the truth is autograd on it, float64),
                      and one subclass of `lesson_api.LessonCode`: its input hooks, and which
                      of the engine's diagnoses apply to which target
    solutions/<id>/       what only an instructor may see (in a wheel: autograder/solutions/<id>/;
                          in a course: DIR/solutions/<id>/), beside the lessons' folder
        reference.py  the hand-written gradients, each next to its forward
        samples.py    the sample class: right and wrong answers, for the demo and the tests

The engine names no target, no shape and no lesson: it reads them here. Loading a lesson reads
its TOML only; `code()` imports its lesson.py (and torch) when the plan is drawn, so that a
student's process can start first.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ..language import DEFAULT as DEFAULT_LANGUAGE
from ..language import Language
from . import kind_names, spec_keys

if TYPE_CHECKING:
    from ..lesson_api import LessonCode

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

HERE = Path(__file__).resolve().parent  # autograder/lesson/
PACKAGE = HERE.parent  # autograder/
#: The lessons this install carries: a checkout's assignments/, or the wheel's copy of it.
BUNDLED = (PACKAGE.parent / "assignments" if (PACKAGE.parent / "assignments").is_dir()
           else PACKAGE / "lessons")
SPEC = "lesson.toml"
#: The engine's standard sets of checks, which a lesson.toml names instead of copying.
STANDARD_CHECKS = "checks.toml"
#: Largest relative error allowed where a lesson says nothing, measured as
#: max|got - true| / max(max|true|, 1). On CUDA the runner turns TF32 off first.
DEFAULT_TOLERANCES = {"float64": 1e-9, "float32": 1e-4}


class LessonError(ValueError):
    """A lesson folder that cannot be used; the message says why in one line."""


@dataclass(frozen=True)
class Case:
    """One call of a student's function: its batch size `n`, other sizes (`dims`, by the names
    the lesson's input shapes use), dtype and device, and the lesson's flags for its inputs.

    `device="cuda"` runs on a real GPU, only where the student's process has one; `stand_in` runs
    anywhere on stand-ins for CUDA tensors, checking structure only.
    """

    n: int
    dtype: str = "float64"
    device: str = "cpu"
    stand_in: bool = False
    dims: tuple[tuple[str, int], ...] = ()
    flags: tuple[str, ...] = ()

    @classmethod
    def of(cls, n: int, dtype: str = "float64", device: str = "cpu", stand_in: bool = False,
           flags: tuple[str, ...] = (), **dims: int) -> Case:
        """`Case.of(n=3, n_in=5, n_out=4)`: sizes by name."""
        return cls(n, dtype, device, stand_in, tuple(sorted(dims.items())), tuple(flags))

    def dim(self, name: str) -> int:
        if name == "n":
            return self.n
        for key, value in self.dims:
            if key == name:
                return value
        raise KeyError(f"the case gives no size {name!r}")

    def flag(self, name: str) -> bool:
        return name in self.flags

    @property
    def lane(self) -> str:
        """Where the case runs: "cpu", "gpu-ready" (stand-in CUDA tensors, any machine) or "cuda" (a GPU)."""
        return "gpu-ready" if self.stand_in else self.device.split(":")[0]


@dataclass(frozen=True)
class Check:
    """A sub-check of a target: it passes when every one of its cases does."""

    name: str
    weight: float
    # one of `kind_names.NAMES` ("values", "unchanged", "probe"), or "static": the source read, not
    # run (a gate: when it fails, the target scores 0)
    kind: str
    cases: tuple[Case, ...] = field(default_factory=tuple)
    summary: str = ""
    #: A check whose points this one earns only with: a gradient right for one sample alone
    #: (N = 1) is not the gradient.
    requires: str = ""

    def id(self, target: str) -> str:
        return f"{target}/{self.name}"


#: The gate every target has: hand-written gradients, as plain code (`rules.py`). Weight 0, yet
#: failing it takes the target's points.
NO_AUTOGRAD = Check("no-autograd", 0, kind_names.STATIC, (),
                    "written by hand: no .backward(), .grad, requires_grad or torch.autograd")


@dataclass(frozen=True)
class Target:
    """What a student writes and the grader calls: a function that sets `.g` on its arguments
    (kind "function"), or a class whose `backward` the probe checks (kind "probe")."""

    name: str
    entry: str  # the function or class the grader calls
    kind: str
    points: float  # where neither gradebook nor source notebook says otherwise
    checks: tuple[Check, ...]
    args: tuple[str, ...] = ()
    grads: tuple[tuple[str, str], ...] = ()  # (argument, the input that is its upstream .g)
    collect: tuple[str, ...] = ()  # the arguments whose .g is judged
    inputs: tuple[tuple[str, object], ...] = ()  # name -> shape, or a table (see lesson.toml)
    derived: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (name, forward, its inputs)
    forward: str = ""  # the forward this target differentiates (lesson.py)
    forward_args: tuple[str, ...] = ()
    upstream: str = ""  # the input holding the forward output's gradient; "" for a loss
    #: Credit per gradient: (a collected argument, its weight); each `.g` earns its weight's
    #: share of each check where it is right (`scoring`). Empty: a check earns all or nothing.
    credit: tuple[tuple[str, float], ...] = ()
    #: A probe's protocol, in data: (part, the method's name) for each of `spec_keys.METHODS`
    #: ("call", "forward", "bwd", "backward"); empty for a function target.
    methods: tuple[tuple[str, str], ...] = ()

    @property
    def numbers(self) -> tuple[str, ...]:
        """The inputs handed to the answer as Python numbers (`type = "float"` or `"int"`), not
        tensors: sent as 0-d tensors, never rounded to a case's dtype."""
        return tuple(name for name, spec in self.inputs
                     if spec_keys.input_type(spec) != "tensor")

    @property
    def grade_cell(self) -> str:
        """The grade cell that carries this target's points is named after it."""
        return f"check_{self.name}"


@dataclass(frozen=True)
class Lesson:
    id: str
    folder: Path
    title: str
    notebook: str  # the source notebook's file name in the folder
    targets: tuple[Target, ...]
    tolerances: dict
    self_check_seed: int
    mistakes: dict  # code -> what it means (the catalogue)
    language: Language = DEFAULT_LANGUAGE  # what its answers may run (`language.py`)

    # --- what the engine asks ---------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.targets)

    def target(self, name: str) -> Target:
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(f"lesson {self.id} has no target {name!r}: one of {', '.join(self.names)}")

    def entries(self, names: tuple[str, ...] | None = None) -> dict[str, str]:
        return {t.name: t.entry for t in self.targets if names is None or t.name in names}

    def checks(self, name: str) -> tuple[Check, ...]:
        return self.target(name).checks

    def default_points(self) -> dict[str, float]:
        return {t.name: t.points for t in self.targets}

    @property
    def notebook_id(self) -> str:
        """nbgrader's name of the lesson's notebook: its file name without .ipynb."""
        return self.notebook.removesuffix(".ipynb")

    @property
    def source_path(self) -> Path:
        return self.folder / self.notebook

    @property
    def solutions(self) -> Path:
        """The folder of what only an instructor may see (it may be absent: a student's install)."""
        return solutions_folder(self.folder)

    @property
    def reference_path(self) -> Path | None:
        path = self.solutions / "reference.py"
        return path if path.is_file() else None

    def code(self) -> LessonCode:
        """The lesson's hooks: the one `lesson_api.LessonCode` subclass of its lesson.py, made
        once (imports torch); `LessonError` (one line) where lesson.py has none, or a hook is
        misspelt."""
        return self._code

    def forward(self, name: str) -> Callable:
        """The forward `name` of the lesson's lesson.py (named in lesson.toml)."""
        found = getattr(self._module, name, None)
        if not callable(found):
            raise LessonError(f"{self.folder / 'lesson.py'} has no forward {name!r}, which "
                              f"{SPEC} names")
        return found

    @cached_property
    def _module(self) -> ModuleType:
        return load_module(self.folder / "lesson.py", f"autograder_lesson_{self.id}")

    @cached_property
    def _code(self) -> LessonCode:
        from ..lesson_api import lesson_code

        try:
            return lesson_code(self._module, str(self.folder / "lesson.py"))
        except ValueError as exc:
            raise LessonError(str(exc)) from None

    def reference(self) -> ModuleType | None:
        """The reference solutions, where this install or course has them (imported once)."""
        return self._reference

    @cached_property
    def _reference(self) -> ModuleType | None:
        path = self.reference_path
        return load_module(path, f"autograder_reference_{self.id}") if path else None

    def tolerance(self, dtype: str) -> float:
        return float(self.tolerances.get(dtype, DEFAULT_TOLERANCES.get(dtype, 1e-2)))


def load_module(path: Path, name: str) -> ModuleType:
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None:
        raise LessonError(f"{path} cannot be imported")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


# --- reading lesson.toml ---------------------------------------------------------------------

def load(folder: str | Path) -> Lesson:
    """The lesson in `folder`; `LessonError` (one line) where its spec is not usable. Read once
    per process while its files stay as they are (a batch's workers, every self-check of a
    kernel); an instructor's edit of one is read again."""
    folder = Path(folder).resolve()
    stamps = tuple(_stamp(path) for path in (folder / SPEC, folder / "lesson.py",
                                             solutions_folder(folder) / "reference.py"))
    return _load(folder, stamps)


def solutions_folder(folder: Path) -> Path:
    """Where the lesson in `folder` keeps what only an instructor may see: `solutions/<name>/`
    beside the folder that holds the lessons (assignments/ and solutions/ in a checkout,
    autograder/lessons/ and autograder/solutions/ in a wheel, DIR/lessons/ and DIR/solutions/ in
    a course)."""
    folder = Path(folder)
    return folder.parent.parent / "solutions" / folder.name


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


@lru_cache(maxsize=32)
def _load(folder: Path, stamps: tuple) -> Lesson:
    path = folder / SPEC
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise LessonError(f"{folder} is not a lesson folder: it has no {SPEC}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LessonError(f"{path} cannot be read: {exc}") from None
    try:
        return _lesson(folder, data)
    except (KeyError, TypeError, ValueError) as exc:
        raise LessonError(f"{path}: {exc}") from None


@lru_cache(maxsize=1)
def standard_checks() -> dict[str, list]:
    """The engine's standard sets of checks (`checks.toml`), by name: what a target's
    `checks = "gradient"` names where its lesson.toml defines no set of that name."""
    return tomllib.loads((HERE / STANDARD_CHECKS).read_text())["checkset"]


def _lesson(folder: Path, data: dict) -> Lesson:
    spec_keys.only(data, spec_keys.TOP, "the top level", spec_keys.REQUIRED["the top level"])
    own = data.get("checkset", {})
    if not isinstance(own, dict):
        raise ValueError("checkset is not a table of sets ([[checkset.NAME]])")
    for set_name, checks in own.items():
        for c in checks if isinstance(checks, list) else ():
            spec_keys.only(c, spec_keys.CHECK, f"a check of [[checkset.{set_name}]]",
                           spec_keys.REQUIRED_CHECK)
    spec_keys.only(data.get("tolerances", {}), spec_keys.TOLERANCES, "[tolerances]")
    sets = {**standard_checks(), **own}
    targets = tuple(_target(t, sets) for t in data["target"])
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ValueError("a target is named twice")
    return Lesson(str(data["id"]), folder.resolve(), str(data.get("title", data["id"])),
                  str(data.get("notebook", f"{data['id']}.ipynb")), targets,
                  {**DEFAULT_TOLERANCES, **data.get("tolerances", {})},
                  int(data.get("self_check_seed", 0)), dict(data.get("mistakes", {})),
                  DEFAULT_LANGUAGE.extended(data.get("language", {})))


def _target(t: dict, sets: dict) -> Target:
    where = f"target {t['name']}" if isinstance(t, dict) and "name" in t else "a [[target]]"
    spec_keys.only(t, spec_keys.TARGET, where, spec_keys.REQUIRED_TARGET)
    name = str(t["name"])
    flags = tuple(t.get("flags", ()))
    summaries = t.get("summaries", {})
    checks = [NO_AUTOGRAD]
    named = t["checks"]
    if isinstance(named, str) and named not in sets:
        raise ValueError(f"{name}'s checks {named!r} are no set of checks: one of "
                         f"{', '.join(sets)}")
    for c in sets[named] if isinstance(named, str) else named:
        spec_keys.only(c, spec_keys.CHECK, f"a check of target {name}", spec_keys.REQUIRED_CHECK)
        if c["kind"] not in kind_names.RUNS:
            raise ValueError(f"check {c['name']!r} of {name}: kind is one of "
                             f"{', '.join(kind_names.NAMES)}")
        if kind_names.RUNS[c["kind"]] != str(t.get("kind", "function")):
            raise ValueError(f"check {c['name']!r} of {name}: a {c['kind']} check is for a "
                             f"{kind_names.RUNS[c['kind']]} target")
        cases = tuple(_case(case, flags, f"a case of check {c['name']!r} of target {name}")
                      for case in c.get("cases", ()))
        checks.append(Check(str(c["name"]), float(c["weight"]), c["kind"], cases,
                            str(summaries.get(c["name"], c.get("summary", ""))),
                            str(c.get("requires", ""))))
    names = {c.name for c in checks}
    for key in t.get("summaries", {}):
        if key not in names:
            raise ValueError(f"unknown check {key!r} in the summaries of target {name}"
                             f"{spec_keys.nearest(key, names)}: its checks are "
                             f"{', '.join(c.name for c in checks)}")
    for c in checks:
        if c.requires and c.requires not in names:
            raise ValueError(f"check {c.name!r} of {name} requires {c.requires!r}, which it lacks")
    credit = _credit(name, t.get("credit"), tuple(t.get("collect", ())))
    forward = spec_keys.only(t.get("forward", {}), spec_keys.FORWARD, f"the forward of target {name}")
    for key, value in t.get("derived", {}).items():
        spec_keys.only(value, spec_keys.DERIVED, f"derived {key!r} of target {name}",
                       spec_keys.DERIVED)
    spec_keys.sizes_given(name, t.get("inputs", {}), checks)
    numbers = {k for k, v in t.get("inputs", {}).items() if spec_keys.input_type(v) != "tensor"}
    for key, said in (("collect", t.get("collect", ())), ("grads", t.get("grads", {}).values()),
                      ("the upstream of forward", [forward.get("upstream", "")])):
        for arg in said:
            if arg in numbers:
                raise ValueError(f"input {arg!r} of target {name} is a number, which has no .g: "
                                 f"{key} names only tensors")
    derived = tuple((k, str(v["forward"]), tuple(v["of"])) for k, v in t.get("derived", {}).items())
    kind = str(t.get("kind", "function"))
    return Target(name, str(t.get("entry", name)), kind,
                  float(t["points"]), tuple(checks), tuple(t.get("args", ())),
                  tuple(t.get("grads", {}).items()), tuple(t.get("collect", ())),
                  tuple(t.get("inputs", {}).items()), derived, str(forward.get("name", "")),
                  tuple(forward.get("of", ())), str(forward.get("upstream", "")), credit,
                  spec_keys.methods(name, kind, t.get("methods")) if kind == "probe" or
                  "methods" in t else ())


def _credit(name: str, credit: object, collect: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    """A target's `credit = { inp = 1, w = 1, b = 1 }`: a weight for each `.g` it sets (each
    name of `collect`, none left out), the weights numbers at least 0, not all 0."""
    if credit is None:
        return ()
    if not isinstance(credit, dict):
        raise ValueError(f"{name}'s credit is not a table of weights ({{ inp = 1, w = 1 }})")
    if set(credit) != set(collect):
        raise ValueError(f"{name}'s credit names {', '.join(sorted(credit)) or 'nothing'}; it "
                         f"gives a weight to each .g the target sets: {', '.join(collect)}")
    weights = []
    for key in collect:
        value = credit[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e9:
            raise ValueError(f"{name}'s credit for {key} is not a number from 0 to 1e9")
        weights.append((key, float(value)))
    if not sum(w for _, w in weights) > 0:
        raise ValueError(f"{name}'s credit gives every .g a weight of 0")
    return tuple(weights)


def _case(c: dict, target_flags: tuple[str, ...], where: str = "a case") -> Case:
    c = dict(spec_keys.only(c, c, where))
    flags = c.pop("flags", ())
    flags = target_flags if flags == "target" else tuple(flags)
    known = {k: c.pop(k) for k in ("n", "dtype", "device", "stand_in") if k in c}
    for key, value in c.items():  # the others are sizes: whole numbers
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"unknown key {key!r} in {where}"
                             f"{spec_keys.nearest(key, spec_keys.CASE)}: a case gives "
                             f"{', '.join(spec_keys.CASE)}, and sizes (whole numbers)")
    return Case.of(flags=flags, **known, **{k: int(v) for k, v in c.items()})


# --- finding lessons -------------------------------------------------------------------------

def search_path(course: Path | None = None) -> list[Path]:
    """Where lessons are looked for, first found first: AUTOGRADER_LESSONS (folders, separated
    by os.pathsep), a course's own copies (DIR/lessons), then the ones this install carries."""
    found = [Path(p) for p in os.environ.get("AUTOGRADER_LESSONS", "").split(os.pathsep) if p]
    if course is not None:
        found.append(Path(course) / "lessons")
    found.append(BUNDLED)
    return found


def available(course: Path | None = None, beside: Path | None = None) -> dict[str, Lesson]:
    """Every lesson on the search path, by id (a course's copy before the bundled one), first
    the one in the folder `beside` where that holds one (a notebook's folder, as fetched: the
    lesson's public files are released beside its notebook)."""
    found: dict[str, Lesson] = {}
    if beside is not None and (Path(beside) / SPEC).is_file():
        lesson = load(beside)
        found[lesson.id] = lesson
    for root in search_path(course):
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if (folder / SPEC).is_file() and folder.name not in found:
                lesson = load(folder)
                found.setdefault(lesson.id, lesson)
    return found


def find(lesson_id: str, course: Path | None = None, beside: Path | None = None) -> Lesson:
    lessons = available(course, beside)
    if lesson_id not in lessons:
        raise LessonError(f"no lesson {lesson_id!r} here: the lessons are "
                          f"{', '.join(lessons) or 'none'}"
                          + (" (fetch the assignment again, or ask your instructor)"
                             if beside is not None else ""))
    return lessons[lesson_id]


def for_notebook(nb: dict, course: Path | None = None) -> Lesson:
    """The lesson a notebook belongs to: the one whose answer cells (nbgrader grade ids) it has
    the most of; its metadata's `autograder.lesson.model` only chooses between lessons it matches as
    well (a student's file says what it likes: it never moves a notebook to another lesson).
    Grading that knows its assignment (a course, Gradescope's) never asks this."""
    from ..answer import notebook

    lessons = available(course)
    meta = nb.get("metadata", {}) if isinstance(nb.get("metadata"), dict) else {}
    named = meta.get("autograder", {}).get("lesson") if isinstance(meta.get("autograder"), dict) else None
    ids = {notebook.nbgrader_meta(c).get("grade_id") for c in nb.get("cells", [])
           if isinstance(c, dict)}
    scored = sorted(((sum(n in ids for n in lesson.names), lesson.id == named, -i, lesson)
                     for i, lesson in enumerate(lessons.values())), key=lambda s: s[:3])
    if not scored or scored[-1][0] == 0:
        if len(lessons) == 1:
            return next(iter(lessons.values()))
        raise LessonError("the notebook belongs to none of the lessons here ("
                          f"{', '.join(lessons)}): it has none of their answer cells")
    return scored[-1][3]
