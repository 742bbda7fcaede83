from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinLengthValidator,
    MinValueValidator,
    RegexValidator,
    URLValidator,
)
from django.db import models
from django.db.models import Q

from instances.fields import EncryptedTextField

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

validate_name = RegexValidator(
    NAME_PATTERN, "Use 1-64 letters, digits, '_' or '-'.", code="invalid_name"
)
_http_url = URLValidator(schemes=["http", "https"], message="Enter an http(s) URL.")


def validate_http_url(value: str) -> None:
    """An http(s) URL without credentials in it: keys belong in the key fields, which are
    encrypted and never shown, while a URL is shown back by the admin, the API and the CLI."""
    _http_url(value)
    if "@" in urlsplit(value).netloc:
        raise ValidationError(
            "Leave credentials out of the URL; put the key in its own field.", code="userinfo"
        )


# Where the Agents API client puts the agent's run endpoint, below the base URL it is given.
AGENT_RUN_PATH = "/api/v1/agent/"


def validate_agent_base_url(value: str) -> None:
    """The Agents API's base URL, not an endpoint of it: the client appends
    /api/v1/agent/<agent>/run, so a URL that already holds that path would be called doubled."""
    parts = urlsplit(value)
    path = parts.path.rstrip("/") + "/"
    cut = path.find(AGENT_RUN_PATH)
    if cut == -1 and path.endswith("/api/v1/"):
        cut = len(path) - len("/api/v1/")
    if cut == -1:
        return
    # Rebuilt without any user:password a wrong URL may carry: messages are shown back.
    base = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{path[:cut]}"
    raise ValidationError(
        "Enter the base URL of the Agents API, e.g. %(base)s: Omnihub adds "
        "/api/v1/agent/<agent>/run itself.",
        code="agent_endpoint",
        params={"base": base},
    )


# HS256 keys shorter than its 32-byte hash are weaker than the algorithm (RFC 7518 §3.2).
WEBHOOK_SECRET_MIN_LENGTH = 32
validate_webhook_secret = MinLengthValidator(
    WEBHOOK_SECRET_MIN_LENGTH,
    f"Use at least {WEBHOOK_SECRET_MIN_LENGTH} characters.",
)


# Digits of a phone number, or a prefix of one with a trailing "*" ("5511*").
NUMBER_PATTERN = r"^[0-9]{1,20}\*?$"
_number_pattern = RegexValidator(
    NUMBER_PATTERN, "Use digits, optionally ending in * for a prefix (5511*).", code="number"
)


def validate_number_patterns(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise ValidationError("Give a list of numbers.", code="not_a_list")
    for entry in value:
        _number_pattern(entry)


def _bounded(low: int, high: int) -> list[MinValueValidator | MaxValueValidator]:
    return [MinValueValidator(low), MaxValueValidator(high)]


REPLY_MAX_LENGTH = 4000
# A TextField's max_length only sizes the admin's textarea; this enforces it everywhere.
_reply_length = MaxLengthValidator(REPLY_MAX_LENGTH)


def previous_secret_valid_until(rotated_at: datetime | None) -> datetime | None:
    """Until when the webhook secret a rotation replaced still verifies."""
    if rotated_at is None:
        return None
    return rotated_at + timedelta(seconds=settings.WEBHOOK_SECRET_GRACE_SECONDS)


class InstanceConfig(models.Model):
    """One tenant: a WhatsApp instance on an Evolution server, answered by one agent."""

    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[validate_name],
        help_text="1-64 letters, digits, '_' or '-'; part of the tenant's webhook URL.",
    )
    # CharField with our validator: URLField would add a second, vaguer URL message.
    evolution_url = models.CharField(
        "Evolution API URL",
        max_length=500,
        blank=True,
        validators=[validate_http_url],
        help_text="Evolution API server; blank only for the default tenant seeded from .env, "
        "which then replies through the server named in each webhook.",
    )
    evolution_key = EncryptedTextField(
        "Evolution API key", blank=True, help_text="The Evolution server's API key."
    )
    # Without an Evolution URL, replies go to the server a webhook names, but only to this one
    # (unless EVOLUTION_TRUSTED_SERVERS lists others): pinned at the first webhook.
    pinned_evolution_origin = models.CharField(
        max_length=300,
        blank=True,
        help_text="The Evolution server the first webhook came from; replies go only there.",
    )
    whatsapp_instance = models.CharField(
        "WhatsApp instance", max_length=100, help_text="The instance name on the Evolution server."
    )
    session_id_prefix = models.CharField(
        "session ID prefix",
        max_length=100,
        blank=True,
        help_text="Put before each chat's agent session name, e.g. acme-.",
    )
    agent_api_url = models.CharField(
        "Agent API URL",
        max_length=500,
        validators=[validate_http_url, validate_agent_base_url],
        help_text="Base URL of the Agents API; Omnihub adds /api/v1/agent/<agent>/run.",
    )
    agent_api_key = EncryptedTextField(
        "Agent API key", blank=True, help_text="Sent to the Agents API; empty sends none."
    )
    default_agent = models.CharField(
        max_length=100, help_text="The agent that answers this tenant's chats."
    )
    agent_timeout = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Seconds to wait for the agent's answer.",
    )
    is_default = models.BooleanField(
        "default", default=False, help_text="Serves the legacy route POST /webhook/evolution."
    )
    # Webhooks must prove they come from this tenant's Evolution (a JWT signed with the secret,
    # or the secret itself in X-Omnihub-Token). Off only for tenants that predate it.
    require_webhook_auth = models.BooleanField(
        "require webhook authentication",
        default=True,
        help_text="Refuse webhooks (401) that do not prove they know the webhook secret.",
    )
    webhook_secret = EncryptedTextField(
        blank=True,
        validators=[validate_webhook_secret],
        help_text="What Evolution signs this tenant's webhooks with; generated when not given.",
    )
    # After a rotation the previous secret still verifies for WEBHOOK_SECRET_GRACE_SECONDS, so
    # webhooks already signed, or sent before Evolution is updated, are not lost.
    previous_webhook_secret = EncryptedTextField(blank=True)
    webhook_secret_rotated_at = models.DateTimeField(null=True, blank=True)
    # Rejected webhooks are counted, so a misconfigured Evolution is noticed before customers do.
    webhook_rejections = models.PositiveIntegerField(default=0)
    webhook_last_rejected_at = models.DateTimeField(null=True, blank=True)
    webhook_last_rejection = models.CharField(max_length=100, blank=True)

    # Conversation behaviour: each is read by one step of intake or answering.
    human_takeover_minutes = models.PositiveIntegerField(
        default=30,
        validators=_bounded(0, 43200),
        help_text="Minutes the bot stays quiet in a chat after a person replies from the "
        "business's phone; 0 never pauses.",
    )
    debounce_seconds = models.PositiveIntegerField(
        default=0,
        validators=_bounded(0, 60),
        help_text="Messages arriving within this many seconds of the last one get one answer; "
        "0 is off.",
    )
    split_replies = models.BooleanField(
        default=True, help_text="Send the agent's answer as one message per paragraph."
    )
    typing_ms_per_char = models.PositiveIntegerField(
        "typing ms per character",
        default=0,
        validators=_bounded(0, 1000),
        help_text="Show 'typing…' this long per character of each part (at most 8 s); 0 is off.",
    )
    show_typing = models.BooleanField(
        default=True, help_text="Show 'typing…' while the agent thinks."
    )
    allowed_numbers = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_number_patterns],
        help_text="When set, only these numbers reach the agent; 5511* matches a prefix.",
    )
    blocked_numbers = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_number_patterns],
        help_text="These numbers never reach the agent; 5511* matches a prefix.",
    )
    max_messages_per_hour = models.PositiveIntegerField(
        default=0,
        validators=_bounded(0, 100000),
        help_text="Per contact; beyond it messages are ignored. 0 is no limit.",
    )
    rate_limited_reply = models.TextField(
        blank=True,
        max_length=REPLY_MAX_LENGTH,
        validators=[_reply_length],
        help_text="Sent once an hour to a contact over the limit; empty says nothing.",
    )
    max_message_age_seconds = models.PositiveIntegerField(
        default=900,
        validators=_bounded(0, 604800),
        help_text="Older messages (a backlog after a reconnect) are not answered; 0 answers all.",
    )
    error_reply = models.TextField(
        blank=True,
        max_length=REPLY_MAX_LENGTH,
        validators=[_reply_length],
        help_text="Sent when a message could not be answered; empty says nothing.",
    )
    unsupported_reply = models.TextField(
        blank=True,
        max_length=REPLY_MAX_LENGTH,
        validators=[_reply_length],
        help_text="Sent for a message the agent cannot take (a sticker, say); empty says nothing.",
    )
    reset_keyword = models.CharField(
        max_length=100,
        blank=True,
        help_text="A message equal to this (any case) starts a new agent session; empty is off.",
    )
    reset_reply = models.TextField(
        blank=True,
        default="Ok, starting over.",
        max_length=REPLY_MAX_LENGTH,
        validators=[_reply_length],
        help_text="Sent after the reset keyword.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "instance"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_instance"
            ),
            models.CheckConstraint(
                condition=Q(agent_timeout__gte=1, agent_timeout__lte=3600),
                name="agent_timeout_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Trailing slashes would double up when paths are appended to the URLs.
        self.evolution_url = self.evolution_url.rstrip("/")
        self.agent_api_url = self.agent_api_url.rstrip("/")
