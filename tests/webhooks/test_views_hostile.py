"""Hostile webhook bodies through the real view: stored made safe, or refused with a 4xx."""

import json
from unittest import mock

import pytest
from django.db import IntegrityError
from django.db.models import CharField
from django.test import Client

from tests.factories import InstanceConfigFactory
from tests.webhooks.conftest import evolution_payload, post_json, with_message_id
from webhooks.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


def post_raw(path: str, body: bytes):
    return Client().post(path, body, content_type="application/json")


@pytest.fixture
def acme():
    return InstanceConfigFactory.create(name="acme")


def test_nuls_and_lone_surrogates_are_taken_out_of_every_stored_string(acme):
    payload = evolution_payload("text_pn")
    payload["data"]["pushName"] = "Ma\x00ria \ud800"
    payload["data"]["message"] = {"conversation": "Oi\x00! \udfff tudo bem?"}
    payload["data"]["extra\x00key"] = ["\x00", {"deep": "a\ud83db"}]

    response = post_json("/webhook/evolution/acme", payload)

    assert response.json()["status"] == "queued"
    message = Message.objects.get()
    assert message.push_name == "Maria \ufffd"
    assert message.text == "Oi! \ufffd tudo bem?"
    assert message.raw_payload["data"]["extrakey"] == ["", {"deep": "a\ufffdb"}]


def test_strings_longer_than_their_column_are_cut_to_it(acme):
    payload = evolution_payload("document_caption")
    payload["data"]["key"]["id"] = "I" * 500
    payload["data"]["pushName"] = "P" * 500
    payload["data"]["message"]["documentMessage"]["mimetype"] = "m" * 500
    payload["data"]["message"]["documentMessage"]["fileName"] = "f" * 500

    response = post_json("/webhook/evolution/acme", payload)

    assert response.json()["status"] == "queued"
    message = Message.objects.get()
    for column in ("whatsapp_id", "push_name", "media_mimetype", "media_file_name"):
        field = Message._meta.get_field(column)
        assert isinstance(field, CharField)
        assert getattr(message, column) == getattr(message, column)[0] * field.max_length


def test_a_redelivered_message_whose_id_was_cut_is_a_duplicate(acme):
    payload = with_message_id(evolution_payload("text_pn"), "I" * 500)

    post_json("/webhook/evolution/acme", payload)
    second = post_json("/webhook/evolution/acme", payload)

    assert second.json()["status"] == "duplicate"


@pytest.mark.parametrize("file_length", [-1, 2**63, 2**64, {"low": 0, "high": -1}, 1e300])
def test_a_file_length_out_of_range_is_stored_as_unknown(acme, file_length):
    payload = evolution_payload("document_caption")
    payload["data"]["message"]["documentMessage"]["fileLength"] = file_length

    response = post_json("/webhook/evolution/acme", payload)

    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert Message.objects.get().media_size is None


def test_a_timestamp_out_of_range_is_stored_as_unknown(acme):
    payload = evolution_payload("text_pn")
    payload["data"]["messageTimestamp"] = 2**64

    assert post_json("/webhook/evolution/acme", payload).json()["status"] == "queued"
    assert Message.objects.get().sent_at is None


def test_a_number_past_a_float_s_range_is_stored_as_absent(acme):
    payload = evolution_payload("location")
    payload["data"]["message"]["locationMessage"]["degreesLatitude"] = 12345.678
    body = json.dumps(payload).replace("12345.678", "1e400")

    response = post_raw("/webhook/evolution/acme", body.encode())

    assert response.json()["status"] == "queued"
    stored = Message.objects.get().raw_payload
    assert stored["data"]["message"]["locationMessage"]["degreesLatitude"] is None


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_it_answers_400_to_nan_and_infinity(acme, constant):
    body = json.dumps(evolution_payload("text_pn")).replace("1761057639", constant)

    response = post_raw("/webhook/evolution/acme", body.encode())

    assert response.status_code == 400
    assert constant in response.json()["detail"]
    assert not Message.objects.exists()


@pytest.mark.parametrize("depth", [65, 2_000, 100_000])
def test_it_answers_400_to_a_body_nested_too_deep(acme, depth):
    body = '{"data": ' + "[" * depth + "]" * depth + "}"

    response = post_raw("/webhook/evolution/acme", body.encode())

    assert response.status_code == 400
    assert "nested deeper" in response.json()["detail"]


def test_a_body_nested_as_deep_as_allowed_is_read(acme):
    body = '{"event": "messages.upsert", "data": ' + "[" * 63 + "]" * 63 + "}"

    response = post_raw("/webhook/evolution/acme", body.encode())

    assert response.status_code == 200
    assert "unreadable" in response.json()["reason"]


def test_a_huge_event_name_is_not_echoed_in_full(acme):
    payload = evolution_payload("text_pn", event="x" * 100_000)

    response = post_json("/webhook/evolution/acme", payload)

    assert response.json()["status"] == "ignored"
    assert len(response.content) < 200


@pytest.mark.parametrize("name", ["ac me", "acme.", "x" * 65, "acmé"])
def test_a_tenant_name_no_tenant_can_have_is_not_found(acme, name):
    response = post_json(f"/webhook/evolution/{name}", evolution_payload("text_pn"))

    assert response.status_code == 404


def test_a_nul_in_the_tenant_name_is_answered_400(acme):
    response = post_json("/webhook/evolution/ac%00me", evolution_payload("text_pn"))

    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_an_error_storing_a_message_is_not_reported_as_an_unknown_tenant(acme, caplog):
    refused = IntegrityError("CHECK constraint failed")
    with mock.patch.object(Message.objects, "bulk_create", side_effect=refused):
        response = post_json("/webhook/evolution/acme", evolution_payload("text_pn"))

    assert response.status_code == 503
    assert "not found" not in response.json()["detail"]
    assert "CHECK constraint failed" in caplog.text
