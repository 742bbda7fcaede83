"""The baseline: a bare Django app, no middleware and one async view that parses the JSON body
and answers 200. Served by the same uvicorn flags as Omnihub's web (bench/servers.py), it is the
cheapest request Django answers on this stack, so Omnihub's cost is shown as a multiple of it.

    python -m uvicorn bench.baseline:application --lifespan off --no-access-log
"""

import json

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import re_path

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-baseline",  # nothing is signed
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
)


async def bare_view(request: HttpRequest) -> JsonResponse:
    # GET (no body) is the readiness check; the benchmark POSTs webhooks.
    payload = json.loads(request.body) if request.body else {}
    return JsonResponse({"status": "ok", "keys": len(payload)})


# Every path, so the generator sends the bare app the very requests it sends Omnihub.
urlpatterns = [re_path(r"", bare_view)]

application = get_asgi_application()
