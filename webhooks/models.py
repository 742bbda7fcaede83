from django.db import models
from django.db.models import Q

from instances.fields import EncryptedTextField
from instances.models import InstanceConfig


class Conversation(models.Model):
    """One chat of one tenant. Its lease lets exactly one worker at a time answer its messages,
    so a chat's messages reach the agent one after another, in arrival order."""

    # Its own index would repeat the unique constraint's, which starts with it.
    instance = models.ForeignKey(InstanceConfig, on_delete=models.CASCADE, db_index=False)
    chat_jid = models.CharField(max_length=128)
    lease_owner = models.CharField(max_length=64, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "chat_jid"], name="one_conversation_per_chat"
            )
        ]
        indexes = [
            models.Index(
                fields=["leased_until"],
                name="leased_conversations",
                condition=Q(leased_until__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.instance_id}:{self.chat_jid}"


class Message(models.Model):
    """An inbound WhatsApp message and what became of it: the log a person reads in the admin."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        ANSWERED = "answered"
        IGNORED = "ignored"
        FAILED = "failed"

    PENDING = (Status.RECEIVED, Status.PROCESSING)

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
    whatsapp_user_id = models.CharField(max_length=128, blank=True)
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
    attempts = models.PositiveIntegerField(default=0, help_text="Agent calls and sends tried.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # None: the agent has not answered yet; "": it answered with nothing to send.
    reply_text = models.TextField(null=True, blank=True)  # noqa: DJ001
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
