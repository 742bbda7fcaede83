from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse


class JsonApiErrorsMiddleware:
    """Unknown routes and wrong methods under /api/ answer JSON like every other API error."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith("/api/") or response.status_code not in (404, 405):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        if response.status_code == 404:
            return JsonResponse({"detail": "Not Found"}, status=404)
        replacement = JsonResponse({"detail": "Method not allowed"}, status=405)
        replacement["Allow"] = response.get("Allow", "")
        return replacement
