"""The baseline: a bare Django view that parses the JSON body and answers 200.

It runs through the same uvicorn, ASGI handler and middleware as the webhook, so the ratio of
the two isolates what Omnihub's webhook adds (tenant lookup, parsing, storing, queueing). It is
async, like the webhook: the cheapest request Django can answer on this stack.
"""

import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
async def bare_view(request: HttpRequest) -> JsonResponse:
    payload = json.loads(request.body)
    return JsonResponse({"status": "ok", "keys": len(payload)})
