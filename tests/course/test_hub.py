"""The whole course cycle through a real JupyterHub, in headless Chromium, as real Unix users.

One Hub for the module (tests/support/courseusers.py's `course_hub`, what `make hub` runs): PAM login,
each user's JupyterLab started by JupyterHub as that user, nbgrader's Assignment List and
formgrader in it, the lesson released into nbgrader's exchange by an instructor who is not root
(`autograder release --exchange`). In the browser: a student logs in, opens the Assignment List,
fetches the lesson, (her answers saved into the fetched notebook as her editor saves them),
validates and submits; a second student hands in a typical mistake. The instructor collects,
grades with `autograder grade` and releases the feedback, each as that ordinary user; the student
fetches her feedback and reads her score; the instructor's formgrader shows the grades. Then what
one student can reach of the other's and the instructor's through the Hub. Then manual grading,
all in the browser: the instructor opens the second student's submission in formgrader, gives a
score by hand, regenerates the feedback (formgrader's Generate Feedback: stock `nbgrader
generate_feedback`) and releases it; the student fetches it and reads the new score, and runs
`autograder check` in a terminal of his JupyterLab.

A screenshot of each step goes to SHOTS (named by step). Needs root (the Hub spawns as each
user), configurable-http-proxy (npm), Debian's chromium and chromium-driver, selenium and
jupyterhub (the dev extra): without them it skips and says why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from autograder.course import samples
from tests.conftest import BACKWARD, CORRECT
from tests.support import chromium
from tests.support.chromium import CHROMEDRIVER, CHROMIUM
from tests.support.courseusers import COURSE_ID, course_hub, read_json, why_no_users


def why_skip() -> str | None:
    if why_no_users() is not None:
        return why_no_users()
    from autograder.course.hub import why_no_hub

    if why_no_hub() is not None:
        return why_no_hub()
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        return (f"no {CHROMIUM} or {CHROMEDRIVER}: apt-get install chromium chromium-driver (as "
                "root, `make test` does)")
    return None


pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.xdist_group("hub"),
              pytest.mark.skipif(why_skip() is not None, reason=str(why_skip()))]

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: "
                                "pip install -e '.[dev]'")
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

#: Where each step's screenshot goes (emptied at the start).
SHOTS = Path(tempfile.gettempdir()) / "autograder-hub-screenshots"
TEACHER, ALICE, BOB = "jh-teacher", "jh-alice", "jh-bob"
#: The factor 2 of d/dx (x - t)^2 left out: a typical mistake, 2 points off.
NO_FACTOR_2 = samples.of(BACKWARD).CLASS["cleo"][0]
#: How long to wait for each thing to appear, sized for a loaded 2-core machine: a server that
#: JupyterHub starts, a validation that runs the notebook, a page's scripts. Waits, not asserts.
SPAWN_WAIT = 180
ACTION_WAIT = 240


@pytest.fixture(scope="module")
def hub():
    with course_hub(TEACHER, [ALICE, BOB]) as course:
        yield course


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    driver = chromium.start(Path(tmp_path_factory.mktemp("chromium")))
    yield driver
    driver.quit()


class Session:
    """One person at the browser: logs in to the Hub, works in their JupyterLab."""

    def __init__(self, driver, hub, user: str) -> None:
        self.d, self.hub, self.user = driver, hub, user
        # JupyterLab re-renders its lists: an element found a moment ago may be gone; look again.
        self.wait = WebDriverWait(driver, ACTION_WAIT,
                                  ignored_exceptions=(StaleElementReferenceException,))
        driver.get(f"{hub.url}/hub/logout")  # the one before logs out
        driver.delete_all_cookies()
        driver.get(f"{hub.url}/hub/login")
        try:
            self.wait.until(lambda d: d.find_elements(By.ID, "username_input"))
        except Exception:
            self.shot(f"login-failed-{user}")
            raise
        driver.find_element(By.ID, "username_input").send_keys(user)
        driver.find_element(By.ID, "password_input").send_keys(hub.passwords[user])
        driver.find_element(By.ID, "login_submit").click()
        WebDriverWait(driver, SPAWN_WAIT).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel"))
        assert driver.current_url.startswith(f"{hub.url}/user/{user}/lab"), driver.current_url

    def shot(self, name: str) -> None:
        self.d.save_screenshot(str(SHOTS / f"{name}.png"))

    def click(self, find) -> None:
        """Click what `find(driver)` finds, once it is there (again, where it was re-rendered)."""
        def clicked(d) -> bool:
            found = find(d)
            if found is not None:
                found.click()
            return found is not None

        self.wait.until(clicked)

    def menu(self, top: str, item: str) -> None:
        self.click(lambda d: self._labelled(".lm-MenuBar-itemLabel", top))
        self.click(lambda d: self._labelled(".lm-Menu-itemLabel", item))

    def _labelled(self, css: str, text: str):
        return next((e for e in self.d.find_elements(By.CSS_SELECTOR, css) if e.text == text), None)

    def assignment_list(self) -> None:
        self.menu("Nbgrader", "Assignment List")
        self.wait.until(lambda d: d.find_elements(
            By.CSS_SELECTOR, "#released_assignments_list_loading[hidden]"))

    def listed(self, section: str) -> list[str]:
        """The rows of a section of the Assignment List (released, fetched, submitted)."""
        rows = self.d.find_elements(By.CSS_SELECTOR, f"#{section}_assignments_list > .list_item")
        return [" ".join(r.text.split()) for r in rows]

    def press(self, section: str, label: str) -> None:
        """Press the button `label` of a section of the Assignment List."""
        self.click(lambda d: next((b for b in d.find_elements(
            By.CSS_SELECTOR, f"#{section}_assignments_list button") if b.text == label), None))

    def until_listed(self, section: str, text: str) -> list[str]:
        return self.wait.until(lambda d: (rows := self.listed(section))
                               and any(text in r for r in rows) and rows)

    def dialog(self) -> str:
        """The text of the dialog that opened, once closed with its OK."""
        body = self.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Dialog-body"))
        text = body[0].text
        return text

    def close_dialog(self) -> None:
        self.d.find_element(By.CSS_SELECTOR, ".jp-Dialog-button.jp-mod-accept").click()

    def get(self, path: str) -> str:
        """The text of a page of the Hub (`path` under its address)."""
        self.d.get(f"{self.hub.url}/{path}")
        return self.wait.until(lambda d: d.find_element(By.TAG_NAME, "body").text)


def fetch_and_submit(driver, hub, user: str, answers: dict[str, str], validate: bool,
                     step: str) -> dict:
    """`user` logs in, fetches the lesson from the Assignment List, the answers go into the
    fetched notebook (saved as the user), optionally validates, submits. What the list showed."""
    seen = {}
    me = Session(driver, hub, user)
    me.assignment_list()
    seen["released"] = me.until_listed("released", "backward")
    me.shot(f"{step}1-{user}-assignment-list-released")
    me.press("released", "Fetch")
    seen["fetched"] = me.until_listed("fetched", "backward")
    me.shot(f"{step}2-{user}-fetched")
    student = hub.students[user]
    mine = student.work / "backward" / "backward.ipynb"
    student.write_notebook(mine, samples.fill(read_json(mine), answers))
    if validate:
        driver.find_element(By.CSS_SELECTOR, "#fetched_assignments_list a.assignment-notebooks-link"
                            ).click()
        me.press("fetched", "Validate")
        seen["validated"] = me.dialog()
        me.shot(f"{step}3-{user}-validated")
        me.close_dialog()
    me.press("fetched", "Submit")
    seen["submitted"] = me.wait.until(
        lambda d: (rows := me.listed("submitted")) and re.search(r"\d{4}-\d\d-\d\d", rows[0])
        and rows)
    me.shot(f"{step}4-{user}-submitted")
    return seen


@pytest.fixture(scope="module")
def cycle(hub, browser):
    """The whole cycle, each step through the Hub as its user would take it."""
    seen = {ALICE: fetch_and_submit(browser, hub, ALICE, CORRECT, True, "1"),
            BOB: fetch_and_submit(browser, hub, BOB, {**CORRECT, **NO_FACTOR_2}, False, "2")}
    teacher, course = hub.teacher, hub.course
    seen["collected"] = teacher.nbgrader("collect", "backward", cwd=course)
    seen["graded"] = teacher.run(teacher.env.python, "-m", "autograder", "grade", "--course",
                                 str(course), "--assignment", "backward", "--workers", "2")
    seen["released"] = teacher.nbgrader("release_feedback", "backward", cwd=course)

    alice = Session(browser, hub, ALICE)
    alice.assignment_list()
    alice.until_listed("submitted", "feedback available to fetch")
    alice.shot("31-alice-feedback-available")
    alice.press("submitted", "Fetch Feedback")
    seen[ALICE]["feedback"] = alice.until_listed("submitted", "view feedback")
    alice.shot("32-alice-feedback-fetched")
    pages = list((hub.students[ALICE].work / "backward" / "feedback").glob("*/backward.html"))
    assert len(pages) == 1, pages
    page = pages[0].relative_to(hub.students[ALICE].work)
    seen[ALICE]["page"] = alice.get(f"user/{ALICE}/files/{page}")
    alice.shot("33-alice-feedback-page")

    me = Session(browser, hub, TEACHER)
    seen["formgrader"] = me.get(f"user/{TEACHER}/formgrader/manage_assignments")
    me.wait.until(lambda d: "backward" in d.find_element(By.ID, "main-table").text)
    seen["formgrader"] = " ".join(browser.find_element(By.ID, "main-table").text.split())
    me.shot("41-teacher-formgrader-assignments")
    me.get(f"user/{TEACHER}/formgrader/manage_students")
    seen["students"] = me.wait.until(
        lambda d: (t := " ".join(d.find_element(By.ID, "main-table").text.split()))
        and ALICE in t and t)
    me.shot("42-teacher-formgrader-students")
    me.get(f"user/{TEACHER}/formgrader/gradebook/backward/backward")  # Manual Grading
    me.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#main-table a.name-shown"))
    browser.find_element(By.ID, "toggle_names").click()  # formgrader hides names at first
    seen["submissions"] = me.wait.until(
        lambda d: (t := " ".join(d.find_element(By.ID, "main-table").text.split()))
        and ALICE in t and t)
    me.shot("43-teacher-formgrader-submissions")
    yield seen


@pytest.fixture(scope="module")
def manual(cycle, hub, browser):
    """After the cycle: the instructor gives BOB a point by hand for mse_grad in formgrader's
    Manual Grading, regenerates and releases the feedback from formgrader's Manage Assignments;
    BOB fetches it. What each page showed."""
    seen = {}
    me = Session(browser, hub, TEACHER)
    me.get(f"user/{TEACHER}/formgrader/gradebook/backward/backward")  # Manual Grading
    me.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#main-table a.name-shown"))
    browser.find_element(By.ID, "toggle_names").click()
    chromium.click_text(me.wait, "#main-table a.name-shown", BOB)
    # the submission, as formgrader renders it: the score box of each graded cell, or an error
    me.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input.score")
                  or d.find_elements(By.CSS_SELECTOR, "[id^=error-]"))
    seen["page"] = " ".join(browser.find_element(By.TAG_NAME, "body").text.split())
    seen["title"] = browser.title
    me.shot("61-teacher-formgrader-bob-submission")
    boxes = browser.find_elements(By.CSS_SELECTOR, "input.score#check_mse_grad")
    seen["boxes"] = len(boxes)
    if not boxes:
        return seen
    boxes[0].clear()
    boxes[0].send_keys("1\t")  # formgrader saves a score when it changes (and leaves the box)
    me.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#check_mse_grad").get_attribute(
        "value") == "1" and d.find_elements(By.CSS_SELECTOR, ".score-saved"))
    me.shot("62-teacher-formgrader-manual-score")
    me.get(f"user/{TEACHER}/formgrader/gradebook/backward/backward")
    me.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#main-table a.name-shown"))
    browser.find_element(By.ID, "toggle_names").click()
    seen["submissions"] = me.wait.until(
        lambda d: (t := " ".join(d.find_element(By.ID, "main-table").text.split()))
        and BOB in t and t)
    me.shot("63-teacher-formgrader-after-manual-score")
    for step, css in (("generated", ".generate-feedback a"), ("released", ".release-feedback a")):
        me.get(f"user/{TEACHER}/formgrader/manage_assignments")
        me.click(lambda d, css=css: next(
            iter(d.find_elements(By.CSS_SELECTOR, f"#main-table {css}")), None))
        modal = me.wait.until(lambda d: [m for m in d.find_elements(
            By.CSS_SELECTOR, "#success-modal, #error-modal") if m.is_displayed()])
        seen[step] = (modal[0].get_attribute("id"), " ".join(modal[0].text.split()))
        me.shot(f"64-teacher-formgrader-{step}")
    seen["feedback folder"] = sorted(
        p.name for p in (hub.course / "feedback").iterdir()) if (hub.course / "feedback").is_dir() else []

    bob = Session(browser, hub, BOB)
    bob.assignment_list()
    bob.until_listed("submitted", "feedback available to fetch")
    bob.press("submitted", "Fetch Feedback")
    seen["fetched"] = bob.until_listed("submitted", "view feedback")
    bob.shot("71-bob-feedback-fetched")
    pages = sorted((hub.students[BOB].work / "backward" / "feedback").glob("*/backward.html"))
    seen["page files"] = [str(p) for p in pages]
    if pages:
        page = pages[-1].relative_to(hub.students[BOB].work)
        seen["feedback"] = " ".join(bob.get(f"user/{BOB}/files/{page}").split())
        bob.shot("72-bob-feedback-page")
    return seen


@pytest.fixture(scope="module")
def terminal(cycle, hub, browser):
    """BOB runs the student's command (what a page that could not be graded tells him to run)
    in a terminal of his JupyterLab: what it printed, and its exit status."""
    bob = Session(browser, hub, BOB)
    browser.get(f"{hub.url}/user/{BOB}/lab")
    bob.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel"))
    bob.click(lambda d: bob._labelled(".lm-MenuBar-itemLabel", "File"))
    bob.click(lambda d: bob._labelled(".lm-Menu-itemLabel", "New"))
    bob.click(lambda d: bob._labelled(".lm-Menu-itemLabel", "Terminal"))
    typed = bob.wait.until(lambda d: d.find_elements(
        By.CSS_SELECTOR, ".jp-Terminal .xterm-helper-textarea"))
    out = hub.students[BOB].work / "check.txt"
    # what is typed before the terminal's shell is connected is lost: typed again until the
    # shell has run it (`tee` makes the file at once); the terminal opens in the home
    for _ in range(10):
        typed[0].send_keys("cd ~/work && autograder check backward/backward.ipynb 2>&1 | tee "
                           "check.txt; echo exit=${PIPESTATUS[0]} >> check.txt\n")
        try:
            WebDriverWait(browser, 20).until(lambda d: out.exists())
            break
        except TimeoutException:
            continue
    try:
        WebDriverWait(browser, ACTION_WAIT).until(
            lambda d: out.exists() and "exit=" in out.read_text())
    finally:
        bob.shot("73-bob-terminal-autograder-check")
    return out.read_text()


def test_a_student_fetches_validates_and_submits_through_the_assignment_list(cycle):
    alice = cycle[ALICE]
    assert alice["released"] == [f"backward {COURSE_ID} Fetch"], alice["released"]
    assert alice["fetched"][0].startswith(f"backward {COURSE_ID} Submit"), alice["fetched"]
    assert "Success! Your notebook passes all the tests." in alice["validated"], alice["validated"]
    assert len(alice["submitted"]) == 1 and alice["submitted"][0].startswith("backward"), alice


def test_the_instructor_grades_as_an_ordinary_user_and_the_student_reads_her_score(cycle, hub):
    assert cycle["collected"].stderr.count("Collecting submission") == 2, cycle["collected"].stderr
    out = cycle["graded"].stdout
    assert ALICE in out and BOB in out, out
    assert cycle["released"].stderr.count("Releasing feedback for student") == 2
    assert "(view feedback)" in cycle[ALICE]["feedback"][0], cycle[ALICE]["feedback"]
    assert re.search(r"Score:\s*10\.0\s*/\s*10\.0", cycle[ALICE]["page"]), cycle[ALICE]["page"][:500]
    # formgrader, as the instructor through the Hub: the lesson released, both handed in, each
    # student's score out of 10
    assert re.search(r"^backward .*released 2$", cycle["formgrader"]), cycle["formgrader"]
    students = cycle["students"]
    assert re.search(rf"{ALICE} .*10(\.0)? / 10", students), students
    assert re.search(rf"{BOB} .*8(\.0)? / 10", students), students
    submissions = cycle["submissions"]
    assert re.search(rf"{ALICE} .*10(\.0)? / 10", submissions), submissions
    assert re.search(rf"{BOB} .*8(\.0)? / 10", submissions), submissions


def test_through_the_hub_a_student_reaches_neither_the_other_nor_the_instructor(cycle, hub,
                                                                                 browser):
    bob = Session(browser, hub, BOB)
    bob.assignment_list()
    listed = bob.until_listed("submitted", "feedback available to fetch")
    bob.shot("51-bob-assignment-list-his-own")
    assert len(listed) == 1, listed  # his one submission, not alice's
    # what his Assignment List is sent by his server: his own submission and feedback only
    raw = bob.get(f"user/{BOB}/assignments?course_id={COURSE_ID}")
    data = json.loads(raw)
    assert data["success"], data
    submitted = [s for a in data["value"] if a["status"] == "submitted"
                 for s in a["submissions"]]
    assert [s["student_id"] for s in submitted] == [BOB], submitted
    assert ALICE not in raw, raw
    # alice's server and files, the instructor's formgrader, course and solutions: refused (by
    # the Hub: 403 when that server runs, 404 when not; by his own server: Forbidden, Not Found)
    refused = re.compile(r"403 : You do not have permission to access Server|404 : No access"
                         r"|\{\"message\": \"Forbidden\"|404 : Not Found")
    for n, path in enumerate((
            f"user/{ALICE}/lab", f"user/{ALICE}/api/contents/backward/backward.ipynb",
            f"user/{ALICE}/files/backward/backward.ipynb", f"user/{TEACHER}/formgrader",
            f"user/{TEACHER}/api/contents/course/gradebook.db",
            f"user/{TEACHER}/files/course/solutions/backward/reference.py",
            f"user/{BOB}/formgrader")):  # a student's own server has no formgrader
        page = " ".join(bob.get(path).split())
        bob.shot(f"5{n + 2}-bob-tries-{path.replace('/', '_')}")
        assert refused.search(page), (path, page[:300])
        assert "def mse_grad" not in page and "SQLite" not in page and "Manage" not in page, path


def test_the_instructor_grades_by_hand_in_formgrader_and_the_student_fetches_the_new_score(manual):
    # formgrader opens the submission (it gave HTTP 500 where the users' Python was not the
    # one that installed the packages: soupsieve could not parse nbconvert's selector)
    assert manual["boxes"] == 1, (manual["title"], manual["page"][:600])
    assert re.search(rf"{BOB} .*9(\.0)? / 10", manual["submissions"]), manual["submissions"]
    # stock generate_feedback and release_feedback, from formgrader's buttons, succeed
    assert manual["generated"][0] == "success-modal", manual["generated"]
    assert manual["released"][0] == "success-modal", manual["released"]
    assert BOB in manual["feedback folder"], manual["feedback folder"]
    assert "(view feedback)" in manual["fetched"][0], manual["fetched"]
    assert re.search(r"Score:\s*9(\.0)?\s*/\s*10(\.0)?", manual["feedback"]), manual["feedback"][:800]


def test_the_students_command_runs_in_a_terminal_of_his_jupyterlab(terminal):
    # his notebook, with the factor 2 missing: the report, and exit 1 (a check fails), as
    # `autograder check` says everywhere (not "autograder: not found", exit 127)
    check = terminal
    assert "not found" not in check and "score: 8 / 10" in check, check[-2000:]
    assert "mse_grad.missing_factor_2" in check and check.rstrip().endswith("exit=1"), check
