"""The order of intake's rules: the first that applies decides."""

import time
from datetime import UTC, datetime

import pytest

from instances.selectors import find_tenant
from tests.factories import InstanceConfigFactory
from tests.webhooks.chat_payloads import from_contact, from_the_phone, sticker_from
from tests.webhooks.conftest import evolution_payload
from webhooks.inbound.parsing import parse_incoming_message
from webhooks.inbound.policy import screen
from webhooks.models import Message

pytestmark = pytest.mark.django_db

NOW = datetime.fromtimestamp(int(time.time()), tz=UTC)
STRICT = {
    "blocked_numbers": ["5511912345678"],
    "max_message_age_seconds": 60,
    "unsupported_reply": "Só texto, por favor.",
    "reset_keyword": "#reset",
}


def screened(payload, **settings):
    InstanceConfigFactory.create(name="acme", **settings)
    return screen(find_tenant("acme"), parse_incoming_message(payload), now=NOW)


def test_a_plain_text_goes_to_the_agent():
    screening = screened(from_contact("Oi!", "M-1"))

    assert (screening.ignore_reason, screening.canned, screening.by_contact) == ("", None, True)


def test_a_group_is_not_handled_whoever_sent_it_and_whatever_the_settings():
    screening = screened(evolution_payload("group_text"), **STRICT)

    assert screening.ignore_reason == "group chats are not handled"
    assert screening.by_contact is False


@pytest.mark.parametrize(
    "payload",
    [from_contact("#reset", "M-1", at=time.time() - 3600), sticker_from("M-2")],
    ids=["a stale keyword", "a sticker"],
)
def test_a_blocked_number_is_refused_before_its_age_its_kind_or_its_words_count(payload):
    assert screened(payload, **STRICT).ignore_reason == "blocked number"


def test_a_stale_sticker_or_keyword_is_not_answered_at_all():
    settings = {**STRICT, "blocked_numbers": []}
    old = time.time() - 3600

    screening = screened(from_contact("#reset", "M-1", at=old), **settings)

    assert screening.ignore_reason.startswith("stale")
    assert screening.canned is None


def test_a_sticker_gets_the_unsupported_reply_and_a_keyword_the_reset_reply():
    settings = {**STRICT, "blocked_numbers": []}

    sticker = screened(sticker_from("M-1"), **settings)
    keyword = screen(
        find_tenant("acme"), parse_incoming_message(from_contact(" #RESET ", "M-2")), now=NOW
    )

    assert sticker.canned is not None
    assert keyword.canned is not None
    assert sticker.canned.kind == Message.CannedReply.UNSUPPORTED
    assert sticker.canned.text == "Só texto, por favor."
    assert keyword.canned.kind == Message.CannedReply.RESET
    assert keyword.canned.text == "Ok, starting over."
    assert sticker.ignore_reason == keyword.ignore_reason == ""


def test_the_accounts_own_message_is_left_to_takeover_and_no_contact_rule_applies():
    screening = screened(from_the_phone("#reset", "M-1"), **STRICT)

    assert screening.ignore_reason.startswith("sent by a person")
    assert screening.pause_until is not None
    assert (screening.canned, screening.by_contact) == (None, False)
