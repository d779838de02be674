"""The operational webhook on moto: registered through the API, fed by the real worker,
received by a loopback receiver and verified with the standardwebhooks package; and the
correlation id every answer carries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from chalicelib.api.correlation import HEADER
from tests.functional.sqs_driver import drain
from tests.json_lines import captured_lines
from tests.receiver import Receiver, Reply

pytestmark = pytest.mark.usefixtures("stack")

JSON = {"Content-Type": "application/json"}
PATH = "/v1/operational-webhook"


def put_webhook(api: Any, auth: dict[str, str], url: str) -> Any:
    return api.http.put(PATH, headers={**auth, **JSON}, body=json.dumps({"url": url}))


def create_handler(api: Any, auth: dict[str, str], url: str) -> int:
    body = {"name": "hook", "type": "webhook", "webhook": url}
    answer = api.http.post("/notification-handlers", headers={**auth, **JSON}, body=json.dumps(body))
    assert answer.status_code == 201, answer.body
    return int(answer.json_body["data"]["id"])


@pytest.fixture
def deliver() -> Any:
    from app import deliver

    return deliver


def test_the_secret_is_shown_once_and_a_second_put_repoints_the_webhook(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    assert api.http.get(PATH, headers=auth).status_code == 404
    created = put_webhook(api, auth, receiver.url("/ops"))
    assert created.status_code == 201, created.body
    secret = created.json_body["data"]["secret"]
    assert secret.startswith("whsec_")
    again = put_webhook(api, auth, receiver.url("/ops2"))
    assert again.status_code == 200
    shown = api.http.get(PATH, headers=auth).json_body["data"]
    assert shown["url"] == receiver.url("/ops2")
    assert shown["secret"] == "****" + secret[-4:]
    assert (shown["is_enabled"], shown["disabled_reason"]) == (True, None)
    assert api.http.delete(PATH, headers=auth).status_code == 204
    assert api.http.delete(PATH, headers=auth).status_code == 404


def test_the_webhook_is_not_one_of_the_accounts_handlers(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    put_webhook(api, auth, receiver.url("/ops"))
    listed = api.http.get("/notification-handlers", headers=auth).json_body
    assert (listed["data"], listed["meta"]["total"]) == ([], 0)
    assert api.http.get("/notification-handlers/1", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("url", "detail"),
    [("ftp://example.com/x", "http"), ("http://localhost:9/x", "localhost"), ("http://10.0.0.1/x", "")],
)
def test_the_url_is_held_to_the_handlers_policy(
    api: Any, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch, url: str, detail: str
) -> None:
    monkeypatch.setenv("HERALD_ALLOW_PRIVATE_TARGETS", "0")
    answer = put_webhook(api, auth, url)
    assert answer.status_code in (400, 422), answer.body
    [error] = answer.json_body["errors"]
    assert error["field"] == "url"
    assert detail in error["detail"]


def test_a_disabled_handler_reaches_the_operational_webhook_signed(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    secret = put_webhook(api, auth, receiver.url("/ops")).json_body["data"]["secret"]
    handler_id = create_handler(api, auth, receiver.url("/gone"))
    receiver.script("/gone", Reply(410))
    published = api.http.post(
        "/v1/events", headers={**auth, **JSON}, body=json.dumps({"type": "deployment", "app": "a"})
    )
    assert published.status_code == 202
    drain(deliver)  # the event to /gone (410: disabled), then the operational event to /ops
    [request] = receiver.to("/ops")
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "handler_disabled"
    assert payload["type_data"]["handler_id"] == handler_id
    assert "410" in payload["type_data"]["reason"]
    inbox = api.http.get("/notifications", headers=auth).json_body["data"]
    assert [n["type"] for n in inbox] == ["handler_disabled"]


def test_a_rotated_secret_signs_alongside_the_old_one_for_a_day(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    rotate = PATH + "/rotate-secret"
    assert api.http.post(rotate, headers=auth).status_code == 404
    old = put_webhook(api, auth, receiver.url("/ops")).json_body["data"]["secret"]
    rotated = api.http.post(rotate, headers=auth)
    assert rotated.status_code == 200, rotated.body
    new = rotated.json_body["data"]["secret"]
    assert new.startswith("whsec_") and new != old
    assert api.http.get(PATH, headers=auth).json_body["data"]["secret"] == "****" + new[-4:]
    create_handler(api, auth, receiver.url("/gone"))
    receiver.script("/gone", Reply(410))
    api.http.post("/v1/events", headers={**auth, **JSON}, body=json.dumps({"type": "deployment"}))
    drain(deliver)
    [request] = receiver.to("/ops")
    for secret in (old, new):
        assert Webhook(secret).verify(request.body, request.headers)["type"] == "handler_disabled"


def test_a_failing_operational_webhook_raises_no_operational_event_about_itself(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    put_webhook(api, auth, receiver.url("/ops"))
    create_handler(api, auth, receiver.url("/gone"))
    receiver.script("/gone", Reply(410))
    receiver.script("/ops", Reply(410))
    api.http.post("/v1/events", headers={**auth, **JSON}, body=json.dumps({"type": "deployment"}))
    drain(deliver)
    assert len(receiver.to("/ops")) == 1  # its own disabling is not posted to it
    shown = api.http.get(PATH, headers=auth).json_body["data"]
    assert shown["is_enabled"] is False
    inbox = api.http.get("/notifications", headers=auth).json_body["data"]
    assert sorted(n["title"] for n in inbox) == [
        "Notification handler 'hook' was disabled",
        "Your operational webhook was disabled",
    ]
    assert put_webhook(api, auth, receiver.url("/ops")).json_body["data"]["is_enabled"] is True


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/notification-handlers", 200),
        ("GET", "/notification-handlers/999", 404),
        ("POST", "/v1/events", 400),
        ("GET", "/no/such/route", 404),
        ("PATCH", "/v1/events", 405),
        ("GET", "/openapi.json", 200),
        ("GET", "/v1/event_types", 200),
    ],
)
def test_every_answer_carries_the_correlation_id(
    api: Any, auth: dict[str, str], method: str, path: str, status: int
) -> None:
    answer = api.http.request(method, path, headers={**auth, **JSON}, body=b"{}")
    assert answer.status_code == status
    assert len(answer.headers[HEADER]) >= 16
    mine = api.http.request(method, path, headers={**auth, HEADER: "trace-1234.abc"}, body=b"{}")
    assert mine.headers[HEADER] == "trace-1234.abc"


def test_a_correlation_id_that_is_not_a_short_token_is_replaced(api: Any, auth: dict[str, str]) -> None:
    answer = api.http.get("/notification-handlers", headers={**auth, HEADER: "x" * 500})
    assert answer.headers[HEADER] != "x" * 500


def test_a_request_writes_one_line_naming_its_route_never_its_path_or_key(
    api: Any, auth: dict[str, str], api_key: str
) -> None:
    with captured_lines() as lines:
        api.http.get("/notification-handlers/123?page=1", headers={**auth, HEADER: "trace-1"})
        api.http.get("/email-confirmations/tok3n-s3cret")
    found, confirmation = lines.parsed("request")
    assert (found["method"], found["route"], found["status"]) == (
        "GET",
        "/notification-handlers/{handler_id}",
        404,
    )
    assert (found["account"], found["correlation_id"]) == ("acme", "trace-1")
    assert isinstance(found["duration_ms"], int)
    assert confirmation["route"] == "/email-confirmations/{token}"
    text = "\n".join(lines.text)
    assert api_key not in text
    assert "tok3n-s3cret" not in text
    assert "page=1" not in text
