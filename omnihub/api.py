"""The project-level REST API: authentication, one router per app, domain errors → HTTP."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.parser import Parser
from ninja.security import APIKeyHeader, HttpBearer

from instances.api import router as instances_router
from instances.connection import ConnectionNotPossibleError, EvolutionCallError
from instances.services import InstanceExistsError, InstanceNotFoundError
from omnihub import auth_failures
from omnihub.json_input import InvalidJsonError, decode_json, is_storable
from webhooks.api import conversations_router
from webhooks.api import router as messages_router
from webhooks.conversations.retries import MessageNotRetryableError
from webhooks.conversations.selectors import ConversationNotFoundError
from webhooks.selectors import MessageNotFoundError


class ApiKeyNotConfiguredError(Exception):
    pass


class LockedOutError(Exception):
    pass


def _is_valid_api_key(request: HttpRequest, key: str | None) -> bool:
    expected = settings.OMNIHUB_API_KEY
    if not expected:
        # Never fall open: an unset key means nobody gets in, and the operator is told why.
        raise ApiKeyNotConfiguredError
    if not key:
        return False
    # Before the key is compared: a locked-out guesser must not learn that a guess was right.
    if auth_failures.is_locked_out(request):
        raise LockedOutError
    return constant_time_compare(key, expected)


class ApiKeyHeaderAuth(APIKeyHeader):
    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> bool:
        return _is_valid_api_key(request, key)


class BearerAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> bool:
        return _is_valid_api_key(request, token)


class JsonParser(Parser):
    """Request bodies read as the webhooks' are (omnihub.json_input), and refused (ninja answers
    400) when a string holds what no column stores: a person or a script sent it, and can fix
    it, so it is not changed behind their back."""

    def parse_body(self, request: HttpRequest) -> Any:
        body = decode_json(request.body)
        if not is_storable(body):
            raise InvalidJsonError("a string holds a NUL character or a lone surrogate")
        return body


api = NinjaAPI(
    title="Omnihub",
    version="1",
    urls_namespace="api",
    docs_url="/docs",
    auth=[ApiKeyHeaderAuth(), BearerAuth()],
    parser=JsonParser(),
)
api.add_router("/instances", instances_router)
api.add_router("/instances", conversations_router)
api.add_router("/messages", messages_router)


def _field_errors(error: ValidationError) -> list[dict[str, Any]]:
    if not hasattr(error, "error_dict"):
        return [
            {"loc": ["body"], "msg": message, "type": "value_error"} for message in error.messages
        ]
    return [
        {"loc": ["body", field], "msg": message, "type": "value_error"}
        for field, messages in error.message_dict.items()
        for message in messages
    ]


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    return api.create_response(request, {"detail": _field_errors(error)}, status=422)


@api.exception_handler(InstanceNotFoundError)
@api.exception_handler(MessageNotFoundError)
@api.exception_handler(ConversationNotFoundError)
def on_not_found(request: HttpRequest, error: Exception) -> HttpResponse:
    return api.create_response(request, {"detail": str(error)}, status=404)


@api.exception_handler(InstanceExistsError)
@api.exception_handler(MessageNotRetryableError)
def on_conflict(request: HttpRequest, error: Exception) -> HttpResponse:
    return api.create_response(request, {"detail": str(error)}, status=409)


@api.exception_handler(AuthenticationError)
def on_wrong_api_key(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    # Once per request, however many of the schemes it tried; a request with no key is no guess.
    if "X-API-Key" in request.headers or "Authorization" in request.headers:
        auth_failures.record_failure(request)
    return api.create_response(request, {"detail": "Unauthorized"}, status=401)


@api.exception_handler(LockedOutError)
def on_locked_out(request: HttpRequest, error: Exception) -> HttpResponse:
    return auth_failures.lockout_response(request)


@api.exception_handler(ConnectionNotPossibleError)
def on_connection_not_possible(request: HttpRequest, error: Exception) -> HttpResponse:
    return api.create_response(request, {"detail": str(error)}, status=409)


@api.exception_handler(EvolutionCallError)
def on_evolution_call_failed(request: HttpRequest, error: Exception) -> HttpResponse:
    return api.create_response(request, {"detail": str(error)}, status=502)


@api.exception_handler(ApiKeyNotConfiguredError)
def on_api_key_not_configured(request: HttpRequest, error: Exception) -> HttpResponse:
    detail = "The API is disabled: set OMNIHUB_API_KEY in the environment to enable it."
    return api.create_response(request, {"detail": detail}, status=503)
