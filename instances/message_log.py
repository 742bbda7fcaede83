"""How much of a message log tenants hold: what deleting them deletes with them, said before
(the CLI's question, the admin's confirmation) and after (the API's answer)."""

from dataclasses import dataclass

from django.db.models import Count, Model, QuerySet

from instances.models import InstanceConfig

# The reverse relations of the webhooks app's Message and Conversation, read by name so that
# tenants need not import the app built on them.
_MESSAGES, _CONVERSATIONS = "messages", "conversation"


@dataclass(frozen=True, slots=True)
class MessageLog:
    messages: int
    conversations: int

    def __str__(self) -> str:
        return f"{_count(self.messages, 'message')} in {_count(self.conversations, 'conversation')}"


def message_log_of(instances: QuerySet[InstanceConfig]) -> MessageLog:
    # Two aggregates: one joining both relations would count every message once per conversation.
    return MessageLog(
        messages=instances.aggregate(count=Count(_MESSAGES))["count"],
        conversations=instances.aggregate(count=Count(_CONVERSATIONS))["count"],
    )


def deleted_message_log(deleted: dict[str, int]) -> MessageLog:
    """From the counts by model label that Model.delete() returns: what was deleted indeed."""
    return MessageLog(
        messages=deleted.get(_label(_MESSAGES), 0),
        conversations=deleted.get(_label(_CONVERSATIONS), 0),
    )


def counted_models(log: MessageLog) -> list[tuple[type[Model], int]]:
    """The models a message log counts, each with its count."""
    return [(_model(_MESSAGES), log.messages), (_model(_CONVERSATIONS), log.conversations)]


def _label(relation: str) -> str:
    return _model(relation)._meta.label


def _model(relation: str) -> type[Model]:
    related = InstanceConfig._meta.get_field(relation).related_model
    assert related is not None
    assert not isinstance(related, str)
    return related


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
