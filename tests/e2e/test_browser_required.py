"""CI must not pass without running the browser tests: there, a missing browser fails them."""

from pathlib import Path

import pytest

from tests.e2e import browser


@pytest.fixture
def no_chromium(monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM", Path("/nonexistent/chromium"))


@pytest.mark.usefixtures("no_chromium")
def test_a_missing_browser_fails_the_tests_when_one_is_required(monkeypatch):
    monkeypatch.setenv("OMNIHUB_E2E_REQUIRED", "1")

    with pytest.raises(pytest.fail.Exception, match=r"need a browser.*/nonexistent/chromium"):
        browser.require_browser()


@pytest.mark.usefixtures("no_chromium")
def test_a_missing_browser_skips_the_tests_elsewhere(monkeypatch):
    monkeypatch.delenv("OMNIHUB_E2E_REQUIRED", raising=False)

    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        browser.require_browser()
