"""Evolution webhooks. Answer at once; the agent is asked later, by a worker.

Evolution drops a delivery answered 400/401/403/404/422 and retries anything else that is not
2xx, so a payload we will never handle is answered 200 "ignored", with the reason, and a webhook
that does not prove it comes from the tenant's Evolution is answered 401: a forgery deserves no
retry, and nothing of it is stored.

The view is async so that a webhook costs no thread of its own: its database work runs on the
web process's few database threads, which keep their connections (omnihub.db_threads), together
with that of the webhooks that arrive meanwhile (webhooks.inbound.intake).
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from instances.selectors import TenantNotFoundError
from omnihub.json_input import InvalidJsonError, decode_json
from webhooks.inbound.authentication import WebhookCredentials, WebhookRejectedError
from webhooks.inbound.intake import Webhook, receive_webhook

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
async def evolution_webhook(request: HttpRequest, name: str = "", event: str = "") -> JsonResponse:
    if _declared_length(request) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return _too_large()
    try:
        payload = decode_json(request.body)
    except RequestDataTooBig:
        return _too_large()
    except InvalidJsonError as error:
        return JsonResponse({"detail": str(error)}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"detail": "the body must be a JSON object"}, status=400)
    credentials = WebhookCredentials.from_headers(request.headers)
    try:
        outcome = await receive_webhook(Webhook(name, event, payload, credentials))
    except TenantNotFoundError as error:
        return JsonResponse({"detail": str(error)}, status=404)
    except WebhookRejectedError as error:
        return JsonResponse({"detail": str(error)}, status=401)
    except DatabaseError:
        # Not the sender's fault, and maybe passing (the database restarting): a 503, which
        # Evolution retries, rather than Django's HTML 500.
        logger.exception("webhook for instance %r not stored", name)
        detail = "the message could not be stored; send it again later"
        return JsonResponse({"detail": detail}, status=503)
    return JsonResponse(outcome.as_dict())


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return 0  # Django reads the body by its real length and enforces the limit then


def _too_large() -> JsonResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
    return JsonResponse({"detail": f"the body is larger than {limit} MiB"}, status=413)
