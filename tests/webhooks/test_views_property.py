"""Property: whatever a webhook's body holds, the view answers 2xx or 4xx with JSON, never 500.

Real Evolution payloads are mutated: wrong types in any field, nulls, arrays for objects, huge
strings, NULs and lone surrogates, numbers past every range, deep nesting, fields removed
(`key.id` among them), and the bytes themselves broken (invalid UTF-8, NaN, cut short).
Derandomized, so CI runs the same examples every time.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from instances.models import InstanceConfig
from tests.factories import InstanceConfigFactory

pytestmark = pytest.mark.django_db(transaction=True)

FIXTURES = Path(__file__).parent / "fixtures"
PAYLOADS = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))]
ROUTES = [
    "/webhook/evolution/acme",
    "/webhook/evolution",
    "/webhook/evolution/acme/messages-upsert",
]

Path_ = tuple[str | int, ...]
# Where a body is to nest this deep: written into the JSON text, which json.dumps would not do.
DEEP = "@@deep:{}@@"

OUT_OF_RANGE = st.sampled_from([-1, 2**63, 2**64, -(2**63) - 1, 10**400])
UNSTORABLE = st.sampled_from(["\x00", "\ud800", "\udfff", "\ud83d"])
texts = st.one_of(
    st.text(max_size=20),
    st.builds(lambda a, b, c: a + b + c, st.text(max_size=8), UNSTORABLE, st.text(max_size=8)),
)
huge_texts = st.builds(lambda n, c: c * n, st.integers(129, 20_000), st.sampled_from("x\x00é"))
numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    OUT_OF_RANGE,
    st.floats(allow_nan=False, allow_infinity=False),
    # Written as NaN or Infinity, which are not JSON: rarer, or most bodies would be a 400.
    st.sampled_from([float("nan"), float("inf"), 1.0]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts, huge_texts)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


def paths(value: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every place in a payload that holds a value."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def get(payload: Any, path: Path_) -> Any:
    for step in path:
        payload = payload[step]
    return payload


def put(payload: Any, path: Path_, value: Any, *, remove: bool = False) -> None:
    *parents, last = path
    container = payload
    for step in parents:
        container = container[step]
    if remove:
        del container[last]
    else:
        container[last] = value


def tainted(value: Any) -> st.SearchStrategy[Any]:
    if isinstance(value, str):
        return st.builds(
            lambda at, bad: value[:at] + bad + value[at:], st.integers(0, len(value)), UNSTORABLE
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        return OUT_OF_RANGE
    return texts


depths = st.one_of(st.integers(1, 63), st.integers(64, 2_100))


@st.composite
def mutated_payloads(draw: st.DrawFn) -> Any:
    payload = json.loads(json.dumps(draw(st.sampled_from(PAYLOADS))))  # a deep copy
    key = payload.get("data", {}).get("key")
    if isinstance(key, dict) and draw(st.booleans()):
        key["id"] = draw(st.one_of(texts, huge_texts))  # a new message, not a duplicate
    for _ in range(draw(st.integers(1, 6))):
        places = paths(payload)
        if not places:
            break
        place = draw(st.sampled_from(places))
        match draw(st.sampled_from(["taint"] * 3 + ["replace"] * 3 + ["remove", "swap", "deepen"])):
            case "taint":  # close to the value, but what no column can store
                put(payload, place, draw(tainted(get(payload, place))))
            case "replace":
                put(payload, place, draw(junk))
            case "remove":
                put(payload, place, None, remove=True)
            case "swap":  # arrays for objects, objects for arrays, scalars for both
                put(payload, place, [None])
            case "deepen":
                put(payload, place, DEEP.format(draw(depths)))
    return payload


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    payload = draw(mutated_payloads() if draw(st.integers(0, 9)) else junk)
    # allow_nan: NaN and Infinity go out as the bare words Python writes, which are not JSON.
    text = json.dumps(payload, ensure_ascii=draw(st.integers(0, 3)) > 0)
    text = re.sub(
        '"' + DEEP.format(r"(\d+)") + '"',
        lambda deep: '{"a": [' * int(deep[1]) + "0" + "]}" * int(deep[1]),
        text,
    )
    # A lone surrogate written out raw is invalid UTF-8.
    body = text.encode("utf-8", "surrogatepass")
    match draw(st.sampled_from(["whole"] * 8 + ["cut", "bad-bytes"])):
        case "cut":
            body = body[: draw(st.integers(0, len(body)))]
        case "bad-bytes":
            at = draw(st.integers(0, len(body)))
            body = (
                body[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + body[at:]
            )
    return body


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=hostile_bodies(), route=st.sampled_from(ROUTES))
def test_no_webhook_body_is_answered_with_a_server_error(body, route):
    if not InstanceConfig.objects.exists():
        InstanceConfigFactory.create(name="acme", is_default=True)

    response = Client().post(route, body, content_type="application/json")

    assert 200 <= response.status_code < 500, response.content
    answer = response.json()
    event(f"{response.status_code} {answer.get('status', '')}")  # --hypothesis-show-statistics
    if response.status_code < 300:
        assert answer["status"] in ("queued", "ignored", "duplicate")
    else:
        assert answer["detail"]
