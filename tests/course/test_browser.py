"""What a student and an instructor see in a real browser: headless Chromium driven by selenium.

One graded class (tests/course/test_course.py's, copied), one JupyterLab started in its course folder as
an instructor starts it, one browser. The student opens the released notebook, fills a stub with
a typical mistake and runs its self-check; a student opens a feedback page; the instructor opens
formgrader and finds every student, the one whose file could not be graded too.

Needs Debian's `chromium` and `chromium-driver` (`make test` installs them where missing, as
root) and selenium (the dev extra); without them these tests skip and say why.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from autograder.course import put_python_on_path
from tests.course.test_course import BROKEN, STUDENTS, graded  # noqa: F401 - the shared class
from tests.support import chromium
from tests.support.chromium import CHROMEDRIVER, CHROMIUM

pytestmark = pytest.mark.slow

if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip(f"no {CHROMIUM} or {CHROMEDRIVER}: apt-get install chromium chromium-driver (as "
                "root, `make test` does)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: "
                                "pip install -e '.[dev]'")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

#: How long to wait for each thing to appear, sized for a loaded 2-core machine: JupyterLab's
#: start, a kernel that imports torch and scikit-learn, a page's scripts. Waits, not assertions.
SERVER_WAIT = 90
KERNEL_WAIT = 120
PAGE_WAIT = 60

#: The stub filled as students do it most often wrong: the factor 2 of d/dx (x - t)^2 left out.
#: One line, so that the editor's own indentation cannot change what was typed.
NO_FACTOR_2 = "def mse_grad(inp, targ): inp.g = (inp.squeeze(-1) - targ).unsqueeze(-1) / inp.shape[0]"
LAB_SETTINGS = {  # a browser with no internet: no news, no update checks; every cell in the page
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    def __init__(self, course: Path, home: Path) -> None:
        self.course, self.token, port = course, secrets.token_hex(16), free_port()
        self.url = f"http://127.0.0.1:{port}"
        for name, settings in LAB_SETTINGS.items():
            path = home / "lab-settings" / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(settings))
        put_python_on_path()
        env = {**os.environ, "HOME": str(home), "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
               "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython")}
        self.log = (home / "lab.log").open("w")
        # As docs/instructors.md says: JupyterLab started in the course folder, where formgrader finds it.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={self.token}",
             "--ServerApp.port_retries=0", "--LabApp.extension_manager=readonly",
             *(["--allow-root"] if os.geteuid() == 0 else [])],
            cwd=course, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + SERVER_WAIT
        while True:
            assert self.process.poll() is None, f"jupyter lab ended: {self.tail()}"
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not answer: {self.tail()}") from None
                time.sleep(0.5)

    def page(self, path: str) -> str:
        return f"{self.url}/{path}?token={self.token}"

    def tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-3000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def course(graded, tmp_path_factory) -> Path:  # noqa: F811 - the fixture imported above
    return Path(shutil.copytree(graded[0], tmp_path_factory.mktemp("browser") / "course"))


@pytest.fixture(scope="module")
def lab(course, tmp_path_factory):
    server = Lab(course, tmp_path_factory.mktemp("home"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium.start(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def text_of(driver, element) -> str:
    """All the text of an element, on screen or scrolled away."""
    return driver.execute_script("return arguments[0].textContent", element)


def test_a_student_sees_the_mistakes_message_in_the_self_check(lab, browser):
    browser.get(lab.page("lab/tree/release/backward/backward.ipynb"))
    wait = WebDriverWait(browser, KERNEL_WAIT)
    cells = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell")
                       if len(d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell")) > 20
                       else None)
    wait.until(lambda d: d.find_elements(
        By.XPATH, "//*[contains(@class, 'jp-StatusBar')]//*[contains(text(), 'Idle')]"))
    editors = [c.find_elements(By.CSS_SELECTOR, ".cm-content") for c in cells]
    stub = next(i for i, e in enumerate(editors) if e and text_of(browser, e[0]).startswith(
        "def mse_grad"))
    assert "raise NotImplementedError()" in text_of(browser, editors[stub][0])

    # Type the answer over the stub, as a student does.
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", editors[stub][0])
    editors[stub][0].click()
    (ActionChains(browser).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL)
     .send_keys(NO_FACTOR_2).send_keys(Keys.ESCAPE).perform())
    assert text_of(browser, editors[stub][0]) == NO_FACTOR_2

    # Run the notebook from the top down to the stub's self-check cell, one Shift+Enter a cell.
    browser.execute_script("arguments[0].scrollIntoView()", cells[0])
    cells[0].find_element(By.CSS_SELECTOR, ".jp-InputPrompt").click()
    # On past it to the next stub's self-check (relu_grad, left as it was): a failing self-check
    # stops nothing, so the kernel runs every cell queued after it.
    actions = ActionChains(browser)
    for _ in range(stub + 5):
        actions.key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT)
    actions.perform()
    check = cells[stub + 1]
    assert "self_check(\"mse_grad\"" in text_of(browser, check.find_element(By.CSS_SELECTOR,
                                                                               ".cm-content"))
    # The report is printed, then one line on stderr says the check failed (nothing is raised:
    # Run All goes on): two messages of the kernel, which the page may show one after the
    # other. Wait for both.
    def shown_whole(d):
        area = next(iter(check.find_elements(By.CSS_SELECTOR, ".jp-OutputArea")), None)
        text = text_of(d, area) if area is not None else ""
        return text if "devices:" in text and "self-check failed" in text else None

    said = wait.until(shown_whole)
    print(said)  # what the student sees, shown when a check below fails
    # The mistake's message and code, once (one line per distinct mistake, its checks named),
    # then one line that it failed, not a traceback into the grader.
    flat = " ".join(said.split())
    assert flat.count("inp.g is half of the true gradient") == 1 and "FAIL values-float64" in flat
    assert "mse_grad.missing_factor_2" in flat, said
    assert "self-check failed: mse_grad:" in flat and "Traceback" not in said
    assert "SelfCheckFailed" not in said  # no error: the cells below still run
    assert "selfcheck.py" not in said and "keeps tensors on their device" in flat
    later = cells[stub + 4]
    assert "self_check(\"relu_grad\"" in text_of(browser, later.find_element(By.CSS_SELECTOR,
                                                                              ".cm-content"))

    def later_shown(d):
        area = next(iter(later.find_elements(By.CSS_SELECTOR, ".jp-OutputArea")), None)
        text = text_of(d, area) if area is not None else ""
        return text if "self-check failed: relu_grad:" in text else None

    assert "relu_grad.not_implemented" in " ".join(wait.until(later_shown).split())


def test_a_feedback_page_has_the_notes_on_top_and_each_report_alone(course, browser):
    browser.get((course / "feedback" / "bob" / "backward" / "backward.html").as_uri())
    cells = WebDriverWait(browser, PAGE_WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#notebook-container .cell"))
    texts = [c.text for c in cells]
    # Bob only left out the factor 2: no notes box (no note says anything about his code).
    assert not any(t.startswith("The grader's notes") for t in texts) and "CPU: " not in texts[0]
    report = next(i for i, t in enumerate(texts) if "mse_grad: 0 / 2" in t)
    assert report > 0 and "FAIL values-float64, " in texts[report]
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "sandbox" not in page and "Out[" not in page
    browser.get((course / "feedback" / "notjson" / "backward" / "backward.html").as_uri())
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "Score: 0 / 10" in page and BROKEN["notjson"][1] in page


def test_formgrader_lists_every_student_the_ungradable_too_and_says_why(lab, browser):
    browser.get(lab.page("formgrader"))
    wait = WebDriverWait(browser, PAGE_WAIT)

    def click(css: str, text: str) -> None:
        chromium.click_text(wait, css, text)

    click("a", "Manual Grading")
    click("#main-table a", "backward")  # the assignment
    click("#main-table a", "backward")  # its notebook
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#main-table a.name-shown"))
    browser.find_element(By.ID, "toggle_names").click()  # formgrader hides names at first
    shown = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#main-table a.name-shown")]
    assert sorted(shown) == STUDENTS
    click("#main-table a.name-shown", "notjson")
    wait.until(lambda d: "Not graded" in d.find_element(By.TAG_NAME, "body").text)
    page = browser.find_element(By.TAG_NAME, "body").text
    assert BROKEN["notjson"][1] in page, page[:2000]


def test_the_class_report_reads_at_a_glance_at_1280_px(course, browser):
    # The instructor's page: each score on one line, the charts titled, nothing off the page.
    from tests.conftest import run_cli

    done = run_cli("report", "--course", str(course))
    assert done.returncode == 0, done.stderr
    size = browser.get_window_size()
    browser.set_window_size(1280, 1000)
    try:
        browser.get((course / "reports" / "backward" / "index.html").as_uri())
        cells = WebDriverWait(browser, PAGE_WAIT).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#students td.score"))
        assert "10 / 10" in [text_of(browser, c) for c in cells]
        lines = browser.execute_script(
            "return Array.from(document.querySelectorAll('#students td.score'), td => {"
            "  const r = document.createRange(); r.selectNodeContents(td);"
            "  return new Set(Array.from(r.getClientRects(), x => Math.round(x.top))).size; })")
        assert lines == [1] * len(STUDENTS)
        captions = {f.get_attribute("id"): f.find_element(By.TAG_NAME, "figcaption").text
                    for f in browser.find_elements(By.TAG_NAME, "figure")}
        assert captions["figure-totals"] == "Students per total score"
        assert set(captions) == {"figure-mistakes", "figure-targets", "figure-totals"}
        assert browser.execute_script("return document.documentElement.scrollWidth <= "
                                      "document.documentElement.clientWidth")
    finally:
        browser.set_window_size(size["width"], size["height"])


#: Where the tests below leave their screenshots (a person looks at them).
SHOTS = Path(os.environ.get("AUTOGRADER_SCREENSHOTS", "/tmp/autograder-screenshots"))


def at_1280(browser):
    browser.set_window_size(1280, 1000)


def no_horizontal_scroll(browser) -> bool:
    """Nothing on the page runs past its right edge: neither the page nor any box in it scrolls
    sideways."""
    return browser.execute_script(
        "const root = document.documentElement;"
        "if (root.scrollWidth > root.clientWidth) return false;"
        "return Array.from(document.querySelectorAll('body *')).every(e => {"
        "  const s = getComputedStyle(e);"
        "  return !(['auto', 'scroll'].includes(s.overflowX) && e.scrollWidth > e.clientWidth + 1)"
        "    && e.getBoundingClientRect().right <= root.clientWidth + 1; })")


def assert_reads_as_one_mistake(browser, report) -> None:
    """What a student reads about bob's mse_grad (the factor 2 left out): one line for the
    mistake, naming the checks it covers, its code on a line of its own."""
    mistakes = report.find_elements(By.CSS_SELECTOR, ".autograder-mistake")
    codes = report.find_elements(By.CSS_SELECTOR, ".autograder-codes")
    assert len(mistakes) == 1 and len(codes) == 1, report.text
    assert mistakes[0].text.startswith("FAIL values-float64, ")
    assert "inp.g is half of the true gradient" in mistakes[0].text
    assert codes[0].text.startswith("mistakes: mse_grad.missing_factor_2")
    assert codes[0].location["y"] > mistakes[0].location["y"]  # below, on its own line
    assert "(0/" not in report.text  # no weights per check


def test_a_feedback_page_reads_as_the_self_check_at_1280_px_without_network(course, browser):
    # Chromium here reaches no network: a CDN's MathJax never loads, so math shown is ours.
    size = browser.get_window_size()
    at_1280(browser)
    try:
        browser.get((course / "feedback" / "bob" / "backward" / "backward.html").as_uri())
        report = WebDriverWait(browser, PAGE_WAIT).until(
            lambda d: next((r for r in d.find_elements(By.CSS_SELECTOR, ".autograder-report")
                            if r.text.startswith("mse_grad: 0 / 2")), None))
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", report)
        browser.save_screenshot(str(SHOTS / "feedback-report.png"))
        assert_reads_as_one_mistake(browser, report)
        page = browser.find_element(By.TAG_NAME, "body").text
        assert "sandbox" not in page and "meta" not in page.lower().split()
        assert "(meta)" not in page and "Out[" not in page
        # nbgrader's summary names each target, never "Test cell".
        summary = browser.find_element(By.ID, "toc").text
        assert "Test cell" not in summary
        for target in ("mse_grad", "relu_grad", "lin_grad", "module_backward"):
            assert target in summary, summary
        # Math is drawn (MathML), not shown as TeX.
        assert browser.find_elements(By.TAG_NAME, "math")
        assert "$" not in page and "\\frac" not in page and "\\max" not in page
        assert no_horizontal_scroll(browser)
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(SHOTS / "feedback-top.png"))
    finally:
        browser.set_window_size(size["width"], size["height"])


def test_formgraders_graded_cell_reads_as_the_self_check_at_1280_px(lab, browser):
    size = browser.get_window_size()
    at_1280(browser)
    try:
        browser.get(lab.page("formgrader"))
        wait = WebDriverWait(browser, PAGE_WAIT)

        def click(css: str, text: str) -> None:
            chromium.click_text(wait, css, text)

        click("a", "Manual Grading")
        click("#main-table a", "backward")
        click("#main-table a", "backward")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#main-table a.name-shown"))
        browser.find_element(By.ID, "toggle_names").click()
        click("#main-table a.name-shown", "bob")
        report = wait.until(
            lambda d: next((r for r in d.find_elements(By.CSS_SELECTOR, ".autograder-report")
                            if r.text.startswith("mse_grad: 0 / 2")), None))
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", report)
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "formgrader-cell.png"))
        assert_reads_as_one_mistake(browser, report)
        page = browser.find_element(By.TAG_NAME, "body").text
        assert "sandbox" not in page and "(meta)" not in page and "CPU: failed" not in page
        assert browser.find_elements(By.TAG_NAME, "math") and "$\\max" not in page
        # The report's box never scrolls sideways: each line wraps at the cell's width.
        assert browser.execute_script(
            "return Array.from(document.querySelectorAll('.autograder-report'), r => {"
            "  let e = r; while (e) { if (e.scrollWidth > e.clientWidth + 1 && "
            "    ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)) return false;"
            "    e = e.parentElement; } return true; }).every(x => x)")
        assert browser.execute_script(
            "return Array.from(document.querySelectorAll('.autograder-report div'))"
            ".every(d => d.getBoundingClientRect().right <= "
            "document.documentElement.clientWidth + 1)")
    finally:
        browser.set_window_size(size["width"], size["height"])


def test_after_a_manual_score_and_a_regrade_the_not_graded_page_shows_the_gradebooks_score(
        course, browser, tmp_path):
    from nbgrader.api import Gradebook

    from tests.conftest import run_cli

    regraded = Path(shutil.copytree(course, tmp_path / "course"))
    with Gradebook(f"sqlite:///{regraded / 'gradebook.db'}", "backprop") as gb:
        grade = gb.find_grade("check_mse_grad", "backward", "backward", "notjson")
        grade.manual_score = 1.5  # as an instructor gives it in formgrader
        gb.db.commit()
    done = run_cli("grade", "--course", str(regraded), "--workers", "2")
    assert done.returncode == 0, done.stderr
    with Gradebook(f"sqlite:///{regraded / 'gradebook.db'}", "backprop") as gb:
        held = gb.find_submission("backward", "notjson").score
    assert held == 1.5
    size = browser.get_window_size()
    at_1280(browser)
    try:
        browser.get((regraded / "feedback" / "notjson" / "backward" / "backward.html").as_uri())
        page = WebDriverWait(browser, PAGE_WAIT).until(
            lambda d: d.find_element(By.TAG_NAME, "body")).text
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "not-graded-after-regrade.png"))
        assert f"Score: {held:g} / 10" in page and "Score: 0 / 10" not in page
        assert BROKEN["notjson"][1] in page
        # Styled as the feedback pages: the notebook's panel, its heading with the score.
        heading = browser.find_element(By.CSS_SELECTOR, ".panel .panel-heading h4")
        assert heading.text == f"backward.ipynb (Score: {held:g} / 10)"
        assert heading.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)" or \
            browser.find_element(By.CSS_SELECTOR, ".panel-heading").value_of_css_property(
                "background-color") != "rgba(0, 0, 0, 0)"
        assert no_horizontal_scroll(browser)
    finally:
        browser.set_window_size(size["width"], size["height"])


def gradescope_page(data: dict) -> str:
    """A results.json as Gradescope shows it to a student, for `output_format` "text": the
    submission's output, then each test's name and score over its output, each output a <pre>
    that keeps the lines and wraps a line too long for the page (white-space: pre-wrap), as
    Gradescope renders text output. Gradescope's own page around it is not copied: the text is
    what is ours."""
    import html

    def pre(text: str) -> str:
        return f'<pre class="output" style="white-space: pre-wrap">{html.escape(text)}</pre>'

    tests = "".join(f'<section class="test"><h3>{html.escape(t["name"])} ({t["score"]:g} / '
                    f'{t["max_score"]:g})</h3>{pre(t["output"])}</section>'
                    for t in data["tests"])
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Autograder Results'
            f'</title></head><body><h2>Autograder Score {data["score"]:g}</h2>'
            f'{pre(data["output"])}{tests}</body></html>')


@pytest.mark.sandbox  # the real grading, as run_autograder runs it
def test_a_gradescope_result_reads_as_the_self_check_at_1280_px(browser, released, tmp_path):
    """Gradescope shows each test's `output` as its `output_format` says; ours is "text",
    rendered as Gradescope renders text (a <pre>, white-space: pre-wrap: `gradescope_page`).
    A student reads one line per mistake with its codes on a line of their own, each line whole
    at 1280 px (no wrap needed, no sideways scroll), and nothing of the sandbox or of meta
    tensors."""
    from autograder.course import gradescope, samples
    from tests.conftest import CORRECT

    transposed_w = ("def lin_grad(inp, out, w, b):\n    inp.g = out.g @ w.t()\n"
                    "    w.g = out.g.t() @ inp\n    b.g = out.g.sum(0)\n")
    samples.write(samples.fill(released, {**CORRECT, "mse_grad": NO_FACTOR_2,
                                          "lin_grad": transposed_w}),
                  tmp_path / "submission" / "backward.ipynb")
    out = tmp_path / "results.json"
    assert gradescope.main([str(tmp_path / "submission"), str(out), "backward"]) == 0
    data = json.loads(out.read_text())
    assert data["output_format"] == data["test_output_format"] == "text"
    page = tmp_path / "gradescope.html"
    page.write_text(gradescope_page(data))
    size = browser.get_window_size()
    at_1280(browser)
    try:
        browser.get(page.as_uri())
        tests = WebDriverWait(browser, PAGE_WAIT).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "section.test"))
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "gradescope-results.png"))
        shown = {t.find_element(By.TAG_NAME, "h3").text: t.find_element(By.TAG_NAME, "pre").text
                 for t in tests}
        assert list(shown) == ["mse_grad (0 / 2)", "relu_grad (2 / 2)", "lin_grad (2 / 3)",
                               "module_backward (3 / 3)"]
        for test, mistake, codes in [
                ("mse_grad (0 / 2)", "inp.g is half of the true gradient",
                 "mistakes: mse_grad.missing_factor_2, mse_grad.wrong_values"),
                ("lin_grad (2 / 3)", "w.g has shape (4, 5), the transpose of w's (5, 4)",
                 "mistakes: lin_grad.weight_transposed, lin_grad.wrong_shape")]:
            lines = shown[test].splitlines()
            fails = [i for i, line in enumerate(lines) if line.startswith("FAIL ")]
            assert len(fails) == 1, lines  # one mistake: one line, naming the checks it fails
            assert " ".join(shown[test].split()).count(mistake) == 1, lines
            below = [i for i, line in enumerate(lines) if line.strip().startswith("mistakes:")]
            assert len(below) == 1 and below[0] > fails[0], lines  # on a line of its own
            assert " ".join(lines[below[0]:]).split(" waiting for")[0].strip().startswith(codes)
            assert any(line.startswith("waiting for the right values") for line in lines)
        assert shown["relu_grad (2 / 2)"].startswith("all 6 checks pass")
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "sandbox" not in text and "meta" not in text.lower().split()
        assert "(meta)" not in text and "GPU-readiness" not in text
        # A wrong shape is one mistake, not a device fault too: the stand-ins kept the device.
        assert "your code keeps tensors on their device" in " ".join(text.split())
        assert "not yet ready for a GPU" not in text
        # The self-check's width: a line reads whole in a narrower panel than this page's too.
        outputs = [p.text for p in browser.find_elements(By.CSS_SELECTOR, "pre.output")]
        assert all(len(line) <= 88 for o in outputs for line in o.splitlines()), outputs
        assert no_horizontal_scroll(browser)
        # Each line whole: none needs the wrap (set to keep lines as they are, none is wider).
        assert browser.execute_script(
            "return Array.from(document.querySelectorAll('pre.output')).every(e => {"
            "  e.style.whiteSpace = 'pre'; const fits = e.scrollWidth <= e.clientWidth + 1;"
            "  e.style.whiteSpace = 'pre-wrap'; return fits; })")
    finally:
        browser.set_window_size(size["width"], size["height"])
