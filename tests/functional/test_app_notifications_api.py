"""Seed 002's app notifications face through chalice.test on moto, Slack faked locally."""

from __future__ import annotations

import json
import re
import socket
from typing import Any
from urllib.parse import parse_qs

import pytest

from chalicelib import apikeys, services
from chalicelib.api import app_notifications
from chalicelib.models.events import event_type
from chalicelib.storage.stores import get_stores
from tests.functional.sqs_driver import drain
from tests.receiver import Receiver, Reply

pytestmark = pytest.mark.usefixtures("memory_table", "stack")

ORG = "acme-org"
APP = "my-app"
BASE = f"/v1/organizations/{ORG}/apps/{APP}/notifications"
OBJECT_ID = re.compile(r"^[a-fA-F0-9]{24}$")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
JSON = {"Content-Type": "application/json"}
EVENT_KEYS = ("buildCreated", "buildProcessed", "feedbackCreated", "certificateWillExpire")
CLIENT_ID = "1234.5678"
CLIENT_SECRET = "slack-client-secret-0123456789"
ACCESS_TOKEN = "xoxb-access-token-never-shown"
OAUTH_PATH = "/api/oauth.v2.access"


@pytest.fixture
def slack(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """The receiver as Slack's Web API; answers oauth.v2.access like Slack does."""
    monkeypatch.setenv("HERALD_SLACK_API_URL", receiver.url("/api"))
    monkeypatch.setenv("HERALD_SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("HERALD_SLACK_CLIENT_SECRET", CLIENT_SECRET)
    return receiver


def slack_ok(receiver: Receiver, hook_path: str = "/slack/hook") -> dict[str, Any]:
    answer = {
        "ok": True,
        "app_id": "A0KRD7HC3",
        "authed_user": {"id": "U1234"},
        "scope": "incoming-webhook",
        "token_type": "bot",
        "access_token": ACCESS_TOKEN,
        "bot_user_id": "U0KRQLJ9H",
        "team": {"name": "Acme Builds", "id": "T9TK3CUKW"},
        "enterprise": None,
        "is_enterprise_install": False,
        "incoming_webhook": {
            "channel": "#releases",
            "channel_id": "C12345678",
            "configuration_url": "https://acme.slack.com/services/B12345678",
            "url": receiver.url(hook_path),
        },
    }
    receiver.script(OAUTH_PATH, Reply(200, answer, {"Content-Type": "application/json; charset=utf-8"}))
    return answer


def send(api: Any, method: str, path: str, auth: dict[str, str], body: Any = None) -> Any:
    raw = None if body is None else (body if isinstance(body, str) else json.dumps(body))
    return getattr(api.http, method.lower())(path, headers={**auth, **JSON}, body=raw)


def webhook_body(url: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "webhook",
        "events": {"buildCreated": False, "buildProcessed": True},
        "description": "Builds to CI",
        "setup": {"webhook": {"url": url}},
    }
    body.update(fields)
    return body


def slack_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "slack",
        "events": {"buildProcessed": True, "certificateWillExpire": True},
        "description": "Releases channel",
        "setup": {"slack": {"code": "4724469134.4644010092847", "redirectUri": "https://app.example/cb"}},
    }
    body.update(fields)
    return body


def create(api: Any, auth: dict[str, str], body: dict[str, Any], path: str = BASE) -> dict[str, Any]:
    answer = send(api, "POST", path, auth, body)
    assert answer.status_code == 200, answer.body
    assert answer.json_body["status"] is True
    data: dict[str, Any] = answer.json_body["data"]
    return data


def assert_error(answer: Any, status: int, code: int, message: str | None = None) -> str:
    assert answer.status_code == status, answer.body
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json_body
    assert set(body) == {"status", "error"}
    assert body["status"] is False
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    if message is not None:
        assert body["error"]["message"] == message
    text: str = body["error"]["message"]
    return text


def assert_invalid(answer: Any, *phrases: str) -> None:
    text = assert_error(answer, 400, 5001)
    assert text.startswith("Invalid parameters: ")
    for phrase in phrases:
        assert phrase in text


def assert_notification(data: dict[str, Any]) -> None:
    assert set(data) == {
        "id",
        "organization",
        "application",
        "description",
        "type",
        "config",
        "events",
        "createdAt",
        "updatedAt",
    }
    for key in ("id", "organization", "application"):
        assert OBJECT_ID.match(data[key]), (key, data[key])
    assert ISO.match(data["createdAt"]) and ISO.match(data["updatedAt"])
    assert set(data["events"]) == set(EVENT_KEYS)
    assert all(isinstance(v, bool) for v in data["events"].values())


def primary(api: Any, auth: dict[str, str], notification_id: str) -> Any:
    return api.http.get(f"/notification-handlers/{int(notification_id, 16)}", headers=auth)


def publish(api: Any, auth: dict[str, str], event: str, app: str = APP) -> dict[str, Any]:
    answer = send(api, "POST", "/v1/events", auth, {"type": event, "app": app})
    assert answer.status_code == 202, answer.body
    published: dict[str, Any] = answer.json_body
    return published


def nothing_created(api: Any, auth: dict[str, str]) -> bool:
    answer = api.http.get("/notification-handlers", headers=auth)
    return bool(answer.json_body["meta"]["total"] == 0)


# --- create ----------------------------------------------------------------------------------


def test_a_webhook_notification_is_created_in_the_seed_envelope(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    answer = send(api, "POST", BASE, auth, webhook_body(receiver.url("/hook")))
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert set(answer.json_body) == {"status", "data"}
    data = answer.json_body["data"]
    assert_notification(data)
    assert data["id"] == "000000000000000000000001"
    assert data["type"] == "webhook"
    assert data["description"] == "Builds to CI"
    assert data["events"] == {
        "buildCreated": False,
        "buildProcessed": True,
        "feedbackCreated": False,
        "certificateWillExpire": False,
    }
    assert data["config"]["webhook"]["url"] == receiver.url("/hook")
    assert data["config"]["webhook"]["token"].startswith("whsec_")  # the signing secret, shown once
    assert data["application"] == services.app_id(get_stores(), "acme", APP)


def test_the_notification_is_a_handler_of_the_app_in_the_primary_api(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    data = create(api, auth, webhook_body(receiver.url("/hook")))
    answer = primary(api, auth, data["id"])
    assert answer.status_code == 200
    handler = answer.json_body["data"]
    assert handler["type"] == "webhook"
    assert handler["name"] == "Builds to CI"
    assert handler["settings"] == {"webhook": receiver.url("/hook")}
    assert handler["app"] == APP
    assert handler["send_all_events"] is False
    assert handler["send_all_alerts"] is False
    assert handler["selected_event_ids"] == [event_type("build_processed").id]  # type: ignore[union-attr]


def test_organization_is_the_account_and_application_the_app_by_name_or_id(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    first = create(api, auth, webhook_body(receiver.url("/a")))
    by_ids = f"/v1/organizations/{first['organization']}/apps/{first['application']}/notifications"
    second = create(api, auth, webhook_body(receiver.url("/b")), by_ids)
    other_app = create(
        api, auth, webhook_body(receiver.url("/c")), f"/v1/organizations/{ORG}/apps/other-app/notifications"
    )
    assert first["organization"] == second["organization"] == other_app["organization"]
    assert first["application"] == second["application"] != other_app["application"]
    assert len({first["id"], second["id"], other_app["id"]}) == 3
    upper = f"/v1/organizations/{first['organization'].upper()}/apps/{first['application'].upper()}"
    listed = api.http.get(f"{upper}/notifications", headers=auth)
    assert [n["id"] for n in listed.json_body["data"]["items"]] == [first["id"], second["id"]]


@pytest.mark.parametrize("which", ["organization", "application"])
def test_an_unknown_24_hex_organization_or_application_is_404_3001(
    api: Any, auth: dict[str, str], receiver: Receiver, which: str
) -> None:
    first = create(api, auth, webhook_body(receiver.url("/a")))
    ids = {"organization": first["organization"], "application": first["application"]}
    ids[which] = "ab" * 12
    base = f"/v1/organizations/{ids['organization']}/apps/{ids['application']}/notifications"
    for method, path in (("GET", base), ("POST", base), ("GET", f"{base}/{first['id']}")):
        body = json.dumps(webhook_body(receiver.url("/b"))).encode() if method == "POST" else b""
        answer = api.http.request(method, path, headers={**auth, **JSON}, body=body)
        assert answer.status_code == 404, answer.body
        assert answer.json_body == {"status": False, "error": {"code": 3001, "message": "Entity not found"}}
    assert len(api.http.get("/notification-handlers", headers=auth).json_body["data"]) == 1


def test_another_accounts_organization_id_is_404(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    theirs = create(api, auth, webhook_body(receiver.url("/a")))
    key, _ = apikeys.create_key(get_stores(), "globex")
    path = f"/v1/organizations/{theirs['organization']}/apps/{APP}/notifications"
    answer = api.http.get(path, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 404
    assert answer.json_body["error"]["code"] == 3001


def test_a_description_is_optional_and_defaults_to_the_type(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    body = webhook_body(receiver.url("/hook"))
    del body["description"], body["events"]
    data = create(api, auth, body)
    assert data["description"] == "Webhook notification"
    assert data["events"] == dict.fromkeys(EVENT_KEYS, False)


def test_the_seed_curl_with_both_setups_is_accepted(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    """The seed's example sends `"slack": {}` beside the webhook: the other type's setup is ignored."""
    body = webhook_body(receiver.url("/hook"), setup={"slack": {}, "webhook": {"url": receiver.url("/hook")}})
    assert create(api, auth, body)["type"] == "webhook"


def test_limits_themselves_are_accepted(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    url = receiver.url("/" + "u" * (256 - len(receiver.url("/"))))
    assert len(url) == 256
    data = create(api, auth, webhook_body(url, description="d" * 128))
    assert data["description"] == "d" * 128
    assert data["config"]["webhook"]["url"] == url


def test_a_slack_notification_exchanges_the_oauth_code(
    api: Any, auth: dict[str, str], slack: Receiver
) -> None:
    slack_ok(slack)
    answer = send(api, "POST", BASE, auth, slack_body())
    assert answer.status_code == 200, answer.body
    data = answer.json_body["data"]
    assert_notification(data)
    assert data["type"] == "slack"
    assert data["config"] == {"slack": {"team": "Acme Builds", "channel": "#releases"}}
    assert data["events"]["buildProcessed"] and data["events"]["certificateWillExpire"]
    assert not data["events"]["buildCreated"] and not data["events"]["feedbackCreated"]
    (exchange,) = slack.to(OAUTH_PATH)
    assert exchange.method == "POST"
    assert exchange.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(exchange.body.decode(), strict_parsing=True) == {
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
        "code": ["4724469134.4644010092847"],
        "redirect_uri": ["https://app.example/cb"],
    }
    assert CLIENT_SECRET not in answer.body.decode() and ACCESS_TOKEN not in answer.body.decode()
    handler = primary(api, auth, data["id"]).json_body["data"]
    assert handler["type"] == "slack"
    assert handler["settings"] == {
        "slack": slack.url("/slack/hook"),
        "slack_team": "Acme Builds",
        "slack_channel": "#releases",
    }
    assert handler["app"] == APP
    assert handler["selected_event_ids"] == [
        event_type("build_processed").id,  # type: ignore[union-attr]
        event_type("certificate_will_expire").id,  # type: ignore[union-attr]
    ]
    assert ACCESS_TOKEN not in json.dumps(handler) and CLIENT_SECRET not in json.dumps(handler)


def test_a_slack_notification_posts_to_the_installed_incoming_webhook(
    api: Any, auth: dict[str, str], slack: Receiver
) -> None:
    from app import deliver

    slack_ok(slack)
    create(api, auth, slack_body())
    assert publish(api, auth, "build_processed")["matched"] == 1
    drain(deliver)
    (posted,) = slack.to("/slack/hook")
    assert posted.json()["blocks"][0]["type"] == "header"


@pytest.mark.parametrize("error", ["invalid_code", "code_already_used", "bad_redirect_uri"])
def test_slack_refusing_the_code_is_400_naming_it(
    api: Any, auth: dict[str, str], slack: Receiver, error: str
) -> None:
    slack.script(OAUTH_PATH, Reply(200, {"ok": False, "error": error}))
    answer = send(api, "POST", BASE, auth, slack_body())
    assert_invalid(answer, "setup.slack.code", error)
    if error == "bad_redirect_uri":
        assert "setup.slack.redirectUri" in answer.json_body["error"]["message"]
    assert CLIENT_SECRET not in answer.body.decode()
    assert nothing_created(api, auth)


def test_an_install_without_an_incoming_webhook_is_400(
    api: Any, auth: dict[str, str], slack: Receiver
) -> None:
    slack.script(OAUTH_PATH, Reply(200, {"ok": True, "access_token": ACCESS_TOKEN, "team": {"id": "T1"}}))
    answer = send(api, "POST", BASE, auth, slack_body())
    assert_invalid(answer, "setup.slack.code", "incoming-webhook")
    assert ACCESS_TOKEN not in answer.body.decode()
    assert nothing_created(api, auth)


@pytest.mark.parametrize(
    "reply",
    [Reply(500, "oops"), Reply(503, {"ok": False}), Reply(200, "<html>maintenance</html>")],
    ids=["500", "503", "not json"],
)
def test_slack_answering_badly_is_502(api: Any, auth: dict[str, str], slack: Receiver, reply: Reply) -> None:
    slack.script(OAUTH_PATH, reply)
    text = assert_error(send(api, "POST", BASE, auth, slack_body()), 502, 6001)
    assert text.startswith("Slack unavailable: ")
    assert CLIENT_SECRET not in text
    assert nothing_created(api, auth)


def test_slack_unreachable_is_502_with_a_clear_message(
    api: Any, auth: dict[str, str], slack: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HERALD_SLACK_API_URL", f"http://127.0.0.1:{port}/api")
    text = assert_error(send(api, "POST", BASE, auth, slack_body()), 502, 6001)
    assert "Slack could not be reached" in text and "connection refused" in text
    assert CLIENT_SECRET not in text and "oauth.v2.access" not in text
    assert nothing_created(api, auth)


def test_slack_setup_without_server_credentials_is_503(
    api: Any, auth: dict[str, str], slack: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_SLACK_CLIENT_SECRET", "")
    text = assert_error(send(api, "POST", BASE, auth, slack_body()), 503, 6002)
    assert "not configured" in text
    assert slack.requests == []


# --- validation ------------------------------------------------------------------------------

URL = "https://hooks.example.com/herald"


@pytest.mark.parametrize(
    ("body", "phrases"),
    [
        ({"events": {}, "setup": {"webhook": {"url": URL}}}, ("type", "required")),
        (webhook_body(URL, type="email"), ("type", "slack", "webhook")),
        (webhook_body(URL, description="d" * 129), ("description", "128")),
        (webhook_body("https://example.com/" + "u" * 237), ("setup.webhook.url", "256")),
        (webhook_body("/hooks/relative"), ("setup.webhook.url", "absolute http")),
        (webhook_body("ftp://files.example.com/hook"), ("setup.webhook.url", "absolute http")),
        (webhook_body("http://169.254.169.254/latest"), ("setup.webhook.url", "metadata")),
        (
            slack_body(setup={"slack": {"code": "c" * 257, "redirectUri": "https://a/cb"}}),
            ("setup.slack.code", "256"),
        ),
        (
            slack_body(setup={"slack": {"code": "c", "redirectUri": "https://a/" + "r" * 247}}),
            ("setup.slack.redirectUri", "256"),
        ),
        (slack_body(setup={"slack": {"code": "c"}}), ("setup.slack.redirectUri", "required")),
        (webhook_body(URL, events={"buildDeleted": True}), ("events.buildDeleted", "unknown field")),
        (webhook_body(URL, events={"buildCreated": "yes"}), ("events.buildCreated", "boolean")),
        (webhook_body(URL, colour="red"), ("colour", "unknown field")),
        ("[1, 2]", ("JSON body must be an object",)),
        ("{nope", ("not valid JSON",)),
    ],
    ids=[
        "no type",
        "unknown type",
        "description too long",
        "url too long",
        "relative url",
        "ftp url",
        "metadata url",
        "slack code too long",
        "redirect uri too long",
        "slack code without redirect uri",
        "unknown event",
        "event not a boolean",
        "unknown field",
        "array body",
        "broken json",
    ],
)
def test_each_validation_error_is_400_5001_naming_the_field(
    api: Any, auth: dict[str, str], slack: Receiver, body: Any, phrases: tuple[str, ...]
) -> None:
    assert_invalid(send(api, "POST", BASE, auth, body), *phrases)
    assert nothing_created(api, auth)
    assert slack.requests == []  # refused before spending the Slack code


def test_several_problems_are_reported_together(api: Any, auth: dict[str, str]) -> None:
    body = webhook_body("/relative", description="d" * 129, events={"nope": True})
    assert_invalid(send(api, "POST", BASE, auth, body), "description", "setup.webhook.url", "events.nope")


# --- setup is optional -----------------------------------------------------------------------

PENDING = "This notification has no {} yet: it delivers nothing until an update (PUT) supplies it."


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "webhook"}, "setup.webhook.url"),
        ({"type": "webhook", "setup": {}}, "setup.webhook.url"),
        ({"type": "webhook", "setup": {"webhook": {}, "slack": {}}}, "setup.webhook.url"),
        ({"type": "slack", "setup": {"webhook": {"url": URL}}}, "setup.slack.code"),
        ({"type": "slack", "setup": {"slack": {}}}, "setup.slack.code"),
    ],
)
def test_a_notification_without_setup_is_stored_and_says_it_delivers_nothing(
    api: Any, auth: dict[str, str], slack: Receiver, body: dict[str, Any], field: str
) -> None:
    answer = send(api, "POST", BASE, auth, body)
    assert answer.status_code == 200, answer.body
    assert answer.json_body["message"] == PENDING.format(field)
    data = answer.json_body["data"]
    assert_notification(data)
    got = api.http.get(f"{BASE}/{data['id']}", headers=auth).json_body
    assert got["message"] == PENDING.format(field)
    assert {k: v for k, v in got["data"].items() if k != "config"} == {
        k: v for k, v in data.items() if k != "config"
    }
    config = got["data"]["config"]
    assert config.get("webhook", {}).get("url", "") == "" and config.get("slack", {}).get("team", "") == ""
    assert slack.requests == []


def test_a_notification_without_setup_delivers_nothing_until_a_put_supplies_it(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    from app import deliver

    events = {"buildCreated": True}
    created = send(api, "POST", BASE, auth, {"type": "webhook", "events": events}).json_body["data"]
    publish = {"type": "build_created", "app": APP}
    assert send(api, "POST", "/v1/events", auth, publish).json_body["matched"] == 0
    tested = api.http.post(f"/notification-handlers/{int(created['id'], 16)}/test", headers=auth)
    assert tested.status_code == 200
    assert tested.json_body["data"]["ok"] is False
    assert "not set up yet" in tested.json_body["data"]["error"]
    body = {"type": "webhook", "events": events, "setup": {"webhook": {"url": receiver.url("/hook")}}}
    answer = send(api, "PUT", f"{BASE}/{created['id']}", auth, body)
    assert answer.status_code == 200, answer.body
    assert "message" not in answer.json_body
    assert answer.json_body["data"]["config"]["webhook"]["url"] == receiver.url("/hook")
    assert send(api, "POST", "/v1/events", auth, publish).json_body["matched"] == 1
    drain(deliver)
    (posted,) = receiver.to("/hook")
    assert posted.json()["type"] == "build_created"


# --- path ids and auth -----------------------------------------------------------------------

ROUTES = [
    ("GET", BASE),
    ("POST", BASE),
    ("GET", BASE + "/" + "0" * 24),
    ("PUT", BASE + "/" + "0" * 24),
    ("DELETE", BASE + "/" + "0" * 24),
]
ROUTE_IDS = ["list", "create", "get", "update", "delete"]


BAD_IDS = [
    (("ab", APP, None), "organizationId"),
    (("acme_org", APP, None), "organizationId"),
    ((ORG, "a.b.c", None), "applicationId"),
    ((ORG, "my%20app", None), "applicationId"),
    ((ORG, "-leading-dash", None), "applicationId"),
    ((ORG, "a" * 65, None), "applicationId"),
    ((ORG, APP, "x1"), "notificationId"),
    ((ORG, APP, "not_valid"), "notificationId"),
]


@pytest.mark.parametrize(
    ("route", "ids", "field"),
    [
        ((method, path), ids, field)
        for method, path in ROUTES
        for ids, field in BAD_IDS
        if ids[2] is None or not path.endswith("/notifications")
    ],
)
def test_bad_path_ids_are_400_naming_them(
    api: Any, auth: dict[str, str], route: tuple[str, str], ids: tuple[str, str, str | None], field: str
) -> None:
    method, path = route
    org, app, notification = ids
    target = path.replace(ORG, org, 1).replace(APP, app, 1)
    if notification is not None:
        target = target.rsplit("/", 1)[0] + "/" + notification
    body = webhook_body(URL) if method in ("POST", "PUT") else None
    assert_invalid(send(api, method, target, auth, body), field)
    assert nothing_created(api, auth)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, (4002, "No auth token")),
        ("Bearer ", (4002, "No auth token")),
        ("Bearer hk_not-a-real-key-0123456789abcdef", (4004, "Invalid Token")),
        ("Basic dXNlcjpwYXNz", (4004, "Invalid Token")),
        ("Bearer a.b.c", (4004, "Invalid Token")),
    ],
    ids=["missing", "empty bearer", "unknown key", "not bearer", "bad token"],
)
def test_auth_errors_are_401_with_the_seed_codes(
    api: Any, method: str, path: str, authorization: str | None, expected: tuple[int, str]
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = send(api, method, path, headers, webhook_body(URL) if method in ("POST", "PUT") else None)
    assert_error(answer, 401, *expected)
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_a_revoked_key_is_4004(api: Any, api_key: str, auth: dict[str, str]) -> None:
    assert apikeys.revoke_key(get_stores(), api_key)
    assert_error(api.http.get(BASE, headers=auth), 401, 4004, "Invalid Token")


# --- read, list, update, delete --------------------------------------------------------------


def test_get_answers_the_notification_with_its_token_masked(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook_body(receiver.url("/hook")))
    answer = api.http.get(f"{BASE}/{created['id']}", headers=auth)
    assert answer.status_code == 200
    assert answer.json_body["status"] is True
    data = answer.json_body["data"]
    assert_notification(data)
    token = data["config"]["webhook"].pop("token")
    assert token == "****" + created["config"]["webhook"]["token"][-4:]
    created["config"]["webhook"].pop("token")
    assert data == created


def test_a_slug_org_is_only_a_label(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = create(api, auth, webhook_body(receiver.url("/hook")))
    path = f"/v1/organizations/another-label/apps/{APP}/notifications/{created['id']}"
    assert api.http.get(path, headers=auth).json_body["data"]["id"] == created["id"]


@pytest.mark.parametrize(("method"), ["GET", "PUT", "DELETE"])
def test_unknown_and_foreign_notifications_are_404_3001(
    api: Any, auth: dict[str, str], receiver: Receiver, method: str
) -> None:
    other_app = create(
        api, auth, webhook_body(receiver.url("/a")), f"/v1/organizations/{ORG}/apps/other-app/notifications"
    )
    email = send(
        api,
        "POST",
        "/notification-handlers",
        auth,
        {"name": "mail", "type": "email", "email": "a@example.com", "app": APP},
    )
    email_id = f"{email.json_body['data']['id']:024x}"
    other_key, _ = apikeys.create_key(get_stores(), "globex")
    other_auth = {"Authorization": f"Bearer {other_key}"}
    foreign = create(api, other_auth, webhook_body(receiver.url("/b")))
    body = webhook_body(URL) if method == "PUT" else None
    for notification in (
        "f" * 24,  # no such handler
        "0" * 24,  # id 0 names nothing
        "ffffffffffffffffffffffff",  # beyond any handler id
        "abc",  # a valid path id that is not a notification id
        other_app["id"],  # another app's
        email_id,  # the app's handler, but not of a notification type
        foreign["id"],  # another account's
    ):
        answer = send(api, method, f"{BASE}/{notification}", auth, body)
        assert_error(answer, 404, 3001, "Entity not found")
    assert primary(api, auth, other_app["id"]).status_code == 200  # untouched


def test_list_shows_the_apps_notifications_paginated(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    first = create(api, auth, webhook_body(receiver.url("/a")))
    create(
        api, auth, webhook_body(receiver.url("/b")), f"/v1/organizations/{ORG}/apps/other-app/notifications"
    )
    third = create(api, auth, webhook_body(receiver.url("/c"), description="third"))
    send(
        api,
        "POST",
        "/notification-handlers",
        auth,
        {"name": "all", "type": "internal_notification", "app": APP},
    )
    answer = api.http.get(BASE, headers=auth)
    assert answer.status_code == 200
    assert answer.json_body["status"] is True
    data = answer.json_body["data"]
    assert [n["id"] for n in data["items"]] == [first["id"], third["id"]]
    for item in data["items"]:
        assert_notification(item)
    assert {k: v for k, v in data.items() if k != "items"} == {
        "totalDocs": 2,
        "limit": 50,
        "page": 1,
        "totalPages": 1,
        "hasPrevPage": False,
        "hasNextPage": False,
        "prevPage": None,
        "nextPage": None,
    }
    second_page = api.http.get(f"{BASE}?page=2&limit=1", headers=auth).json_body["data"]
    assert [n["id"] for n in second_page["items"]] == [third["id"]]
    assert second_page["totalPages"] == 2
    assert second_page["hasPrevPage"] is True and second_page["hasNextPage"] is False
    assert second_page["prevPage"] == 1 and second_page["nextPage"] is None


def test_an_app_without_notifications_lists_none(api: Any, auth: dict[str, str]) -> None:
    data = api.http.get(BASE, headers=auth).json_body["data"]
    assert data["items"] == [] and data["totalDocs"] == 0 and data["totalPages"] == 1


@pytest.mark.parametrize(
    ("query", "field"), [("page=0", "page"), ("limit=101", "limit"), ("limit=x", "limit")]
)
def test_bad_list_parameters_are_400(api: Any, auth: dict[str, str], query: str, field: str) -> None:
    assert_invalid(api.http.get(f"{BASE}?{query}", headers=auth), field)


def test_put_replaces_events_and_description_and_keeps_the_url(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook_body(receiver.url("/hook")))
    replacement = {"type": "webhook", "events": {"feedbackCreated": True}}
    answer = send(api, "PUT", f"{BASE}/{created['id']}", auth, replacement)
    assert answer.status_code == 200, answer.body
    data = answer.json_body["data"]
    assert_notification(data)
    assert data["id"] == created["id"] and data["createdAt"] == created["createdAt"]
    assert data["description"] == "Webhook notification"
    assert data["events"] == {**dict.fromkeys(EVENT_KEYS, False), "feedbackCreated": True}
    assert data["config"]["webhook"]["url"] == receiver.url("/hook")
    assert data["config"]["webhook"]["token"].startswith("****")
    handler = primary(api, auth, created["id"]).json_body["data"]
    assert handler["selected_event_ids"] == [event_type("feedback_created").id]  # type: ignore[union-attr]
    assert handler["settings"] == {"webhook": receiver.url("/hook")}


def test_put_with_a_new_url_changes_it(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = create(api, auth, webhook_body(receiver.url("/old")))
    answer = send(api, "PUT", f"{BASE}/{created['id']}", auth, webhook_body(receiver.url("/new")))
    assert answer.json_body["data"]["config"]["webhook"]["url"] == receiver.url("/new")
    assert answer.json_body["data"]["description"] == "Builds to CI"


def test_put_changing_the_type_needs_that_types_setup(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook_body(receiver.url("/hook")))
    answer = send(api, "PUT", f"{BASE}/{created['id']}", auth, {"type": "slack"})
    assert_invalid(answer, "setup.slack.code", "required for type slack")
    assert primary(api, auth, created["id"]).json_body["data"]["type"] == "webhook"


def test_put_validates_like_create(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = create(api, auth, webhook_body(receiver.url("/hook")))
    answer = send(api, "PUT", f"{BASE}/{created['id']}", auth, webhook_body(URL, description="d" * 129))
    assert_invalid(answer, "description", "128")
    assert primary(api, auth, created["id"]).json_body["data"]["name"] == "Builds to CI"


def test_put_switches_webhook_to_slack_and_back(api: Any, auth: dict[str, str], slack: Receiver) -> None:
    created = create(api, auth, webhook_body(slack.url("/hook")))
    slack_ok(slack)
    answer = send(api, "PUT", f"{BASE}/{created['id']}", auth, slack_body())
    assert answer.status_code == 200, answer.body
    data = answer.json_body["data"]
    assert data["type"] == "slack"
    assert data["config"] == {"slack": {"team": "Acme Builds", "channel": "#releases"}}
    assert primary(api, auth, created["id"]).json_body["data"]["settings"] == {
        "slack": slack.url("/slack/hook"),
        "slack_team": "Acme Builds",
        "slack_channel": "#releases",
    }
    keep = send(api, "PUT", f"{BASE}/{created['id']}", auth, {"type": "slack", "description": "renamed"})
    assert keep.json_body["data"]["config"] == data["config"]  # same type, no setup: install kept
    assert len(slack.to(OAUTH_PATH)) == 1
    back = send(api, "PUT", f"{BASE}/{created['id']}", auth, webhook_body(slack.url("/again")))
    config = back.json_body["data"]["config"]
    assert config["webhook"]["url"] == slack.url("/again")
    assert config["webhook"]["token"].startswith("whsec_")  # a new secret for a new webhook
    assert primary(api, auth, created["id"]).json_body["data"]["settings"] == {"webhook": slack.url("/again")}


def test_delete_answers_the_notification_and_removes_the_handler(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook_body(receiver.url("/hook")))
    answer = api.http.delete(f"{BASE}/{created['id']}", headers=auth)
    assert answer.status_code == 200
    assert answer.json_body["status"] is True
    assert answer.json_body["data"]["id"] == created["id"]
    assert_notification(answer.json_body["data"])
    assert_error(api.http.get(f"{BASE}/{created['id']}", headers=auth), 404, 3001)
    assert_error(api.http.delete(f"{BASE}/{created['id']}", headers=auth), 404, 3001)
    assert primary(api, auth, created["id"]).status_code == 404


# --- events ----------------------------------------------------------------------------------


def test_the_apps_selected_events_match_the_notification_and_others_do_not(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    create(api, auth, webhook_body(receiver.url("/hook")))  # buildProcessed only
    assert publish(api, auth, "build_processed")["matched"] == 1
    assert publish(api, auth, "feedback_created")["matched"] == 0
    assert publish(api, auth, "build_processed", app="other-app")["matched"] == 0


# --- never another shape ---------------------------------------------------------------------


def test_an_unexpected_failure_is_500_in_the_seed_shape(
    api: Any, auth: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services, "create_handler", boom)
    answer = send(api, "POST", BASE, auth, webhook_body(receiver.url("/hook")))
    assert_error(answer, 500, 5000, "Internal error")
    assert "secret internals" not in answer.body.decode()


def test_an_unsupported_content_type_is_415_in_the_seed_shape(api: Any, auth: dict[str, str]) -> None:
    answer = api.http.post(BASE, headers={**auth, "Content-Type": "text/plain"}, body="type=webhook")
    assert assert_error(answer, 415, 5002).startswith("Unsupported media type: ")


def test_the_face_is_in_the_openapi_document(api: Any) -> None:
    from openapi_spec_validator import validate

    document = api.http.get("/openapi.json").json_body
    validate(document)
    item = f"{app_notifications.PATH}/{{notificationId}}"
    assert set(document["paths"][app_notifications.PATH]) == {"get", "post"}
    assert set(document["paths"][item]) == {"get", "put", "delete"}
    create = document["paths"][app_notifications.PATH]["post"]
    assert create["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NotificationError"
    }
    assert {"NotificationEnvelope", "NotificationCreateRequest", "NotificationError"} <= set(
        document["components"]["schemas"]
    )
