"""Paced replies through the real path: an answer sent as its paragraphs, in order, each once."""

import threading

import pytest

from tests.fakes import Recorded, sends
from tests.webhooks.conftest import answer_all, evolution_payload, post_webhook, text_in_chat
from webhooks.models import Message, ReplyPart

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER = "Olá, Maria!\n\nSeu pedido saiu hoje.\nChega amanhã.\n\nAlgo mais?"
PARTS = ["Olá, Maria!", "Seu pedido saiu hoje.\nChega amanhã.", "Algo mais?"]


def sent_texts(evolution) -> list[str]:
    return [r.body["text"] for r in sends(evolution)]


def test_an_answer_is_sent_as_its_paragraphs_in_order(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.default = (200, {"message": ANSWER})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert sent_texts(evolution) == PARTS
    message = Message.objects.get()
    assert message.status == Message.Status.ANSWERED
    assert message.reply_text == ANSWER  # the whole answer, as the agent gave it
    parts = list(message.parts.all())
    assert [(p.position, p.text, p.whatsapp_id) for p in parts] == [
        (0, PARTS[0], "SENT-1"),
        (1, PARTS[1], "SENT-2"),
        (2, PARTS[2], "SENT-3"),
    ]
    assert all(p.sent_at is not None and p.attempts == 1 for p in parts)
    # The reply is known by its first part's id.
    assert message.reply_whatsapp_id == "SENT-1"


def test_an_answer_is_sent_whole_when_the_tenant_does_not_split(agent, evolution, tenant_at):
    tenant_at(name="acme", split_replies=False)
    agent.default = (200, {"message": ANSWER})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert sent_texts(evolution) == [ANSWER]
    assert Message.objects.get().parts.count() == 1


def test_a_failed_part_is_retried_alone_and_the_parts_sent_are_not_sent_again(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    agent.default = (200, {"message": ANSWER})
    accept = evolution.default
    assert callable(accept)  # evolution_accepting's own sendText
    failed: list[Recorded] = []

    def second_part_fails_once(sent: Recorded):
        if sent.body["text"] == PARTS[1] and not failed:
            failed.append(sent)
            return 500, {"error": "boom"}
        return accept(sent)

    evolution.default = second_part_fails_once

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert sent_texts(evolution) == [PARTS[0], PARTS[1], PARTS[1], PARTS[2]]
    assert len(agent.requests) == 1
    message = Message.objects.get()
    assert (message.status, message.attempts) == (Message.Status.ANSWERED, 2)
    assert [p.attempts for p in message.parts.all()] == [1, 2, 1]
    assert message.parts.get(position=1).last_error == ""


def test_a_part_whose_send_outcome_is_unknown_is_found_in_evolution_not_sent_again(
    agent, evolution, tenant_at, settings
):
    settings.EVOLUTION_TIMEOUT = 0.3
    tenant_at(name="acme")
    agent.default = (200, {"message": ANSWER})
    accept = evolution.default
    assert callable(accept)  # evolution_accepting's own sendText
    never = threading.Event()

    def second_part_taken_but_never_answered(sent: Recorded):
        answer = accept(sent)
        if sent.body["text"] == PARTS[1] and len(sends(evolution)) == 2:
            never.wait(10)  # the worker gives up first
        return answer

    evolution.default = second_part_taken_but_never_answered
    try:
        post_webhook("acme", evolution_payload("text_pn"))
        answer_all()
    finally:
        never.set()

    assert sent_texts(evolution) == PARTS
    lookups = [r for r in evolution.requests if r.path.startswith("/chat/findMessages/")]
    assert len(lookups) == 1
    message = Message.objects.get()
    assert message.status == Message.Status.ANSWERED
    assert [p.whatsapp_id for p in message.parts.all()] == ["SENT-1", "SENT-2", "SENT-3"]


def test_a_lookup_does_not_take_an_earlier_part_with_the_same_words_for_the_lost_one(
    agent, evolution, tenant_at, settings
):
    settings.EVOLUTION_TIMEOUT = 0.3
    tenant_at(name="acme")
    agent.default = (200, {"message": "Ok.\n\nOk."})
    accept = evolution.default
    assert callable(accept)  # evolution_accepting's own sendText
    never = threading.Event()

    def second_ok_lost_before_evolution_keeps_it(sent: Recorded):
        if len(sends(evolution)) == 2:
            never.wait(10)  # held, and never stored: it reached no one
        return accept(sent)

    evolution.default = second_ok_lost_before_evolution_keeps_it
    try:
        post_webhook("acme", evolution_payload("text_pn"))
        answer_all()
    finally:
        never.set()

    # The first "Ok." is in Evolution, the second is not: it is sent again.
    assert sent_texts(evolution) == ["Ok.", "Ok.", "Ok."]
    parts = list(Message.objects.get().parts.all())
    assert [p.whatsapp_id for p in parts] == ["SENT-1", "SENT-2"]


def test_the_parts_of_one_chats_answers_are_never_interleaved(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.responder = lambda run: (200, {"message": f"{run.body['message_content']} 1\n\n2"})

    for n in range(3):
        post_webhook("acme", text_in_chat("5511900000001", f"#{n}", f"M-{n}"))
    answer_all()

    assert sent_texts(evolution) == ["#0 1", "2", "#1 1", "2", "#2 1", "2"]


def test_typing_shows_before_each_part_for_its_length_up_to_eight_seconds(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", typing_ms_per_char=100)
    agent.default = (200, {"message": "Oi!\n\n" + "x" * 200})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert [r.body.get("delay") for r in sends(evolution)] == [300, 8000]


def test_a_send_s_deadline_allows_for_its_typing_delay(agent, evolution, tenant_at, settings):
    settings.EVOLUTION_TIMEOUT = 1.0
    settings.RETRY_WINDOW_SECONDS = 1.0  # one try: a send cut off by its deadline fails
    tenant_at(name="acme", typing_ms_per_char=100)
    agent.default = (200, {"message": "x" * 20})  # two seconds of "typing…"
    accept = evolution.default
    assert callable(accept)  # evolution_accepting's own sendText
    delay_over = threading.Event()

    def as_evolution_answering_after_the_delay(sent: Recorded):
        delay_over.wait(sent.body["delay"] / 1000)  # never set: waits out the delay
        return accept(sent)

    evolution.default = as_evolution_answering_after_the_delay
    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    assert (message.status, message.attempts) == (Message.Status.ANSWERED, 1)
    assert len(sends(evolution)) == 1


def test_an_answer_with_nothing_but_blank_lines_sends_nothing(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.default = (200, {"message": "\n\n  \n"})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert sends(evolution) == []
    message = Message.objects.get()
    assert message.status == Message.Status.ANSWERED
    assert not ReplyPart.objects.exists()
