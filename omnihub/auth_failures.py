"""Wrong REST API keys counted with the admin's wrong passwords, per client address.

django-axes counts failed logins: it listens to Django's `user_login_failed` signal and keeps
the count in the database, shared by every web process. A wrong API key is sent as that signal,
so it counts towards the same limit as a wrong admin password from the same address, and an
address at the limit is refused an API key as it is refused the admin's login, until
AXES_COOLOFF_TIME has passed since its last failure.

Reference: https://django-axes.readthedocs.io/en/latest/3_usage.html
"""

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse, JsonResponse

# How API key failures show in the admin's "Access attempts"; never the key that was tried.
_API_KEY_CREDENTIALS = {"username": "(REST API key)"}


def is_locked_out(request: HttpRequest) -> bool:
    """Whether the request's client address has failed too often to be let try again."""
    if not getattr(settings, "AXES_ENABLED", True):  # axes' own default, set by axes.conf
        return False
    return bool(AxesProxyHandler.is_locked(request, _API_KEY_CREDENTIALS))


def record_failure(request: HttpRequest) -> None:
    """Count a wrong API key against the request's client address."""
    user_login_failed.send(sender=__name__, credentials=_API_KEY_CREDENTIALS, request=request)


def lockout_response(request: HttpRequest, *args: Any) -> HttpResponse:
    """429 for a locked-out address, in JSON under /api/ like every API error; axes calls it
    (AXES_LOCKOUT_CALLABLE) for the admin and for the failure that reaches the limit."""
    detail = "Too many failed attempts from this address: try again later."
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": detail}, status=429)
    else:
        response = HttpResponse(detail, status=429, content_type="text/plain")
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
