"""Typing while the agent thinks, through the real path: shown, renewed, and never in the way."""

import logging
import threading

import pytest

from tests.fakes import presences, sends
from tests.webhooks.conftest import a_worker, answer_all, evolution_payload, post_webhook, running
from webhooks.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def quick_refresh(settings):
    settings.TYPING_REFRESH_SECONDS = 0.05


def answering_once_typing_shows(agent, evolution) -> None:
    """The agent answers only once Evolution was asked to show typing: an agent faster than
    that call would (rightly) cancel it before it left."""

    def answer(run):
        assert presences(evolution) or evolution.wait_for(1), "typing was never shown"
        return 200, {"message": "Olá! Abrimos às 9h."}

    agent.responder = answer


def test_typing_shows_while_the_agent_thinks_and_is_renewed_until_it_answers(
    agent, evolution, tenant_at, quick_refresh
):
    tenant_at(name="acme", show_typing=True)
    agent.gate, agent.gate_prefix = threading.Event(), "/api/v1/agent/"

    with running(a_worker()) as worker:
        post_webhook("acme", evolution_payload("text_pn"))
        # Renewed three times while the agent holds its answer back: no reply is sent yet.
        shown = evolution.wait_for(3)
        assert len(shown) >= 3
        assert sends(evolution) == []
        agent.gate.set()
        assert worker.idle.wait(10)

    assert Message.objects.get().status == Message.Status.ANSWERED
    assert len(sends(evolution)) == 1
    assert {(r.path, tuple(sorted(r.body.items()))) for r in presences(evolution)} == {
        (
            "/chat/sendPresence/acme-sales",
            (("delay", 50), ("number", "5511912345678"), ("presence", "composing")),
        )
    }


def test_the_reply_goes_out_while_evolution_still_holds_the_typing_call(
    agent, evolution, tenant_at, settings
):
    settings.EVOLUTION_TIMEOUT = 30  # a typing call the reply waited for would hold it 30 s
    tenant_at(name="acme", show_typing=True)
    evolution.gate, evolution.gate_prefix = threading.Event(), "/chat/sendPresence/"

    with running(a_worker()) as worker:
        post_webhook("acme", evolution_payload("text_pn"))
        assert worker.idle.wait(10)
        # The typing call is still open at Evolution: the reply did not wait for it.
        assert len(presences(evolution)) == 1
        assert len(sends(evolution)) == 1
        assert Message.objects.get().status == Message.Status.ANSWERED
        evolution.gate.set()


def test_a_failing_typing_call_is_one_warning_and_the_reply_still_goes_out(
    agent, evolution, tenant_at, quick_refresh, caplog
):
    tenant_at(name="acme", show_typing=True)
    evolution.routes["/chat/sendPresence/"] = lambda _: (500, {"error": "boom"})
    agent.gate, agent.gate_prefix = threading.Event(), "/api/v1/agent/"

    with running(a_worker()) as worker, caplog.at_level(logging.WARNING):
        post_webhook("acme", evolution_payload("text_pn"))
        assert len(evolution.wait_for(3)) >= 3  # tried again at each refresh
        agent.gate.set()
        assert worker.idle.wait(10)

    assert Message.objects.get().status == Message.Status.ANSWERED
    assert len(sends(evolution)) == 1
    warnings = [r for r in caplog.records if r.name == "webhooks.conversations.composing"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "answered 500" in warnings[0].getMessage()


def test_no_typing_is_shown_for_an_agent_that_answers_before_typing_is_due(
    agent, evolution, tenant_at, settings
):
    settings.TYPING_AFTER_SECONDS = 60
    tenant_at(name="acme", show_typing=True)

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert presences(evolution) == []
    assert len(sends(evolution)) == 1


def test_typing_shows_once_the_agent_has_thought_for_a_while(agent, evolution, tenant_at, settings):
    settings.TYPING_AFTER_SECONDS = 0.2
    tenant_at(name="acme", show_typing=True)
    agent.gate, agent.gate_prefix = threading.Event(), "/api/v1/agent/"

    with running(a_worker()) as worker:
        post_webhook("acme", evolution_payload("text_pn"))
        assert [r.path for r in evolution.wait_for(1)] == ["/chat/sendPresence/acme-sales"]
        agent.gate.set()
        assert worker.idle.wait(10)

    assert len(presences(evolution)) == 1
    assert len(sends(evolution)) == 1


def test_no_typing_is_shown_when_the_tenant_turns_it_off(agent, evolution, tenant_at):
    tenant_at(name="acme", show_typing=False)

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert presences(evolution) == []
    assert len(sends(evolution)) == 1


def test_no_typing_is_shown_when_only_the_send_is_tried_again(agent, evolution, tenant_at):
    tenant_at(name="acme", show_typing=True)
    answering_once_typing_shows(agent, evolution)
    evolution.script = [(500, {"error": "boom"})]

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    # Once, while the agent was asked; not for the second try, which only sends.
    assert len(presences(evolution)) == 1
    assert len(sends(evolution)) == 2
