"""Client of the Evolution API (the WhatsApp gateway): sending a text reply.

Reference: https://doc.evolution-api.com/v2/api-reference/message-controller/send-text
Like the agents client, it takes the tenant's server, key and instance as arguments each call.
"""

import httpx

from webhooks import outbound

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class EvolutionError(Exception):
    def __init__(self, message: str, *, retryable: bool, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code


def send_text(
    *, base_url: str, api_key: str, instance: str, number: str, text: str, timeout: float
) -> None:
    try:
        response = outbound.post_json(
            f"{base_url}/message/sendText/{instance}",
            body={"number": number, "text": text},
            headers={"apikey": api_key},
            timeout=timeout,
        )
    except httpx.TimeoutException:
        raise EvolutionError(
            f"Evolution did not answer within {timeout:g} s", retryable=True
        ) from None
    except httpx.TransportError as error:
        raise EvolutionError(f"cannot reach Evolution: {error}", retryable=True) from None
    if response.is_error:
        raise EvolutionError(
            f"Evolution answered {response.status_code}: {response.text[:300]}",
            retryable=response.status_code in RETRYABLE_STATUSES,
            status_code=response.status_code,
        )
