from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
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


# HS256 keys shorter than its 32-byte hash are weaker than the algorithm (RFC 7518 §3.2).
WEBHOOK_SECRET_MIN_LENGTH = 32
validate_webhook_secret = MinLengthValidator(
    WEBHOOK_SECRET_MIN_LENGTH,
    f"Use at least {WEBHOOK_SECRET_MIN_LENGTH} characters.",
)


def previous_secret_valid_until(rotated_at: datetime | None) -> datetime | None:
    """Until when the webhook secret a rotation replaced still verifies."""
    if rotated_at is None:
        return None
    return rotated_at + timedelta(seconds=settings.WEBHOOK_SECRET_GRACE_SECONDS)


class InstanceConfig(models.Model):
    """One tenant: a WhatsApp instance on an Evolution server, answered by one agent."""

    name = models.CharField(max_length=64, unique=True, validators=[validate_name])
    # CharField with our validator: URLField would add a second, vaguer URL message.
    evolution_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_http_url],
        help_text="Evolution API server; blank only for the default tenant seeded from .env, "
        "which then replies through the server named in each webhook.",
    )
    evolution_key = EncryptedTextField(blank=True)
    # Without an Evolution URL, replies go to the server a webhook names, but only to this one
    # (unless EVOLUTION_TRUSTED_SERVERS lists others): pinned at the first webhook.
    pinned_evolution_origin = models.CharField(
        max_length=300,
        blank=True,
        help_text="The Evolution server the first webhook came from; replies go only there.",
    )
    whatsapp_instance = models.CharField(
        max_length=100, help_text="The instance name on the Evolution server."
    )
    session_id_prefix = models.CharField(max_length=100, blank=True)
    agent_api_url = models.CharField(max_length=500, validators=[validate_http_url])
    agent_api_key = EncryptedTextField(blank=True)
    default_agent = models.CharField(max_length=100)
    agent_timeout = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Seconds to wait for the agent's answer.",
    )
    is_default = models.BooleanField(
        default=False, help_text="Serves the legacy route POST /webhook/evolution."
    )
    # Webhooks must prove they come from this tenant's Evolution (a JWT signed with the secret,
    # or the secret itself in X-Omnihub-Token). Off only for tenants that predate it.
    require_webhook_auth = models.BooleanField(
        "require webhook authentication",
        default=True,
        help_text="Refuse webhooks (401) that do not prove they know the webhook secret.",
    )
    webhook_secret = EncryptedTextField(blank=True, validators=[validate_webhook_secret])
    # After a rotation the previous secret still verifies for WEBHOOK_SECRET_GRACE_SECONDS, so
    # webhooks already signed, or sent before Evolution is updated, are not lost.
    previous_webhook_secret = EncryptedTextField(blank=True)
    webhook_secret_rotated_at = models.DateTimeField(null=True, blank=True)
    # Rejected webhooks are counted, so a misconfigured Evolution is noticed before customers do.
    webhook_rejections = models.PositiveIntegerField(default=0)
    webhook_last_rejected_at = models.DateTimeField(null=True, blank=True)
    webhook_last_rejection = models.CharField(max_length=100, blank=True)
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
