"""The picture of a wrong gradient: where the student's `.g` differs from the true one, in the
self-check (three panels) and on the graded feedback (how each value is off, alone: see also
test_page_picture.py)."""

from __future__ import annotations

import base64
import io
import json

import nbformat
import pytest
import torch
from PIL import Image

from autograder.course.feedback import ReportAlone
from autograder.course.preprocessor import write_results
from autograder.lesson import model as lessons
from autograder.present import picture
from autograder.selfcheck import run_self_check
from tests.check.test_selfcheck import in_a_fresh_python, namespace_of
from tests.conftest import CORRECT

TRANSPOSED_W = ("def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
                "    w.g = out.g.t() @ inp\n    b.g = out.g.sum(0)\n")
#: A mask that shuts where 0 < inp <= 0.5 too: wrong in a few places only.
MASKED_RELU = "def relu_grad(inp, out):\n    inp.g = (inp > 0.5).to(inp.dtype) * out.g\n"


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def pixels(size: tuple[float, float]) -> tuple[int, int]:
    return round(size[0] * picture.DPI), round(size[1] * picture.DPI)


def self_check_picture(target: str, source: str, name: str):
    report = run_self_check(target, namespace_of(source)[name])
    return report, picture.first(report, target)


def test_a_transposed_weight_gradient_is_set_against_the_true_one_transposed():
    report, drawn = self_check_picture("lin_grad", TRANSPOSED_W, "lin_grad")
    assert drawn is not None and drawn.title == "lin_grad: w.g"  # inp.g and b.g are right
    # The first failing float64 values check is drawn, from that call's tensors alone.
    first = next(c for c in report.checks if c.target == "lin_grad" and not c.passed)
    assert first.id == "lin_grad/values-float64" and first.picture is drawn
    assert drawn.transposed and drawn.shapes == ((4, 5), (5, 4))
    # Cell by cell against the true one turned over: only the shape is wrong, no value.
    got, truth, difference = picture.panels(drawn)
    assert got.shape == truth.shape == difference.shape == (4, 5)
    assert torch.equal(got, truth) and not difference.any()
    assert drawn.differs is not None and not any(map(any, drawn.differs))
    assert decoded(picture.png(drawn)).size == pixels(picture.FULL)
    # The feedback page draws it too (where the values are off: nowhere), and says so in words.
    assert decoded(picture.png(drawn, full=False)).size == pixels(picture.DIFFERENCE)
    assert picture.feedback_data(report, "lin_grad")["text/plain"] == (
        "<lin_grad: w.g: every value right, the shape turned over: yours is 4 x 5, w is 5 x 4: "
        "turned over, each value right>")


def test_a_transposed_gradient_with_wrong_values_too_shows_where_they_are_off():
    source = TRANSPOSED_W.replace("out.g.t() @ inp", "(out.g.t() @ inp).clamp_min(0)")
    _, drawn = self_check_picture("lin_grad", source, "lin_grad")
    got, truth, difference = picture.panels(drawn)
    assert drawn.transposed and got.shape == truth.shape
    off = torch.tensor(drawn.differs)
    assert torch.equal(off, truth < 0) and off.any()  # clamped where the true one is negative
    assert torch.equal(difference != 0, off)


def test_the_words_of_a_transposed_picture_are_in_the_drawing(monkeypatch):
    # What each panel is titled with, as matplotlib is asked to write it.
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    said = []
    for cls, method in ((Axes, "set_title"), (Figure, "suptitle")):
        real = getattr(cls, method)
        monkeypatch.setattr(cls, method, lambda self, text, *a, _real=real, **k:
                            (said.append(text), _real(self, text, *a, **k))[1])
    _, drawn = self_check_picture("lin_grad", TRANSPOSED_W, "lin_grad")
    picture.png(drawn)
    assert said == ["lin_grad: w.g\nyours is 4 x 5, the true one 5 x 4: set against the true one "
                    "transposed", "yours (4 x 5)", "the true one, transposed (4 x 5)",
                    "no cell differs: only turned over"]
    said.clear()
    picture.png(drawn, full=False)  # the page's: each panel titled with its shape
    assert said == ["yours (4 x 5)", "turned back: w's shape (5 x 4)"]


def test_other_shapes_are_still_not_set_cell_against_cell():
    # (N,) for (N, 1): the same values in another shape, not a transpose.
    source = "def mse_grad(inp, targ):\n    inp.g = 2. * (inp.squeeze(-1) - targ) / inp.shape[0]\n"
    _, drawn = self_check_picture("mse_grad", source, "mse_grad")
    assert drawn.title == "mse_grad: inp.g" and drawn.shapes == ((3,), (3, 1))
    assert not drawn.transposed
    assert drawn.differs is None and picture.png(drawn, full=False) is None


def test_a_wrong_relu_mask_is_drawn_where_it_is_wrong():
    report, drawn = self_check_picture("relu_grad", MASKED_RELU, "relu_grad")
    assert drawn is not None and drawn.title == "relu_grad: inp.g"
    got, truth, difference = picture.panels(drawn)
    assert got.shape == truth.shape == difference.shape
    # Off exactly where the mask is wrong: the gradient let through in the truth and shut here.
    tol = report_tolerance(report)
    off = (got - truth).abs() / max(truth.abs().max().item(), 1.0) > tol
    assert off.any() and not off.all()
    assert torch.equal(difference != 0, off)
    assert torch.equal(difference[off], (got - truth)[off])
    assert bool(((got == 0) & (truth != 0))[off].all())  # shut where it should let through
    assert decoded(picture.png(drawn)).size == pixels(picture.FULL)
    alone = decoded(picture.png(drawn, full=False))
    assert alone.size == pixels(picture.DIFFERENCE)
    # shut where it should let through: the colour of "0 (the true one is not)"
    assert (82, 82, 82) in {c for _, c in alone.convert("RGB").getcolors(1 << 16)}


def report_tolerance(report) -> float:
    return lessons.find(report.lesson).tolerances["float64"]


@pytest.mark.parametrize("target,name", [("lin_grad", "lin_grad"), ("relu_grad", "relu_grad"),
                                         ("mse_grad", "mse_grad")])
def test_a_right_answer_has_no_picture(target, name):
    report, drawn = self_check_picture(target, CORRECT[target], name)
    assert report.passed and drawn is None
    assert all(c.picture is None for c in report.checks)


def test_the_picture_stays_out_of_the_json_report():
    report, drawn = self_check_picture("relu_grad", MASKED_RELU, "relu_grad")
    assert drawn is not None
    assert all("picture" not in c for c in json.loads(report.to_json())["checks"])


def test_the_graded_cell_shows_where_the_values_are_off_never_the_true_gradient(released):
    report, drawn = self_check_picture("relu_grad", MASKED_RELU, "relu_grad")
    nb = nbformat.from_dict(json.loads(json.dumps(released)))
    write_results(nb, report, lessons.find(report.lesson))
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    shown = [o for o in cells["check_relu_grad"].outputs if "image/png" in o.get("data", {})]
    assert len(shown) == 1
    # Said in words for any reader (and nbconvert's soup pass, which adds words where an image
    # has none, is not needed for it).
    assert shown[0].metadata["image/png"]["alt"].startswith("relu_grad: inp.g: ")
    assert shown[0].metadata["image/png"]["alt"].endswith(" values off")
    image = decoded(base64.b64decode(shown[0].data["image/png"]))
    assert image.size == pixels(picture.DIFFERENCE)  # one panel: where they differ, alone
    # The feedback page keeps it (only the score is left out); a right target has none.
    kept, _ = ReportAlone().preprocess_cell(cells["check_relu_grad"], {}, 0)
    assert [sorted(o.data) for o in kept.outputs] == [["text/html", "text/plain"],
                                                       ["image/png", "text/plain"]]
    assert not any("image/png" in o.get("data", {}) for o in cells["check_mse_grad"].outputs)


def test_the_self_check_shows_nothing_in_a_terminal():
    out = in_a_fresh_python(
        "import torch\n"
        "from autograder.selfcheck import self_check, SelfCheckFailed\n"
        f"exec({MASKED_RELU!r})\n"
        "try:\n    self_check('relu_grad', relu_grad)\nexcept SelfCheckFailed:\n    pass\n")
    assert out.startswith("relu_grad: ") and "Image" not in out and "PNG" not in out


@pytest.mark.slow  # a Jupyter kernel
def test_the_self_check_shows_the_three_panels_in_a_notebook():
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(f"import torch\n{MASKED_RELU}"),
        nbformat.v4.new_code_cell("from autograder.selfcheck import self_check\n"
                                  "self_check('relu_grad', relu_grad)")])
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True).execute()
    outputs = nb.cells[1].outputs
    kinds = [o.output_type for o in outputs]
    assert kinds == ["stream", "display_data", "stream"]  # the lines, the picture, the failure
    assert outputs[0].text.startswith("relu_grad: ")
    assert outputs[2].name == "stderr" and outputs[2].text.startswith("self-check failed: ")
    image = decoded(base64.b64decode(outputs[1].data["image/png"]))
    assert image.size == pixels(picture.FULL)


@pytest.mark.sandbox  # `autograder check`, the student's process in its jail
def test_check_runs_without_matplotlib(make_notebook):
    # matplotlib is the instructor's: the engine imports, judges and reports without it.
    path = make_notebook({"relu_grad": MASKED_RELU})
    out = in_a_fresh_python(
        "import sys\nsys.modules['matplotlib'] = None\n"  # as where it is not installed
        "from autograder.engine import check_notebook\n"
        "from autograder.present import picture\n"
        f"report = check_notebook({str(path)!r}, seed=3)\n"
        "drawn = picture.first(report, 'relu_grad')\n"
        "print(sorted(report.mistakes('relu_grad')), drawn.title, picture.png(drawn),\n"
        "      picture.feedback_data(report, 'relu_grad'), sys.modules['matplotlib'])\n")
    assert out == ("['relu_grad.wrong_mask', 'relu_grad.wrong_values'] relu_grad: inp.g None "
                   "None None")


def test_a_picture_with_its_words_needs_no_soup_pass():
    # nbgrader's feedback template (nbconvert's classic) writes an output's alt metadata: only an
    # image without words sends the page through nbconvert's BeautifulSoup pass.
    from autograder.course.feedback import _SOUP_TARGETS

    assert not _SOUP_TARGETS.search('<img alt="where relu_grad: inp.g differs" src="data:">')
    assert _SOUP_TARGETS.search('<img src="data:image/png;base64,AAAA">')
    assert _SOUP_TARGETS.search('<div class="jp-Notebook">')


def test_a_grading_worker_draws_the_feedback_picture_and_the_grader_uses_it_as_drawn(released):
    from autograder.course.preprocessor import plain
    from autograder.course.samples import fill
    from autograder.engine import grade_submission, source_notebook

    lesson = lessons.find("backward")
    nb = fill(released, {**CORRECT, "relu_grad": MASKED_RELU})
    report = grade_submission(plain(nbformat.from_dict(nb)), str(lesson.folder),
                              {t: 2.0 for t in ("mse_grad", "relu_grad")}, 0, False,
                              source_notebook(lesson))
    assert list(report.drawn) == ["relu_grad"]  # drawn in the worker, the wrong target alone
    assert decoded(base64.b64decode(report.drawn["relu_grad"]["image/png"])).size == pixels(
        picture.DIFFERENCE)
    assert picture.feedback_data(report, "relu_grad") is report.drawn["relu_grad"]
    assert "drawn" not in report.to_json()
