"""The admin is Omnihub's site."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_site_is_titled_omnihub_and_links_the_api_docs_not_a_site_to_view(admin_client):
    response = admin_client.get("/admin/")

    html = response.content.decode()
    assert "<title>Omnihub | Omnihub</title>" in html
    assert '<div id="site-name"><a href="/admin/">Omnihub</a></div>' in html
    assert "Django administration" not in html
    assert "View site" not in html
    assert '<a href="/api/v1/docs">API docs</a>' in html


def test_the_root_leads_to_the_admin(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
