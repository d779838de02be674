"""Links Herald builds come from HERALD_PUBLIC_URL (or API Gateway's own request context),
never from the Host or X-Forwarded-* headers a client writes."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs

import pytest

from chalicelib import services
from chalicelib.settings import ConfigurationError, get_settings
from chalicelib.storage.stores import get_stores
from infra import package as infra_package
from tests.functional.test_app_notifications_api import CLIENT_ID, CLIENT_SECRET, OAUTH_PATH, slack_ok
from tests.functional.test_email import sent_mail
from tests.receiver import Receiver

pytestmark = pytest.mark.usefixtures("stack")

PUBLIC = "https://herald.test"  # tests/conftest.py sets it
FORGED = {"Host": "evil.example", "X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "evil2.example"}
JSON = {"Content-Type": "application/json"}


def post(api: Any, path: str, auth: dict[str, str], body: dict[str, Any]) -> Any:
    return api.http.post(path, headers={**auth, **FORGED, **JSON}, body=json.dumps(body))


def assert_not_forged(text: str) -> None:
    assert "evil" not in text and "javascript" not in text, text


def links(api: Any, auth: dict[str, str], path: str) -> dict[str, str | None]:
    answer = api.http.get(path, headers={**auth, **FORGED})
    assert answer.status_code == 200, answer.body
    assert_not_forged(answer.body.decode())
    found: dict[str, str | None] = answer.json_body["links"]
    return found


def test_pagination_links_ignore_a_forged_host_and_scheme(api: Any, auth: dict[str, str]) -> None:
    for n in range(21):
        post(
            api,
            "/notification-handlers",
            auth,
            {"name": f"n{n}", "type": "webhook", "webhook": "https://8.8.8.8/"},
        )
    found = links(api, auth, "/notification-handlers?page=2&results_per_page=10")
    route = f"{PUBLIC}/notification-handlers"
    assert found == {
        "first": f"{route}?page=1&results_per_page=10",
        "last": f"{route}?page=3&results_per_page=10",
        "next": f"{route}?page=3&results_per_page=10",
        "prev": f"{route}?page=1&results_per_page=10",
        "self": f"{route}?page=2&results_per_page=10",
    }


def test_links_keep_the_configured_base_path_and_the_routes_parameters(
    api: Any, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_PUBLIC_URL", "https://api.example.com/herald/")
    handler = post(
        api, "/notification-handlers", auth, {"name": "n", "type": "webhook", "webhook": "https://8.8.8.8/"}
    )
    handler_id = handler.json_body["data"]["id"]
    found = links(api, auth, f"/notification-handlers/{handler_id}/deliveries")
    assert (
        found["self"]
        == f"https://api.example.com/herald/notification-handlers/{handler_id}/deliveries?page=1"
    )


def test_the_openapi_server_and_regions_ignore_a_forged_host(api: Any, auth: dict[str, str]) -> None:
    document = api.http.get("/openapi.json", headers=FORGED).json_body
    assert document["servers"] == [{"url": PUBLIC}]
    regions = api.http.get("/v1/regions", headers={**auth, **FORGED}).json_body["regions"]
    assert {regions[0]["api"], regions[0]["dashboard"]} == {PUBLIC}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/notification-handlers", {"name": "Ops", "type": "email", "email": "ops@example.com"}),
        (
            "/v1/apps/my-app/notifiers",
            {
                "notifier": {
                    "type": "email",
                    "name": "Ops",
                    "type_data": {"emails": ["ops@example.com"]},
                }
            },
        ),
    ],
    ids=["primary", "notifiers"],
)
def test_the_confirmation_email_ignores_a_forged_host(
    api: Any, auth: dict[str, str], path: str, body: dict[str, Any]
) -> None:
    answer = post(api, path, auth, body)
    assert answer.status_code == 201, answer.body
    (mail,) = sent_mail()
    assert_not_forged(mail.body)
    found = re.search(r"https://herald\.test/email-confirmations/([A-Za-z0-9_-]+)", mail.body)
    assert found, mail.body
    assert api.http.post(f"/email-confirmations/{found.group(1)}").status_code == 200


def test_a_changed_address_is_confirmed_through_the_configured_url(api: Any, auth: dict[str, str]) -> None:
    created = post(
        api, "/notification-handlers", auth, {"name": "Ops", "type": "email", "email": "ops@example.com"}
    )
    handler_id = created.json_body["data"]["id"]
    post(api, f"/notification-handlers/{handler_id}", auth, {"email": "new@example.com"})
    (mail,) = [m for m in sent_mail() if "new@example.com" in m.destinations["ToAddresses"]]
    assert_not_forged(mail.body)
    assert f"{PUBLIC}/email-confirmations/" in mail.body


def test_slack_oauth_sends_the_clients_redirect_uri_whatever_the_host(
    api: Any, auth: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_SLACK_API_URL", receiver.url("/api"))
    monkeypatch.setenv("HERALD_SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("HERALD_SLACK_CLIENT_SECRET", CLIENT_SECRET)
    slack_ok(receiver)
    body = {
        "type": "slack",
        "events": {"buildProcessed": True},
        "setup": {"slack": {"code": "4724469134.4644010092847", "redirectUri": "https://app.example/cb"}},
    }
    answer = post(api, "/v1/organizations/acme-org/apps/my-app/notifications", auth, body)
    assert answer.status_code == 200, answer.body
    (exchange,) = receiver.to(OAUTH_PATH)
    assert parse_qs(exchange.body.decode())["redirect_uri"] == ["https://app.example/cb"]
    assert_not_forged(exchange.body.decode())
    assert_not_forged(answer.body.decode())


# ---------------------------------------------------------------- without HERALD_PUBLIC_URL


def gateway_event(
    key: str, domain: str, path: str, resource: str, params: dict[str, str] | None
) -> dict[str, Any]:
    """An API Gateway REST proxy event (what chalice reads of it), Host and scheme forged."""
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": {
            "authorization": f"Bearer {key}",
            "host": "evil.example",
            "x-forwarded-proto": "javascript",
        },
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "GET",
            "path": path,
            "stage": "api",
            "domainName": domain,
            "identity": {"sourceIp": "203.0.113.9"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize(
    ("domain", "path", "expected"),
    [
        (
            "abc123.execute-api.us-east-1.amazonaws.com",
            "/api/notification-handlers",
            "https://abc123.execute-api.us-east-1.amazonaws.com/api/notification-handlers?page=1",
        ),
        (
            "herald.example.com",
            "/notification-handlers",
            "https://herald.example.com/notification-handlers?page=1",
        ),
        (
            "herald.example.com",
            "/v2/notification-handlers/",
            "https://herald.example.com/v2/notification-handlers?page=1",
        ),
    ],
    ids=["execute-api stage", "custom domain", "base path mapping"],
)
def test_unset_links_use_api_gateways_domain_and_base_path(
    api: Any, api_key: str, monkeypatch: pytest.MonkeyPatch, *, domain: str, path: str, expected: str
) -> None:
    from app import app

    monkeypatch.delenv("HERALD_PUBLIC_URL")
    answer = app(gateway_event(api_key, domain, path, "/notification-handlers", None), None)
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["links"]["self"] == expected


def test_unset_links_keep_a_parameters_encoding_out_of_the_base_path(
    api: Any, api_key: str, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import app

    handler = post(
        api, "/notification-handlers", auth, {"name": "n", "type": "webhook", "webhook": "https://8.8.8.8/"}
    )
    handler_id = str(handler.json_body["data"]["id"])
    monkeypatch.delenv("HERALD_PUBLIC_URL")
    encoded = "".join(f"%{ord(c):02X}" for c in handler_id)  # API Gateway decodes pathParameters only
    resource = "/notification-handlers/{handler_id}/deliveries"
    event = gateway_event(
        api_key,
        "h.example.com",
        f"/api/notification-handlers/{encoded}/deliveries",
        resource,
        {"handler_id": handler_id},
    )
    answer = app(event, None)
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["links"]["self"] == (
        f"https://h.example.com/api/notification-handlers/{handler_id}/deliveries?page=1"
    )


def test_unset_outside_api_gateway_fails_loudly_and_writes_nothing(
    api: Any, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("HERALD_PUBLIC_URL")
    with caplog.at_level(logging.ERROR):
        answer = post(
            api, "/notification-handlers", auth, {"name": "Ops", "type": "email", "email": "ops@example.com"}
        )
    assert answer.status_code == 500
    assert_not_forged(answer.body.decode())
    assert "HERALD_PUBLIC_URL is not set" in caplog.text
    assert sent_mail() == []
    assert services.list_handlers(get_stores(), "acme", 1, 25).total == 0


# ---------------------------------------------------------------- a bad HERALD_PUBLIC_URL

BAD_PUBLIC_URLS = [
    "javascript:alert(1)",
    "ftp://herald.test",
    "herald.test",
    "//herald.test",
    "https://",
    "https://herald.test/?x=1",
    "https://herald.test/#top",
    "https://user:pw@herald.test",
    "https://herald.test:99999",
    "https://herald .test",
]


@pytest.mark.parametrize("value", BAD_PUBLIC_URLS)
def test_a_bad_public_url_is_refused_when_settings_are_read(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HERALD_PUBLIC_URL", value)
    with pytest.raises(
        ConfigurationError, match=r"HERALD_PUBLIC_URL=.* is not an absolute http:// or https:// URL"
    ):
        get_settings()


def test_a_bad_public_url_builds_no_link(
    api: Any, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_PUBLIC_URL", "javascript:alert(1)//")
    answer = api.http.get("/notification-handlers", headers=auth)
    assert answer.status_code == 500
    assert "javascript" not in answer.body.decode()


@pytest.mark.parametrize(
    "value", ["https://herald.example.com", "http://127.0.0.1:8000/", "HTTPS://Herald.example.com/v1"]
)
def test_a_good_public_url_is_kept_without_its_trailing_slash(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HERALD_PUBLIC_URL", value)
    assert get_settings().public_url == value.rstrip("/")


def test_packaging_refuses_a_stage_with_a_bad_public_url() -> None:
    stage_env = {**infra_package.stage_environment("prod"), "HERALD_PUBLIC_URL": "javascript:alert(1)"}
    with pytest.raises(infra_package.PackagingError, match="stage prod: HERALD_PUBLIC_URL='javascript:alert"):
        infra_package.placeholder_values("prod", stage_env)
