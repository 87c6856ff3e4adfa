"""Schemathesis against our OpenAPI (/api/v1/openapi.json), part of `make test` (issue 8).

Every operation is called with generated input (the schema's examples, then random and
boundary values, valid and not) under a key that may trade on the example account; each
answer must be no server error, a status the operation documents, and a body matching
the documented schema. Bounded: a fixed number of examples per operation, derandomized, so a
run takes the same time and finds the same things (about a minute on SQLite, two on PostgreSQL).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories

MAX_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "60"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
ACCOUNT = "demo"  # the account of API.md's examples (and of the schema's), so examples reach real rows


def _schema():
    """Our OpenAPI document as /api/v1/openapi.json serves it, called through Django's WSGI app.

    Built directly (not fetched, not lazily from a fixture) so that pytest collects one test per
    operation, without a database at collection time."""
    import json

    from django.core.handlers.wsgi import WSGIHandler
    from django.core.serializers.json import DjangoJSONEncoder

    from trading.urls import api

    document = json.loads(json.dumps(api.get_openapi_schema(), cls=DjangoJSONEncoder))
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = WSGIHandler()
    return loaded


schema = _schema()


@pytest.fixture
def api_key(transactional_db, settings) -> str:
    """A trading and market-data key for ``demo`` (quoted, with a resting order and a holding)."""
    settings.ALLOWED_HOSTS = ["*"]
    for symbol, prev_close in (("600000.SH", "10.05"), ("000001.SZ", "12.00"), ("688981.SH", "80.00")):
        factories.instrument(symbol)
        factories.quote(symbol, prev_close=prev_close)
    factories.account(ACCOUNT)
    factories.account("other")
    key = factories.api_key("fuzz", accounts=[ACCOUNT], market_data=True)
    from orders.services import OrderInput, order_submit
    from trading.auth import api_client_for

    client = api_client_for(key)
    assert client is not None
    order_submit(OrderInput(account=ACCOUNT, symbol="600000.SH", side="BUY", order_type="LIMIT", quantity=1000,
                            price="9.90", client_order_id="resting-1"), actor=client.actor)
    return key


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case, api_key) -> None:
    response = case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"}, checks=CHECKS)
    if os.environ.get("API_FUZZ_STATS"):
        with open(os.environ["API_FUZZ_STATS"], "a") as out:
            out.write(f"{case.method} {case.path} {response.status_code}\n")
