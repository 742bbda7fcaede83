"""Schemathesis: requests generated from the API's own OpenAPI schema, valid and invalid, to
every operation, with the key and without it. None may be answered with a server error.

Generated names and ids almost never name a stored tenant or message, so a second run fixes
them to stored ones: updates, deletes, set-default and retry then reach the database.
Bounded for CI: a fixed number of examples per operation, derandomized, no example database.
"""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import API_KEY
from tests.factories import InstanceConfigFactory, MessageFactory

pytestmark = pytest.mark.django_db

STORED_TENANT, STORED_MESSAGE = "acme", 1
BOUNDED = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def load_schema(**fixed_parameters: Any) -> Any:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    if fixed_parameters:
        schema.config.update(parameters=fixed_parameters)
    return schema


any_values = load_schema()
stored_values = load_schema(name=STORED_TENANT, message_id=STORED_MESSAGE)


@pytest.fixture
def test_connection_kept() -> Iterator[None]:
    """As Django's test client does: a request must not close the connection that holds the
    test's transaction."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def stored(test_connection_kept):
    tenant = InstanceConfigFactory.create(name=STORED_TENANT, is_default=True)
    MessageFactory.create(id=STORED_MESSAGE, instance=tenant)


@pytest.mark.parametrize(
    "headers", [{"X-API-Key": API_KEY}, {}], ids=["with the key", "without a key"]
)
@any_values.parametrize()
@BOUNDED
def test_no_api_operation_answers_with_a_server_error(case, headers, stored):
    case.call_and_validate(headers=headers, checks=[not_a_server_error])


@stored_values.parametrize()
@BOUNDED
def test_no_api_operation_on_a_stored_tenant_or_message_answers_with_a_server_error(case, stored):
    case.call_and_validate(headers={"X-API-Key": API_KEY}, checks=[not_a_server_error])
