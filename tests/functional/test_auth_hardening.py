"""One credential per request."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from chalicelib import apikeys
from chalicelib.storage.dynamo import get_store

OTHER_KEY = "hk_someone-elses-key-0123456789abcdef"


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
        apikeys.create_key(get_store(), "acme", "hk_two words make no key")
