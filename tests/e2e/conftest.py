from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from tests.e2e.browser import WINDOW, require_browser, start_chromium

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    require_browser()
    # Selenium Manager must not look for a browser or a driver online: both are given.
    monkeypatch.setenv("SE_OFFLINE", "true")
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


class Screenshots:
    def __init__(self, browser: webdriver.Chrome) -> None:
        self.browser = browser

    def __call__(self, name: str) -> Path:
        """Save the whole page as build/screenshots/<name>.png."""
        height = int(self.browser.execute_script("return document.documentElement.scrollHeight"))
        self.browser.set_window_size(WINDOW[0], max(WINDOW[1], min(height + 40, 4000)))
        path = SCREENSHOTS / f"{name}.png"
        assert self.browser.save_screenshot(str(path)), f"no screenshot saved at {path}"
        self.browser.set_window_size(*WINDOW)
        return path


@pytest.fixture
def screenshot(browser: webdriver.Chrome) -> Screenshots:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return Screenshots(browser)
