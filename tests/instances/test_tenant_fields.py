"""The one list of tenant fields: every column is in it or deliberately left out, and what the
surfaces make of it agrees with the model."""

from django.db import models

from instances import services, tenant_fields
from instances.models import InstanceConfig
from instances.schemas import InstanceIn, InstanceOut, InstanceUpdate

# Columns no person reads or writes: the key, and the secret a rotation replaced.
INTERNAL = {"id", "previous_webhook_secret"}


def test_every_tenant_column_is_in_the_list_or_internal():
    columns = {
        field.name for field in InstanceConfig._meta.get_fields() if isinstance(field, models.Field)
    }

    listed = {field.name for field in tenant_fields.FIELDS if field.is_column}
    assert columns - INTERNAL == listed
    assert not INTERNAL & listed


def test_the_schemas_and_services_take_their_fields_from_the_list():
    editable = {field.name for field in tenant_fields.EDITABLE}

    assert set(InstanceIn.model_fields) == editable | {"name"}
    assert set(InstanceUpdate.model_fields) == editable
    assert list(InstanceOut.model_fields) == [field.name for field in tenant_fields.FIELDS]
    assert editable == services.EDITABLE_FIELDS
    assert {"evolution_key", "agent_api_key", "webhook_secret"} == services.SECRET_FIELDS


def test_labels_defaults_and_bounds_come_from_the_model():
    takeover = tenant_fields.BY_NAME["human_takeover_minutes"]
    instance = tenant_fields.BY_NAME["whatsapp_instance"]

    assert (takeover.default, takeover.bounds, takeover.kind) == (30, (0, 43200), int)
    assert (instance.label, instance.max_length, instance.cli_flag) == (
        "WhatsApp instance", 100, "--whatsapp-instance",
    )  # fmt: skip
    assert tenant_fields.BY_NAME["allowed_numbers"].kind is list
    assert tenant_fields.BY_NAME["is_default"].cli_flag == "--default"
