"""Access rules: allowed and blocked numbers, exact or by prefix."""

import pytest

from instances.selectors import find_tenant
from tests.factories import InstanceConfigFactory
from tests.webhooks.chat_payloads import from_contact
from tests.webhooks.conftest import answer_all, evolution_payload, post_webhook
from webhooks.inbound.access import matches, refusal
from webhooks.models import Message


@pytest.mark.parametrize(
    ("phone", "patterns", "expected"),
    [
        ("5511912345678", ["5511912345678"], True),
        ("5511912345678", ["551191234567"], False),  # not a prefix without its *
        ("5511912345678", ["5511*"], True),
        ("5521912345678", ["5511*"], False),
        ("5511912345678", ["5521*", "5511912345678"], True),
        ("5511912345678", [], False),
    ],
)
def test_a_number_matches_an_entry_exactly_or_by_its_prefix(phone, patterns, expected):
    assert matches(phone, patterns) is expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("phone", "allowed", "blocked", "reason"),
    [
        ("5511912345678", [], [], None),
        ("5511912345678", [], ["5511*"], "blocked number"),
        ("5511912345678", ["5511*"], [], None),
        ("5521912345678", ["5511*"], [], "not an allowed number"),
        # Blocked wins over allowed.
        ("5511912345678", ["5511*"], ["5511912345678"], "blocked number"),
        ("", ["5511*"], [], "hidden number: not on the allowed list"),
        ("", [], ["5511*"], None),
    ],
)
def test_the_rules_refuse_blocked_numbers_and_those_not_allowed(phone, allowed, blocked, reason):
    InstanceConfigFactory.create(name="acme", allowed_numbers=allowed, blocked_numbers=blocked)

    assert refusal(find_tenant("acme"), phone) == reason


@pytest.mark.django_db(transaction=True)
def test_a_blocked_number_is_stored_ignored_and_never_reaches_the_agent(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", blocked_numbers=["5511900000001"])

    blocked = post_webhook("acme", from_contact("Oi!", "B-1", chat="5511900000001"))
    other = post_webhook("acme", from_contact("Oi!", "O-1", chat="5511900000002"))
    answer_all()

    assert blocked == {"status": "ignored", "reason": "blocked number", "message_id": "B-1"}
    assert other["status"] == "queued"
    assert [r.body["user"]["phone_number"] for r in agent.requests] == ["+5511900000002"]
    stored = Message.objects.get(whatsapp_id="B-1")
    assert (stored.status, stored.ignore_reason) == (Message.Status.IGNORED, "blocked number")


@pytest.mark.django_db(transaction=True)
def test_with_an_allow_list_only_its_numbers_reach_the_agent(agent, evolution, tenant_at):
    tenant_at(name="acme", allowed_numbers=["5511*"])

    allowed = post_webhook("acme", from_contact("Oi!", "A-1", chat="5511900000001"))
    other = post_webhook("acme", from_contact("Oi!", "O-1", chat="5521900000001"))
    hidden = post_webhook("acme", evolution_payload("lid_without_phone"))
    answer_all()

    assert allowed["status"] == "queued"
    assert other["reason"] == "not an allowed number"
    assert hidden["reason"] == "hidden number: not on the allowed list"
    assert len(agent.requests) == 1
