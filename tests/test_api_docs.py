"""The API docs work without internet: Swagger UI comes from django-ninja's own static files."""

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

# src="…" and href="…" in the page, and url(…) in its inline styles.
REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")


def references(html: str) -> list[str]:
    return [first or second for first, second in REFERENCE.findall(html)]


@pytest.fixture
def docs_page() -> str:
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    return response.content.decode()


def test_the_docs_page_references_no_other_host(docs_page):
    found = references(docs_page)

    assert any("swagger-ui-bundle.js" in reference for reference in found)
    assert [r for r in found if "//" in r or r.startswith(("http:", "https:"))] == []


def test_every_file_the_docs_page_loads_is_one_of_ours(docs_page):
    static = [r for r in references(docs_page) if r.startswith("/static/")]

    assert {Path(r).name for r in static} >= {"swagger-ui.css", "swagger-ui-bundle.js"}
    for reference in static:
        assert finders.find(reference.removeprefix("/static/")), reference
