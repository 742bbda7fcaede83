"""Add many tenants at once through Omnihub's ORM (DATABASE_URL says where).

bulk_create with model instances: EncryptedTextField encrypts in get_prep_value, so the keys are
stored encrypted exactly as a tenant saved one by one would have them.

    python -m bench.setup_db --count 9999 --agent-url URL --evolution-url URL
"""

import argparse
import os

import django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--agent-url", required=True)
    parser.add_argument("--evolution-url", required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnihub.settings")
    django.setup()
    from instances.models import InstanceConfig

    InstanceConfig.objects.bulk_create(
        (
            InstanceConfig(
                name=tenant_name(number),
                evolution_url=args.evolution_url,
                evolution_key=f"evolution-key-{number}",
                whatsapp_instance=tenant_name(number),
                agent_api_url=args.agent_url,
                agent_api_key=f"agent-key-{number}",
                default_agent="bot",
                agent_timeout=30,
                require_webhook_auth=True,
                webhook_secret=WEBHOOK_SECRET,
            )
            for number in range(args.count)
        ),
        batch_size=500,
    )
    print(f"{InstanceConfig.objects.count()} tenants")


# Every bench tenant requires webhook authentication, as tenants created today do, so each
# webhook's secret is read and compared; the load proves it with X-Omnihub-Token.
WEBHOOK_SECRET = "bench-webhook-secret-0123456789abcdef"


def tenant_name(number: int) -> str:
    return f"tenant-{number:05d}"


if __name__ == "__main__":
    main()
