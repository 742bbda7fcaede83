"""The admin's form for tenants: keys are write-only, and the service layer's rules show as
form errors instead of failing in save_model."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from instances.models import InstanceConfig
from instances.secrets import mask_secret
from instances.services import EDITABLE_FIELDS, SECRET_FIELDS, missing_evolution_fields

EVOLUTION_FIELDS = ("evolution_url", "evolution_key")


def _secret_field(label: str) -> forms.CharField:
    # render_value=False: the stored key never reaches the page, not even masked.
    # new-password: keeps browsers from filling in the admin's own saved password.
    return forms.CharField(
        label=label,
        required=False,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "class": "vTextField"}
        ),
    )


class InstanceConfigForm(forms.ModelForm[InstanceConfig]):
    evolution_key = _secret_field("Evolution API key")
    agent_api_key = _secret_field("Agent API key")
    webhook_secret = _secret_field("Webhook secret")

    class Meta:
        model = InstanceConfig
        fields = [
            "name",
            "is_default",
            "evolution_url",
            "evolution_key",
            "whatsapp_instance",
            "agent_api_url",
            "agent_api_key",
            "default_agent",
            "session_id_prefix",
            "agent_timeout",
            "require_webhook_auth",
            "webhook_secret",
        ]
        labels = {
            "is_default": "Default",
            "evolution_url": "Evolution API URL",
            "agent_api_url": "Agent API URL",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adding = self.instance.pk is None
        for name in SECRET_FIELDS & set(self.fields):
            # A blank initial makes a blank input mean "unchanged" (form.changed_data).
            self.initial[name] = ""
            if not adding:
                self.fields[name].help_text = _stored_secret_help(getattr(self.instance, name))
        if adding and "webhook_secret" in self.fields:
            self.fields["webhook_secret"].help_text = "Leave blank to generate one."
        if adding:
            for name in set(EVOLUTION_FIELDS) & set(self.fields):
                self.fields[name].required = True

    def clean(self) -> dict[str, Any]:
        super().clean()  # ModelForm's returns self.cleaned_data; the stubs allow None
        cleaned_data = self.cleaned_data
        for name in SECRET_FIELDS & set(self.fields):
            if not cleaned_data.get(name) and name not in self.errors:
                # Blank keeps the stored key; the model validation that follows sees it too.
                cleaned_data[name] = getattr(self.instance, name)
        self._require_evolution(cleaned_data)
        return cleaned_data

    def _require_evolution(self, cleaned_data: dict[str, Any]) -> None:
        """The service layer's rule, checked here so it shows on the form."""
        missing = missing_evolution_fields(
            cleaned_data.get("evolution_url") or "",
            cleaned_data.get("evolution_key") or "",
            creating=self.instance.pk is None,
        )
        for name in missing:
            if name in self.fields and name not in self.errors:
                self.add_error(name, "This field is required.")

    def validate_constraints(self) -> None:
        # Ticking "default" asks services.set_default_instance to move the flag off the previous
        # default, so the one-default constraint is not this form's to judge.
        # Both private ModelForm methods exist at runtime; django-stubs leaves them out.
        exclude = self._get_validation_exclusions() | {"is_default"}  # type: ignore[attr-defined]
        try:
            self.instance.validate_constraints(exclude=exclude)
        except ValidationError as error:
            self._update_errors(error)  # type: ignore[attr-defined]

    def service_fields(self) -> dict[str, Any]:
        """Keyword arguments for services.create_instance."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name in EDITABLE_FIELDS or name == "name"
        }

    def service_changes(self) -> dict[str, Any]:
        """Keyword arguments for services.update_instance: only what the user changed."""
        return {
            name: self.cleaned_data[name] for name in self.changed_data if name in EDITABLE_FIELDS
        }


def _stored_secret_help(stored: str) -> str:
    if not stored:
        return "Not set. Leave blank to keep it unset."
    # The admin renders help text as HTML, and the mask shows the key's last characters.
    return format_html("Stored: {}. Leave blank to keep it.", mask_secret(stored))
