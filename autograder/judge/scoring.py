"""The points of a target's checks, from the verdicts on its calls (trusted side).

A check passes when every call of it does; it earns its weight's share of the target's points
(where the lesson gives credit per gradient, `credit` in lesson.toml, each `.g` earns its share
of that when it is right in every call). A check that `requires` another earns nothing while
that one fails, and waits for it; a failed gate (the static "no-autograd" check, `rules.py`)
takes the points of every check of its target. This is the one place points are decided: the
self-check, `check`, `grade` and Gradescope all read what it gives.
"""

from __future__ import annotations

from fractions import Fraction

from ..answer import rules
from ..lesson.model import Check
from ..present.report import WAITING, CheckResult, Verdict, exact
from . import failures, kinds
from .judging import Verdicts, outcome_of
from .outcome import UntrustedRun
from .plan import Plan

PASSED = Verdict(True)


def judge_static(target: str, findings: list | None, ran_autograd: bool = False) -> Verdict:
    """The gate: the rule on the code `target` reaches (`rules.py`, read, never run), and what
    the graded process found when it ran: autograd's engine called where the rules saw none."""
    if not findings and ran_autograd:
        return Verdict(False, f"{target} ran autograd while it was graded, though no reading of "
                              "its code shows where: write the gradient by hand; no points for "
                              f"{target} while autograd is in it", (f"{target}.uses_autograd",))
    if findings is None:
        return Verdict(True, f"not checked: the source of {target} could not be read")
    if not findings:
        return PASSED
    first = min(findings, key=lambda f: f.kind != rules.HIDDEN)  # hidden code first
    if first.kind == rules.HIDDEN:
        instead = f"; {first.instead}" if first.instead else ""
        return Verdict(False, f"{target} uses {first.what} ({first.place(target)}), which is "
                              f"not in the answer language{instead}. No points for {target} "
                              "while it is there", (f"{target}.not_allowed",))
    return Verdict(False, f"{target} uses autograd ({first.what} {first.place(target)}): write "
                          f"the gradient by hand; no points for {target} while autograd is in it",
                   (f"{target}.uses_autograd",))


def not_there(plan: Plan, target: str, outcome) -> bool:
    """Every call of `target` found no function (or class) to call: it is not in the notebook."""
    calls = [outcome.calls.get(p.call.id) for p in plan.calls if p.target == target]
    ran = [c for c in calls if c is None or c.status != "unavailable"]  # no GPU: not a call
    return bool(ran) and all(c is not None and c.status == "undefined" for c in ran)


def _first_failure(plan: Plan, target: str, verdicts: Verdicts) -> str | None:
    """Why `target` could not be called, where its calls say more than that it is not defined:
    its cell raised (a SyntaxError, a NameError), or it defines the class under another name."""
    for planned in plan.calls:
        said = verdicts.get(planned.call.id) if planned.target == target else None
        if said is not None and not said.passed and said.message and \
                said.message != failures.undefined(planned.call.function, target):
            return said.message
    return None


def judge_target(target: str, plan: Plan, run: UntrustedRun, verdicts: Verdicts,
                 points: float, findings: list | None = None,
                 not_run: object | None = None) -> list[CheckResult]:
    """Each check of `target` with its share of the target's points, from `verdicts`, every
    call's (`judging.judge_calls`): a check's message is its first failing call's.

    Where the lesson gives credit per gradient (a target's `credit`), each gradient earns its
    share of a check when it is right in every call of the check (and of the check it
    `requires`); else a check earns all or nothing. A check that requires another waits for it
    (state "waiting", `report.CheckResult`) while that one has not earned all its points and
    this one has no mistake of its own. `findings` are the rule's findings in the code the
    target reaches (None: it could not be read); `not_run` the finding for which its answer
    cell was left out of the graded run. A failed gate (a "static" check) takes the points of
    every check of the target, and the others wait for it.
    """
    checks = plan.lesson.checks(target)
    credit = {g: exact(w) for g, w in plan.lesson.target(target).credit} or {"": Fraction(1)}
    every = frozenset(credit)
    total = sum(exact(c.weight) for c in checks)  # exact: rounded once, where read (`report`)
    outcome = outcome_of(run, target)
    ran_autograd = any(m.autograd for m in outcome.calls.values())
    own: dict[str, tuple[Verdict, frozenset]] = {}
    gates = []
    for check in checks:
        verdict, right = PASSED, every
        if check.kind == kinds.STATIC:
            verdict = judge_static(target, findings, ran_autograd)
            if not verdict.passed:
                gates.append((check.id(target), verdict.mistakes[0]))
                right = frozenset()
            elif not_there(plan, target, outcome):  # no code to read: no "written by hand"
                entry = next(p.call.function for p in plan.calls if p.target == target)
                why = _first_failure(plan, target, verdicts)  # its cell's error, where it had one
                verdict = Verdict(False, f"not checked: {why}" if why else
                                  f"not checked: there is no {entry} to read", (f"{target}.error",))
                right = frozenset()
        elif not_run is None:
            for planned in plan.for_check(target, check):
                said = verdicts.get(planned.call.id)
                if said is not None and not said.passed:
                    verdict = said if verdict.passed else verdict  # the first failing call's
                    right &= frozenset(said.right)
        own[check.name] = verdict, right
    by_name = {check.name: check for check in checks}

    def earned(check: Check, seen: tuple = ()) -> frozenset:
        """The gradients that earn `check`'s share: right in it, and in what it requires."""
        right = own[check.name][1]
        needed = by_name.get(check.requires)
        if needed is None or needed.name in seen:
            return right
        return right & earned(needed, (*seen, check.name))

    def root(check: Check) -> Check:
        """What a check waits for: the first check up its `requires` that fails."""
        needed = by_name[check.requires]
        while needed.requires and earned(by_name[needed.requires]) != every:
            needed = by_name[needed.requires]
        return needed

    results = []
    for check in checks:
        verdict, _ = own[check.name]
        share = exact(points) * exact(check.weight) / total if total else Fraction(0)
        got = earned(check)
        part = sum(credit[g] for g in got) / sum(credit.values())
        result = CheckResult(check.id(target), target, verdict.passed and got == every,
                             float(share * part), float(share), verdict.message or check.summary,
                             list(verdict.mistakes), picture=verdict.picture,
                             exact=(share * part, share))
        needed = by_name.get(check.requires)
        if needed is not None and earned(needed) != every:
            waited = root(check)
            theirs = own[waited.name][0]
            if verdict.passed or set(verdict.mistakes) <= set(theirs.mistakes):
                # Its mistake is the required check's (or it has none): said there, once.
                result.state, result.waits_for = WAITING, waited.name
                if verdict.passed:
                    earns = (f"only the points of {', '.join(f'{g}.g' for g in sorted(got))}"
                             if got and got != every else "no points")
                    result.message = f"{earns} while {waited.id(target)} fails: {theirs.message}"
                    result.mistakes = list(theirs.mistakes)
        results.append(result)
    for result in results:
        if gates and result.id not in (g for g, _ in gates):
            gate, code = gates[0]
            # The gate names the mistake; what else failed follows from it (the grader runs
            # GPU-readiness with autograd off), so the gate's code stands alone, and the
            # other checks wait for it.
            if not_run is not None:
                result.message = f"not run: the {target} cell was left out of grading (see {gate})"
            elif code.endswith(".not_allowed"):
                result.message = (f"right, but no points: {target} uses code outside the answer "
                                  f"language (see {gate})" if result.passed else result.message
                                  + f" (and no points: {target} uses code outside the answer "
                                    f"language, see {gate})")
            elif result.passed:
                result.message = f"right, but no points: {target} uses autograd (see {gate})"
            elif "AutogradRefused" in result.message or " is autograd: " in result.message:
                # grading refuses autograd, always (the engine, and the guards by name)
                result.message = f"no result: autograd refuses while {target} is graded " \
                                 f"(see {gate})"
            else:
                result.message += f" (and no points: {target} uses autograd, see {gate})"
            result.passed, result.points = False, 0.0
            result.exact = Fraction(0), result.exact[1]
            result.mistakes = [code]
            result.state, result.waits_for = WAITING, gate.split("/", 1)[1]
    return results
