from django.core.validators import (
    MaxValueValidator,
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
validate_http_url = URLValidator(schemes=["http", "https"], message="Enter an http(s) URL.")


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
