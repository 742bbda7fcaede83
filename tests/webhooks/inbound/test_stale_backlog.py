"""Stale backlog: messages older than the tenant's max_message_age_seconds are not answered."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from instances.selectors import find_tenant
from tests.factories import InstanceConfigFactory
from tests.webhooks.chat_payloads import from_contact
from tests.webhooks.conftest import answer_all, post_webhook
from webhooks.inbound.staleness import stale_reason
from webhooks.models import Message

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("age", "limit", "stale"),
    [
        (timedelta(seconds=899), 900, False),
        (timedelta(seconds=900), 900, False),
        (timedelta(seconds=901), 900, True),
        (timedelta(days=30), 0, False),  # 0 is off
        (-timedelta(minutes=5), 900, False),  # a clock ahead of ours
    ],
)
def test_a_message_is_stale_only_when_older_than_the_limit(age, limit, stale):
    InstanceConfigFactory.create(name="acme", max_message_age_seconds=limit)

    reason = stale_reason(find_tenant("acme"), NOW - age, now=NOW)

    assert (reason is not None) is stale


@pytest.mark.django_db
def test_a_message_without_a_timestamp_is_not_stale():
    InstanceConfigFactory.create(name="acme", max_message_age_seconds=60)

    assert stale_reason(find_tenant("acme"), None, now=NOW) is None


@pytest.mark.django_db(transaction=True)
def test_a_backlog_delivered_after_a_reconnect_is_stored_and_only_the_fresh_is_answered(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", max_message_age_seconds=900)
    now = time.time()

    old = post_webhook("acme", from_contact("Oi, alguém?", "OLD-1", at=now - 3600))
    fresh = post_webhook("acme", from_contact("Oi de novo", "NEW-1", at=now - 60))
    answer_all()

    assert old["status"] == "ignored"
    assert old["reason"] == "stale: sent over 900 seconds before it arrived"
    assert fresh["status"] == "queued"
    assert [r.body["message_content"] for r in agent.requests] == ["Oi de novo"]
    assert Message.objects.get(whatsapp_id="OLD-1").status == Message.Status.IGNORED
