"""What a student and an instructor see in a real browser: headless Chromium driven by selenium.

One graded class (tests/test_course.py's, copied), one JupyterLab started in its course folder as
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

from .test_course import BROKEN, STUDENTS, graded  # noqa: F401 - the shared class

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
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
        # As the README says: JupyterLab started in the course folder, where formgrader finds it.
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
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.unhandled_prompt_behavior = "accept"  # leaving an edited notebook asks
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium asks no server for a driver
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
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
    actions = ActionChains(browser)
    for _ in range(stub + 2):
        actions.key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT)
    actions.perform()
    check = cells[stub + 1]
    assert "self_check(\"mse_grad\"" in text_of(browser, check.find_element(By.CSS_SELECTOR,
                                                                               ".cm-content"))
    said = wait.until(lambda d: text_of(d, o) if (o := next(iter(check.find_elements(
        By.CSS_SELECTOR, ".jp-OutputArea")), None)) is not None and "devices:" in text_of(d, o)
        else None)
    print(said)  # what the student sees, shown when a check below fails
    # The mistake's message and code, once (one line per distinct mistake, its checks named),
    # then one line, not a traceback into the grader.
    flat = " ".join(said.split())
    assert flat.count("inp.g is half of the true gradient") == 1 and "FAIL values-float64" in flat
    assert "mse_grad.missing_factor_2" in flat, said
    assert "SelfCheckFailed: mse_grad:" in flat and "Traceback" not in said
    assert "selfcheck.py" not in said and "keeps tensors on their device" in flat


def test_a_feedback_page_has_the_notes_on_top_and_each_report_alone(course, browser):
    browser.get((course / "feedback" / "bob" / "backward" / "backward.html").as_uri())
    cells = WebDriverWait(browser, PAGE_WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#notebook-container .cell"))
    texts = [c.text for c in cells]
    assert texts[0].startswith("The grader's notes on the whole notebook"), texts[0]
    assert "CPU: failed" in texts[0]
    report = next(i for i, t in enumerate(texts) if "mse_grad: 0 / 2" in t)
    assert report > 0 and "FAIL mse_grad/values-float64" in texts[report]
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "sandbox" not in page and "Out[" not in page
    browser.get((course / "feedback" / "notjson" / "backward" / "backward.html").as_uri())
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "Score: 0 / 10" in page and BROKEN["notjson"][1] in page


def test_formgrader_lists_every_student_the_ungradable_too_and_says_why(lab, browser):
    browser.get(lab.page("formgrader"))
    wait = WebDriverWait(browser, PAGE_WAIT)

    def click(css: str, text: str) -> None:
        link = wait.until(lambda d: next((a for a in d.find_elements(By.CSS_SELECTOR, css)
                                          if a.text.strip() == text), None))
        link.click()

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
    from .conftest import run_cli

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
