"""Reading the message log: the admin, the REST API and the CLI share these."""

from django.db.models import QuerySet

from webhooks.models import Message


class MessageNotFoundError(Exception):
    def __init__(self, message_id: int) -> None:
        super().__init__(f"message {message_id} not found")


# Ids are 64-bit: a larger one names no message, and SQLite would raise an overflow on it.
_LARGEST_ID = 2**63 - 1


def get_message(message_id: int) -> Message:
    if not 0 < message_id <= _LARGEST_ID:
        raise MessageNotFoundError(message_id)
    try:
        return Message.objects.select_related("instance").get(pk=message_id)
    except Message.DoesNotExist:
        raise MessageNotFoundError(message_id) from None


def find_messages(
    *, instance: str | None = None, status: str | None = None, phone: str | None = None
) -> QuerySet[Message]:
    """Newest first, narrowed by tenant name, status and sender phone (digits)."""
    messages = Message.objects.select_related("instance").order_by("-id")
    if instance:
        messages = messages.filter(instance__name=instance)
    if status:
        messages = messages.filter(status=status)
    if phone:
        # Stored phones are digits; one with none ("+", "abc") matches nothing, not every LID chat.
        digits = "".join(filter(str.isdigit, phone))
        messages = messages.filter(phone=digits) if digits else messages.none()
    return messages
