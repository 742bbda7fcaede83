"""Access rules: which numbers may reach the tenant's agent (`allowed_numbers`, when set) and
which never do (`blocked_numbers`). An entry is a number's digits as WhatsApp gives them
(country code first); a trailing `*` matches every number that starts with it (`5511*`)."""

from collections.abc import Iterable

from instances.selectors import TenantRef


def refusal(tenant: TenantRef, phone: str) -> str | None:
    """Why a message from `phone` (digits; "" when the chat hides it) may not reach the
    agent, or None when it may."""
    if phone and matches(phone, tenant.blocked_numbers):
        return "blocked number"
    if tenant.allowed_numbers and not (phone and matches(phone, tenant.allowed_numbers)):
        # A chat that hides its number (a LID without a phone) cannot be on the list.
        return "not an allowed number" if phone else "hidden number: not on the allowed list"
    return None


def matches(phone: str, patterns: Iterable[str]) -> bool:
    return any(
        phone.startswith(pattern[:-1]) if pattern.endswith("*") else phone == pattern
        for pattern in patterns
    )
