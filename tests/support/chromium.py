"""Debian's headless Chromium, as the browser tests drive it (tests/course/test_browser.py,
tests/course/test_hub.py): one set of flags, one way to start it."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def start(profile: Path):
    """A headless Chromium with its own profile folder, offline, 1400 x 1000."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.unhandled_prompt_behavior = "accept"  # leaving an edited notebook asks
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium asks no server for a driver
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def click_text(wait, css: str, text: str) -> None:
    """Click the first element matching `css` whose text is `text`, once it is there."""
    from selenium.webdriver.common.by import By

    link = wait.until(lambda d: next((a for a in d.find_elements(By.CSS_SELECTOR, css)
                                      if a.text.strip() == text), None))
    link.click()
