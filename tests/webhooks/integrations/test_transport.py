"""The async outbound transport against real local HTTP servers (tests.fakes, tests.misbehaving)."""

import asyncio
import gzip
import threading
import time

import pytest

from tests.fakes import FakeServer, closed_port, serve
from tests.misbehaving import (
    MiB,
    answering_text,
    hanging_up,
    huge,
    serve_misbehaving,
    serve_nothing_accepting,
    silent,
    trickling,
)
from tests.webhooks.integrations.calls import failure, options, post, post_in_turn
from webhooks.integrations.transport import JsonAnswer, new_client, post_json

KEY = "sk-LEAK-CHECK-7f3a9c"


def test_it_posts_json_and_returns_the_status_and_the_parsed_answer():
    with serve(FakeServer(default=(201, {"key": {"id": "SENT"}}))) as fake:
        answer = post(f"{fake.url}/message/sendText/acme", body={"text": "Olá"})

    assert answer.status_code == 201
    assert answer.data == {"key": {"id": "SENT"}}
    assert answer.text == '{"key": {"id": "SENT"}}'
    [request] = fake.requests
    assert request.path == "/message/sendText/acme"
    assert request.body == {"text": "Olá"}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "omnihub"


@pytest.mark.parametrize("body", [b"", b"<html>Welcome to nginx!</html>", b"\xff\xfe"])
def test_an_empty_or_non_json_answer_has_no_data_but_keeps_its_text(body):
    with serve_misbehaving(answering_text(body)) as server:
        answer = post(server.url)

    assert answer.status_code == 200
    assert answer.data is None
    assert answer.text == body.decode(errors="replace")


def test_it_decodes_a_compressed_answer():
    compressed = gzip.compress('{"message": "Olá"}'.encode())
    behaviour = answering_text(compressed, content_type="application/json", content_encoding="gzip")

    with serve_misbehaving(behaviour) as server:
        answer = post(server.url)

    assert answer.data == {"message": "Olá"}


def test_an_answer_that_cannot_be_decoded_fails_for_good():
    with serve_misbehaving(answering_text(b"not gzip at all", content_encoding="gzip")) as server:
        error = failure(server.url)

    assert str(error) == f"Evolution at {server.url} answered with a body that cannot be decoded"
    assert error.retryable is False
    assert error.status_code == 200
    assert error.maybe_delivered is True


def test_it_reuses_the_connection_for_the_next_call_to_the_same_server():
    with serve(FakeServer()) as fake:
        post_in_turn((fake.url, {}), (fake.url, {}))

    first, second = fake.requests
    assert first.client_port == second.client_port


def test_it_follows_no_redirect():
    fake = FakeServer(default=(302, {}), headers={"Location": "http://127.0.0.1:1/elsewhere"})

    with serve(fake):
        error = failure(fake.url)

    assert error.status_code == 302
    assert error.retryable is False
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("status", "maybe_delivered"),
    [
        (408, False),
        (425, False),
        (429, False),
        (500, False),
        (503, False),
        (502, True),
        (504, True),
    ],
)
def test_a_busy_or_broken_server_is_worth_retrying(status, maybe_delivered):
    with serve(FakeServer(default=(status, {"error": "try later"}))) as fake:
        error = failure(fake.url)

    assert error.retryable is True
    assert error.status_code == status
    assert error.maybe_delivered is maybe_delivered
    assert str(error) == f'Evolution at {fake.url} answered {status}: {{"error": "try later"}}'


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_a_refused_request_is_not_worth_retrying(status):
    with serve(FakeServer(default=(status, {"detail": "no"}))) as fake:
        error = failure(fake.url)

    assert error.retryable is False
    assert error.status_code == status
    assert error.maybe_delivered is False


def test_a_server_that_cannot_be_reached_is_worth_retrying_and_got_nothing():
    url = f"http://127.0.0.1:{closed_port()}"

    error = failure(url)

    assert str(error) == f"cannot reach Evolution at {url}: connection refused"
    assert error.retryable is True
    assert error.maybe_delivered is False
    assert error.status_code is None


def test_a_deadline_that_passes_while_connecting_means_nothing_was_sent():
    with serve_nothing_accepting() as url:
        error = failure(url, deadline=0.3)

    assert str(error) == f"Evolution at {url} did not answer within 0.3 s"
    assert error.retryable is True
    assert error.maybe_delivered is False


def test_it_gives_up_on_a_server_that_trickles_its_answer():
    started = time.monotonic()

    with serve_misbehaving(trickling) as server:
        error = failure(server.url, deadline=0.5, service="the agent")

    # The whole answer would take 100 000 x 50 ms, yet each byte comes well within any timeout.
    assert time.monotonic() - started < 5
    assert str(error) == f"the agent at {server.url} did not answer within 0.5 s"
    assert error.retryable is True
    assert error.maybe_delivered is True


def test_a_server_that_never_answers_may_have_got_the_request():
    with serve_misbehaving(silent) as server:
        error = failure(server.url, deadline=0.3)

    assert error.retryable is True
    assert error.maybe_delivered is True


def test_a_server_that_hangs_up_after_the_request_may_have_got_it():
    with serve_misbehaving(hanging_up) as server:
        error = failure(server.url)

    assert str(error).startswith(f"Evolution at {server.url} broke off the call: ")
    assert error.retryable is True
    assert error.maybe_delivered is True


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_it_refuses_a_huge_answer_without_reading_it(declared):
    with serve_misbehaving(huge(50 * MiB, declared=declared)) as server:
        error = failure(server.url, max_bytes=256 * 1024)
        assert server.finished.wait(10)

    assert str(error) == f"Evolution at {server.url} answered more than 256 KiB"
    assert error.retryable is False
    # What the server wrote before it saw the connection closed: socket buffers, not 50 MiB.
    assert server.bytes_sent < 25 * MiB


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "http://", "not a url", "http://[::1"])
def test_a_url_that_cannot_work_fails_at_once_for_good(url):
    error = failure(url)

    assert error.retryable is False
    assert error.maybe_delivered is False


@pytest.mark.parametrize("value", [f"{KEY}\r\nX-Injected: 1", f"{KEY}-é", f"{KEY}\x00"])
def test_a_header_that_cannot_be_sent_fails_for_good_without_quoting_it(value):
    with serve(FakeServer()) as fake:
        error = failure(fake.url, headers={"apikey": value})

    assert error.retryable is False
    assert KEY not in str(error)
    # Nothing chained to the error quotes it either (h11's own error does).
    assert error.__cause__ is None
    assert error.__context__ is None
    assert fake.requests == []


@pytest.mark.parametrize("body", [{"n": float("nan")}, {"n": object()}, "\ud800"])
def test_a_body_that_cannot_be_sent_fails_for_good_before_anything_is_sent(body):
    with serve(FakeServer()) as fake:
        error = failure(fake.url, body=body)

    assert str(error) == (
        f"cannot call Evolution at {fake.url}: the URL, a header or the body is not valid"
    )
    assert error.retryable is False
    assert error.maybe_delivered is False
    assert fake.requests == []


def test_the_tests_stop_a_call_to_another_machine():
    # tests/conftest.py's guard sits under aiohttp's connect: 192.0.2.1 is TEST-NET-1.
    with pytest.raises(RuntimeError, match="test tried to reach the network"):
        post("http://192.0.2.1/message/sendText/acme")


def test_no_failure_quotes_the_key_the_userinfo_or_the_query():
    def url_of(base: str) -> str:
        return base.replace("http://", "http://admin:hunter2@") + f"/x?token={KEY}"

    errors = []
    with serve(FakeServer(default=(500, {"error": "boom"}))) as broken:
        errors.append(failure(url_of(broken.url), headers={"apikey": KEY}))
    with serve_misbehaving(silent) as server:
        errors.append(failure(url_of(server.url), headers={"apikey": KEY}, deadline=0.2))
    errors.append(failure(url_of(f"http://127.0.0.1:{closed_port()}"), headers={"apikey": KEY}))

    for error in errors:
        assert "Evolution at http://127.0.0.1:" in str(error)
        for secret in (KEY, "hunter2", "admin", "token"):
            assert secret not in str(error)


def test_one_client_holds_hundreds_of_calls_open_at_once():
    fake = FakeServer(default=(200, {"message": "ok"}), gate=threading.Event())

    async def many(count: int) -> list[JsonAnswer]:
        async with new_client() as client:
            calls = [
                asyncio.create_task(post_json(client, fake.url, **options({})))
                for _ in range(count)
            ]
            # Wait in a thread, so the event loop goes on opening the calls meanwhile.
            all_open = await asyncio.to_thread(fake.wait_for_open, count)
            assert fake.gate is not None
            fake.gate.set()
            answers = await asyncio.gather(*calls)
            assert all_open
            return answers

    with serve(fake):
        answers = asyncio.run(many(500))

    assert [answer.data for answer in answers] == [{"message": "ok"}] * 500
    assert fake.most_open == 500
