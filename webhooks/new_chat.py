"""A chat's first message, stored in one statement on PostgreSQL.

A webhook for a chat this process has not seen lately (its conversation id is not cached; most
of a burst) upserts the conversation, stores the message and queues the task. In a transaction
that is five round trips (BEGIN, three INSERTs, COMMIT), each a wait on a database thread and a
turn of the GIL. On PostgreSQL one autocommitted statement does it, with data-modifying CTEs in
which the message and the task take the conversation's id from the upsert's RETURNING: all of it
is stored or none, and the task's trigger rings the doorbell at commit, as before. Measured in
one process: 0.76 -> 0.48 ms of CPU and 1.5 -> 1.1 ms of wall time per such webhook.

The statement is assembled from the INSERTs the ORM compiled (webhooks.prepared_insert), so its
columns and values are those that save() stores; tests/webhooks/test_new_chat.py compares rows.
"""

from contextlib import nullcontext

from django.db import connection, transaction

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


def stores_in_one_statement() -> bool:
    return connection.vendor == "postgresql" and stores_plain_rows(process_conversation)


def store_first_message(conversation: Conversation, message: Message) -> int:
    """Store `conversation` (or find it: a chat may be known to the database and not to this
    process), `message` in it and a task for it; returns the conversation's id. Raises
    IntegrityError as the separate INSERTs would, and then stores nothing."""
    values = [
        *upsert_conversation.values(conversation),
        *insert_message.values(message, leaving_out=["conversation_id"]),
        *insert_task.values(task_row(process_conversation, 0), leaving_out=["args_kwargs"]),
    ]
    # Inside a caller's transaction, a savepoint keeps it usable after a duplicate.
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(_statement(), values)
        (conversation_id,) = cursor.fetchone()
    return conversation_id


def _statement() -> str:
    message = insert_message.sql(expressions={"conversation_id": CONVERSATION_ID})
    task = insert_task.sql(expressions={"args_kwargs": TASK_ARGUMENTS})
    conversation = upsert_conversation.sql()
    # Only compiled SQL and the constants above: the values travel as parameters.
    return (
        f"WITH conversation AS ({conversation}), message AS ({message}), "  # noqa: S608
        f"task AS ({task}) SELECT id FROM conversation"
    )
