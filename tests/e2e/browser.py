"""A real browser for the end-to-end tests: Debian's headless chromium, driven by Selenium
through the chromedriver packaged with it (matching versions; nothing is downloaded).

Locally, a machine without chromium skips these tests; CI (.ci/run) installs it and sets
OMNIHUB_E2E_REQUIRED=1, which makes a missing browser a failure, never a skip."""

import os
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path(os.environ.get("OMNIHUB_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("OMNIHUB_CHROMEDRIVER", "/usr/bin/chromedriver"))
WINDOW = (1400, 1000)


def require_browser() -> None:
    """Skip the test when there is no browser, or fail it when one is required."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if not missing:
        return
    why = f"no {' or '.join(missing)}: apt-get install -y chromium chromium-driver"
    if os.environ.get("OMNIHUB_E2E_REQUIRED") == "1":
        pytest.fail(f"the end-to-end tests need a browser, and there is {why}")
    pytest.skip(why)


def start_chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
