import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import override_settings

from instances.models import InstanceConfig
from instances.secrets import DecryptionError, mask_secret
from tests.factories import InstanceConfigFactory

pytestmark = pytest.mark.django_db


def raw_keys(name: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT evolution_key, agent_api_key FROM instances_instanceconfig WHERE name = %s",
            [name],
        )
        evolution_key, agent_api_key = cursor.fetchone()
        return evolution_key, agent_api_key


def test_it_never_stores_a_key_in_plaintext():
    InstanceConfigFactory.create(
        name="acme", evolution_key="evo-plain-1234", agent_api_key="agent-5678"
    )

    evolution_raw, agent_raw = raw_keys("acme")

    assert "evo-plain-1234" not in evolution_raw
    assert "agent-5678" not in agent_raw
    assert InstanceConfig.objects.get(name="acme").evolution_key == "evo-plain-1234"


def test_it_keeps_an_empty_key_empty():
    InstanceConfigFactory.create(name="acme", agent_api_key="")

    assert raw_keys("acme")[1] == ""
    assert InstanceConfig.objects.get(name="acme").agent_api_key == ""


def test_it_raises_instead_of_returning_ciphertext_under_a_wrong_key():
    InstanceConfigFactory.create(name="acme")

    with (
        override_settings(OMNIHUB_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]),
        pytest.raises(DecryptionError),
    ):
        InstanceConfig.objects.get(name="acme")


def test_it_decrypts_with_an_older_key_after_a_new_one_is_added():
    InstanceConfigFactory.create(name="acme", evolution_key="evo-plain-1234")
    from django.conf import settings

    keys = [Fernet.generate_key().decode(), *settings.OMNIHUB_ENCRYPTION_KEYS]
    with override_settings(OMNIHUB_ENCRYPTION_KEYS=keys):
        assert InstanceConfig.objects.get(name="acme").evolution_key == "evo-plain-1234"


@pytest.mark.parametrize(
    ("secret", "masked"),
    [("", ""), ("short", "••••"), ("abcdefghijkl8888", "••••8888")],
)
def test_it_masks_secrets(secret, masked):
    assert mask_secret(secret) == masked
