"""Create .env from .env.example, filling the secrets `make run` generates. Never overwrites."""

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

GENERATED = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "OMNIHUB_API_KEY": lambda: secrets.token_urlsafe(32),
    "OMNIHUB_ENCRYPTION_KEYS": lambda: Fernet.generate_key().decode(),
}


def render(example: str) -> str:
    lines = []
    for line in example.splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#") and name in GENERATED and not value:
            line = f"{name}={GENERATED[name]()}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> None:
    example, target = Path(sys.argv[1]), Path(sys.argv[2])
    if target.exists():
        return
    target.write_text(render(example.read_text()))
    target.chmod(0o600)
    print(f"created {target} with fresh SECRET_KEY, OMNIHUB_API_KEY and OMNIHUB_ENCRYPTION_KEYS")


if __name__ == "__main__":
    main()
