"""The contract suite runs every test on the in-memory fakes, moto and DynamoDB Local."""

from __future__ import annotations

import pytest

from chalicelib.storage.stores import Stores, get_stores
from tests.fakes import memory_stores


@pytest.fixture(params=["memory", "moto", "dynamodb_local"])
def stores(request: pytest.FixtureRequest) -> Stores:
    """The stores on one backend: a fake must answer exactly as both engines do."""
    if request.param == "memory":
        return memory_stores()
    request.getfixturevalue("moto_aws" if request.param == "moto" else "local_ddb")
    return get_stores()
