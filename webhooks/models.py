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
    # Counts the times the chat was made ready (leases.mark_ready): a worker that finds it
    # unchanged at the end of a turn knows nothing was queued in the chat meanwhile.
    times_queued = models.PositiveBigIntegerField(default=0, editable=False)
    # While paused the bot stays quiet in this chat (webhooks.conversations.pausing): until
    # `paused_until`, or for good while `paused_until_resumed` is set.
    paused_until = models.DateTimeField(null=True, blank=True)
    paused_until_resumed = models.BooleanField(default=False)
    contact_name = models.CharField(
        max_length=200, blank=True, help_text="The name the contact's last message came with."
    )
    # A reset keyword starts the agent's next session: each message keeps the generation it
    # arrived in (Message.session_generation), so a new session starts exactly after it.
    session_generation = models.PositiveIntegerField(default=0)
    rate_limited_reply_at = models.DateTimeField(
        null=True, blank=True, help_text="When the contact was last told they are rate limited."
    )

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
        PAUSED = "paused"  # arrived while the chat was paused: shown, never sent to the agent

    class CannedReply(models.TextChoices):
        """A reply of the tenant's own that answers the message instead of the agent."""

        RATE_LIMITED = "rate_limited"
        RESET = "reset"
        UNSUPPORTED = "unsupported"

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
    # Why it did not go to the agent: ignored, paused, or answered by a canned reply.
    ignore_reason = models.CharField(max_length=200, blank=True)
    canned_reply = models.CharField(
        max_length=16,
        choices=CannedReply,
        blank=True,
        help_text="The tenant's canned reply that answers it instead of the agent.",
    )
    session_generation = models.PositiveIntegerField(
        default=0, help_text="The chat's agent session it belongs to (see the reset keyword)."
    )
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
    # None: the agent has not answered yet; "": it answered with nothing to send. The whole
    # answer, as the agent gave it; what was sent of it, part by part, is in `parts`.
    reply_text = models.TextField(null=True, blank=True)  # noqa: DJ001
    # When sending the reply began. Each part records its own send (ReplyPart.send_started_at):
    # that record is what a retry looks up in Evolution before sending a part again.
    send_started_at = models.DateTimeField(null=True, blank=True)
    reply_whatsapp_id = models.CharField(
        "WhatsApp id of the reply",
        max_length=128,
        blank=True,
        help_text="Evolution's key.id of the reply's first part.",
    )
    # Debounce: messages that arrived close together are answered by one agent call, whose
    # answer is stored on the first of them; the others point at it and share its fate.
    answered_with = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="answered_along",
        db_index=False,  # a partial index below: most messages are answered alone
        help_text="The message whose answer answered this one too.",
    )
    notice_due_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a notice to the user (the tenant's error reply) is next to be sent.",
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
            # The per-contact limit counts a chat's messages of the last hour.
            models.Index(fields=["conversation", "received_at"], name="messages_by_chat_and_time"),
            models.Index(
                fields=["answered_with"],
                name="messages_answered_along",
                condition=Q(answered_with__isnull=False),
            ),
            # A chat's notices still to send, looked for with its pending messages.
            models.Index(
                fields=["conversation", "id"],
                name="conversation_notices",
                condition=Q(notice_due_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.whatsapp_id} ({self.status})"


class ReplyPart(models.Model):
    """One WhatsApp message Omnihub sends in answer to an inbound message: a part of the agent's
    answer (split on paragraphs, sent in `position` order), or a notice such as the tenant's
    error reply. Its send is recorded before the call and its WhatsApp id after it, so each
    part is sent once: a send whose outcome is unknown is looked up in Evolution before the
    part is sent again, and an echo of it is recognised as Omnihub's own."""

    class Kind(models.TextChoices):
        REPLY = "reply"
        ERROR_REPLY = "error_reply"

    # Its own index would repeat the unique constraint's, which starts with it.
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="parts", db_index=False
    )
    kind = models.CharField(max_length=16, choices=Kind, default=Kind.REPLY)
    position = models.PositiveIntegerField(default=0)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times its send was started.")
    send_started_at = models.DateTimeField(null=True, blank=True)
    whatsapp_id = models.CharField(
        "WhatsApp id", max_length=128, blank=True, help_text="Evolution's key.id."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["message", "kind", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "kind", "position"], name="one_reply_part_per_position"
            )
        ]
        indexes = [
            # Echoes of our sends are matched by the id Evolution gave them.
            models.Index(fields=["whatsapp_id"], name="reply_parts_by_whatsapp_id"),
            # ... or, before that id is known, among the few sends in flight.
            models.Index(
                fields=["send_started_at"],
                name="reply_parts_in_flight",
                condition=Q(sent_at__isnull=True, send_started_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} {self.kind} #{self.position}"

    @property
    def label(self) -> str:
        """What it is, in words for logs and errors: "reply", "error reply"."""
        return str(self.get_kind_display()).lower()


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
