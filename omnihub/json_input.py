"""JSON from outside (webhook and REST bodies): decoded as Python can hold it, or refused with
the reason; and made storable.

JSON allows more than Python and the database do. Python's json module also reads `NaN` and
`Infinity`, which are not JSON; turns `1e400` into infinity; and recurses once per level of
nesting. Strings may hold NUL characters and lone surrogates (`"\\u0000"`, `"\\ud800"`), which
PostgreSQL refuses in text and jsonb and which no encoder can write as UTF-8: `storable_text` and
`storable_copy` make any string, and any decoded payload, safe to store.
"""

import json
import math
import re
from typing import Any

MAX_DEPTH = 64  # levels of objects and arrays; real Evolution payloads nest 6 deep

# Inside a Python str every surrogate is a lone one: the JSON decoder joins escaped pairs.
_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


class InvalidJsonError(ValueError):
    """The body is not JSON that Omnihub can read; the message says why."""


def decode_json(raw: bytes) -> Any:
    """The body's JSON value. Numbers Python cannot hold (an exponent past a float's range,
    integers of thousands of digits) become None, as if absent."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_float, parse_int=_int)
    except InvalidJsonError:
        raise
    except RecursionError:
        raise _too_deep() from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidJsonError("the body is not valid JSON") from None
    if _nested_deeper_than(value, MAX_DEPTH):
        raise _too_deep()
    return value


def storable_text(text: str) -> str:
    """`text` without NUL characters, and with U+FFFD for each lone surrogate."""
    if text.isascii():  # known to the str object: the common case costs no scan
        return text.replace("\x00", "") if "\x00" in text else text
    return _SURROGATE.sub(_REPLACEMENT, text.replace("\x00", ""))


def is_storable(value: Any) -> bool:
    """Whether every string in a decoded JSON value, keys included, is storable as it is."""
    return bool(storable_copy(value) == value)


def storable_copy(value: Any) -> Any:
    """A copy of a decoded JSON value with every string, keys included, made storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(str(key)): storable_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable_copy(item) for item in value]
    return value


def _reject_constant(name: str) -> None:
    raise InvalidJsonError(f"{name} is not a JSON number")


def _float(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        return None


def _nested_deeper_than(value: object, limit: int) -> bool:
    """Level by level rather than by recursion, which is what a deep body would exhaust."""
    level = [value]
    for _ in range(limit):
        level = [
            child
            for container in level
            if isinstance(container, dict | list)
            for child in (container.values() if isinstance(container, dict) else container)
        ]
        if not level:
            return False
    return any(isinstance(item, dict | list) for item in level)


def _too_deep() -> InvalidJsonError:
    return InvalidJsonError(f"the body is nested deeper than {MAX_DEPTH} levels")
