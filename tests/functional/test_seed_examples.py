"""Every example request of the five seeds (../shared/seeds), sent as written where it is
valid JSON, and checked against the answer the seed shows. One test per example; the
per-face test files cover each behaviour in depth.

Where a seed's example is not valid JSON (seed 001's PATCH curl), the test sends what a
client following it means, and says so.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.receiver import Receiver
from tests.scalingo_seed import NOTIFIER_KEYS, SLACK, WEBHOOK

pytestmark = pytest.mark.usefixtures("stack")

JSON = {"Accept": "application/json", "Content-Type": "application/json"}
PUBLIC = "https://herald.test"  # HERALD_PUBLIC_URL in the tests
NOTIFIER_ID = re.compile(r"^no-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
SLACK_LOGO = "https://cdn2.scalingo.com/dashboard/assets/images/notification/slack-831fd1b21576dbb3e0037b7211ecfd93.svg"
WEBHOOK_LOGO = "https://cdn2.scalingo.com/dashboard/assets/images/notification/webhook-1f16734c1d9b61dff4460d067ab980ec.svg"
SEED_SLACK = {
    "id": SLACK,
    "name": "slack",
    "display_name": "Slack",
    "logo_url": SLACK_LOGO,
    "available_event_ids": [
        "5982f139d48c360021b1eb69",
        "59c52a9c7651ce001f62f578",
        "5b28be8e85232200126f373c",
        "5b28bf02aa9a340012832362",
        "5b28bf2485232200126f373e",
    ],
    "description": "Send events to your team thanks to Slack Incoming WebHooks.",
}
SEED_WEBHOOK = {
    "id": "5982f145d48c3600273ef08a",
    "name": "webhook",
    "display_name": "Webhook",
    "logo_url": WEBHOOK_LOGO,
    "available_event_ids": [
        "5982f139d48c360021b1eb69",
        "59c52a9c7651ce001f62f578",
        "5b28bf2485232200126f373e",
    ],
    "description": "Send HTTP requests to any target when events happen.",
}


def curl(api: Any, method: str, path: str, headers: dict[str, str], raw: str | None = None) -> Any:
    return api.http.request(method, path, headers=headers, body=b"" if raw is None else raw.encode())


def multipart(fields: list[tuple[str, str]]) -> tuple[dict[str, str], bytes]:
    """What `curl --form` sends."""
    boundary = "------------------------seedexample"
    parts = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields
    )
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, (
        parts + f"--{boundary}--\r\n"
    ).encode()


def form(api: Any, path: str, auth: dict[str, str], fields: list[tuple[str, str]]) -> Any:
    headers, body = multipart(fields)
    return api.http.post(path, headers={**auth, **headers}, body=body)


def scalingo_notifier(api: Any, auth: dict[str, str], app: str, url: str, **fields: Any) -> dict[str, Any]:
    notifier = {"platform_id": WEBHOOK, "name": "Hook", "type_data": {"webhook_url": url}, **fields}
    raw = json.dumps({"notifier": notifier})
    answer = curl(api, "POST", f"/v1/apps/{app}/notifiers", {**auth, **JSON}, raw)
    assert answer.status_code == 201, answer.body
    notifier: dict[str, Any] = answer.json_body["notifier"]
    return notifier


# --- seed 000: notification platforms --------------------------------------------------------


def test_seed_000_list_all_notification_platforms(api: Any) -> None:
    answer = curl(api, "GET", "/v1/notification_platforms", JSON)
    assert answer.status_code == 200
    found = answer.json_body["notification_platforms"]
    assert found[:2] == [SEED_SLACK, SEED_WEBHOOK]


def test_seed_000_get_a_notification_platform(api: Any) -> None:
    answer = curl(api, "GET", "/v1/notification_platforms/5982f145d48c3600273ef089", JSON)
    assert answer.status_code == 200
    assert answer.json_body == {"notification_platform": SEED_SLACK}


def test_seed_000_search_a_notification_platform(api: Any) -> None:
    answer = curl(api, "GET", "/v1/notification_platforms/search?name=slack", JSON)
    assert answer.status_code == 200
    assert answer.json_body == {"notification_platforms": [SEED_SLACK]}


# --- seed 001: notifiers ---------------------------------------------------------------------


def test_seed_001_list_all_notification_platforms(api: Any) -> None:
    """Seed 001 repeats the list (its answer ends with a stray `}`; ours is the same list)."""
    answer = curl(api, "GET", "/v1/notification_platforms", JSON)
    assert answer.status_code == 200
    assert answer.json_body["notification_platforms"][:2] == [SEED_SLACK, SEED_WEBHOOK]


def test_seed_001_list_application_notifiers(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = scalingo_notifier(api, auth, "example-app", receiver.url("/hook"))
    answer = curl(api, "GET", "/v1/apps/example-app/notifiers", {**auth, **JSON})
    assert answer.status_code == 200
    assert answer.json_body == {"notifiers": [created]}
    assert set(created) == NOTIFIER_KEYS
    assert NOTIFIER_ID.match(created["id"]) and OBJECT_ID.match(created["app_id"])
    assert (created["app"], created["type"], created["platform_id"]) == ("example-app", "webhook", WEBHOOK)


def test_seed_001_add_a_notifier(api: Any, auth: dict[str, str]) -> None:
    raw = (
        '{"notifiers":{"platform_id": "5982f145d48c3600273ef08a", "active": true, '
        '"name": "My Custom Webhook", "type_data": {"webhook_url": "https://myapp.fr/webhook/scalingo"}}}'
    )
    answer = curl(api, "POST", "/v1/apps/my-app/notifiers", {**auth, **JSON}, raw)
    assert answer.status_code == 201, answer.body
    notifier = answer.json_body["notifier"]
    assert NOTIFIER_ID.match(notifier["id"])
    assert (notifier["name"], notifier["active"], notifier["platform_id"]) == (
        "My Custom Webhook",
        True,
        WEBHOOK,
    )
    assert notifier["type_data"] == {"webhook_url": "https://myapp.fr/webhook/scalingo"}


@pytest.mark.parametrize("root", ["notifier", "notification"])
def test_seed_001_update_a_notification(
    api: Any, auth: dict[str, str], receiver: Receiver, root: str
) -> None:
    """The seed's curl is not JSON (`active: "false"` unquoted, a stray `}`): this is what it
    means, under its `notifier` root and under the parameter table's `notification` root."""
    created = scalingo_notifier(api, auth, "my-app", receiver.url("/hook"))
    raw = json.dumps({root: {"type_data": {"webhook_url": "https://myendpoint.com"}, "active": "false"}})
    answer = curl(api, "PATCH", f"/v1/apps/my-app/notifiers/{created['id']}", {**auth, **JSON}, raw)
    assert answer.status_code == 200, answer.body
    notifier = answer.json_body["notifier"]
    assert (notifier["active"], notifier["type_data"]) == (False, {"webhook_url": "https://myendpoint.com"})
    assert notifier["id"] == created["id"]


def test_seed_001_test_a_notifier(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    """No body, no Content-Type: the receiver gets a complete event in the seed's format."""
    created = scalingo_notifier(api, auth, "my-app", receiver.url("/hook"))
    answer = curl(api, "POST", f"/v1/apps/my-app/notifiers/{created['id']}/test", auth)
    assert answer.status_code == 200, answer.body
    (posted,) = receiver.to("/hook")
    payload = posted.json()
    assert set(payload) == {"id", "created_at", "user", "app_id", "app_name", "type", "type_data"}
    assert (payload["app_id"], payload["app_name"]) == (created["app_id"], "my-app")
    assert set(payload["user"]) == {"username", "email", "id"}


def test_seed_001_data_sent_to_the_webhook_endpoint(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    """The deployment notification example: the same keys, the event's values."""
    from app import deliver
    from tests.functional.sqs_driver import drain

    scalingo_notifier(api, auth, "appname", receiver.url("/hook"), send_all_events=True)
    event = {
        "type": "deployment",
        "user": {"username": "johndoe", "email": "john@doe.com", "id": "51e6bc626edfe40bbb000001"},
        "type_data": {
            "deployment_id": "5343eccd646aa3012a140230",
            "pusher": "johndoe",
            "git_ref": "0123456789abcdef",
            "status": "success",
            "duration": 40,
        },
    }
    answer = curl(api, "POST", "/v1/apps/appname/events", {**auth, **JSON}, json.dumps(event))
    assert answer.status_code == 202, answer.body
    drain(deliver)
    (posted,) = receiver.to("/hook")
    payload = posted.json()
    assert list(payload) == ["id", "created_at", "user", "app_id", "app_name", "type", "type_data"]
    assert (payload["user"], payload["type_data"]) == (event["user"], event["type_data"])
    assert (payload["app_name"], payload["type"]) == ("appname", "deployment")
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$", payload["created_at"])


def test_seed_001_remove_a_notifier(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = scalingo_notifier(api, auth, "my-app", receiver.url("/hook"))
    answer = curl(api, "DELETE", f"/v1/apps/my-app/notifiers/{created['id']}", {**auth, **JSON})
    assert answer.status_code == 204
    assert answer.body == b""


# --- seed 002: app notifications -------------------------------------------------------------


def test_seed_002_create_new_notification(api: Any, auth: dict[str, str]) -> None:
    """The curl as written: type slack, every event, empty setups. Stored without a setup."""
    raw = """{
  "type": "slack",
  "events": {
    "buildCreated": true,
    "buildProcessed": true,
    "feedbackCreated": true,
    "certificateWillExpire": true
  },
  "description": "string",
  "setup": {
    "slack": {},
    "webhook": {}
  }
}"""
    answer = curl(api, "POST", "/v1/organizations/my-org/apps/my-app/notifications", {**auth, **JSON}, raw)
    assert answer.status_code == 200, answer.body
    assert answer.json_body["status"] is True
    data = answer.json_body["data"]
    assert set(data) == {
        "id",
        "organization",
        "application",
        "description",
        "type",
        "config",
        "events",
        "updatedAt",
        "createdAt",
    }
    assert all(OBJECT_ID.match(data[k]) for k in ("id", "organization", "application"))
    assert (data["type"], data["description"]) == ("slack", "string")
    assert data["events"] == dict.fromkeys(
        ("buildCreated", "buildProcessed", "feedbackCreated", "certificateWillExpire"), True
    )
    assert "setup.slack.code" in answer.json_body["message"]


def test_seed_002_create_with_the_ids_the_answer_shows(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    """The path's ids in their 24-hex form: the organization and application ids answered."""
    body = {"type": "webhook", "setup": {"webhook": {"url": receiver.url("/hook")}}}
    first = curl(
        api, "POST", "/v1/organizations/my-org/apps/my-app/notifications", {**auth, **JSON}, json.dumps(body)
    )
    data = first.json_body["data"]
    path = f"/v1/organizations/{data['organization']}/apps/{data['application']}/notifications"
    answer = curl(api, "POST", path, {**auth, **JSON}, json.dumps(body))
    assert answer.status_code == 200, answer.body
    again = answer.json_body["data"]
    assert (again["organization"], again["application"]) == (data["organization"], data["application"])
    assert again["config"]["webhook"]["url"] == receiver.url("/hook")
    assert again["config"]["webhook"]["token"].startswith("whsec_")


def test_seed_002_401_no_auth_token(api: Any) -> None:
    answer = curl(
        api, "POST", "/v1/organizations/my-org/apps/my-app/notifications", JSON, '{"type": "webhook"}'
    )
    assert answer.status_code == 401
    assert answer.json_body == {"status": False, "error": {"code": 4002, "message": "No auth token"}}


def test_seed_002_404_entity_not_found(api: Any, auth: dict[str, str]) -> None:
    path = f"/v1/organizations/{'ab' * 12}/apps/my-app/notifications"
    answer = curl(api, "POST", path, {**auth, **JSON}, '{"type": "webhook"}')
    assert answer.status_code == 404
    assert answer.json_body == {"status": False, "error": {"code": 3001, "message": "Entity not found"}}


# --- seeds 003 and 004: notification handlers ------------------------------------------------


def work_email(api: Any, auth: dict[str, str]) -> int:
    answer = form(
        api,
        "/notification-handlers",
        auth,
        [("name", "Work email"), ("type", "email"), ("email", "hey@example.com")],
    )
    assert answer.status_code == 201, answer.body
    return int(answer.json_body["data"]["id"])


def seed_handler(handler_id: int) -> dict[str, Any]:
    return {
        "id": handler_id,
        "type": "email",
        "name": "Work email",
        "settings": {"email": "hey@example.com"},
        "is_enabled": True,
        "last_datetime": None,
    }


@pytest.mark.parametrize("seed", ["003", "004"])
def test_seed_list_notification_handlers(api: Any, auth: dict[str, str], seed: str) -> None:
    """`GET /notification-handlers/` (with the seeds' trailing slash): links without it."""
    handler_id = work_email(api, auth)
    answer = curl(api, "GET", "/notification-handlers/", auth)
    assert answer.status_code == 200
    body = answer.json_body
    (item,) = body["data"]
    assert {k: item[k] for k in seed_handler(handler_id)} == seed_handler(handler_id)
    assert DATETIME.match(item["datetime"])
    assert body["meta"] == {"page": 1, "results_per_page": 25, "total": 1, "total_pages": 1}
    page_1 = f"{PUBLIC}/notification-handlers?page=1"
    assert body["links"] == {"first": page_1, "last": page_1, "next": None, "prev": None, "self": page_1}


@pytest.mark.parametrize("seed", ["003", "004"])
def test_seed_get_a_notification_handler(api: Any, auth: dict[str, str], seed: str) -> None:
    handler_id = work_email(api, auth)
    answer = curl(api, "GET", f"/notification-handlers/{handler_id}", auth)
    assert answer.status_code == 200
    data = answer.json_body["data"]
    assert {k: data[k] for k in seed_handler(handler_id)} == seed_handler(handler_id)


@pytest.mark.parametrize("seed", ["003", "004"])
def test_seed_create_a_notification_handler(api: Any, auth: dict[str, str], seed: str) -> None:
    fields = [("name", "Example"), ("type", "email"), ("email", "hello@example.com")]
    answer = form(api, "/notification-handlers", auth, fields)
    assert answer.status_code == 201
    assert answer.json_body == {"data": {"id": 1}}


@pytest.mark.parametrize("seed", ["003", "004"])
def test_seed_update_a_notification_handler(api: Any, auth: dict[str, str], seed: str) -> None:
    handler_id = work_email(api, auth)
    answer = form(
        api, f"/notification-handlers/{handler_id}", auth, [("name", "Example new name"), ("is_enabled", "1")]
    )
    assert answer.status_code == 200
    assert answer.json_body == {"data": {"id": handler_id}}
    data = curl(api, "GET", f"/notification-handlers/{handler_id}", auth).json_body["data"]
    assert (data["name"], data["is_enabled"]) == ("Example new name", True)


@pytest.mark.parametrize("seed", ["003", "004"])
def test_seed_delete_a_notification_handler(api: Any, auth: dict[str, str], seed: str) -> None:
    handler_id = work_email(api, auth)
    answer = curl(api, "DELETE", f"/notification-handlers/{handler_id}", auth)
    assert answer.status_code == 204
    assert curl(api, "GET", f"/notification-handlers/{handler_id}", auth).status_code == 404
