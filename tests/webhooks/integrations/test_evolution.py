"""The async Evolution API client against real local HTTP servers (tests.fakes): no database."""

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes import FakeServer, evolution_accepting, evolution_instances, serve
from webhooks.integrations.evolution.client import (
    connection_state,
    find_sent_text,
    find_webhook,
    send_presence,
    send_text,
    set_webhook,
)
from webhooks.integrations.transport import OutboundError, new_client

CHAT = "5511912345678@s.whatsapp.net"
TEXT = "Olá! Abrimos às 9h."
# What Evolution 2.4 answers until the server is activated (src/licensing/runtime.ts).
LICENSE_REQUIRED = {
    "error": "service not activated",
    "code": "LICENSE_REQUIRED",
    "register_url": "http://evolution.test/manager/login",
    "instance_id": "0b6f5e2c",
    "docs_url": "https://doc.evolution-api.com",
    "message": "This Evolution API instance is not activated. Open the manager to activate.",
}


async def sending(client: Any, url: str, **options: Any) -> str:
    return await send_text(
        client,
        base_url=url,
        api_key=options.pop("api_key", "evolution-key-0001"),
        instance=options.pop("instance", "acme-wa"),
        number=options.pop("number", "5511912345678"),
        text=options.pop("text", TEXT),
        deadline=options.pop("deadline", 5.0),
        **options,
    )


async def finding(client: Any, url: str, **options: Any) -> str | None:
    return await find_sent_text(
        client,
        base_url=url,
        api_key="evolution-key-0001",
        instance="acme-wa",
        remote_jid=options.pop("remote_jid", CHAT),
        text=options.pop("text", TEXT),
        since=options.pop("since", datetime.now(UTC) - timedelta(seconds=5)),
        deadline=5.0,
        **options,
    )


def send(url: str, **options: Any) -> str:
    async def run() -> str:
        async with new_client() as client:
            return await sending(client, url, **options)

    return asyncio.run(run())


def find(url: str, **options: Any) -> str | None:
    async def run() -> str | None:
        async with new_client() as client:
            return await finding(client, url, **options)

    return asyncio.run(run())


def finding_records(records: Any) -> FakeServer:
    """An Evolution whose findMessages answers `records` as v2 does (or `records` itself, bare,
    when it is not a list)."""
    answer = (
        {"messages": {"total": len(records), "pages": 1, "currentPage": 1, "records": records}}
        if isinstance(records, list)
        else records
    )
    return FakeServer(routes={"/chat/findMessages/": lambda _: (200, answer)})


def record(text: Any, *, at: Any = None, message_id: str = "SENT-9") -> dict[str, Any]:
    return {
        "key": {"remoteJid": CHAT, "fromMe": True, "id": message_id},
        "message": {"conversation": text},
        "messageTimestamp": int(time.time()) if at is None else at,
    }


def test_it_posts_the_text_to_the_instances_send_text_endpoint():
    with serve(evolution_accepting()) as fake:
        send(fake.url)

    [sent] = fake.requests
    assert sent.path == "/message/sendText/acme-wa"
    assert sent.headers["apikey"] == "evolution-key-0001"
    assert sent.body == {"number": "5511912345678", "text": TEXT}


def test_it_asks_evolution_to_show_typing_for_the_delay_it_is_given():
    with serve(evolution_accepting()) as fake:
        send(fake.url, delay_ms=1200)

    assert fake.requests[0].body == {"number": "5511912345678", "text": TEXT, "delay": 1200}


def test_an_instance_name_cannot_leave_its_path_segment():
    with serve(evolution_accepting()) as fake:
        send(fake.url, instance="acme wa/../x")

    assert fake.requests[0].path == "/message/sendText/acme%20wa%2F..%2Fx"


def test_it_returns_the_id_of_each_sent_message():
    with serve(evolution_accepting()) as fake:
        ids = [send(fake.url), send(fake.url)]

    assert ids == ["SENT-1", "SENT-2"]


@pytest.mark.parametrize("answer", [{"status": "PENDING"}, {"key": None}, [], None])
def test_an_accepted_send_without_an_id_returns_an_empty_one(answer):
    with serve(FakeServer(default=(201, answer))) as fake:
        assert send(fake.url) == ""


def test_a_number_that_is_not_on_whatsapp_is_a_refused_send():
    answer = {
        "status": 400,
        "error": "Bad Request",
        "response": {"message": [{"exists": False, "jid": CHAT, "number": "5511912345678"}]},
    }

    with serve(FakeServer(default=(400, answer))) as fake, pytest.raises(OutboundError) as caught:
        send(fake.url)

    assert caught.value.retryable is False
    assert caught.value.status_code == 400
    assert '"exists": false' in str(caught.value)


def test_an_evolution_that_is_not_activated_is_not_retried_like_an_outage():
    with serve(FakeServer(default=(503, LICENSE_REQUIRED))) as fake:
        with pytest.raises(OutboundError) as sending_error:
            send(fake.url)
        with pytest.raises(OutboundError) as finding_error:
            find(fake.url)

    for caught in (sending_error, finding_error):
        assert str(caught.value) == (
            f"Evolution at {fake.url} refuses API calls until the server is activated "
            "(503 LICENSE_REQUIRED)"
        )
        assert caught.value.retryable is False
        assert caught.value.status_code == 503


def test_any_other_503_is_an_outage_worth_retrying():
    with (
        serve(FakeServer(default=(503, {"error": "Service Unavailable"}))) as fake,
        pytest.raises(OutboundError) as caught,
    ):
        send(fake.url)

    assert caught.value.retryable is True
    assert caught.value.status_code == 503


def test_an_evolution_slower_than_the_deadline_may_have_sent():
    fake = evolution_accepting()
    fake.delay = 0.5

    with serve(fake), pytest.raises(OutboundError) as caught:
        send(fake.url, deadline=0.2)

    assert str(caught.value) == f"Evolution at {fake.url} did not answer within 0.2 s"
    assert caught.value.retryable is True
    assert caught.value.maybe_delivered is True


def test_it_finds_the_text_a_send_whose_answer_never_came_delivered():
    fake = evolution_accepting()
    fake.gate, fake.gate_prefix = threading.Event(), "/message/sendText/"

    async def send_then_look() -> tuple[OutboundError, str | None]:
        async with new_client() as client:
            with pytest.raises(OutboundError) as caught:
                await sending(client, fake.url, deadline=0.3)
            return caught.value, await finding(client, fake.url)

    with serve(fake):
        error, found = asyncio.run(send_then_look())

    assert error.maybe_delivered is True
    assert found == "SENT-1"


def test_it_asks_for_the_newest_messages_we_sent_to_the_chat():
    with serve(evolution_accepting()) as fake:
        find(fake.url)

    [search] = fake.requests
    assert search.path == "/chat/findMessages/acme-wa"
    assert search.headers["apikey"] == "evolution-key-0001"
    assert search.body == {
        "where": {"key": {"remoteJid": CHAT, "fromMe": True}},
        "page": 1,
        "offset": 20,
        "limit": 20,
    }


def test_it_finds_the_newest_message_with_the_same_text_in_the_same_chat():
    with serve(evolution_accepting()) as fake:
        send(fake.url, text="Outra coisa")
        send(fake.url, number="5511900000000")
        send(fake.url)

        assert find(fake.url) == "SENT-3"
        assert find(fake.url, text="Olá!") is None
        assert find(fake.url, remote_jid="5511988887777@s.whatsapp.net") is None


def test_a_send_already_accounted_for_is_not_taken_for_another_with_the_same_words():
    records = [record("Ok.", message_id="SECOND"), record("Ok.", message_id="FIRST")]

    with serve(finding_records(records)) as fake:
        assert find(fake.url, text="Ok.", not_ids={"SECOND"}) == "FIRST"
        assert find(fake.url, text="Ok.", not_ids={"FIRST", "SECOND"}) is None


def test_it_shows_typing_to_the_number_for_the_delay_it_is_given():
    async def show(url: str) -> None:
        async with new_client() as client:
            await send_presence(
                client, base_url=url, api_key="evolution-key-0001", instance="acme wa",
                number="5511912345678", delay_ms=20000, deadline=5.0,
            )  # fmt: skip

    with serve(evolution_accepting()) as fake:
        asyncio.run(show(fake.url))

    [shown] = fake.requests
    assert shown.path == "/chat/sendPresence/acme%20wa"
    assert shown.headers["apikey"] == "evolution-key-0001"
    assert shown.body == {"number": "5511912345678", "presence": "composing", "delay": 20000}


def test_a_typing_call_held_past_its_deadline_fails_like_any_call():
    fake = evolution_accepting()
    fake.gate, fake.gate_prefix = threading.Event(), "/chat/sendPresence/"

    async def show() -> None:
        async with new_client() as client:
            await send_presence(
                client, base_url=fake.url, api_key="k", instance="acme-wa",
                number="5511912345678", delay_ms=100, deadline=0.3,
            )  # fmt: skip

    with serve(fake), pytest.raises(OutboundError) as caught:
        asyncio.run(show())

    assert caught.value.retryable is True
    assert "did not answer within 0.3 s" in str(caught.value)


def test_a_message_sent_before_the_send_began_is_not_it():
    since = datetime.now(UTC)
    records = [
        record(TEXT, at=int(since.timestamp()) - 3600, message_id="OLD"),
        record(TEXT, at=int(since.timestamp()) - 30, message_id="RECENT"),
    ]

    with serve(finding_records(records[:1])) as fake:
        assert find(fake.url, since=since) is None
    with serve(finding_records(records)) as fake:
        # Evolution's clock may run behind ours: a minute of slack.
        assert find(fake.url, since=since) == "RECENT"


def test_it_reads_a_text_with_a_link_preview_and_the_times_baileys_may_give():
    now = int(time.time())
    records = [
        {**record(None), "message": {"extendedTextMessage": {"text": "Veja https://acme.test"}}},
        record(TEXT, at={"low": now, "high": 0, "unsigned": False}, message_id="LONG"),
        record("Numérico", at=str(now), message_id="STRING"),
    ]

    with serve(finding_records(records)) as fake:
        assert find(fake.url, text="Veja https://acme.test") == "SENT-9"
        assert find(fake.url) == "LONG"
        assert find(fake.url, text="Numérico") == "STRING"


def test_it_reads_the_bare_list_older_evolutions_answer():
    with serve(finding_records({"records": "not here"})) as fake:
        assert find(fake.url) is None

    fake = FakeServer(routes={"/chat/findMessages/": lambda _: (200, [record(TEXT)])})
    with serve(fake):
        assert find(fake.url) == "SENT-9"


@pytest.mark.parametrize(
    "broken",
    [
        None,
        "a string",
        {"key": {"id": "NO-TEXT"}, "messageTimestamp": 1},
        {**record(TEXT), "key": None},
        {**record(TEXT), "messageTimestamp": None},
        {**record(TEXT), "messageTimestamp": "yesterday"},
        {**record(TEXT), "messageTimestamp": True},
    ],
)
def test_a_record_it_cannot_read_is_skipped(broken):
    with serve(finding_records([broken, record(TEXT, message_id="GOOD")])) as fake:
        assert find(fake.url) == "GOOD"


def on_evolution(call: Any, url: str, **options: Any) -> Any:
    """Run one of the instance-setup calls against `url` with a fresh client."""

    async def run() -> Any:
        async with new_client() as client:
            return await call(
                client,
                base_url=url,
                api_key="evolution-key-0001",
                instance=options.pop("instance", "acme-wa"),
                deadline=5.0,
                **options,
            )

    return asyncio.run(run())


def test_it_sets_an_instance_s_webhook_and_finds_it_again():
    webhook = {
        "enabled": True, "url": "https://omnihub.test/webhook/evolution/acme", "byEvents": False,
        "base64": True, "events": ["MESSAGES_UPSERT"], "headers": {"jwt_key": "k" * 43},
    }  # fmt: skip
    with serve(evolution_instances("evolution-key-0001", {"acme-wa": "open"})) as fake:
        on_evolution(set_webhook, fake.url, webhook=webhook)
        found = on_evolution(find_webhook, fake.url)

    [setting, finding_it] = fake.requests
    assert (setting.method, setting.path) == ("POST", "/webhook/set/acme-wa")
    assert setting.body == {"webhook": webhook}
    assert (finding_it.method, finding_it.path) == ("GET", "/webhook/find/acme-wa")
    assert found.url == webhook["url"]
    assert found.enabled is True
    assert found.events == ["MESSAGES_UPSERT"]
    assert found.jwt_key == "k" * 43
    assert "k" * 43 not in repr(found)


def test_it_finds_no_webhook_on_an_instance_without_one():
    with serve(evolution_instances("evolution-key-0001", {"acme-wa": "open"})) as fake:
        assert on_evolution(find_webhook, fake.url) is None


@pytest.mark.parametrize("state", ["open", "connecting", "close"])
def test_it_reads_an_instance_s_connection_state(state):
    with serve(evolution_instances("evolution-key-0001", {"acme-wa": state})) as fake:
        assert on_evolution(connection_state, fake.url) == state


@pytest.mark.parametrize(("instance", "status"), [("ghost", 404), ("acme-wa", 401)])
def test_setup_calls_fail_with_the_status_evolution_answered(instance, status):
    with (
        serve(evolution_instances("another-key", {"acme-wa": "open"})) as fake,
        pytest.raises(OutboundError) as failure,
    ):
        on_evolution(connection_state, fake.url, instance=instance)

    assert failure.value.status_code == status
    assert failure.value.retryable is False
