"""Schemathesis against the running local stack: no 5xx, every response as documented."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Stack, auth

STACK_ENV = {"HERALD_RATE_LIMIT_PER_MINUTE": "0", "HERALD_PUBLIC_RATE_LIMIT_PER_MINUTE": "0"}


@pytest.fixture(scope="module")
def api_schema(local_stack: Stack) -> Any:
    document = requests.get(f"{local_stack.url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=local_stack.url)
    return schema


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_every_operation_answers_as_documented(api_schema: Any) -> None:
    """Bounded examples per operation; failures are collected so one run names them all."""
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: Any) -> None:
            case.call_and_validate(headers=auth(), timeout=30, checks=CHECKS)

        try:
            exercise()
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert not failures, "\n\n".join(failures)
