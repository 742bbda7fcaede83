"""Taking up the next turn of the chats a worker claims."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from instances.selectors import kept_tenant_config
from tests.factories import InstanceConfigFactory, MessageFactory
from webhooks.conversations.turns import Turn, claim_turns
from webhooks.models import Conversation

pytestmark = pytest.mark.django_db(transaction=True)


def claim_one() -> tuple[dict[int, Turn], int]:
    """One ready chat claimed by one worker: its turns, and the statements it took."""
    with CaptureQueriesContext(connection) as statements:
        _, turns = claim_turns("w1", limit=1, lease_seconds=60)
    return turns, len(statements)


def test_a_tenant_not_read_lately_is_read_with_its_message_not_by_itself():
    tenant = InstanceConfigFactory.create(agent_api_key="agent-key-0001")
    first, second = MessageFactory.create_batch(2, instance=tenant)
    Conversation.objects.update(ready_at=timezone.now())
    assert kept_tenant_config(tenant.pk) is None

    unread_turns, unread_statements = claim_one()
    kept_turns, kept_statements = claim_one()

    assert unread_statements == kept_statements
    assert kept_tenant_config(tenant.pk) is not None
    turns = unread_turns | kept_turns
    for message in (first, second):
        assert turns[message.conversation_id].carrier.instance.agent_api_key == "agent-key-0001"
