"""Shared fixtures: AWS isolation, moto, DynamoDB Local and the Chalice test client."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.loaders import Loader

from chalicelib import apikeys, clients, ratelimit
from chalicelib.settings import get_settings
from chalicelib.storage.stores import Stores, get_stores
from herald_local.bootstrap import ensure_table, table_definition
from herald_local.dynamodb_local import DynamoDBLocal, Unavailable

TABLE = "herald-test"
TEST_STAGE = "test"
"""The Chalice stage the test client runs as: in no config, so it applies only the top-level
variables of .chalice/config.json over what the tests set (dev and prod have their own names)."""
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "HERALD_TABLE": TABLE,
    # Rate limits have their own tests; elsewhere they would only make tests order-dependent.
    "HERALD_RATE_LIMIT_PER_MINUTE": "0",
    "HERALD_PUBLIC_RATE_LIMIT_PER_MINUTE": "0",
    "HERALD_AUTH_FAILURE_LIMIT_PER_MINUTE": "0",
    # Tests revoke keys and expect it to bite at once; the cache has its own test.
    "HERALD_AUTH_CACHE_SECONDS": "0",
    # Links are built from this, never from the request's Host (see test_public_links.py).
    "HERALD_PUBLIC_URL": "https://herald.test",
}


class _SearchPaths(list[str]):
    """A loader's search paths that keep each path once: boto3 appends its own path to the
    loader of every session it makes, and the shared loader sees thousands of sessions."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> Loader:
    return Loader(
        extra_search_paths=_SearchPaths(search_path_string.split(os.pathsep) if search_path_string else [])
    )


SHARED_PER_MODULE = ("tests/e2e/", "tests/functional/test_infra.py")
"""Modules whose tests share a module-scoped fixture (a local stack, a packaged build)."""


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist's default distribution, the tests of a SHARED_PER_MODULE module go
    to one worker, so its stack or build is made once, as in a serial run; every other test
    goes wherever a worker is free. (xdist's own loadgroup marks do not reach its scheduler
    under pytest 9.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedModulesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module.startswith(SHARED_PER_MODULE) else nodeid

    return SharedModulesTogether(config, log)


@pytest.fixture(scope="session", autouse=True)
def one_botocore_loader() -> Iterator[None]:
    """Every boto3 session in a test run shares one botocore loader, so each service model is
    parsed once per run instead of once per client: tests make fresh clients for every test,
    and parsing those JSON models was most of a moto test's cost."""
    import botocore.session

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", _shared_loader)
        yield


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets dummy credentials, no real endpoints and fresh clients."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_PROFILE",):
            monkeypatch.delenv(name)
    for name, value in _AWS_ENV.items():
        monkeypatch.setenv(name, value)
    clients.reset(keep_session=True)
    ratelimit.forget_leases()
    yield
    clients.reset(keep_session=True)


_MOTO_REQUEST = threading.RLock()


@pytest.fixture
def moto_aws(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from moto import mock_aws
    from moto.core.botocore_stubber import BotocoreStubber

    process_request = BotocoreStubber.process_request

    def one_request_at_a_time(stubber: BotocoreStubber, request: Any) -> Any:
        """AWS applies each request atomically; moto does not (the worker's threads updating
        one item at once can crash its deepcopy), so its requests take turns."""
        with _MOTO_REQUEST:
            return process_request(stubber, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", one_request_at_a_time)
    with mock_aws():  # a fresh moto: its tables are ACTIVE as soon as they are created
        clients.client("dynamodb").create_table(TableName=TABLE, **table_definition())
        clients.client("ses").verify_email_identity(EmailAddress=get_settings().email_sender)
        yield


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    try:
        server = DynamoDBLocal().start()
    except Unavailable as exc:
        pytest.skip(f"DynamoDB Local unavailable: {exc}")
    yield server
    server.stop()


_table_counter = iter(range(1_000_000))


@pytest.fixture
def local_ddb(
    dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch, aws_env: None
) -> Iterator[None]:
    """A fresh table on DynamoDB Local (one per test, so tests never see each other)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.endpoint)
    monkeypatch.setenv("HERALD_TABLE", f"{TABLE}-{next(_table_counter)}")
    clients.reset(keep_session=True)
    ensure_table(clients.client("dynamodb"), os.environ["HERALD_TABLE"])
    yield
    clients.client("dynamodb").delete_table(TableName=os.environ["HERALD_TABLE"])


@pytest.fixture(params=["moto", "dynamodb_local"])
def stores(request: pytest.FixtureRequest) -> Stores:
    """The stores on moto and on AWS's DynamoDB Local."""
    request.getfixturevalue("moto_aws" if request.param == "moto" else "local_ddb")
    return get_stores()


@pytest.fixture
def memory_table(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> Stores:
    """The app's stores on the unit tier's fakes instead of moto's DynamoDB (which still
    serves SQS and SES): for a face's mapping, where the store is not what is tested and the
    contract suite holds the fakes to DynamoDB."""
    from chalicelib.storage import stores
    from tests.fakes.stores import memory_stores

    fakes = memory_stores()
    monkeypatch.setitem(stores._built, get_settings().table_name, fakes)
    return fakes


@pytest.fixture
def api(moto_aws: None) -> Iterator[Any]:
    from chalice.test import Client

    from app import app

    with Client(app, stage_name=TEST_STAGE) as client:
        yield client


@pytest.fixture
def api_key(moto_aws: None) -> str:
    key, _ = apikeys.create_key(get_stores(), "acme")
    return key


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def receiver() -> Iterator[Any]:
    from tests.receiver import Receiver

    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def stack(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto with Herald's table and queues; private targets allowed so tests can use 127.0.0.1."""
    from chalicelib.delivery.context import reset_sender
    from herald_local.bootstrap import ensure_queues

    monkeypatch.setenv("HERALD_ALLOW_PRIVATE_TARGETS", "1")
    monkeypatch.setenv("HERALD_REPORT_BATCH_ITEM_FAILURES", "1")
    reset_sender()
    ensure_queues(clients.client("sqs"), get_settings())  # moto_aws made the table and SES sender
    yield
    reset_sender()
