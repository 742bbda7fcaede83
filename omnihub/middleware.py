"""Middleware that works both ways, sync and async.

Under ASGI one sync-only middleware makes Django hop to a thread and back for every request,
webhooks included; every class here keeps async requests on the event loop.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.middleware.security import SecurityMiddleware as DjangoSecurityMiddleware
from django.urls import Resolver404, resolve
from django.utils.log import log_response
from whitenoise.middleware import WhiteNoiseMiddleware

GetResponse = Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]

logger = logging.getLogger(__name__)

# Evolution's webhooks: requests from a machine, which carry no cookie and render no page.
WEBHOOK_PATH_PREFIX = "/webhook/"


class _BothWays:
    """Called sync or async, as the middleware chain it sits in is."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        raise NotImplementedError


class _RequestGuard(_BothWays):
    """Answers a request itself when `refusal` returns a response, else passes it on."""

    def refusal(self, request: HttpRequest) -> HttpResponseBase | None:
        raise NotImplementedError

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        refusal = self.refusal(request)
        if self.is_async:
            return self._acall(request, refusal)
        return self.get_response(request) if refusal is None else refusal

    async def _acall(
        self, request: HttpRequest, refusal: HttpResponseBase | None
    ) -> HttpResponseBase:
        if refusal is not None:
            return refusal
        response = self.get_response(request)
        assert not isinstance(response, HttpResponseBase)
        return await response


class AllowedHostsMiddleware(_RequestGuard):
    """A Host not in ALLOWED_HOSTS gets a JSON 400 and one warning line. Django would log an
    error with a traceback for each such request: a gateway pointed at the wrong name (e.g.
    Evolution in Docker calling http://omnihub:8000) would bury the log in them. First in
    MIDDLEWARE, so every later `get_host()` succeeds."""

    def refusal(self, request: HttpRequest) -> HttpResponseBase | None:
        try:
            request.get_host()
        except DisallowedHost as error:
            detail = "this server does not answer to that host name (see ALLOWED_HOSTS)"
            response = JsonResponse({"detail": detail}, status=400)
            # Logged as Django logs every 4xx, which then does not log it a second time.
            log_response(
                "%s", error, response=response, request=request, logger=logger, level="warning"
            )
            return response
        return None


class NulInUrlMiddleware(_RequestGuard):
    """A URL with a NUL character is answered 400: no route takes one, and PostgreSQL refuses
    NULs in text, so a path or query parameter carrying one would end as a 500."""

    def refusal(self, request: HttpRequest) -> HttpResponseBase | None:
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            return JsonResponse({"detail": "the URL has a NUL character"}, status=400)
        return None


class SecurityMiddleware(_BothWays):
    """Django's SecurityMiddleware (HTTPS redirect, security headers), its hooks called on the
    event loop: they only read the request and set headers, and Django would otherwise run
    each of them in a thread, and back, for every request."""

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.security = DjangoSecurityMiddleware(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        return self.security(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        redirect = self.security.process_request(request)
        if redirect is not None:
            return redirect
        response = self.get_response(request)
        assert not isinstance(response, HttpResponseBase)
        # Typed for HttpResponse, it only sets headers, which every response has.
        return self.security.process_response(request, cast(HttpResponse, await response))


class WebhooksMiddleware(_BothWays):
    """Sends Evolution's webhooks straight to their view, past the middleware after this one,
    which serves people: sessions, CSRF, logins, messages, frame options, lockouts. A webhook
    carries no cookie and renders no page, while Django runs each hook of those middlewares
    in a thread and back: on the async path, most of what a webhook cost the web process.
    The view keeps its own checks (POST only, no CSRF token, its authentication).

    On the sync path (WSGI, tests' Client) a webhook takes the whole chain, as any request."""

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async and request.path_info.startswith(WEBHOOK_PATH_PREFIX):
            try:
                match = resolve(request.path_info)
            except Resolver404:
                pass  # answered by the whole chain, as any unknown path
            else:
                request.resolver_match = match
                answer: Awaitable[HttpResponseBase] = match.func(
                    request, *match.args, **match.kwargs
                )
                return answer
        return self.get_response(request)


class JsonApiErrorsMiddleware(_BothWays):
    """Unknown routes and wrong methods under /api/ answer JSON like every other API error."""

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        response = self.get_response(request)
        assert isinstance(response, HttpResponseBase)
        return _as_json_error(request, response)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        assert not isinstance(response, HttpResponseBase)
        return _as_json_error(request, await response)


def _as_json_error(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    if not request.path.startswith("/api/") or response.status_code not in (404, 405):
        return response
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    if response.status_code == 404:
        return JsonResponse({"detail": "Not Found"}, status=404)
    replacement = JsonResponse({"detail": "Method not allowed"}, status=405)
    replacement["Allow"] = response.get("Allow", "")
    return replacement


class StaticFilesMiddleware(WhiteNoiseMiddleware):  # type: ignore[misc]  # WhiteNoise is untyped
    """WhiteNoise, which is sync-only, made async-capable: only a static file leaves the event
    loop; every other request goes straight on."""

    sync_capable = True
    async_capable = True
    get_response: GetResponse  # set by WhiteNoiseMiddleware.__init__

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        # The static file's response (a FileResponse) or the app's.
        response: HttpResponseBase = super().__call__(request)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        if self.autorefresh:  # DEBUG: the lookup reads the disk
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            # Opening the file is disk work too, and static files are rare (the admin's).
            served: HttpResponseBase = await sync_to_async(self.serve)(static_file, request)
            return served
        response = self.get_response(request)
        assert not isinstance(response, HttpResponseBase)
        return await response
