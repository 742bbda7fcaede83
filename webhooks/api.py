from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.pagination import LimitOffsetPagination, paginate

from webhooks import selectors
from webhooks.conversations import retries
from webhooks.models import Message
from webhooks.schemas import MessageDetailOut, MessageOut

router = Router(tags=["messages"])


class MessageFilters(Schema):
    instance: str | None = None
    status: Message.Status | None = None
    phone: str | None = None


class MessagePages(LimitOffsetPagination):
    class Input(LimitOffsetPagination.Input):
        # SQL's OFFSET is a 64-bit integer: a larger one is a 422, not a database error.
        offset: int = Field(0, ge=0, le=2**63 - 1)


@router.get("", response=list[MessageOut])
@paginate(MessagePages)
def list_messages(request: HttpRequest, filters: Query[MessageFilters]) -> QuerySet[Message]:
    return selectors.find_messages(
        instance=filters.instance, status=filters.status, phone=filters.phone
    )


@router.get("/{message_id}", response=MessageDetailOut)
def get_message(request: HttpRequest, message_id: int) -> Message:
    return selectors.get_message(message_id)


@router.post("/{message_id}/retry", response=MessageOut)
def retry_message(request: HttpRequest, message_id: int) -> Message:
    return retries.retry_message(selectors.get_message(message_id))
