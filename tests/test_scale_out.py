"""Scale-out proof: two worker processes on one database, and one of them killed with SIGKILL.

Everything is real except the agent and Evolution: a uvicorn web process with two workers takes
the webhooks, two `manage.py worker` processes answer them, and the test watches the fakes and
the database. The test database is shared with the children through DATABASE_URL.

At-least-once at the crash boundary: a message the killed worker had asked the agent about, or
sent, without recording it yet is asked or sent again by the survivor. The test allows that for
those messages only (one per conversation the killed worker held, so at most 4), nothing else.
"""

import os
import re
import signal
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from itertools import groupby
from typing import Any

import httpx
import pytest

from tests.factories import InstanceConfigFactory
from tests.fakes import FakeServer, Recorded, evolution_accepting, serve
from tests.processes import (
    Children,
    answers_health,
    child_env,
    free_port,
    wait_until,
    worker_started,
)
from tests.webhooks.conftest import evolution_payload, with_message_id
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)

TENANTS, CHATS, MESSAGES = 3, 10, 10
TOTAL = TENANTS * CHATS * MESSAGES
LOOPS = 4  # conversations in flight per worker process
KILL_AFTER_SENDS = 60
TEXT = re.compile(r"^(?P<tenant>t\d+):(?P<chat>c\d+) #(?P<n>\d+)$")


def test_two_workers_answer_every_message_once_in_order_even_when_one_is_killed(tmp_path):
    with ExitStack() as stack:
        agents = [stack.enter_context(serve(echoing_agent())) for _ in range(TENANTS)]
        evolutions = [stack.enter_context(serve(evolution_accepting())) for _ in range(TENANTS)]
        for evolution in evolutions:
            evolution.delay = 0.005  # a send in flight when the worker dies is not rare
        for t in range(TENANTS):
            InstanceConfigFactory.create(
                name=f"t{t}", agent_api_url=agents[t].url, agent_api_key=f"agent-key-{t}",
                evolution_url=evolutions[t].url, evolution_key=f"evolution-key-{t}",
                whatsapp_instance=f"wa-{t}", session_id_prefix=f"t{t}-", default_agent=f"bot{t}",
                agent_timeout=2,
            )  # fmt: skip
        started = time.monotonic()
        children = stack.enter_context(Children(tmp_path, child_env()))
        port = free_port()
        web = children.start("web", [sys.executable, "-m", "uvicorn", "omnihub.asgi:application",
                                     "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
                                     "--lifespan", "off", "--no-access-log",
                                     "--log-level", "warning"])  # fmt: skip
        worker_command = [sys.executable, "manage.py", "worker",
                          "--concurrency", str(LOOPS), "--interval", "0.05"]  # fmt: skip
        victim = children.start("worker-victim", worker_command)
        survivor = children.start("worker-survivor", worker_command)
        base_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers_health(base_url), 30, "the web process to start", web)
        for worker in (victim, survivor):
            wait_until(partial(worker_started, children, worker), 30, "a worker", worker)

        ready = time.monotonic()
        client = stack.enter_context(httpx.Client(base_url=base_url, timeout=30))
        pool = stack.enter_context(ThreadPoolExecutor(TENANTS * CHATS))
        twins = stack.enter_context(ThreadPoolExecutor(TENANTS * CHATS))
        posting = [
            pool.submit(post_chat, client, twins, t, c)
            for c in range(CHATS)
            for t in range(TENANTS)
        ]

        wait_until(
            lambda: sum(len(e.requests) for e in evolutions) >= KILL_AFTER_SENDS,
            30, f"{KILL_AFTER_SENDS} replies before the kill", victim,
        )  # fmt: skip
        killed = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(timeout=5) == -signal.SIGKILL
        sends_at_kill = sum(len(e.requests) for e in evolutions)
        # Read at once: its leases run out within 5 s, and then the survivor takes the chats over.
        killed_chats = held_by(victim.pid)
        outcomes = [outcome for future in posting for outcome in future.result(timeout=30)]

        # The survivor claims the victim's conversations once their leases expire (5 s).
        wait_until(
            lambda: all_answered_and_idle(killed_chats), 60, "all messages answered", survivor,
            explain=lambda: unanswered(killed_chats),
        )  # fmt: skip
        finished = time.monotonic()
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=15) == 0, children.log(survivor)

    assert_each_message_was_stored_once(outcomes)
    # The victim was killed holding some chats; nothing is left held or ready.
    assert 1 <= len(killed_chats) <= LOOPS
    assert not Conversation.objects.exclude(lease_owner="", ready_at=None).exists()
    retried = assert_only_messages_in_flight_were_tried_again(killed_chats)
    # The victim may die between a request's headers and its body: a real server drops that.
    cut_off = [r for fake in agents + evolutions for r in fake.requests if not r.body]
    assert len(cut_off) <= len(killed_chats)
    for t in range(TENANTS):
        assert_the_tenant_heard_its_own_chats_once_in_order(t, agents[t], evolutions[t], retried)

    asked_twice = sum(1 for a in agents for r in a.requests if r.body) - TOTAL
    sent_twice = sum(1 for e in evolutions for r in e.requests if "sendText" in r.path) - TOTAL
    print(
        f"\nkilled after {sends_at_kill} sends, holding {len(killed_chats)} chats; "
        f"{len(retried)} tried again, {asked_twice} asked twice, {sent_twice} sent twice, "
        f"{len(cut_off)} cut off"
        f"\nprocesses ready in {ready - started:.1f} s, the kill {killed - ready:.1f} s later, "
        f"all answered {finished - killed:.1f} s after it"
    )


def assert_each_message_was_stored_once(outcomes: list[tuple[str, str]]) -> None:
    """Each message was queued once; its twin, delivered at the same moment, was a duplicate."""
    statuses = defaultdict(list)
    for message_id, status in outcomes:
        statuses[message_id].append(status)
    assert len(statuses) == TOTAL
    assert sum(len(answers) == 2 for answers in statuses.values()) == TOTAL // 10
    for answers in statuses.values():
        assert sorted(answers) in (["queued"], ["duplicate", "queued"])


def assert_only_messages_in_flight_were_tried_again(
    killed: list[int],
) -> set[tuple[str, str, int]]:
    """Every message answered, with the agent's answer to it; tried twice only if the killed
    worker was answering it: at most one per conversation it held. Returns those."""
    messages = list(Message.objects.select_related("instance"))
    assert len(messages) == TOTAL
    assert {m.status for m in messages} == {Message.Status.ANSWERED}
    assert all(m.reply_text == f"re: {m.text}" and m.last_error == "" for m in messages)
    assert {m.attempts for m in messages} <= {1, 2}
    retried = [m for m in messages if m.attempts == 2]
    killed_conversations = killed
    retried_conversations = [m.conversation_id for m in retried]
    assert len(set(retried_conversations)) == len(retried_conversations)
    assert set(retried_conversations) <= set(killed_conversations)
    return {(m.instance.name, *chat_and_n(m.text)) for m in retried}


def assert_the_tenant_heard_its_own_chats_once_in_order(
    t: int, agent: FakeServer, evolution: FakeServer, retried: set[tuple[str, str, int]]
) -> None:
    tenant = f"t{t}"
    asked = [r for r in agent.requests if r.body]
    sent = [r for r in evolution.requests if r.body and "sendText" in r.path]
    # Its own servers, keys, agent and WhatsApp instance; never another tenant's messages.
    assert {r.headers["x-api-key"] for r in asked} == {f"agent-key-{t}"}
    assert {r.path for r in asked} == {f"/api/v1/agent/bot{t}/run"}
    assert {r.headers["apikey"] for r in sent} == {f"evolution-key-{t}"}
    assert {r.path for r in sent} == {f"/message/sendText/wa-{t}"}
    asked_texts = [r.body["message_content"] for r in asked]
    sent_texts = [r.body["text"].removeprefix("re: ") for r in sent]
    assert {parsed(text)["tenant"] for text in asked_texts + sent_texts} == {tenant}
    for r, text in zip(asked, asked_texts, strict=True):
        assert r.body["session_name"] == f"{tenant}-{phone(chat_and_n(text)[0])}"
    for r, text in zip(sent, sent_texts, strict=True):
        assert r.body["number"] == phone(chat_and_n(text)[0])

    for texts in (asked_texts, sent_texts):
        # Every message once; twice only at the crash boundary (done, but not yet recorded).
        counts = Counter((tenant, *chat_and_n(text)) for text in texts)
        assert set(counts) == {(tenant, f"c{c}", n) for c in range(CHATS) for n in range(MESSAGES)}
        assert {key for key, count in counts.items() if count > 1} <= retried
        assert max(counts.values()) <= 2
        # Each chat in order: a repeat can only come right after the message it repeats.
        by_chat = defaultdict(list)
        for text in texts:
            chat, n = chat_and_n(text)
            by_chat[chat].append(n)
        for numbers in by_chat.values():
            assert [n for n, _ in groupby(numbers)] == list(range(MESSAGES)), numbers


def echoing_agent() -> FakeServer:
    def reply(recorded: Recorded) -> tuple[int, dict[str, Any]]:
        if not recorded.body:  # its sender was killed between the headers and the body
            return 400, {"detail": "no body"}
        return 200, {"message": f"re: {recorded.body['message_content']}"}

    # The delay keeps answers in flight when the worker is killed.
    return FakeServer(responder=reply, delay=0.03)


def phone(chat: str) -> str:
    return f"55119{int(chat[1:]):08d}"  # "c7": the same numbers in every tenant


def parsed(text: str) -> re.Match[str]:
    match = TEXT.match(text)
    assert match, text
    return match


def chat_and_n(text: str) -> tuple[str, int]:
    match = parsed(text)
    return match["chat"], int(match["n"])


def post_chat(
    client: httpx.Client, twins: ThreadPoolExecutor, t: int, c: int
) -> list[tuple[str, str]]:
    """Deliver one chat's messages in order, as WhatsApp does; one in ten arrives twice at once."""
    outcomes = []
    for n in range(MESSAGES):
        payload = evolution_payload("text_pn", instance=f"wa-{t}")
        payload["data"]["message"] = {"conversation": f"t{t}:c{c} #{n}"}
        message_id = f"3A{t:02d}{c:04d}{n:04d}"
        payload = with_message_id(payload, message_id, f"{phone(f'c{c}')}@s.whatsapp.net")
        twin: Future[str] | None = None
        if (t * CHATS + c + n) % 10 == 0:
            twin = twins.submit(post, client, f"/webhook/evolution/t{t}", payload)
        outcomes.append((message_id, post(client, f"/webhook/evolution/t{t}", payload)))
        if twin is not None:
            outcomes.append((message_id, twin.result()))
    return outcomes


def post(client: httpx.Client, path: str, payload: dict[str, Any]) -> str:
    response = client.post(path, json=payload)
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


def held_by(pid: int) -> list[int]:
    """The conversations the worker process `pid` holds: worker ids are <host>-<pid>-<hex>."""
    return list(
        Conversation.objects.filter(lease_owner__contains=f"-{pid}-").values_list("pk", flat=True)
    )


def all_answered_and_idle(killed: list[int]) -> bool:
    unanswered = Message.objects.exclude(status=Message.Status.ANSWERED).count()
    busy = Conversation.objects.exclude(lease_owner="", ready_at=None)
    return Message.objects.count() == TOTAL and unanswered == 0 and not busy.exists()


def unanswered(killed: list[int]) -> str:
    left = Message.objects.exclude(status=Message.Status.ANSWERED).order_by("id")
    busy = Conversation.objects.exclude(lease_owner="", ready_at=None)
    return (
        f"the killed worker held conversations {sorted(killed)}; not answered: "
        f"{[(m.conversation_id, m.text, m.status, m.attempts) for m in left[:20]]}; "
        f"busy: {[(c.pk, c.lease_owner, c.ready_at) for c in busy[:20]]}"
    )
