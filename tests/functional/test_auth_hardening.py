"""One credential per request, and a limit on failed key lookups per source address."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import apikeys
from chalicelib import clock as herald_clock
from chalicelib.storage.accounts import DynamoApiKeyStore
from chalicelib.storage.stores import get_stores

OTHER_KEY = "hk_someone-elses-key-0123456789abcdef"
MINUTE = 1_700_000_040.0  # the start of a minute


def gateway(
    path: str, headers: dict[str, list[str]], source_ip: str = "127.0.0.1", method: str = "GET"
) -> dict[str, Any]:
    """Call the app as Lambda does, with the event API Gateway (REST, proxy integration) sends:
    the last value of each header in `headers`, every value in `multiValueHeaders`."""
    from app import app

    event = {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in headers.items()},
        "multiValueHeaders": headers,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "identity": {"sourceIp": source_ip},
        },
        "body": None,
        "isBase64Encoded": False,
    }
    answer: dict[str, Any] = app(event, None)
    return answer


# --- one credential ----------------------------------------------------------------------------------


def test_a_single_authorization_header_from_api_gateway_is_accepted(api_key: str) -> None:
    assert gateway("/notification-handlers", {"Authorization": [f"Bearer {api_key}"]})["statusCode"] == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": ["Bearer {key}", f"Bearer {OTHER_KEY}"]},
        {"Authorization": [f"Bearer {OTHER_KEY}", "Bearer {key}"]},
        {"Authorization": ["Bearer {key}", "Bearer {key}"]},
        {"Authorization": ["Bearer {key}"], "authorization": [f"Bearer {OTHER_KEY}"]},
    ],
    ids=["valid-first", "valid-last", "same-twice", "names-differing-in-case"],
)
def test_repeated_authorization_headers_are_refused_whichever_comes_first(
    api_key: str, headers: dict[str, list[str]]
) -> None:
    filled = {name: [value.format(key=api_key) for value in values] for name, values in headers.items()}
    answer = gateway("/notification-handlers", filled)
    assert answer["statusCode"] == 401
    assert answer["headers"]["WWW-Authenticate"] == "Bearer"
    assert "one Authorization header" in json.loads(answer["body"])["errors"][0]["detail"]


def test_repeated_authorization_headers_are_refused_on_public_routes_too(
    api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_TOKEN_SECRET", "s" * 32)
    basic = "Basic " + base64.b64encode(f":{api_key}".encode()).decode()
    once = gateway("/v1/tokens/exchange", {"Authorization": [basic]}, method="POST")
    assert once["statusCode"] == 200
    twice = gateway("/v1/tokens/exchange", {"Authorization": [basic, basic]}, method="POST")
    assert twice["statusCode"] == 401


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer {key}, Bearer {other}",
        "Bearer {key},Bearer {other}",
        "Bearer {key} {other}",
        "Bearer {key},{other}",
    ],
)
def test_two_credentials_in_one_header_are_refused(api: Any, api_key: str, authorization: str) -> None:
    """What a proxy makes of two headers (RFC 9110 joins them with commas), or a client's mistake."""
    header = authorization.format(key=api_key, other=OTHER_KEY)
    answer = api.http.get("/notification-handlers", headers={"Authorization": header})
    assert answer.status_code == 401
    assert "one credential" in answer.json_body["errors"][0]["detail"]


def test_an_api_key_must_be_one_credential(moto_aws: None) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        apikeys.create_key(get_stores(), "acme", "hk_two words make no key")


# --- failed key lookups per address ----------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [MINUTE + 30]
    monkeypatch.setattr(herald_clock, "now", lambda: datetime.fromtimestamp(now[0], UTC))
    monkeypatch.setenv("HERALD_AUTH_FAILURE_LIMIT_PER_MINUTE", "3")
    return now


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The key ids read from the table."""
    seen: list[str] = []
    read = DynamoApiKeyStore.get_api_key

    def spy(self: DynamoApiKeyStore, key_id: str) -> Any:
        seen.append(key_id)
        return read(self, key_id)

    monkeypatch.setattr(DynamoApiKeyStore, "get_api_key", spy)
    yield seen


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_address_past_its_failed_lookups_is_refused_before_any_key_is_read(
    api: Any, api_key: str, clock: list[float], reads: list[str]
) -> None:
    revoked, _ = apikeys.create_key(get_stores(), "acme")
    apikeys.revoke_key(get_stores(), revoked)
    for key in (OTHER_KEY, revoked, OTHER_KEY + "x"):
        assert api.http.get("/notification-handlers", headers=bearer(key)).status_code == 401
    assert len(reads) == 3

    locked = api.http.get("/notification-handlers", headers=bearer(OTHER_KEY + "y"))
    assert locked.status_code == 429
    assert "failed authentications" in locked.json_body["errors"][0]["detail"]
    assert "X-RateLimit-Limit" not in locked.headers, "that quota is the key's, not this lockout's"
    wait = int(locked.headers["Retry-After"])
    assert wait == 50  # 3 failures weigh 3 x (60 - s)/60 next minute: <= 2 from its 20th second
    told_at = clock[0]
    for second in range(wait):  # hammering, with wrong keys and the right one, changes nothing
        clock[0] = told_at + second
        for key in (OTHER_KEY, api_key):
            hammered = api.http.get("/notification-handlers", headers=bearer(key))
            assert hammered.status_code == 429
            assert second + int(hammered.headers["Retry-After"]) == wait
    assert len(reads) == 3, "no key was read while the address was locked out"

    clock[0] = told_at + wait
    assert api.http.get("/notification-handlers", headers=bearer(api_key)).status_code == 200


def test_other_addresses_are_not_locked_out_by_one_that_is(
    api: Any, api_key: str, clock: list[float]
) -> None:
    for _ in range(4):
        api.http.get("/notification-handlers", headers=bearer(OTHER_KEY))
    assert api.http.get("/notification-handlers", headers=bearer(api_key)).status_code == 429
    elsewhere = "203.0.113.7"
    ok = gateway("/notification-handlers", {"Authorization": [f"Bearer {api_key}"]}, elsewhere)
    assert ok["statusCode"] == 200
    wrong = gateway("/notification-handlers", {"Authorization": [f"Bearer {OTHER_KEY}"]}, elsewhere)
    assert wrong["statusCode"] == 401


def test_successes_and_refusals_without_a_lookup_are_not_failures(
    api: Any, api_key: str, clock: list[float]
) -> None:
    for headers in (bearer(api_key), {}, {"Authorization": "Basic abc"}, bearer("a b")) * 5:
        assert api.http.get("/notification-handlers", headers=headers).status_code in (200, 401)
    for _ in range(3):
        assert api.http.get("/notification-handlers", headers=bearer(OTHER_KEY)).status_code == 401
    assert api.http.get("/notification-handlers", headers=bearer(OTHER_KEY)).status_code == 429


def test_a_zero_failure_limit_switches_the_lockout_off(
    api: Any, clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_AUTH_FAILURE_LIMIT_PER_MINUTE", "0")
    codes = {api.http.get("/notification-handlers", headers=bearer(OTHER_KEY)).status_code for _ in range(10)}
    assert codes == {401}


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f":{key}".encode()).decode()}


def test_wrong_keys_at_the_token_exchange_count_as_failed_authentications(
    api: Any, api_key: str, clock: list[float]
) -> None:
    """Key guessing through `POST /v1/tokens/exchange` is locked out like on any route."""
    for _ in range(3):
        assert api.http.post("/v1/tokens/exchange", headers=basic(OTHER_KEY)).status_code == 401
    locked = api.http.post("/v1/tokens/exchange", headers=basic(api_key))
    assert locked.status_code == 429
    assert "failed authentications" in locked.body.decode()
    assert api.http.get("/notification-handlers", headers=bearer(api_key)).status_code == 429
