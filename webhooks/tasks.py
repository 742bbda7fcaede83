from uuid import uuid4

from django.tasks import task


@task
def process_conversation(conversation_id: int) -> int:
    # Imported here: the pipeline enqueues this task, so it imports this module first.
    from webhooks.processing import answer_conversation

    return answer_conversation(conversation_id, worker_id=uuid4().hex)
