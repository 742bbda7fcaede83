"""A worker SIGKILLed with 500 conversations in flight: another worker finishes every one.

Half of the victim's conversations are waiting on the agent when it dies; the other half had
their reply accepted by Evolution, which has not answered the send yet, so the victim never
recorded it. The survivor asks the agent again for the first half (the honest at-least-once
window of a crash), and finds the second half's replies in Evolution instead of sending them
again: every customer gets exactly one reply.
"""

import os
import signal
import sys
import threading
from contextlib import ExitStack
from functools import partial

import pytest
from django.db import connection

from tests.factories import InstanceConfigFactory
from tests.fakes import FakeServer, Recorded, evolution_accepting, serve
from tests.processes import Children, child_env, wait_until, worker_started
from tests.webhooks.conftest import post_webhook, text_in_chat
from webhooks.models import Message

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="workers on several machines share PostgreSQL; SQLite's run on one",
    ),
]

IN_FLIGHT = 500
THINKING = IN_FLIGHT // 2  # still waiting on the agent when the worker dies; the rest sending


def test_a_worker_killed_with_500_conversations_in_flight_loses_none(tmp_path):
    odd = HoldingOddMessages()
    agent = FakeServer(responder=odd.answer)
    evolution = evolution_accepting()
    evolution.gate, evolution.gate_prefix = threading.Event(), "/message/sendText/"
    with ExitStack() as stack:
        stack.enter_context(serve(agent))
        stack.enter_context(serve(evolution))
        InstanceConfigFactory.create(
            name="acme", agent_api_url=agent.url, evolution_url=evolution.url
        )
        for n in range(IN_FLIGHT):
            post_webhook("acme", text_in_chat(f"55119{n:08d}", f"#{n}", f"M-{n}"))
        # Long deadlines: the victim must be waiting, not timing out, when it is killed.
        children = stack.enter_context(Children(tmp_path, child_env(EVOLUTION_TIMEOUT="60")))
        command = [sys.executable, "manage.py", "worker"]
        victim = children.start("worker-victim", command)

        wait_until(lambda: evolution.wait_for_open(IN_FLIGHT - THINKING, timeout=0.1), 60,
                   "the sends to be under way", victim)  # fmt: skip
        wait_until(lambda: odd.holding(THINKING), 60, "the agent calls to be under way", victim)
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(timeout=5) == -signal.SIGKILL
        odd.release.set()
        evolution.gate.set()  # what the victim left open ends now

        survivor = children.start("worker-survivor", command)
        wait_until(partial(worker_started, children, survivor), 30, "the survivor", survivor)
        wait_until(all_answered, 60, "every message answered", survivor, explain=unanswered)

    sends = [r for r in evolution.requests if r.path.startswith("/message/sendText/")]
    # A send the victim was still writing when it died reached no one: it is sent again.
    sends = [r for r in sends if r.body]
    assert sorted(r.body["text"] for r in sends) == sorted(f"re: #{n}" for n in range(IN_FLIGHT))
    asked = [r.body["message_content"] for r in agent.requests if r.body]
    asked_twice = {text for text in asked if asked.count(text) == 2}
    assert len(asked) == IN_FLIGHT + THINKING
    assert asked_twice == {f"#{n}" for n in range(IN_FLIGHT) if n % 2}
    messages = Message.objects.all()
    # Two tries each at least: the victim's and the survivor's (a connection the loaded machine
    # refused is one more, never one more reply).
    assert all(m.status == Message.Status.ANSWERED and m.attempts >= 2 for m in messages)
    assert all(m.reply_whatsapp_id.startswith("SENT-") for m in messages)


class HoldingOddMessages:
    """An agent that answers the even messages at once and holds the odd ones until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._held = 0
        self._changed = threading.Condition()

    def answer(self, run: Recorded) -> tuple[int, dict[str, str]]:
        if not run.body:  # its sender was killed between the headers and the body
            return 400, {"detail": "no body"}
        content = run.body["message_content"]
        if int(content[1:]) % 2 and not self.release.is_set():
            with self._changed:
                self._held += 1
                self._changed.notify_all()
            self.release.wait(60)
        return 200, {"message": f"re: {content}"}

    def holding(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._held >= count, timeout=0.1)


def all_answered() -> bool:
    return Message.objects.filter(status=Message.Status.ANSWERED).count() == IN_FLIGHT


def unanswered() -> str:
    left = Message.objects.exclude(status=Message.Status.ANSWERED)
    return f"not answered: {[(m.text, m.status, m.attempts, m.last_error) for m in left[:10]]}"
