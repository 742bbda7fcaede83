"""Middleware that works both ways, sync and async.

Under ASGI one sync-only middleware makes Django hop to a thread and back for every request,
webhooks included; both classes here keep async requests on the event loop.
"""

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware

GetResponse = Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]


class JsonApiErrorsMiddleware:
    """Unknown routes and wrong methods under /api/ answer JSON like every other API error."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

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
