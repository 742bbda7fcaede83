"""Secrets never appear in a response, a log line, a command's output or a stored error.

Each test gives a tenant distinctive keys, drives one surface (the webhook, the worker, the
REST API, the admin, the commands) through its successes and its failures, and then searches
everything it captured: every log record at DEBUG, every HTTP answer, every command's stdout,
stderr and error. No five characters in a row of any secret may appear anywhere, which also
proves that a masked key shows at most its last four.

The one place a secret is shown is the hand-over of a new webhook secret (the rotate endpoint
and command): it shows the new secret, only there.
"""

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from io import StringIO
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings
from django.urls import reverse

from instances.models import InstanceConfig
from tests.conftest import API_KEY
from tests.factories import InstanceConfigFactory, MessageFactory
from tests.fakes import (
    FakeServer,
    Recorded,
    agent_replying,
    evolution_accepting,
    evolution_instances,
    serve,
)
from tests.webhooks.conftest import (
    answer_all,
    evolution_jwt,
    evolution_payload,
    post_signed,
    with_message_id,
)
from webhooks.models import Message

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

pytestmark = pytest.mark.django_db(transaction=True)

# Random-looking, so that five characters of one cannot turn up in a page by chance.
EVOLUTION_KEY = "evoKq7Zt3XwP9mRv2LbN8cYd4Hs6Jf3a"
AGENT_KEY = "agtWm4Qx8ZrT2vKp7NbL3yHc9Dg5Jq1d"
WEBHOOK_SECRET = "whkVz6Rt1YpQ8mXc3KbW7nLd2Hf9Js5e"
FORGED_SECRET = "frgTq2Wx7ZmK4vRp9LbN3yHd8Cs6Jg1b"
URL_PASSWORD = "urlPx5Kd8QzW3mTv"
PAYLOAD_APIKEY = "payLr9Xc2VmQ7tKz4NbW8yHd3Gs6Jf1k"
SECRETS = {
    "evolution key": EVOLUTION_KEY,
    "agent key": AGENT_KEY,
    "webhook secret": WEBHOOK_SECRET,
    "forged secret": FORGED_SECRET,
    "URL password": URL_PASSWORD,
    "payload apikey": PAYLOAD_APIKEY,
}
SHOWN_CHARS = 4  # what a masked key may show: its last four
WHATSAPP_INSTANCE = "acme-wa"
URL = "/webhook/evolution/acme"


def with_credentials(url: str) -> str:
    """The fake's URL with a user and password in it, as a tenant may be configured. (Not a
    query token as well: the clients append their paths to the URL, which a query would end.)"""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"omni:{URL_PASSWORD}@{parts.netloc}"))


def fragments(secret: str) -> set[str]:
    """Every run of SHOWN_CHARS + 1 characters of `secret`: none of them may be shown."""
    size = SHOWN_CHARS + 1
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def without_url_credentials(text: str) -> str:
    """`text` with the tenant's URL password taken out where it shows the URLs as configured.

    Such a URL can no longer be stored through the API, admin or CLI (credentials belong in
    the key fields); the tenant here is made directly, as one stored before that rule, and the
    API, `instance_show`/`instance_list` and the admin's change form show its URLs back as
    stored. Logs and error messages never show them (asserted without this exception)."""
    return text.replace(f"omni:{URL_PASSWORD}@", "omni:<configured>@")


@dataclass
class Captured:
    """What a test's surface said: answers and command output, by where they came from."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    handed_over: dict[str, str] = field(default_factory=dict)  # where → the secret it shows

    def add(self, where: str, text: str) -> str:
        self.texts.append((where, text))
        return text

    def response(self, where: str, response: "TestResponse") -> "TestResponse":
        headers = "\n".join(f"{name}: {value}" for name, value in response.items())
        self.add(where, f"{response.status_code}\n{headers}\n{response.content.decode()}")
        return response

    def command(self, *args: str) -> str:
        """Run a command; its stdout, stderr and error (if it fails) are captured. Its output
        may show the tenant's URLs as configured (see without_url_credentials); its error not."""
        out, err = StringIO(), StringIO()
        try:
            call_command(*args, stdout=out, stderr=err)
        except CommandError as error:
            err.write(f"CommandError: {error}")
        return self.add(" ".join(args), without_url_credentials(out.getvalue()) + err.getvalue())

    def hand_over(self, where: str, secret: str) -> None:
        """`where` exists to show this new webhook secret, once; nothing else may show it."""
        self.handed_over[where] = secret


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[Captured]:
    """Every log record at DEBUG, every answer and output; searched for secrets at the end."""
    collected = Captured()
    # The root at DEBUG, so nothing is filtered by level but what settings filter on purpose.
    caplog.set_level(logging.DEBUG)
    yield collected
    logs = "\n".join(
        f"{record.name} {record.levelname} {record.getMessage()} {record.exc_text or ''}"
        for record in caplog.records
    )
    exceptions = "\n".join(
        caplog.handler.formatter.formatException(record.exc_info)
        for record in caplog.records
        if record.exc_info and caplog.handler.formatter
    )
    texts = [*collected.texts, ("logs", logs), ("exception tracebacks", exceptions)]
    stored = [(f"stored message {m.pk}", _stored_text(m)) for m in Message.objects.all()]
    new_secrets = {
        f"new webhook secret {i}": s for i, s in enumerate(collected.handed_over.values())
    }
    assert_secrets_absent([*texts, *stored], {**SECRETS, **new_secrets}, collected.handed_over)


def _stored_text(message: Message) -> str:
    # What the admin and API show of a message: its error, its reply, its payload.
    return f"{message.last_error}\n{message.reply_text}\n{message.raw_payload}"


def assert_secrets_absent(
    texts: Iterable[tuple[str, str]], secrets: dict[str, str], handed_over: dict[str, str]
) -> None:
    leaks = []
    for where, text in texts:
        for name, secret in secrets.items():
            if handed_over.get(where) == secret:
                continue
            shown = [piece for piece in fragments(secret) if piece in text]
            if shown:
                leaks.append(f"{where} shows the {name} ({shown[0]!r}…)")
    assert not leaks, "\n".join(leaks)


def test_the_settings_keep_aiohttp_s_own_debug_lines_out_of_the_logs() -> None:
    # aiohttp's client logs at DEBUG the repr of errors met while closing its connections, and
    # its errors' reprs may quote a URL (query string included) or a proxy's credentials, so
    # its loggers must stay at WARNING even when the root is at DEBUG; the tests below run with
    # them as settings leave them.
    configured: dict[str, Any] = settings.LOGGING
    assert configured["loggers"]["aiohttp"]["level"] == "WARNING"
    for name in ("aiohttp", "aiohttp.client", "aiohttp.internal"):
        logger = logging.getLogger(name)
        # Filtered by their level, not cut off: what they warn about still reaches the logs.
        assert logger.propagate
        assert logger.getEffectiveLevel() == logging.WARNING


# --- the webhook and the worker, against fakes that accept every send -------------------------


@pytest.fixture(autouse=True)
def _fast_retries() -> Iterator[None]:
    with override_settings(RETRY_BASE_DELAY=0.01, RETRY_MAX_DELAY=0.05, EVOLUTION_TIMEOUT=5):
        yield


@pytest.fixture
def agent() -> Iterator[FakeServer]:
    with serve(agent_replying()) as fake:
        yield fake


@pytest.fixture
def evolution() -> Iterator[FakeServer]:
    with serve(evolution_accepting()) as fake:
        yield fake


@pytest.fixture
def tenant_at(agent: FakeServer, evolution: FakeServer) -> Callable[..., InstanceConfig]:
    def make(**fields: Any) -> InstanceConfig:
        return InstanceConfigFactory.create(
            name="acme",
            evolution_url=with_credentials(evolution.url),
            evolution_key=EVOLUTION_KEY,
            agent_api_url=with_credentials(agent.url),
            agent_api_key=AGENT_KEY,
            require_webhook_auth=True,
            webhook_secret=WEBHOOK_SECRET,
            **fields,
        )

    return make


def webhook(message_id: str) -> dict[str, Any]:
    payload = with_message_id(evolution_payload("text_pn"), message_id)
    payload["apikey"] = PAYLOAD_APIKEY
    return payload


def test_the_webhook_shows_no_secret_when_it_takes_or_refuses_a_message(
    captured: Captured, tenant_at: Callable[..., InstanceConfig]
) -> None:
    tenant_at()

    by_token = post_signed(URL, webhook("3EB0A1"), **{"X-Omnihub-Token": WEBHOOK_SECRET})
    by_jwt = post_signed(
        URL, webhook("3EB0A2"), Authorization=f"Bearer {evolution_jwt(WEBHOOK_SECRET)}"
    )
    forged = post_signed(URL, webhook("3EB0A3"), **{"X-Omnihub-Token": FORGED_SECRET})
    forged_jwt = post_signed(
        URL, webhook("3EB0A4"), Authorization=f"Bearer {evolution_jwt(FORGED_SECRET)}"
    )

    for where, response in [("token", by_token), ("jwt", by_jwt)]:
        assert captured.response(where, response).json()["status"] == "queued"
    for where, response in [("forged token", forged), ("forged jwt", forged_jwt)]:
        assert captured.response(where, response).status_code == 401
    assert Message.objects.count() == 2


def test_the_worker_logs_and_stores_no_secret_when_the_agent_or_evolution_fails(
    captured: Captured,
    tenant_at: Callable[..., InstanceConfig],
    agent: FakeServer,
    evolution: FakeServer,
) -> None:
    tenant_at()
    # The first message: the agent fails (500, retried), then refuses the key (401, failed).
    agent.script = [(500, {"detail": "internal error"}), (401, {"detail": "bad key"})]
    post_signed(URL, webhook("3EB0B1"), **{"X-Omnihub-Token": WEBHOOK_SECRET})
    answer_all()
    failed = Message.objects.get(whatsapp_id="3EB0B1")
    assert failed.status == Message.Status.FAILED
    assert "401" in failed.last_error

    # The second: Evolution fails (500), then does not answer in time, then sends it.
    never_answered = threading.Event()
    sends: list[Recorded] = []
    accepting = evolution.default
    assert callable(accepting)

    def send(recorded: Recorded) -> tuple[int, Any]:
        sends.append(recorded)
        if len(sends) == 1:
            return 500, {"error": "Internal Server Error"}
        if len(sends) == 2:
            never_answered.wait(10)  # past the deadline; let go when the test ends
        return accepting(recorded)

    evolution.default = send
    post_signed(URL, webhook("3EB0B2"), **{"X-Omnihub-Token": WEBHOOK_SECRET})
    try:
        with override_settings(EVOLUTION_TIMEOUT=0.3):
            answer_all()
    finally:
        never_answered.set()

    answered = Message.objects.get(whatsapp_id="3EB0B2")
    assert answered.status == Message.Status.ANSWERED
    assert len(sends) >= 3
    # The calls did carry the keys: what is absent from the logs was there to leak.
    assert sends[-1].headers["apikey"] == EVOLUTION_KEY
    assert all(r.headers["x-api-key"] == AGENT_KEY for r in agent.requests)


# --- the REST API and the commands, against an Evolution that checks its key ----------------


@pytest.fixture
def linked_evolution() -> Iterator[FakeServer]:
    with serve(evolution_instances(EVOLUTION_KEY, {WHATSAPP_INSTANCE: "open"})) as fake:
        yield fake


@pytest.fixture
def linked_tenant(
    linked_evolution: FakeServer, agent: FakeServer
) -> Iterator[Callable[..., InstanceConfig]]:
    def make(name: str = "acme", **fields: Any) -> InstanceConfig:
        return InstanceConfigFactory.create(
            **{
                "name": name,
                "whatsapp_instance": WHATSAPP_INSTANCE,
                "evolution_url": linked_evolution.url,
                "evolution_key": EVOLUTION_KEY,
                "agent_api_url": agent.url,
                "agent_api_key": AGENT_KEY,
                "require_webhook_auth": True,
                "webhook_secret": WEBHOOK_SECRET,
                **fields,
            }
        )

    with override_settings(OMNIHUB_PUBLIC_URL="https://omnihub.example.com"):
        yield make


def failed_message(tenant: InstanceConfig) -> Message:
    return MessageFactory.create(
        instance=tenant,
        status=Message.Status.FAILED,
        last_error="the agent at http://127.0.0.1:1 answered 401",
    )


def test_the_api_shows_no_secret_on_any_route_or_error(
    captured: Captured,
    linked_tenant: Callable[..., InstanceConfig],
    agent: FakeServer,
    linked_evolution: FakeServer,
) -> None:
    tenant = linked_tenant()
    message = failed_message(tenant)
    api = Client(headers={"X-API-Key": API_KEY})

    def call(method: str, path: str, body: object = None, status: int = 200) -> Any:
        kwargs: dict[str, Any] = {"content_type": "application/json"}
        if body is not None:
            kwargs["data"] = json.dumps(body)
        response = getattr(api, method)(f"/api/v1{path}", **kwargs)
        # Decoded, as a reader sees it: "\u2022" (the mask's dot) followed by a masked key's
        # last four would otherwise look like five characters of the key.
        shown = json.dumps(response.json(), ensure_ascii=False) if response.content else ""
        captured.add(
            f"{method.upper()} {path} ({response.status_code})", without_url_credentials(shown)
        )
        assert response.status_code == status, response.content
        return response.json() if response.content else None

    new = {
        "name": "beta", "evolution_url": linked_evolution.url,
        "evolution_key": EVOLUTION_KEY, "whatsapp_instance": "beta-wa",
        "agent_api_url": agent.url, "agent_api_key": AGENT_KEY,
        "default_agent": "sales", "webhook_secret": WEBHOOK_SECRET,
    }  # fmt: skip
    created = call("post", "/instances", new, status=201)
    assert created["evolution_key"] == "••••" + EVOLUTION_KEY[-4:]
    call("post", "/instances", new, status=409)
    # Refused, and the refusal does not repeat the password.
    call(
        "post",
        "/instances",
        {**new, "name": "gamma", "agent_api_url": with_credentials(agent.url)},
        422,
    )
    call("post", "/instances", {**new, "name": "gamma", "webhook_secret": FORGED_SECRET[:20]}, 422)
    call("post", "/instances", {**new, "name": "gamma", "evolution_key": [EVOLUTION_KEY]}, 422)
    call("post", "/instances", {**new, "name": "gamma", "agent_timeout": AGENT_KEY}, 422)
    call("patch", "/instances/beta", {"agent_api_key": AGENT_KEY, "evolution_key": ""})
    call("put", "/instances/beta", {"webhook_secret": FORGED_SECRET[:20]}, status=422)
    call("patch", "/instances/beta", {"evolution_url": f"ftp://x:{URL_PASSWORD}@h"}, 422)
    call("get", "/instances")
    call("get", "/instances/acme")
    call("get", "/instances/nobody", status=404)
    call("delete", "/instances/beta", status=200)

    call("get", "/instances/acme/status")
    call("post", "/instances/acme/connect")
    refuse = linked_evolution.routes["/webhook/set/"]
    linked_evolution.routes["/webhook/set/"] = lambda recorded: (500, {"error": "Internal"})
    call("post", "/instances/acme/connect", status=502)
    linked_evolution.routes["/webhook/set/"] = refuse
    InstanceConfig.objects.filter(pk=tenant.pk).update(evolution_url="")
    call("post", "/instances/acme/connect", status=409)
    InstanceConfig.objects.filter(pk=tenant.pk).update(evolution_url=tenant.evolution_url)
    agent.script = [(401, {"detail": "bad key"})]
    call("get", "/instances/acme/status")

    call("get", "/messages")
    call("get", f"/messages/{message.pk}")
    call("post", f"/messages/{message.pk}/retry")
    call("post", f"/messages/{message.pk}/retry", status=409)
    call("get", "/messages/999999", status=404)

    rotated = call("post", "/instances/acme/rotate-webhook-secret")
    assert rotated["webhook_secret"] != WEBHOOK_SECRET
    captured.hand_over(
        "POST /instances/acme/rotate-webhook-secret (200)", rotated["webhook_secret"]
    )
    call("get", "/instances/acme")


def test_the_admin_shows_no_secret_on_the_pages_of_instances_and_messages(
    captured: Captured,
    linked_tenant: Callable[..., InstanceConfig],
    admin_client: Client,
) -> None:
    tenant = linked_tenant()
    message = failed_message(tenant)

    for name, url in [
        ("instances", reverse("admin:instances_instanceconfig_changelist")),
        ("instance", reverse("admin:instances_instanceconfig_change", args=[tenant.pk])),
        ("messages", reverse("admin:webhooks_message_changelist")),
        ("message", reverse("admin:webhooks_message_change", args=[message.pk])),
    ]:
        response = admin_client.get(url)
        assert response.status_code == 200
        captured.add(f"admin {name}", without_url_credentials(response.content.decode()))
    test_connection = admin_client.post(
        reverse("admin:instances_instanceconfig_changelist"),
        {"action": "test_connection", "_selected_action": [tenant.pk]},
        follow=True,
    )
    captured.add("admin test connection", without_url_credentials(test_connection.content.decode()))


def test_the_commands_print_no_secret_when_they_succeed_or_fail(
    captured: Captured,
    linked_tenant: Callable[..., InstanceConfig],
    linked_evolution: FakeServer,
) -> None:
    tenant = linked_tenant()
    message = failed_message(tenant)

    captured.command("instance_list")
    captured.command("instance_list", "--json")
    captured.command("instance_show", "acme")
    captured.command("instance_show", "acme", "--json")
    captured.command("instance_show", "nobody")
    captured.command("instance_status", "acme")
    captured.command("instance_connect", "acme")
    set_webhook = linked_evolution.routes["/webhook/set/"]
    linked_evolution.routes["/webhook/set/"] = lambda recorded: (401, {"error": "Unauthorized"})
    captured.command("instance_connect", "acme")
    linked_evolution.routes["/webhook/set/"] = set_webhook
    InstanceConfig.objects.filter(pk=tenant.pk).update(evolution_key="wrong-key-0000")
    captured.command("instance_status", "acme")
    captured.command("message_retry", str(message.pk))
    captured.command("message_retry", str(message.pk))
    captured.command("message_retry", "999999")
    captured.command("instance_update", "acme", "--webhook-secret", FORGED_SECRET[:20])

    rotated = captured.command("instance_rotate_webhook_secret", "acme")
    new_secret = InstanceConfig.objects.get(pk=tenant.pk).webhook_secret
    assert new_secret in rotated
    captured.hand_over("instance_rotate_webhook_secret acme", new_secret)
    captured.command("instance_show", "acme")
