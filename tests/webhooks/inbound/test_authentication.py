"""Webhook authentication, through the real view: Evolution's JWT, the static token, and what
a refused webhook leaves behind (a count on the tenant, nothing stored)."""

import logging
import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from instances import services
from instances.models import InstanceConfig
from instances.selectors import find_tenant
from tests.factories import InstanceConfigFactory
from tests.webhooks.conftest import (
    evolution_jwt,
    evolution_payload,
    post_json,
    post_signed,
    with_message_id,
)
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)

# Long enough for HS512 too, so the refusal of HS512 is about the algorithm, not the key.
SECRET = "s3cr3t-" + "k" * 57
URL = "/webhook/evolution/acme"


@pytest.fixture
def tenant():
    return InstanceConfigFactory.create(name="acme", authenticated=True, webhook_secret=SECRET)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response, reason: str) -> None:
    assert response.status_code == 401
    assert response.json() == {"detail": f"webhook not authenticated: {reason}"}
    assert not Message.objects.exists()
    assert not Conversation.objects.exists()


def test_it_queues_a_webhook_signed_as_evolution_signs_it(tenant):
    response = post_signed(URL, evolution_payload("text_pn"), **bearer(evolution_jwt(SECRET)))

    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert Message.objects.get().instance == tenant


def test_it_queues_a_webhook_with_the_static_token(tenant):
    response = post_signed(URL, evolution_payload("text_pn"), **{"X-Omnihub-Token": SECRET})

    assert response.json()["status"] == "queued"


def test_it_accepts_a_token_that_expired_within_the_leeway(tenant):
    token = evolution_jwt(SECRET, issued=time.time() - 610)

    response = post_signed(URL, evolution_payload("text_pn"), **bearer(token))

    assert response.json()["status"] == "queued"


@pytest.mark.parametrize(
    ("headers", "reason"),
    # Made when the test runs, not when it is collected: a token minted "300 s ahead" at
    # collection is valid by the time a long suite reaches it.
    [
        (lambda: {}, "no token"),
        (lambda: {"Authorization": "Basic dXNlcjpwYXNz"}, "no token"),
        (lambda: bearer(evolution_jwt("another-" + "k" * 56)), "bad signature"),
        (lambda: bearer(evolution_jwt(SECRET, issued=time.time() - 700)), "expired"),
        (lambda: bearer(evolution_jwt(SECRET, issued=time.time() + 300)), "not yet valid"),
        (lambda: bearer(evolution_jwt(SECRET, algorithm="none")), "algorithm not allowed"),
        (lambda: bearer(evolution_jwt(SECRET, algorithm="HS512")), "algorithm not allowed"),
        (lambda: bearer(evolution_jwt(SECRET, exp=None)), "missing claims"),
        (lambda: bearer(evolution_jwt(SECRET, iat=None)), "missing claims"),
        (
            lambda: bearer(evolution_jwt(SECRET, app="another-app")),
            "not an Evolution webhook token",
        ),
        (lambda: bearer(evolution_jwt(SECRET, action="login")), "not an Evolution webhook token"),
        (lambda: bearer("not.a.jwt"), "malformed token"),
        (lambda: {"X-Omnihub-Token": "guessed-" + "k" * 56}, "wrong X-Omnihub-Token"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_it_refuses_a_webhook_that_proves_nothing_and_stores_nothing(tenant, headers, reason):
    response = post_signed(URL, evolution_payload("text_pn"), **headers())

    assert_refused(response, reason)


def test_a_refusal_is_counted_on_the_tenant_with_its_time_and_reason(tenant, caplog):
    before = timezone.now()
    post_signed(URL, evolution_payload("text_pn"))
    with caplog.at_level(logging.WARNING):
        post_signed(URL, evolution_payload("text_pn"), **bearer(evolution_jwt("x" * 64)))

    tenant.refresh_from_db()
    assert tenant.webhook_rejections == 2
    assert tenant.webhook_last_rejection == "bad signature"
    assert tenant.webhook_last_rejected_at >= before
    assert "webhook for instance acme refused (401): bad signature" in caplog.text


def test_a_refusal_names_no_secret_or_token(tenant, caplog):
    wrong = "wrong-secret-" + "w" * 51
    with caplog.at_level(logging.DEBUG):
        response = post_signed(URL, evolution_payload("text_pn"), **{"X-Omnihub-Token": wrong})

    for text in (response.content.decode(), caplog.text):
        assert wrong not in text
        assert SECRET not in text


def test_a_tenant_that_predates_authentication_takes_webhooks_that_prove_nothing():
    legacy = InstanceConfigFactory.create(name="acme")

    response = post_json(URL, evolution_payload("text_pn"))

    assert response.json()["status"] == "queued"
    legacy.refresh_from_db()
    assert legacy.webhook_rejections == 0


def test_a_tenant_that_requires_authentication_without_a_secret_refuses_every_webhook():
    # Only the ORM can leave it so (the services generate a secret): it fails closed.
    tenant = InstanceConfigFactory.create(name="acme")
    InstanceConfig.objects.filter(pk=tenant.pk).update(require_webhook_auth=True)

    response = post_signed(URL, evolution_payload("text_pn"), **bearer(evolution_jwt("x" * 64)))

    assert_refused(response, "no webhook secret is set")


def test_the_legacy_route_verifies_the_default_tenant():
    InstanceConfigFactory.create(
        name="main", is_default=True, authenticated=True, webhook_secret=SECRET
    )

    refused = post_signed("/webhook/evolution", evolution_payload("text_pn"))
    accepted = post_signed(
        "/webhook/evolution", evolution_payload("text_pn"), **bearer(evolution_jwt(SECRET))
    )

    assert refused.status_code == 401
    assert accepted.json()["status"] == "queued"


def test_after_a_rotation_both_secrets_verify_during_the_grace_period(tenant):
    rotated = services.rotate_webhook_secret(tenant)
    payload = evolution_payload("text_pn")

    old = post_signed(URL, with_message_id(payload, "OLD"), **bearer(evolution_jwt(SECRET)))
    new = post_signed(
        URL, with_message_id(payload, "NEW"), **bearer(evolution_jwt(rotated.webhook_secret))
    )

    assert rotated.webhook_secret != SECRET
    assert old.json()["status"] == new.json()["status"] == "queued"


def test_after_the_grace_period_only_the_new_secret_verifies(tenant):
    rotated = services.rotate_webhook_secret(tenant)
    InstanceConfig.objects.filter(pk=tenant.pk).update(
        webhook_secret_rotated_at=timezone.now() - timedelta(seconds=3601)
    )

    old = post_signed(URL, evolution_payload("text_pn"), **{"X-Omnihub-Token": SECRET})
    new = post_signed(
        URL, evolution_payload("text_pn"), **{"X-Omnihub-Token": rotated.webhook_secret}
    )

    assert old.status_code == 401
    assert new.json()["status"] == "queued"


@override_settings(WEBHOOK_SECRET_GRACE_SECONDS=0)
def test_without_a_grace_period_a_rotation_refuses_the_previous_secret_at_once(tenant):
    services.rotate_webhook_secret(tenant)

    response = post_signed(URL, evolution_payload("text_pn"), **bearer(evolution_jwt(SECRET)))

    assert_refused(response, "bad signature")


def test_a_new_secret_is_used_at_once_although_the_tenant_is_cached(tenant):
    post_signed(URL, evolution_payload("text_pn"), **bearer(evolution_jwt(SECRET)))
    newer = "newer-secret-" + "n" * 51
    # Behind the services' back, as another process's change looks before its cache is told.
    InstanceConfig.objects.filter(pk=tenant.pk).update(webhook_secret=newer)

    response = post_signed(
        URL, with_message_id(evolution_payload("text_pn"), "AGAIN"), **bearer(evolution_jwt(newer))
    )

    assert response.json()["status"] == "queued"


def test_no_secret_is_kept_in_the_tenant_cache(tenant):
    post_signed(URL, evolution_payload("text_pn"), **bearer(evolution_jwt(SECRET)))

    cached = find_tenant("acme")

    assert cached.require_webhook_auth is True
    assert SECRET not in repr(cached)
