"""Start over: the reset keyword starts a new agent session from the chat's next message."""

import pytest

from instances.selectors import find_tenant
from tests.factories import InstanceConfigFactory
from tests.webhooks.chat_payloads import from_contact
from tests.webhooks.conftest import answer_all, post_webhook
from webhooks.inbound import start_over
from webhooks.models import Message


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("keyword", "text", "is_reset"),
    [
        ("#reset", "#reset", True),
        ("#reset", "  #RESET \n", True),
        (" #Reset ", "#reset", True),
        ("#reset", "#reset please", False),
        ("", "", False),  # empty is off
        ("", "#reset", False),
    ],
)
def test_the_keyword_matches_trimmed_in_any_case(keyword, text, is_reset):
    InstanceConfigFactory.create(name="acme", reset_keyword=keyword)

    screening = start_over.screen(find_tenant("acme"), text)

    assert (screening is not None) is is_reset


def sessions(agent) -> list[tuple[str, str]]:
    return [(r.body["message_content"], r.body["session_name"]) for r in agent.requests]


@pytest.mark.django_db(transaction=True)
def test_the_message_after_the_keyword_starts_a_new_agent_session(agent, evolution, tenant_at):
    tenant_at(name="acme", session_id_prefix="acme-", reset_keyword="#reset")

    post_webhook("acme", from_contact("Quero uma pizza", "M-1"))
    reset = post_webhook("acme", from_contact("#Reset", "M-2"))
    post_webhook("acme", from_contact("Quero um sorvete", "M-3"))
    post_webhook("acme", from_contact("#reset", "M-4"))
    post_webhook("acme", from_contact("Oi", "M-5"))
    answer_all()

    assert reset["status"] == "queued"
    assert sessions(agent) == [
        ("Quero uma pizza", "acme-5511912345678"),
        ("Quero um sorvete", "acme-5511912345678-1"),
        ("Oi", "acme-5511912345678-2"),
    ]
    sent = [s.body["text"] for s in evolution.requests]
    assert sent[1] == sent[3] == "Ok, starting over."
    keyword = Message.objects.get(whatsapp_id="M-2")
    assert keyword.status == Message.Status.ANSWERED
    assert keyword.canned_reply == Message.CannedReply.RESET


@pytest.mark.django_db(transaction=True)
def test_messages_sent_before_the_keyword_stay_in_the_old_session_however_late_answered(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", session_id_prefix="acme-", reset_keyword="#reset")
    agent.script = [(503, {"detail": "busy"})]  # the first message is answered late

    post_webhook("acme", from_contact("Quero uma pizza", "M-1"))
    post_webhook("acme", from_contact("#reset", "M-2"))
    post_webhook("acme", from_contact("Quero um sorvete", "M-3"))
    answer_all()

    assert sessions(agent) == [
        ("Quero uma pizza", "acme-5511912345678"),
        ("Quero uma pizza", "acme-5511912345678"),
        ("Quero um sorvete", "acme-5511912345678-1"),
    ]


@pytest.mark.django_db(transaction=True)
def test_with_an_empty_reset_reply_nothing_is_sent_and_the_session_still_starts_over(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", session_id_prefix="acme-", reset_keyword="#reset", reset_reply="")

    post_webhook("acme", from_contact("#reset", "M-1"))
    post_webhook("acme", from_contact("Oi", "M-2"))
    answer_all()

    assert sessions(agent) == [("Oi", "acme-5511912345678-1")]
    assert [s.body["text"] for s in evolution.requests] == ["Olá! Abrimos às 9h."]
    assert Message.objects.get(whatsapp_id="M-1").status == Message.Status.ANSWERED


@pytest.mark.django_db(transaction=True)
def test_without_a_keyword_the_text_goes_to_the_agent(agent, evolution, tenant_at):
    tenant_at(name="acme", reset_keyword="")

    post_webhook("acme", from_contact("#reset", "M-1"))
    answer_all()

    assert [r.body["message_content"] for r in agent.requests] == ["#reset"]
