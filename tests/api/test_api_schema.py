"""Schemathesis against the OpenAPI document: no 5xx, no response outside the schema.

Operations are driven one by one with hypothesis (schemathesis' pytest plugin does
not support this pytest release), against the real app on each store.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Api, StoreFactory, running_api

EXAMPLES_PER_OPERATION = 15
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The event stream never ends; tests/api/test_api_server.py covers it.
SKIPPED = {("GET", "/events/stream")}


def _seed(api: Api) -> None:
    """Something for the generated requests to find: a model, an endpoint, a deployment."""
    admin = api.auth("admin")
    api.client.post("/models/m/versions", files=[("files", ("a.bin", b"1"))], headers=admin)
    api.client.post("/endpoints", json={"name": "e"}, headers=admin)
    deployment = {"deployment": "d", "model": "m:1"}
    api.client.post("/endpoints/e/deployments", json=deployment, headers=admin)


def test_every_operation_keeps_to_its_schema(store: StoreFactory) -> None:
    with running_api(store.settings()) as api:
        _seed(api)
        headers = api.auth("admin")
        schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
        tested = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SKIPPED:
                continue

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def keeps_to_schema(case: schemathesis.Case) -> None:
                # The first score starts Ray and Serve: seconds on a busy machine.
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=120)

            keeps_to_schema()
            tested += 1
        assert tested >= 40
