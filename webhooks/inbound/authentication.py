"""Whether a webhook comes from the tenant's own Evolution: it must prove it knows the tenant's
webhook secret, before anything of it is stored.

Two proofs are accepted. Evolution's own: with a webhook header named `jwt_key` in its webhook
configuration, Evolution sends `Authorization: Bearer <JWT>` instead, signed HS256 with that key,
claims `{iat, exp: iat + 600, app: "evolution", action: "webhook"}`. And, for senders that cannot
sign, the secret itself in `X-Omnihub-Token`, compared in constant time.

Reference: https://github.com/EvolutionAPI/evolution-api/blob/2.3.6/src/api/integrations/event/webhook/webhook.controller.ts
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import jwt
from django.utils.crypto import constant_time_compare

from instances.selectors import TenantRef, webhook_secrets
from instances.services import record_webhook_rejection

logger = logging.getLogger(__name__)

STATIC_HEADER = "X-Omnihub-Token"
ALGORITHMS = ["HS256"]
# Clocks of two servers differ a little; Evolution's tokens live ten minutes.
LEEWAY_SECONDS = 30
# What Evolution puts in every token it signs (2.3.0 and later).
EVOLUTION_CLAIMS = {"app": "evolution", "action": "webhook"}


class Rejection(StrEnum):
    """Why a webhook was refused: stored on the tenant, logged and answered."""

    MISSING = "no token"
    BAD_SIGNATURE = "bad signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"
    ALGORITHM = "algorithm not allowed"
    CLAIMS_MISSING = "missing claims"
    NOT_EVOLUTION = "not an Evolution webhook token"
    MALFORMED = "malformed token"
    WRONG_STATIC = "wrong X-Omnihub-Token"
    UNCONFIGURED = "no webhook secret is set"


class WebhookRejectedError(Exception):
    """The webhook did not prove it knows the tenant's secret. `reason` names a kind of
    failure, never a token or a secret: it is logged, stored and answered."""

    def __init__(self, reason: Rejection) -> None:
        super().__init__(f"webhook not authenticated: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class WebhookCredentials:
    """What a webhook's headers offer as proof; both are secrets, kept out of reprs."""

    bearer: str = field(default="", repr=False)
    token: str = field(default="", repr=False)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> "WebhookCredentials":
        scheme, _, bearer = (headers.get("Authorization") or "").strip().partition(" ")
        return cls(
            bearer=bearer.strip() if scheme.lower() == "bearer" else "",
            token=(headers.get(STATIC_HEADER) or "").strip(),
        )


def authenticate_webhook(tenant: TenantRef, credentials: WebhookCredentials) -> None:
    """Raise WebhookRejectedError, counted on the tenant, unless the tenant takes webhooks
    unauthenticated or `credentials` prove one of its valid secrets."""
    if not tenant.require_webhook_auth:
        return
    try:
        _verify(credentials, tenant)
    except WebhookRejectedError as error:
        record_webhook_rejection(tenant.id, error.reason)
        logger.warning("webhook for instance %s refused (401): %s", tenant.name, error.reason)
        raise


def _verify(credentials: WebhookCredentials, tenant: TenantRef) -> None:
    try:
        verify_credentials(credentials, webhook_secrets(tenant))
    except WebhookRejectedError as error:
        if error.reason is Rejection.MISSING:
            raise
        # The secrets this process kept may predate a change made elsewhere: a webhook is
        # refused only on the secrets as stored.
        verify_credentials(credentials, webhook_secrets(tenant, fresh=True))


def verify_credentials(credentials: WebhookCredentials, secrets: Sequence[str]) -> None:
    """Accept a valid JWT or a matching static token; raise WebhookRejectedError otherwise."""
    if not secrets:
        # An empty HMAC key would verify tokens anyone can sign.
        raise WebhookRejectedError(Rejection.UNCONFIGURED)
    if not credentials.bearer and not credentials.token:
        raise WebhookRejectedError(Rejection.MISSING)
    if credentials.token and any(constant_time_compare(credentials.token, s) for s in secrets):
        return
    if credentials.bearer:
        verify_jwt(credentials.bearer, secrets)
        return
    raise WebhookRejectedError(Rejection.WRONG_STATIC)


def verify_jwt(token: str, secrets: Sequence[str]) -> dict[str, object]:
    """The claims of `token` when it is signed HS256 with one of `secrets`, unexpired and made
    by Evolution for a webhook; WebhookRejectedError otherwise."""
    for secret in secrets:
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                secret,
                algorithms=ALGORITHMS,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat"]},
            )
        except jwt.InvalidSignatureError:
            continue  # perhaps signed with the other valid secret
        except jwt.InvalidTokenError as error:
            raise WebhookRejectedError(_reason(error)) from None
        if any(claims.get(name) != value for name, value in EVOLUTION_CLAIMS.items()):
            raise WebhookRejectedError(Rejection.NOT_EVOLUTION)
        return claims
    raise WebhookRejectedError(Rejection.BAD_SIGNATURE)


def _reason(error: jwt.InvalidTokenError) -> Rejection:
    # PyJWT's own messages are kept out: a reason is one of a few fixed words.
    if isinstance(error, jwt.ExpiredSignatureError):
        return Rejection.EXPIRED
    if isinstance(error, jwt.ImmatureSignatureError):
        return Rejection.NOT_YET_VALID
    if isinstance(error, jwt.InvalidAlgorithmError):
        return Rejection.ALGORITHM
    if isinstance(error, jwt.MissingRequiredClaimError):
        return Rejection.CLAIMS_MISSING
    return Rejection.MALFORMED
