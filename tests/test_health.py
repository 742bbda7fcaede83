from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client


@pytest.mark.django_db
def test_it_reports_ok_when_the_database_answers():
    response = Client().get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
def test_it_answers_503_when_the_database_is_away():
    with mock.patch("omnihub.health.connection.cursor", side_effect=OperationalError("gone")):
        response = Client().get("/health")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
