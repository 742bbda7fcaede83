"""A webhook's message stored in one statement, on PostgreSQL.

Stored the portable way (webhooks.services), a message is a transaction of five round trips:
BEGIN; the conversation's upsert (a chat not seen lately) or its lease (a known chat); the
message; its task; COMMIT. Each is a wait on a database thread and a turn of the GIL with the
event loop. On PostgreSQL one autocommitted statement of data-modifying CTEs does the same:

- a chat not seen lately: the message and the task take the conversation's id from the
  upsert's RETURNING;
- a known chat: the conversation's row is locked (FOR NO KEY UPDATE, as webhooks.leases locks
  it) and the task is queued only if no worker holds the chat's lease, as read under that lock.
  A worker looks for pending messages under the same lock before it lets go of a lease, so it
  either sees this message or has let go and this message gets a task. (PostgreSQL runs the
  final SELECT, which takes the lock, before the INSERTs of the CTEs: a message's id is drawn
  after the lock, as in the transaction.)

All of it is stored or none, and the task's trigger rings the doorbell at commit. Measured in
one process for a new chat: 0.76 -> 0.48 ms of CPU and 1.5 -> 1.1 ms of wall time per webhook.
The statements are assembled from the INSERTs the ORM compiled (webhooks.prepared_insert), so
their columns and values are those save() stores; tests/webhooks/test_one_statement.py
compares the rows.
"""

from contextlib import nullcontext
from datetime import datetime

from django.db import NotSupportedError, connection, transaction

from webhooks.models import Conversation, Message
from webhooks.prepared_insert import PreparedInsert, PreparedUpsert
from webhooks.tasks import insert_task, process_conversation, stores_plain_rows, task_row

# Updates chat_jid to itself on conflict, so that the existing row's id is returned.
upsert_conversation = PreparedUpsert(
    Conversation, unique_fields=["instance", "chat_jid"], update_fields=["chat_jid"]
)
insert_message = PreparedInsert(Message)

CONVERSATION_ID = "(SELECT id FROM conversation)"
# The task's args_kwargs, {"args": [conversation id], "kwargs": {}}, as django-tasks-db stores them.
TASK_ARGUMENTS = (
    f"jsonb_build_object('args', jsonb_build_array({CONVERSATION_ID}), 'kwargs', '{{}}'::jsonb)"
)
# Conversation's row, locked as webhooks.leases.locked_lease locks it.
LOCKED_LEASE = (
    "SELECT id, lease_owner, leased_until FROM webhooks_conversation WHERE id = %s"
    " FOR NO KEY UPDATE"
)
# As webhooks.leases.is_held, of the row locked above.
NOT_HELD = "NOT EXISTS (SELECT 1 FROM conversation WHERE lease_owner <> '' AND leased_until > %s)"


def available() -> bool:
    return connection.vendor == "postgresql" and stores_plain_rows(process_conversation)


def store_new_chat_message(conversation: Conversation, message: Message) -> int:
    """Store `conversation` (or find it: the database may know a chat this process does not),
    `message` in it and a task for it; returns the conversation's id."""
    values = [*upsert_conversation.values(conversation), *_message_and_task_values(message)]
    return _execute(_statement(upsert_conversation.sql()), values)


def store_known_chat_message(conversation_id: int, message: Message, now: datetime) -> None:
    """Store `message` in the existing conversation, and a task for it unless a worker holds
    the conversation's lease at `now`."""
    values = [conversation_id, *_message_and_task_values(message), now]
    _execute(_statement(LOCKED_LEASE, task_condition=NOT_HELD), values)


def _message_and_task_values(message: Message) -> list[object]:
    return [
        *insert_message.values(message, leaving_out=["conversation_id"]),
        *insert_task.values(task_row(process_conversation, 0), leaving_out=["args_kwargs"]),
    ]


def _execute(statement: str, values: list[object]) -> int:
    """Raises IntegrityError as the separate statements would, and then stores nothing."""
    # Inside a caller's transaction, a savepoint keeps it usable after a duplicate.
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(statement, values)
        (conversation_id,) = cursor.fetchone()
    return conversation_id


def _statement(conversation: str, task_condition: str = "") -> str:
    message = insert_message.sql(expressions={"conversation_id": CONVERSATION_ID})
    task = insert_task.sql(expressions={"args_kwargs": TASK_ARGUMENTS})
    if task_condition:
        # INSERT ... VALUES (row) becomes INSERT ... SELECT row WHERE the condition holds.
        into, values_clause, row = task.partition(" VALUES (")
        if not (values_clause and row.endswith(")")):
            raise NotSupportedError(f"not an INSERT of one row: {task}")
        task = f"{into} SELECT {row.removesuffix(')')} WHERE {task_condition}"
    # Only compiled SQL and the constants above: the values travel as parameters.
    return (
        f"WITH conversation AS ({conversation}), message AS ({message}), "  # noqa: S608
        f"task AS ({task}) SELECT id FROM conversation"
    )
