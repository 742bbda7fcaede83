"""The admin as an operator uses it, in a real browser against a live server: log in, add a
tenant, read the message log, retry a failed message and read a conversation."""

from datetime import timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as shown
from selenium.webdriver.support.ui import WebDriverWait

from instances.models import InstanceConfig
from tests.factories import ConversationFactory, MessageFactory
from webhooks.models import Message, MessageAttempt

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-admin-password-4711"
AGENT_KEY = "agent-key-that-stays-secret-9876"
CHAT = "5511912345678@s.whatsapp.net"


def wait_for(browser: WebDriver, css: str) -> WebElement:
    element: WebElement = WebDriverWait(browser, 10).until(
        shown.visibility_of_element_located((By.CSS_SELECTOR, css))
    )
    return element


def fill(browser: WebDriver, **fields: str) -> None:
    for name, value in fields.items():
        field = browser.find_element(By.ID, f"id_{name}")
        field.clear()
        field.send_keys(value)


def rows(browser: WebDriver) -> list[str]:
    return [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")]


def a_conversation_with_its_history(tenant: InstanceConfig) -> Message:
    """Maria's chat: answered, ignored, then failed (the message returned); and another chat
    waiting for a retry."""
    now = timezone.now()
    chat = ConversationFactory.create(instance=tenant, chat_jid=CHAT, last_message_at=now)
    answered = MessageFactory.create(
        instance=tenant, conversation=chat, chat_jid=CHAT, push_name="Maria",
        text="Oi! Vocês abrem amanhã?", status=Message.Status.ANSWERED, attempts=1,
        reply_text="Abrimos às 9h.", answered_at=now + timedelta(seconds=2),
    )  # fmt: skip
    MessageAttempt.objects.create(
        message=answered, number=1, stage="agent", result="ok", started_at=now, latency_ms=812
    )
    MessageFactory.create(
        instance=tenant, conversation=chat, chat_jid=CHAT, push_name="Maria", kind="sticker",
        text="", status=Message.Status.IGNORED, ignore_reason="unsupported message type: sticker",
    )  # fmt: skip
    failed = MessageFactory.create(
        instance=tenant, conversation=chat, chat_jid=CHAT, push_name="Maria",
        text="Quanto custa o plano anual?", status=Message.Status.FAILED, attempts=2,
        last_error="the agent at http://agents.test:80 answered 503: overloaded",
    )  # fmt: skip
    for number, result in [(1, "retrying"), (2, "failed")]:
        MessageAttempt.objects.create(
            message=failed, number=number, stage="agent", result=result, started_at=now,
            latency_ms=30000, error="the agent at http://agents.test:80 answered 503: overloaded",
        )  # fmt: skip
    MessageFactory.create(
        instance=tenant, push_name="João", text="Tem entrega?", status=Message.Status.RETRYING,
        attempts=1, next_attempt_at=now + timedelta(minutes=2), last_error="cannot reach the agent",
    )  # fmt: skip
    return failed


def test_an_operator_adds_a_tenant_reads_the_log_retries_a_message_and_reads_a_thread(
    browser, screenshot, live_server, django_user_model
):
    django_user_model.objects.create_superuser("operator", "op@example.test", PASSWORD)

    # Log in.
    browser.get(f"{live_server.url}/")
    fill(browser, username="operator", password=PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert wait_for(browser, "#site-name").text == "Omnihub"
    assert "Omnihub" in browser.title

    # Add a tenant: its keys are shown masked, never in full.
    browser.get(f"{live_server.url}/admin/instances/instanceconfig/add/")
    fill(
        browser, name="acme", evolution_url="http://evolution.acme.test:8080",
        evolution_key="evolution-key-acme-1234", whatsapp_instance="acme-sales",
        agent_api_url="http://agents.acme.test", agent_api_key=AGENT_KEY, default_agent="sales",
    )  # fmt: skip
    browser.find_element(By.NAME, "_save").click()
    assert "was added successfully" in wait_for(browser, ".messagelist .success").text
    assert "acme" in "\n".join(rows(browser))
    # Its webhook URL, to paste into Evolution, and its authentication state.
    url = browser.find_element(By.CSS_SELECTOR, "input.webhook-url").get_attribute("value")
    assert (url or "").endswith("/webhook/evolution/acme")
    assert browser.find_element(By.CSS_SELECTOR, "td.field-webhook_authenticated img")
    screenshot("instances")
    browser.find_element(By.LINK_TEXT, "acme").click()
    page = wait_for(browser, "#content-main").text
    assert f"Stored: ••••{AGENT_KEY[-4:]}" in page
    assert AGENT_KEY not in browser.page_source

    # The message log, filtered to the failed messages.
    failed = a_conversation_with_its_history(InstanceConfig.objects.get(name="acme"))
    browser.get(f"{live_server.url}/admin/webhooks/message/")
    listed = rows(browser)
    assert len(listed) == 4
    assert any("Quanto custa o plano anual?" in row and "Failed" in row for row in listed)
    assert any("Retrying\nnext try " in row for row in listed)
    screenshot("messages")
    browser.find_element(
        By.CSS_SELECTOR, "#changelist-filter a[href*='status__exact=failed']"
    ).click()
    WebDriverWait(browser, 10).until(lambda b: len(rows(b)) == 1)
    assert "Quanto custa o plano anual?" in rows(browser)[0]

    # The failed message: what arrived, what happened, its payload folded away; then retried.
    browser.find_element(By.CSS_SELECTOR, "#result_list tbody tr th a").click()
    page = wait_for(browser, "#content-main").text
    assert "What arrived" in page
    assert "What happened" in page
    history = browser.find_element(By.CSS_SELECTOR, "table.omnihub-attempts").text
    assert "Retrying" in history
    assert "answered 503: overloaded" in history
    payload = browser.find_element(By.CSS_SELECTOR, "details")
    assert payload.get_attribute("open") is None
    screenshot("message")
    browser.find_element(By.ID, "retry-message").click()
    assert "queued again" in wait_for(browser, ".messagelist .success").text
    assert "Received" in browser.find_element(By.CSS_SELECTOR, ".omnihub-badge").text
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (Message.Status.RECEIVED, 2)

    # Its conversation, read top to bottom as the customer and the agent said it.
    browser.find_element(By.CSS_SELECTOR, ".object-tools a[href*='/conversation/']").click()
    entries = [
        entry.text.splitlines()[-1]
        for entry in wait_for(browser, "#thread").find_elements(By.CSS_SELECTOR, ".omnihub-entry")
    ]
    assert entries == [
        "Oi! Vocês abrem amanhã?",
        "Abrimos às 9h.",
        "[sticker]",
        "Ignored: unsupported message type: sticker.",
        "Quanto custa o plano anual?",
        "Waiting for a worker.",
    ]
    screenshot("thread")
