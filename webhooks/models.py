from django.db import models
from django.db.models import Q

from instances.fields import EncryptedTextField
from instances.models import InstanceConfig


class Conversation(models.Model):
    """One chat of one tenant: the unit of work a worker takes.

    `ready_at` says when the chat next needs a worker (now when a message arrives, later for a
    retry, empty when nothing is pending); the lease says who answers it now. One worker at a
    time answers a chat, so its messages reach the agent one after another, in arrival order.
    The rules that read and write these columns live in webhooks.conversations.leases."""

    # Its own index would repeat the unique constraint's, which starts with it.
    instance = models.ForeignKey(InstanceConfig, on_delete=models.CASCADE, db_index=False)
    chat_jid = models.CharField(max_length=128)
    last_message_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "chat_jid"], name="one_conversation_per_chat"
            )
        ]
        indexes = [
            # Workers look for ready chats; most chats are idle and stay out of this index.
            models.Index(
                fields=["ready_at"],
                name="ready_conversations",
                condition=Q(ready_at__isnull=False),
            )
        ]

    def __str__(self) -> str:
        # What a person calls the chat: the customer's number (or the chat id for others).
        user, _, server = self.chat_jid.partition("@")
        return f"+{user}" if server == "s.whatsapp.net" and user.isdigit() else self.chat_jid


class Message(models.Model):
    """An inbound WhatsApp message and what became of it: the log a person reads in the admin."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        RETRYING = "retrying"  # waiting for its next try, at next_attempt_at
        ANSWERED = "answered"
        IGNORED = "ignored"
        FAILED = "failed"

    PENDING = (Status.RECEIVED, Status.PROCESSING, Status.RETRYING)

    # No index of their own: the unique constraint starts with `instance` and the
    # conversation_queue index with `conversation`, and every index slows each webhook's insert.
    instance = models.ForeignKey(
        InstanceConfig, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    whatsapp_id = models.CharField("WhatsApp message id", max_length=128)
    status = models.CharField(max_length=16, choices=Status, default=Status.RECEIVED)

    # What arrived, as parsed once at the webhook.
    chat_jid = models.CharField(max_length=128)
    phone = models.CharField(max_length=32, blank=True)
    reply_to = models.CharField(max_length=128, blank=True)
    whatsapp_user_id = models.CharField("WhatsApp user id", max_length=128, blank=True)
    push_name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16)
    text = models.TextField(blank=True)
    quoted_text = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="WhatsApp's timestamp.")
    media_mimetype = models.CharField(max_length=200, blank=True)
    media_file_name = models.CharField(max_length=300, blank=True)
    media_size = models.PositiveBigIntegerField(null=True, blank=True)
    media_url = models.TextField(blank=True)
    # Kept only until the message is answered: media are large and personal.
    media_base64 = models.TextField(blank=True)
    raw_payload = models.JSONField(help_text="The webhook body, without its apikey and media.")
    # The legacy default tenant answers through the server and key that each webhook names.
    reply_evolution_url = models.CharField(max_length=500, blank=True)
    reply_evolution_key = EncryptedTextField(blank=True)

    # What happened to it.
    ignore_reason = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker took it up.")
    # When the attempt under way (or the last one) began: the start of its agent stage.
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Retries go on for RETRY_WINDOW_SECONDS from arrival, or from a person's retry.
    retried_at = models.DateTimeField(
        null=True, blank=True, help_text="When a person last asked to try it again."
    )
    # The backoff starts again after a person's retry; `attempts` goes on counting every try.
    attempts_before_retry = models.PositiveIntegerField(
        default=0, help_text="Attempts it had when a person last asked to try it again."
    )
    last_error = models.TextField(blank=True)
    # None: the agent has not answered yet; "": it answered with nothing to send.
    reply_text = models.TextField(null=True, blank=True)  # noqa: DJ001
    # Recorded before the reply is sent: a send whose outcome is unknown (a timeout after the
    # request went out) is looked for in Evolution before it is sent again.
    send_started_at = models.DateTimeField(null=True, blank=True)
    reply_whatsapp_id = models.CharField(
        "WhatsApp id of the reply", max_length=128, blank=True, help_text="Evolution's key.id."
    )
    agent_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    agent_answered_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "whatsapp_id"], name="one_message_per_whatsapp_id"
            )
        ]
        indexes = [
            models.Index(fields=["conversation", "status", "id"], name="conversation_queue"),
            models.Index(fields=["status", "-id"], name="messages_by_status"),
            models.Index(fields=["phone", "-id"], name="messages_by_phone"),
        ]

    def __str__(self) -> str:
        return f"{self.whatsapp_id} ({self.status})"


class MessageAttempt(models.Model):
    """One stage of one attempt at a message: asking the agent, or sending its answer through
    Evolution. Written only by webhooks.conversations.attempts; kept across a person's retry, so
    a message shows every try it had. An attempt a worker did not live to finish has no row."""

    class Stage(models.TextChoices):
        AGENT = "agent"
        SEND = "send"

    class Result(models.TextChoices):
        OK = "ok"
        RETRYING = "retrying"  # failed, and tried again later
        FAILED = "failed"  # failed for good

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField(help_text="The message's attempt this stage was part of.")
    stage = models.CharField(max_length=8, choices=Stage)
    result = models.CharField(max_length=8, choices=Result)
    started_at = models.DateTimeField()
    latency_ms = models.PositiveIntegerField()
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"attempt {self.number} ({self.stage}: {self.result})"
