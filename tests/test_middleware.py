"""Omnihub's middleware on Django's sync (WSGI) and async (ASGI) paths."""

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import pytest
from asgiref.sync import async_to_sync
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.test import AsyncClient, Client, RequestFactory, override_settings

from omnihub.middleware import AllowedHostsMiddleware, StaticFilesMiddleware
from tests.factories import InstanceConfigFactory
from tests.webhooks.conftest import evolution_payload
from webhooks.models import Message

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedASGIResponse as TestResponse

pytestmark = pytest.mark.django_db

ADMIN_CSS = "/static/admin/css/base.css"


@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_unknown_api_routes_and_methods_answer_json_either_way(client_class):
    client = client_class()
    get, delete = client.get, client.delete
    if client_class is AsyncClient:
        get, delete = async_to_sync(get), async_to_sync(delete)

    not_found = get("/api/v1/nothing-here")
    not_allowed = delete("/api/v1/instances")

    assert not_found.status_code == 404
    assert not_found.json() == {"detail": "Not Found"}
    assert not_allowed.status_code == 405
    assert not_allowed.json() == {"detail": "Method not allowed"}


@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_other_404s_are_left_as_django_makes_them(client_class):
    get = client_class().get
    response = (
        async_to_sync(get)("/nothing-here") if client_class is AsyncClient else get("/nothing-here")
    )

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def as_async(middleware: Any) -> Callable[[HttpRequest], Awaitable[HttpResponseBase]]:
    """The middleware as Django calls it on its async path (its __call__ returns a coroutine)."""
    return cast(Callable[[HttpRequest], Awaitable[HttpResponseBase]], middleware)


@pytest.fixture
def static_files(settings):
    settings.WHITENOISE_USE_FINDERS = True  # the admin's files, without a collectstatic


def test_it_serves_a_static_file_to_an_async_request(static_files):
    async def app(request: HttpRequest) -> HttpResponse:
        raise AssertionError("a static file must not reach the app")

    middleware = StaticFilesMiddleware(app)
    response = async_to_sync(middleware)(RequestFactory().get(ADMIN_CSS))

    assert isinstance(response, FileResponse)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert response.getvalue()  # b"".join(streaming_content)


def test_it_passes_other_async_requests_on(static_files):
    async def app(request: HttpRequest) -> HttpResponse:
        return HttpResponse(f"app saw {request.path}")

    middleware = StaticFilesMiddleware(app)
    response = async_to_sync(middleware)(RequestFactory().get("/webhook/evolution"))

    assert isinstance(response, HttpResponse)
    assert response.content == b"app saw /webhook/evolution"


def test_it_still_serves_sync_requests(static_files):
    def app(request: HttpRequest) -> HttpResponse:
        return HttpResponse("app")

    middleware = StaticFilesMiddleware(app)

    static = middleware(RequestFactory().get(ADMIN_CSS))
    other = middleware(RequestFactory().get("/health"))

    assert isinstance(static, FileResponse)
    assert static.status_code == 200
    assert isinstance(other, HttpResponse)
    assert other.content == b"app"


def test_a_host_not_allowed_gets_a_json_400_and_one_warning_line(caplog):
    client = Client(headers={"Host": "omnihub:8000"})

    response = client.post("/webhook/evolution/acme", {}, content_type="application/json")

    assert response.status_code == 400
    assert "ALLOWED_HOSTS" in response.json()["detail"]
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert "omnihub:8000" in record.getMessage()
    assert record.exc_info is None


def test_a_host_not_allowed_is_refused_on_the_async_path_too():
    async def app(request: HttpRequest) -> HttpResponse:
        raise AssertionError("a request for another host must not reach the app")

    request = RequestFactory().get("/health", HTTP_HOST="omnihub:8000")

    response = async_to_sync(as_async(AllowedHostsMiddleware(app)))(request)

    assert response.status_code == 400


def test_an_allowed_host_goes_on_to_the_app():
    async def app(request: HttpRequest) -> HttpResponse:
        return HttpResponse("app")

    response = async_to_sync(as_async(AllowedHostsMiddleware(app)))(RequestFactory().get("/health"))

    assert isinstance(response, HttpResponse)
    assert response.content == b"app"


def post_async(path: str, body: object) -> "TestResponse":
    """As uvicorn calls Django: the async path, where webhooks leave the middleware early."""
    client = AsyncClient()
    return async_to_sync(client.post)(path, json.dumps(body), content_type="application/json")


@pytest.mark.django_db(transaction=True)
def test_an_async_webhook_is_stored_past_the_middleware_meant_for_browsers():
    InstanceConfigFactory.create(name="acme")

    response = post_async("/webhook/evolution/acme", evolution_payload("text_pn"))

    assert response.status_code == 200
    assert json.loads(response.content)["status"] == "queued"
    assert Message.objects.count() == 1
    assert response["X-Content-Type-Options"] == "nosniff"  # the security headers are set
    assert "X-Frame-Options" not in response  # a page's, which a webhook is not
    assert not response.cookies


@pytest.mark.django_db(transaction=True)
def test_an_async_webhook_is_still_authenticated():
    InstanceConfigFactory.create(name="acme", authenticated=True)

    response = post_async("/webhook/evolution/acme", evolution_payload("text_pn"))

    assert response.status_code == 401
    assert not Message.objects.exists()


def test_an_async_webhook_path_that_no_route_takes_is_answered_404():
    response = post_async("/webhook/nowhere/at/all", {})

    assert response.status_code == 404


def test_an_async_get_of_the_webhook_route_is_answered_405():
    response = async_to_sync(AsyncClient().get)("/webhook/evolution/acme")

    assert response.status_code == 405


@override_settings(SECURE_SSL_REDIRECT=True)
def test_an_async_webhook_over_http_is_redirected_when_https_is_required():
    response = post_async("/webhook/evolution/acme", evolution_payload("text_pn"))

    assert response.status_code == 301
    assert response["Location"] == "https://testserver/webhook/evolution/acme"
