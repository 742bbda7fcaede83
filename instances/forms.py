"""The admin's form for tenants, made from instances.tenant_fields: keys are write-only, lists of
numbers are edited as text, and the service layer's rules show as form errors instead of
failing in save_model."""

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from instances import tenant_fields
from instances.models import InstanceConfig
from instances.secrets import mask_secret
from instances.services import EDITABLE_FIELDS, SECRET_FIELDS, missing_fields
from instances.tenant_fields import TenantField

_LIST_SEPARATORS = re.compile(r"[\n,;]")


class NumberListField(forms.CharField):
    """A list of numbers as text, one per line or separated by commas; the model validates
    each entry."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(widget=forms.Textarea(attrs={"rows": 3, "cols": 30}), **kwargs)

    def prepare_value(self, value: Any) -> Any:
        # A list from the stored tenant; text as typed when the form comes back with errors.
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [entry.strip() for entry in _LIST_SEPARATORS.split(text) if entry.strip()]


def _secret_field(field: TenantField) -> forms.CharField:
    # render_value=False: the stored key never reaches the page, not even masked.
    # new-password: keeps browsers from filling in the admin's own saved password.
    return forms.CharField(
        label=field.label,
        required=False,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "class": "vTextField"}
        ),
    )


def _list_field(field: TenantField) -> NumberListField:
    return NumberListField(
        label=field.label,
        required=False,
        help_text=f"{field.help_text} One per line, or separated by commas.",
    )


class InstanceConfigForm(forms.ModelForm[InstanceConfig]):
    class Meta:
        model = InstanceConfig
        fields = [field.name for field in tenant_fields.CREATABLE]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adding = self.instance.pk is None
        for field in tenant_fields.CREATABLE:
            if field.name not in self.fields:
                continue  # the name, once the tenant exists: the admin shows it read-only
            if field.secret:
                self.fields[field.name] = _secret_field(field)
                # A blank initial makes a blank input mean "unchanged" (form.changed_data).
                self.initial[field.name] = ""
                self.fields[field.name].help_text = _secret_help(field, self.instance, adding)
            elif field.kind is list:
                self.fields[field.name] = _list_field(field)
            if adding and field.required:
                self.fields[field.name].required = True

    def clean(self) -> dict[str, Any]:
        super().clean()  # ModelForm's returns self.cleaned_data; the stubs allow None
        cleaned_data = self.cleaned_data
        for name in SECRET_FIELDS & set(self.fields):
            if not cleaned_data.get(name) and name not in self.errors:
                # Blank keeps the stored key; the model validation that follows sees it too.
                cleaned_data[name] = getattr(self.instance, name)
        self._require(cleaned_data)
        return cleaned_data

    def _require(self, cleaned_data: dict[str, Any]) -> None:
        """The service layer's rule, checked here so it shows on the form."""
        for name in missing_fields(cleaned_data, creating=self.instance.pk is None):
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


def _secret_help(field: TenantField, instance: InstanceConfig, adding: bool) -> str:
    if adding:
        return field.help_text
    stored = getattr(instance, field.name)
    if not stored:
        return "Not set. Leave blank to keep it unset."
    # The admin renders help text as HTML, and the mask shows the key's last characters.
    return format_html("Stored: {}. Leave blank to keep it.", mask_secret(stored))
