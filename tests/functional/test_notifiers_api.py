"""Seed 001's per-app notifiers, the token exchange and the PaaS discovery routes,
through chalice.test on moto (queues included), webhook targets on a local receiver."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import jwt
import pytest

from chalicelib import apikeys, clock, services
from chalicelib.models.events import event_type
from chalicelib.models.notifiers import handler_id_of, notifier_uuid
from chalicelib.storage.stores import get_stores
from tests.functional.sqs_driver import drain
from tests.receiver import Receiver, Reply
from tests.scalingo_seed import NOTIFIER_KEYS, SLACK, WEBHOOK

pytestmark = pytest.mark.usefixtures("memory_table", "stack")

APP = "my-app"
BASE = f"/v1/apps/{APP}/notifiers"
JSON = {"Content-Type": "application/json"}
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
NOTIFIER_ID = re.compile(r"^no-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")  # seed 001
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$")
EMAIL = "59c52ac27651ce002c1d4620"
DEPLOYMENT = "5982f139d48c360021b1eb69"
APP_CRASHED = "59c52a9c7651ce001f62f578"
SECRET = "test-token-secret-0123456789abcdef-0123456789"


@pytest.fixture(autouse=True)
def token_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """A known secret, to check the bearer tokens the API exchanges."""
    monkeypatch.setenv("HERALD_TOKEN_SECRET", SECRET)


def send(api: Any, method: str, path: str, auth: dict[str, str], body: Any = None) -> Any:
    raw = b"" if body is None else json.dumps(body).encode()
    return api.http.request(method, path, headers={**auth, **JSON}, body=raw)


def webhook(url: str, **fields: Any) -> dict[str, Any]:
    return {"platform_id": WEBHOOK, "name": "My Custom Webhook", "type_data": {"webhook_url": url}, **fields}


def create(api: Any, auth: dict[str, str], fields: dict[str, Any], app: str = APP) -> dict[str, Any]:
    answer = send(api, "POST", f"/v1/apps/{app}/notifiers", auth, {"notifier": fields})
    assert answer.status_code == 201, answer.body
    notifier: dict[str, Any] = answer.json_body["notifier"]
    return notifier


def get_notifier(api: Any, auth: dict[str, str], notifier_id: str, app: str = APP) -> dict[str, Any]:
    answer = send(api, "GET", f"/v1/apps/{app}/notifiers/{notifier_id}", auth)
    assert answer.status_code == 200, answer.body
    notifier: dict[str, Any] = answer.json_body["notifier"]
    return notifier


def handler(api: Any, auth: dict[str, str], notifier_id: str) -> dict[str, Any]:
    answer = api.http.get(f"/notification-handlers/{handler_id_of(notifier_id, 'acme')}", headers=auth)
    assert answer.status_code == 200, answer.body
    data: dict[str, Any] = answer.json_body["data"]
    return data


def push_subscriber() -> str:
    from datetime import UTC, datetime

    subscriber = get_stores().push.save(
        "acme",
        endpoint="https://push.example.com/send/abc",
        p256dh="BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
        auth="tBHItJI5svbpez7KI4CCXg",
        expiration_time=None,
        now=datetime.now(UTC),
    )
    return subscriber.id


def other_account() -> dict[str, str]:
    key, _ = apikeys.create_key(get_stores(), "globex")
    return {"Authorization": f"Bearer {key}"}


def assert_not_found(answer: Any, resource: str = "notifier") -> None:
    assert answer.status_code == 404, answer.body
    assert answer.json_body == {"resource": resource, "error": "not found"}


# --- create ----------------------------------------------------------------------------------


def test_create_answers_201_with_the_seed_notifier_object(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    answer = send(api, "POST", BASE, auth, {"notifier": webhook(receiver.url("/hook"))})
    assert answer.status_code == 201
    assert answer.headers["Content-Type"] == "application/json"
    assert set(answer.json_body) == {"notifier"}
    notifier = answer.json_body["notifier"]
    assert set(notifier) == NOTIFIER_KEYS
    assert ISO.match(notifier["created_at"]) and ISO.match(notifier["updated_at"])
    assert OBJECT_ID.match(notifier["app_id"])
    assert notifier["app_id"] == services.app_id(get_stores(), "acme", APP)
    assert {k: v for k, v in notifier.items() if k not in ("created_at", "updated_at", "app_id")} == {
        "id": "no-" + notifier_uuid("acme", 1),
        "name": "My Custom Webhook",
        "active": True,
        "type": "webhook",
        "platform_id": WEBHOOK,
        "send_all_alerts": False,
        "send_all_events": False,
        "selected_event_ids": [],
        "app": APP,
        "type_data": {"webhook_url": receiver.url("/hook")},
    }


@pytest.mark.parametrize("root", ["notifier", "notifiers", "notifer", "notification", None])
def test_create_accepts_the_clients_and_the_seeds_body_roots(
    api: Any, auth: dict[str, str], receiver: Receiver, root: str | None
) -> None:
    fields = webhook(receiver.url("/hook"))
    answer = send(api, "POST", BASE, auth, fields if root is None else {root: fields})
    assert answer.status_code == 201, answer.body
    assert answer.json_body["notifier"]["type_data"] == {"webhook_url": receiver.url("/hook")}


def test_the_seed_curl_body_is_accepted(api: Any, auth: dict[str, str]) -> None:
    raw = (
        '{"notifiers":{"platform_id": "5982f145d48c3600273ef08a", "active": true, '
        '"name": "My Custom Webhook", "type_data": {"webhook_url": "https://myapp.fr/webhook/scalingo"}}}'
    )
    answer = api.http.post(BASE, headers={**auth, **JSON}, body=raw)
    assert answer.status_code == 201, answer.body
    assert answer.json_body["notifier"]["type_data"] == {"webhook_url": "https://myapp.fr/webhook/scalingo"}


def test_two_body_roots_are_422(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    fields = webhook(receiver.url("/hook"))
    answer = send(api, "POST", BASE, auth, {"notifier": fields, "notifiers": fields})
    assert answer.status_code == 422
    assert answer.json_body == {"errors": {"notifiers": ["give the notifier once, under `notifier`"]}}


def test_the_notifier_is_a_handler_of_the_app_in_the_primary_api(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    notifier = create(
        api,
        auth,
        webhook(
            receiver.url("/hook"), active=False, send_all_alerts=True, selected_event_ids=["app_crashed"]
        ),
    )
    data = handler(api, auth, notifier["id"])
    assert (data["id"], data["type"], data["name"], data["app"]) == (1, "webhook", "My Custom Webhook", APP)
    assert data["settings"] == {"webhook": receiver.url("/hook")}
    assert (data["is_enabled"], data["send_all_events"], data["send_all_alerts"]) == (False, False, True)
    assert data["selected_event_ids"] == [APP_CRASHED]
    assert notifier["selected_event_ids"] == [APP_CRASHED]


def test_type_can_name_the_platform_and_must_agree_with_platform_id(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    fields = {"type": "webhook", "name": "n", "type_data": {"webhook_url": receiver.url("/hook")}}
    assert create(api, auth, fields)["platform_id"] == WEBHOOK
    answer = send(api, "POST", BASE, auth, {"notifier": {**fields, "platform_id": SLACK}})
    assert answer.status_code == 422
    assert answer.json_body == {"errors": {"type": ["platform 5982f145d48c3600273ef089 is 'slack'"]}}


TYPE_DATA_CASES = [
    ("slack", {"webhook_url": "https://hooks.slack.com/services/A/B/c"}, None),
    ("webhook", {"webhook_url": "https://example.com/hook"}, None),
    ("discord", {"webhook_url": "https://discord.com/api/webhooks/1/abc"}, None),
    ("microsoft_teams", {"webhook_url": "https://example.webhook.office.com/webhookb2/x"}, None),
    ("google_chat", {"webhook_url": "https://chat.googleapis.com/v1/spaces/AAA/messages?key=k"}, None),
    (
        "telegram",
        {"token": "123456:telegram-bot-token-abcd", "chat_id": "-100123"},
        {"token": "****abcd", "chat_id": "-100123"},
    ),
    (
        "x",
        {
            "consumer_key": "consumer-key-0001",
            "consumer_secret": "consumer-secret-0002",
            "access_token": "access-token-0003",
            "access_token_secret": "access-token-secret-0004",
        },
        {
            "consumer_key": "****0001",
            "consumer_secret": "****0002",
            "access_token": "****0003",
            "access_token_secret": "****0004",
        },
    ),
    ("push_subscriber_id", {"push_subscriber_id": "<registered>"}, None),
    ("internal_notification", {}, None),
    (
        "email",
        {"emails": ["ops@example.com", "dev@example.com"]},
        {"emails": ["ops@example.com", "dev@example.com"], "user_ids": []},
    ),
]


@pytest.mark.parametrize(("kind", "type_data", "shown"), TYPE_DATA_CASES, ids=[c[0] for c in TYPE_DATA_CASES])
def test_each_platform_takes_and_shows_its_type_data(
    api: Any, auth: dict[str, str], kind: str, type_data: dict[str, Any], shown: dict[str, Any] | None
) -> None:
    from chalicelib.models.platforms import BY_NAME

    if kind == "push_subscriber_id":  # a push notifier points at a registered browser
        type_data = {"push_subscriber_id": push_subscriber()}
    fields = {"platform_id": BY_NAME[kind].id, "name": kind, "type_data": type_data}
    notifier = create(api, auth, fields)
    assert (notifier["type"], notifier["platform_id"]) == (kind, BY_NAME[kind].id)
    assert notifier["type_data"] == (type_data if shown is None else shown)
    assert get_notifier(api, auth, notifier["id"]) == notifier
    # The full credentials are stored, the masks are only what is shown.
    stored = get_stores().handlers.get_handler("acme", 1)
    assert stored is not None and "****" not in json.dumps(stored.settings)


@pytest.mark.parametrize(
    ("emails", "problem"),
    [
        ([3], "must be a list of strings"),
        (["ops@example.com, dev@example.com"], "give one value per list item"),
        (["ops@example.com", "not an address"], "is not a valid email address: "),
        ([f"ops{i}@example.com" for i in range(11)], "give at most 10 addresses"),
    ],
    ids=["not-strings", "two-in-one-item", "not-an-address", "eleven"],
)
def test_an_email_notifier_refuses_what_is_not_a_list_of_addresses(
    api: Any, auth: dict[str, str], emails: Any, problem: str
) -> None:
    fields = {"platform_id": EMAIL, "name": "Mail", "type_data": {"emails": emails}}
    answer = send(api, "POST", BASE, auth, {"notifier": fields})
    assert answer.status_code == 422
    (message,) = answer.json_body["errors"]["type_data.emails"]
    assert message.startswith(problem)


def test_an_email_notifier_needs_addresses_or_user_ids(api: Any, auth: dict[str, str]) -> None:
    fields = {"platform_id": EMAIL, "name": "Mail", "type_data": {"user_ids": [], "emails": []}}
    answer = send(api, "POST", BASE, auth, {"notifier": fields})
    assert answer.status_code == 422
    assert answer.json_body == {"errors": {"type_data.emails": ["required for type email"]}}


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"name": "n"}, {"platform_id": ["required; see GET /v1/notification_platforms"]}),
        (
            {"platform_id": "000000000000000000000000", "name": "n"},
            {"platform_id": ["unknown notification platform; see GET /v1/notification_platforms"]},
        ),
        ({"platform_id": WEBHOOK, "name": "n"}, {"type_data.webhook_url": ["required for type webhook"]}),
        (
            {"platform_id": WEBHOOK, "name": "n", "type_data": {"webhook_url": "ftp://example.com"}},
            {"type_data.webhook_url": ["must be an absolute http:// or https:// URL"]},
        ),
        (
            {"platform_id": WEBHOOK, "name": "n", "type_data": {"webhook_url": 7}},
            {"type_data.webhook_url": ["must be a string"]},
        ),
        (
            {
                "platform_id": WEBHOOK,
                "name": "n",
                "type_data": {"webhook_url": "https://e.com", "channel": "x"},
            },
            {"type_data.channel": ["unknown key for platform webhook"]},
        ),
        (
            {
                "platform_id": WEBHOOK,
                "name": "n",
                "type_data": {"webhook_url": "https://e.com", "phone_number": "1"},
            },
            {"type_data.phone_number": ["not supported by Herald for platform webhook"]},
        ),
        (
            {"platform_id": WEBHOOK, "type_data": {"webhook_url": "https://example.com"}},
            {"name": ["Field required"]},
        ),
        (
            {
                "platform_id": WEBHOOK,
                "name": "n",
                "active": "maybe",
                "type_data": {"webhook_url": "https://e.com"},
            },
            {"active": ["Input should be a valid boolean, unable to interpret input"]},
        ),
        (
            {
                "platform_id": WEBHOOK,
                "name": "n",
                "plan_id": "x",
                "type_data": {"webhook_url": "https://e.com"},
            },
            {"plan_id": ["unknown field"]},
        ),
        (
            {"platform_id": WEBHOOK, "name": "n", "selected_event_ids": ["nope"]},
            {"selected_event_ids": ["unknown event type 'nope'; see GET /v1/event_types"]},
        ),
        (
            {"platform_id": WEBHOOK, "name": "n", "selected_event_ids": ["test"]},
            {"selected_event_ids": ["'test' is not available on webhook"]},
        ),
        (  # seed 000: the webhook offers three events, not app_restarted
            {"platform_id": WEBHOOK, "name": "n", "selected_event_ids": ["5b28be8e85232200126f373c"]},
            {"selected_event_ids": ["'5b28be8e85232200126f373c' is not available on webhook"]},
        ),
        (
            {"platform_id": SLACK, "name": "n", "selected_events": ["alert_triggered"]},
            {"selected_events": ["'alert_triggered' is not available on slack"]},
        ),
    ],
)
def test_invalid_notifiers_are_422_naming_the_notifiers_fields(
    api: Any, auth: dict[str, str], fields: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    answer = send(api, "POST", BASE, auth, {"notifier": fields})
    assert answer.status_code == 422, answer.body
    assert answer.json_body == {"errors": errors}
    assert api.http.get("/notification-handlers", headers=auth).json_body["data"] == []


def test_several_problems_are_reported_together(api: Any, auth: dict[str, str]) -> None:
    fields = {"platform_id": WEBHOOK, "name": "", "active": "maybe", "send_all_events": "often"}
    answer = send(api, "POST", BASE, auth, {"notifier": fields})
    assert answer.status_code == 422
    assert set(answer.json_body["errors"]) == {"active", "send_all_events"}


def test_selected_events_take_ids_names_and_the_deprecated_list(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    by_ids = create(api, auth, webhook(receiver.url("/a"), selected_event_ids=[DEPLOYMENT, "app_crashed"]))
    assert by_ids["selected_event_ids"] == [DEPLOYMENT, APP_CRASHED]
    by_names = create(api, auth, webhook(receiver.url("/b"), selected_events=["deployment"]))
    assert by_names["selected_event_ids"] == [DEPLOYMENT]


def test_a_string_false_is_false(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    """The seed's PATCH curl sends `active: "false"`."""
    assert create(api, auth, webhook(receiver.url("/hook"), active="false"))["active"] is False


def test_apps_are_created_on_first_use_with_one_id(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    first = create(api, auth, webhook(receiver.url("/a")))
    second = create(api, auth, webhook(receiver.url("/b")))
    other = create(api, auth, webhook(receiver.url("/c")), app="other-app")
    assert first["app_id"] == second["app_id"] != other["app_id"]


# --- list and get ----------------------------------------------------------------------------


def test_list_shows_the_apps_notifiers_only(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    mine = [create(api, auth, webhook(receiver.url(f"/{n}"))) for n in range(2)]
    create(api, auth, webhook(receiver.url("/other")), app="other-app")
    api.http.post(
        "/notification-handlers",
        headers={**auth, **JSON},
        body=json.dumps({"name": "no app", "type": "webhook", "webhook": receiver.url("/x")}),
    )
    answer = send(api, "GET", BASE, auth)
    assert answer.status_code == 200
    assert answer.json_body == {"notifiers": mine}


def test_an_app_without_notifiers_lists_none(api: Any, auth: dict[str, str]) -> None:
    answer = send(api, "GET", "/v1/apps/new-app/notifiers", auth)
    assert answer.status_code == 200
    assert answer.json_body == {"notifiers": []}


def test_get_answers_the_notifier_in_its_envelope(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")))
    answer = send(api, "GET", f"{BASE}/{created['id']}", auth)
    assert answer.status_code == 200
    assert answer.json_body == {"notifier": created}


@pytest.mark.parametrize("notifier_id", ["1", "no-0", "no-01", "no-abc", "no-2", "no-1234567890123", "NO-1"])
def test_unknown_and_malformed_ids_are_404(
    api: Any, auth: dict[str, str], receiver: Receiver, notifier_id: str
) -> None:
    create(api, auth, webhook(receiver.url("/hook")))
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {"notifier": {"name": "x"}})):
        assert_not_found(send(api, method, f"{BASE}/{notifier_id}{suffix}", auth, body))
    assert_not_found(send(api, "POST", f"{BASE}/{notifier_id}/test", auth))
    assert_not_found(send(api, "DELETE", f"{BASE}/{notifier_id}", auth))


def test_another_apps_notifier_is_404_under_this_app(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")), app="app-a")
    path = f"/v1/apps/app-b/notifiers/{created['id']}"
    assert_not_found(send(api, "GET", path, auth))
    assert_not_found(send(api, "PATCH", path, auth, {"notifier": {"name": "stolen"}}))
    assert_not_found(send(api, "POST", f"{path}/test", auth))
    assert_not_found(send(api, "DELETE", path, auth))
    assert send(api, "GET", "/v1/apps/app-b/notifiers", auth).json_body == {"notifiers": []}
    assert receiver.requests == []
    assert get_notifier(api, auth, created["id"], app="app-a") == created


def test_a_handler_without_app_is_no_apps_notifier(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    body = {"name": "account-wide", "type": "webhook", "webhook": receiver.url("/x")}
    assert (
        api.http.post("/notification-handlers", headers={**auth, **JSON}, body=json.dumps(body)).status_code
        == 201
    )
    assert_not_found(send(api, "GET", f"{BASE}/no-1", auth))


def test_another_accounts_notifier_is_404(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")))
    intruder = other_account()
    path = f"{BASE}/{created['id']}"
    assert_not_found(send(api, "GET", path, intruder))
    assert_not_found(send(api, "PATCH", path, intruder, {"notifier": {"name": "stolen"}}))
    assert_not_found(send(api, "POST", f"{path}/test", intruder))
    assert_not_found(send(api, "DELETE", path, intruder))
    assert send(api, "GET", BASE, intruder).json_body == {"notifiers": []}
    assert receiver.requests == []
    assert get_notifier(api, auth, created["id"]) == created


@pytest.mark.parametrize("app", ["-bad", "a" * 65, "has%20space", "x%2Fy"])
def test_an_app_name_herald_cannot_hold_is_404(api: Any, auth: dict[str, str], app: str) -> None:
    assert_not_found(send(api, "GET", f"/v1/apps/{app}/notifiers", auth), "app")


# --- update ----------------------------------------------------------------------------------


def go_client_body(notifier: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """What Scalingo's Go client sends on update: zero values for what it does not set."""
    return {
        "notifier": {
            "id": "",
            "app_id": "",
            "type": "",
            "platform_id": "",
            "created_at": "0001-01-01T00:00:00Z",
            "updated_at": "0001-01-01T00:00:00Z",
            "type_data": {"phone_number": ""},
            **fields,
        }
    }


def test_a_zero_value_update_changes_nothing(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = create(
        api, auth, webhook(receiver.url("/hook"), send_all_events=True, selected_event_ids=[APP_CRASHED])
    )
    before = handler(api, auth, created["id"])
    answer = send(api, "PATCH", f"{BASE}/{created['id']}", auth, go_client_body(created))
    assert answer.status_code == 200, answer.body
    assert set(answer.json_body) == {"notifier"}
    unchanged = {k: v for k, v in answer.json_body["notifier"].items() if k != "updated_at"}
    assert unchanged == {k: v for k, v in created.items() if k != "updated_at"}
    assert handler(api, auth, created["id"]) == before


def test_an_empty_type_data_object_changes_nothing(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")))
    answer = send(api, "PATCH", f"{BASE}/{created['id']}", auth, {"notifier": {"type_data": {}, "name": ""}})
    assert answer.status_code == 200
    assert answer.json_body["notifier"]["type_data"] == created["type_data"]
    assert answer.json_body["notifier"]["name"] == created["name"]


def test_the_go_clients_update_with_values_applies_them(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")))
    body = go_client_body(
        created, name="Renamed", active=False, send_all_events=True, selected_events=["deployment"]
    )
    body["notifier"]["type_data"]["webhook_url"] = receiver.url("/new")
    notifier = send(api, "PATCH", f"{BASE}/{created['id']}", auth, body).json_body["notifier"]
    assert (notifier["name"], notifier["active"], notifier["send_all_events"]) == ("Renamed", False, True)
    assert notifier["selected_event_ids"] == [DEPLOYMENT]
    assert notifier["type_data"] == {"webhook_url": receiver.url("/new")}


def test_patch_answers_the_updated_notifier(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = create(api, auth, webhook(receiver.url("/hook"), send_all_events=True))
    answer = send(
        api,
        "PATCH",
        f"{BASE}/{created['id']}",
        auth,
        {"notifier": {"type_data": {"webhook_url": receiver.url("/other")}, "active": "false"}},
    )
    assert answer.status_code == 200
    notifier = answer.json_body["notifier"]
    assert notifier == {
        **created,
        "active": False,
        "type_data": {"webhook_url": receiver.url("/other")},
        "updated_at": notifier["updated_at"],
    }
    assert get_notifier(api, auth, created["id"]) == notifier
    assert handler(api, auth, created["id"])["settings"] == {"webhook": receiver.url("/other")}


def test_updated_at_moves_and_created_at_stays(
    api: Any, auth: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    created = create(api, auth, webhook(receiver.url("/hook")))
    later = datetime(2031, 5, 14, 11, 46, 42, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: later)
    notifier = send(api, "PATCH", f"{BASE}/{created['id']}", auth, {"notifier": {"name": "x"}}).json_body[
        "notifier"
    ]
    assert notifier["created_at"] == created["created_at"]
    assert notifier["updated_at"] == "2031-05-14T11:46:42.000+00:00"


def test_an_empty_event_list_clears_the_selection(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = create(api, auth, webhook(receiver.url("/hook"), selected_event_ids=[DEPLOYMENT]))
    body = {"notifier": {"selected_event_ids": []}}
    assert (
        send(api, "PATCH", f"{BASE}/{created['id']}", auth, body).json_body["notifier"]["selected_event_ids"]
        == []
    )


def test_echoing_masked_credentials_back_keeps_them(api: Any, auth: dict[str, str]) -> None:
    from chalicelib.models.platforms import BY_NAME

    token = "123456:telegram-bot-token-abcd"
    fields = {
        "platform_id": BY_NAME["telegram"].id,
        "name": "tg",
        "type_data": {"token": token, "chat_id": "1"},
    }
    created = create(api, auth, fields)
    echoed = {**created, "name": "tg renamed"}
    notifier = send(api, "PATCH", f"{BASE}/{created['id']}", auth, {"notifier": echoed}).json_body["notifier"]
    assert notifier["name"] == "tg renamed"
    assert notifier["type_data"] == {"token": "****abcd", "chat_id": "1"}
    stored = get_stores().handlers.get_handler("acme", 1)
    assert stored is not None and stored.settings == {"telegram": token, "telegram_chat_id": "1"}


def test_changing_the_platform_takes_the_new_type_data(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    slack = {"platform_id": SLACK, "name": "s", "type_data": {"webhook_url": receiver.url("/slack")}}
    created = create(api, auth, slack)
    path = f"{BASE}/{created['id']}"
    answer = send(api, "PATCH", path, auth, {"notifier": {"platform_id": EMAIL}})
    assert answer.status_code == 422
    assert answer.json_body == {"errors": {"type_data.emails": ["required when changing type to email"]}}
    answer = send(
        api,
        "PATCH",
        path,
        auth,
        {"notifier": {"type": "webhook", "type_data": {"webhook_url": receiver.url("/w")}}},
    )
    assert answer.status_code == 200, answer.body
    notifier = answer.json_body["notifier"]
    assert (notifier["type"], notifier["platform_id"]) == ("webhook", WEBHOOK)
    assert notifier["type_data"] == {"webhook_url": receiver.url("/w")}
    assert handler(api, auth, created["id"])["settings"] == {"webhook": receiver.url("/w")}


def test_the_same_platform_given_again_is_no_change(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")))
    body = {"notifier": {"platform_id": WEBHOOK, "type": "webhook", "name": "again"}}
    answer = send(api, "PATCH", f"{BASE}/{created['id']}", auth, body)
    assert answer.status_code == 200
    assert answer.json_body["notifier"]["type_data"] == created["type_data"]


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"type_data": {"emails": ["a@example.com"]}},
            {"type_data.emails": ["unknown key for platform webhook"]},
        ),
        (
            {"send_all_alerts": "sometimes"},
            {"send_all_alerts": ["Input should be a valid boolean, unable to interpret input"]},
        ),
        (
            {"platform_id": "nope"},
            {"platform_id": ["unknown notification platform; see GET /v1/notification_platforms"]},
        ),
        ({"bogus": 1}, {"bogus": ["unknown field"]}),
    ],
)
def test_invalid_updates_are_422_and_change_nothing(
    api: Any, auth: dict[str, str], receiver: Receiver, fields: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")))
    answer = send(api, "PATCH", f"{BASE}/{created['id']}", auth, {"notifier": fields})
    assert answer.status_code == 422
    assert answer.json_body == {"errors": errors}
    assert get_notifier(api, auth, created["id"]) == created


# --- test and delete -------------------------------------------------------------------------


def test_test_sends_a_test_notification_and_answers_the_notifier(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")))
    answer = api.http.post(f"{BASE}/{created['id']}/test", headers=auth)
    assert answer.status_code == 200, answer.body
    assert answer.json_body == {"notifier": created}
    (posted,) = receiver.to("/hook")
    assert posted.method == "POST"
    payload = posted.json()
    assert (payload["type"], payload["app_name"]) == ("test", APP)
    assert payload["app_id"] == created["app_id"]
    caller = send(api, "GET", "/v1/users/self", auth).json_body["user"]
    assert payload["user"] == {k: caller[k] for k in ("username", "email", "id")}
    assert set(payload) == {"id", "created_at", "user", "app_id", "app_name", "type", "type_data"}
    assert "webhook-signature" in {k.lower() for k in posted.headers}


def test_a_refused_test_is_502_with_the_reason(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")))
    receiver.script("/hook", Reply(500, "boom"))
    answer = api.http.post(f"{BASE}/{created['id']}/test", headers=auth)
    assert answer.status_code == 502
    assert set(answer.json_body) == {"error"}
    assert answer.json_body["error"].startswith("the test notification was not delivered: ")
    assert "500" in answer.json_body["error"]


def test_delete_is_204_and_removes_the_handler(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")))
    answer = api.http.delete(f"{BASE}/{created['id']}", headers=auth)
    assert answer.status_code == 204
    assert answer.body == b""
    assert_not_found(send(api, "GET", f"{BASE}/{created['id']}", auth))
    assert api.http.get("/notification-handlers/1", headers=auth).status_code == 404
    assert_not_found(api.http.delete(f"{BASE}/{created['id']}", headers=auth))


# --- events of an app ------------------------------------------------------------------------


def test_an_apps_event_reaches_that_apps_notifiers_only(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    from app import deliver

    create(api, auth, webhook(receiver.url("/mine"), send_all_events=True))
    create(api, auth, webhook(receiver.url("/theirs"), send_all_events=True), app="other-app")
    create(api, auth, webhook(receiver.url("/picky"), selected_event_ids=["app_crashed"]))
    event = {"type": "deployment", "id": "ev-1", "app": "ignored", "type_data": {"status": "success"}}
    answer = send(api, "POST", f"/v1/apps/{APP}/events", auth, event)
    assert answer.status_code == 202, answer.body
    assert answer.json_body == {"id": "ev-1", "matched": 1, "duplicate": False, "fan_out": "inline"}
    drain(deliver)
    (posted,) = receiver.requests
    assert posted.path == "/mine"
    payload = posted.json()
    assert (payload["id"], payload["type"], payload["app_name"]) == ("ev-1", "deployment", APP)
    assert payload["app_id"] == services.app_id(get_stores(), "acme", APP)
    assert payload["type_data"] == {"status": "success"}


def test_an_apps_event_may_sit_under_an_event_root(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    create(api, auth, webhook(receiver.url("/picky"), selected_event_ids=["app_crashed"]))
    answer = send(api, "POST", f"/v1/apps/{APP}/events", auth, {"event": {"type": "app_crashed"}})
    assert answer.status_code == 202
    assert answer.json_body["matched"] == 1


def test_an_invalid_event_is_422(api: Any, auth: dict[str, str]) -> None:
    answer = send(api, "POST", f"/v1/apps/{APP}/events", auth, {"type": "nope"})
    assert answer.status_code == 422
    assert list(answer.json_body["errors"]) == ["type"]


# --- errors in the PaaS's shapes -------------------------------------------------------------


def test_a_missing_or_wrong_key_is_401_with_an_error_message(api: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer hk_wrong-key-0123456789abcdef"}):
        answer = api.http.get(BASE, headers=headers)
        assert answer.status_code == 401
        assert set(answer.json_body) == {"error"} and answer.json_body["error"]
        assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_a_body_that_is_not_json_is_400(api: Any, auth: dict[str, str]) -> None:
    answer = api.http.post(BASE, headers={**auth, **JSON}, body=b"{not json")
    assert answer.status_code == 400
    assert set(answer.json_body) == {"error"}
    assert answer.json_body["error"].startswith("the body is not valid JSON")


def test_a_root_that_is_not_an_object_is_422(api: Any, auth: dict[str, str]) -> None:
    answer = send(api, "POST", BASE, auth, {"notifier": "webhook"})
    assert answer.status_code == 422
    assert answer.json_body == {"errors": {"notifier": ["must be an object"]}}


def test_an_unsupported_content_type_is_415(api: Any, auth: dict[str, str]) -> None:
    answer = api.http.post(BASE, headers={**auth, "Content-Type": "text/plain"}, body="x")
    assert answer.status_code == 415
    assert set(answer.json_body) == {"error"}


def test_an_unexpected_failure_is_500_without_detail(
    api: Any, auth: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services, "create_handler", boom)
    answer = send(api, "POST", BASE, auth, {"notifier": webhook(receiver.url("/hook"))})
    assert answer.status_code == 500
    assert answer.json_body == {"error": "internal error"}


# --- token exchange, user, regions -----------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def exchange(api: Any, headers: dict[str, str]) -> Any:
    return api.http.post("/v1/tokens/exchange", headers={**headers, **JSON}, body=b"{}")


def test_the_api_key_exchanges_for_a_jwt_that_works_as_bearer(
    api: Any, api_key: str, receiver: Receiver
) -> None:
    answer = exchange(api, basic("", api_key))
    assert answer.status_code == 200
    assert set(answer.json_body) == {"token"}
    token = answer.json_body["token"]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "acme"
    assert claims["exp"] > time.time()
    bearer = {"Authorization": f"Bearer {token}"}
    created = create(api, bearer, webhook(receiver.url("/hook")))
    assert send(api, "GET", BASE, bearer).json_body == {"notifiers": [created]}


def test_the_key_may_be_the_basic_user_when_there_is_no_password(api: Any, api_key: str) -> None:
    assert exchange(api, basic(api_key, "")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("", "hk_not-a-key-0123456789abcdefghij"),
        basic("", ""),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer hk_not-a-key-0123456789abcdef"},
    ],
    ids=["none", "wrong-key", "empty", "malformed", "bearer"],
)
def test_exchange_refuses_anything_but_a_valid_key_with_401(api: Any, headers: dict[str, str]) -> None:
    answer = exchange(api, headers)
    assert answer.status_code == 401
    assert set(answer.json_body) == {"error"}


def test_a_revoked_key_no_longer_exchanges_nor_its_tokens_work(api: Any, api_key: str) -> None:
    token = exchange(api, basic("", api_key)).json_body["token"]
    apikeys.revoke_key(get_stores(), api_key)
    assert exchange(api, basic("", api_key)).status_code == 401
    assert api.http.get(BASE, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_expired_and_tampered_tokens_are_401(api: Any, api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    token = exchange(api, basic("", api_key)).json_body["token"]
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    forged = jwt.encode(
        {"sub": "acme", "exp": int(time.time()) + 60}, "another-secret-" * 3, algorithm="HS256"
    )
    monkeypatch.setenv("HERALD_TOKEN_TTL_SECONDS", "-10")
    expired = exchange(api, basic("", api_key)).json_body["token"]
    for bad in (tampered, forged, expired):
        answer = api.http.get(BASE, headers={"Authorization": f"Bearer {bad}"})
        assert answer.status_code == 401
        assert set(answer.json_body) == {"error"}
    expired_answer = api.http.get(BASE, headers={"Authorization": f"Bearer {expired}"})
    assert "expired" in expired_answer.json_body["error"]


def test_without_a_token_secret_exchange_is_401_saying_so(
    api: Any, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_TOKEN_SECRET", "")
    answer = exchange(api, basic("", api_key))
    assert answer.status_code == 401
    assert "HERALD_TOKEN_SECRET" in answer.json_body["error"]


def test_users_self_is_the_account(api: Any, auth: dict[str, str]) -> None:
    answer = api.http.get("/v1/users/self", headers=auth)
    assert answer.status_code == 200
    user = answer.json_body["user"]
    assert set(user) == {"id", "username", "email", "fullname"}
    assert (user["username"], user["fullname"], user["email"]) == ("acme", "acme", "")
    assert re.match(r"^us-[0-9a-f-]{36}$", user["id"])
    assert api.http.get("/v1/users/self", headers=auth).json_body["user"]["id"] == user["id"]
    assert api.http.get("/v1/users/self", headers=other_account()).json_body["user"]["id"] != user["id"]


def test_regions_name_this_herald_as_the_api(api: Any, auth: dict[str, str]) -> None:
    answer = api.http.get("/v1/regions", headers=auth)
    assert answer.status_code == 200
    assert answer.json_body == {
        "regions": [
            {
                "name": "local",
                "display_name": "Herald",
                "api": "https://herald.test",
                "database_api": "https://herald.test",
                "dashboard": "https://herald.test",
                "ssh": "",
                "default": True,
            }
        ]
    }


def test_users_and_regions_need_credentials(api: Any) -> None:
    for path in ("/v1/users/self", "/v1/regions"):
        answer = api.http.get(path)
        assert answer.status_code == 401
        assert set(answer.json_body) == {"error"}


def test_the_openapi_document_lists_the_paas_routes(api: Any) -> None:
    paths = api.http.get("/openapi.json").json_body["paths"]
    assert set(paths[BASE.replace(APP, "{app}")]) == {"get", "post"}
    assert set(paths["/v1/apps/{app}/notifiers/{notifier_id}"]) == {"get", "patch", "delete"}
    assert "422" in paths["/v1/apps/{app}/notifiers"]["post"]["responses"]
    assert event_type("deployment") is not None


# --- the signing secret of a webhook notifier ------------------------------------------------


def signatures(posted: Any) -> list[str]:
    headers = {k.lower(): v for k, v in posted.headers.items()}
    return [part.removeprefix("v1,") for part in headers["webhook-signature"].split()]


def signed_by(posted: Any, secret: str) -> bool:
    from chalicelib.delivery.signing import sign

    headers = {k.lower(): v for k, v in posted.headers.items()}
    expected = sign(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), posted.body)
    return expected.removeprefix("v1,") in signatures(posted)


def test_a_webhook_notifiers_secret_is_readable_and_signs_its_test(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")))
    answer = send(api, "GET", f"{BASE}/{created['id']}/secret", auth)
    assert answer.status_code == 200, answer.body
    secret = answer.json_body["secret"]
    assert set(answer.json_body) == {"secret"} and secret.startswith("whsec_")
    assert send(api, "POST", f"{BASE}/{created['id']}/test", auth).status_code == 200
    (posted,) = receiver.to("/hook")
    assert signed_by(posted, secret)


def test_rotating_a_notifiers_secret_keeps_the_old_one_signing_for_the_overlap(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")))
    old = send(api, "GET", f"{BASE}/{created['id']}/secret", auth).json_body["secret"]
    answer = send(api, "POST", f"{BASE}/{created['id']}/rotate_secret", auth)
    assert answer.status_code == 200, answer.body
    new = answer.json_body["secret"]
    assert new != old and new.startswith("whsec_")
    assert send(api, "GET", f"{BASE}/{created['id']}/secret", auth).json_body == {"secret": new}
    send(api, "POST", f"{BASE}/{created['id']}/test", auth)
    (posted,) = receiver.to("/hook")
    assert signed_by(posted, new) and signed_by(posted, old)


def test_a_notifier_that_does_not_sign_has_no_secret(api: Any, auth: dict[str, str]) -> None:
    fields = {"platform_id": SLACK, "name": "s", "type_data": {"webhook_url": "https://hooks.slack.com/x"}}
    created = create(api, auth, fields)
    for method, route in (("GET", "secret"), ("POST", "rotate_secret")):
        answer = send(api, method, f"{BASE}/{created['id']}/{route}", auth)
        assert answer.status_code == 422
        assert answer.json_body == {"errors": {"type": ["only webhook notifiers have a signing secret"]}}


def test_another_accounts_notifier_secret_is_404(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    created = create(api, auth, webhook(receiver.url("/hook")))
    for method, route in (("GET", "secret"), ("POST", "rotate_secret")):
        assert_not_found(send(api, method, f"{BASE}/{created['id']}/{route}", other_account()))
    assert send(api, "GET", f"{BASE}/{created['id']}/secret", auth).status_code == 200


# --- an app's events (Events.for) ------------------------------------------------------------


def publish_events(api: Any, auth: dict[str, str], count: int, app: str = APP) -> list[str]:
    ids = []
    for n in range(count):
        event = {"type": "deployment", "id": f"ev-{app}-{n}", "type_data": {"n": n}}
        answer = send(api, "POST", f"/v1/apps/{app}/events", auth, event)
        assert answer.status_code == 202, answer.body
        ids.append(answer.json_body["id"])
    return ids


def test_an_apps_events_are_listed_newest_first_in_the_paas_shape(api: Any, auth: dict[str, str]) -> None:
    ids = publish_events(api, auth, 3)
    publish_events(api, auth, 1, app="other-app")
    answer = send(api, "GET", f"/v1/apps/{APP}/events", auth)
    assert answer.status_code == 200, answer.body
    assert set(answer.json_body) == {"events", "meta"}
    events = answer.json_body["events"]
    assert [e["id"] for e in events] == ids[::-1]
    app_id = services.app_id(get_stores(), "acme", APP)
    for event in events:
        assert set(event) == {"id", "created_at", "user", "app_id", "app_name", "type", "type_data"}
        assert (event["app_id"], event["app_name"], event["type"]) == (app_id, APP, "deployment")
        assert ISO.match(event["created_at"])
    assert events[0]["type_data"] == {"n": 2}
    assert answer.json_body["meta"] == {
        "pagination": {
            "prev_page": None,
            "current_page": 1,
            "next_page": None,
            "total_pages": 1,
            "total_count": 3,
        }
    }


def test_an_apps_events_page_with_page_and_per_page(api: Any, auth: dict[str, str]) -> None:
    ids = publish_events(api, auth, 5)[::-1]
    answer = send(api, "GET", f"/v1/apps/{APP}/events?page=2&per_page=2", auth)
    assert [e["id"] for e in answer.json_body["events"]] == ids[2:4]
    assert answer.json_body["meta"]["pagination"] == {
        "prev_page": 1,
        "current_page": 2,
        "next_page": 3,
        "total_pages": 3,
        "total_count": 5,
    }
    last = send(api, "GET", f"/v1/apps/{APP}/events?page=3&per_page=2", auth).json_body
    assert [e["id"] for e in last["events"]] == ids[4:]
    assert last["meta"]["pagination"]["next_page"] is None
    past = send(api, "GET", f"/v1/apps/{APP}/events?page=9&per_page=2", auth).json_body
    assert past["events"] == []


def test_a_republished_event_is_listed_once(api: Any, auth: dict[str, str]) -> None:
    publish_events(api, auth, 1)
    publish_events(api, auth, 1)
    assert len(send(api, "GET", f"/v1/apps/{APP}/events", auth).json_body["events"]) == 1


def test_an_app_without_events_lists_none_and_other_accounts_see_none(api: Any, auth: dict[str, str]) -> None:
    publish_events(api, auth, 2)
    answer = send(api, "GET", f"/v1/apps/{APP}/events", other_account())
    assert answer.status_code == 200
    assert answer.json_body["events"] == []
    assert answer.json_body["meta"]["pagination"]["total_count"] == 0


def test_one_event_of_an_app_is_answered_in_its_envelope(api: Any, auth: dict[str, str]) -> None:
    (event_id,) = publish_events(api, auth, 1)
    listed = send(api, "GET", f"/v1/apps/{APP}/events", auth).json_body["events"][0]
    answer = send(api, "GET", f"/v1/apps/{APP}/events/{event_id}", auth)
    assert answer.status_code == 200
    assert answer.json_body == {"event": listed}
    for app, ident, who in ((APP, "nope", auth), ("other-app", event_id, auth), (APP, event_id, None)):
        answer = send(api, "GET", f"/v1/apps/{app}/events/{ident}", who or other_account())
        assert_not_found(answer, "event")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=x", "page"),
        ("per_page=101", "per_page"),
        ("per_page=²", "per_page"),
        ("from=73", "from"),
        ("from=0", "from"),
    ],
)
def test_bad_event_paging_is_422_naming_the_parameter(
    api: Any, auth: dict[str, str], query: str, field: str
) -> None:
    answer = send(api, "GET", f"/v1/apps/{APP}/events?{query}", auth)
    assert answer.status_code == 422
    assert list(answer.json_body["errors"]) == [field]


def test_from_keeps_the_last_hours_only(api: Any, auth: dict[str, str]) -> None:
    from datetime import UTC, datetime, timedelta

    from chalicelib.models.events import Event

    now = datetime.now(UTC)
    old = Event(account="acme", id="ev-old", type="deployment", app=APP, created_at=now - timedelta(hours=2))
    get_stores().app_events.record(old, int(now.timestamp()) + 3600)
    ids = publish_events(api, auth, 2)
    recent = send(api, "GET", f"/v1/apps/{APP}/events?from=1", auth).json_body
    assert [e["id"] for e in recent["events"]] == ids[::-1]
    assert recent["meta"]["pagination"]["total_count"] == 2
    every = send(api, "GET", f"/v1/apps/{APP}/events?from=3", auth).json_body
    assert [e["id"] for e in every["events"]] == [*ids[::-1], "ev-old"]


# --- notifier ids ----------------------------------------------------------------------------


def test_new_notifiers_have_the_seeds_id_shape_and_each_its_own(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    first = create(api, auth, webhook(receiver.url("/a")))
    second = create(api, auth, webhook(receiver.url("/b")))
    assert NOTIFIER_ID.match(first["id"]) and NOTIFIER_ID.match(second["id"])
    assert first["id"] != second["id"]
    assert get_notifier(api, auth, second["id"]) == second
    listed = send(api, "GET", BASE, auth).json_body["notifiers"]
    assert [n["id"] for n in listed] == [first["id"], second["id"]]


def test_a_notifier_is_also_named_by_its_handler_number(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook(receiver.url("/a")))
    assert get_notifier(api, auth, "no-1") == created


def test_handlers_made_before_uuid_ids_keep_their_ids(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    """A handler of the app made elsewhere (or before notifier ids were UUIDs) stays `no-<n>`."""
    body = {"name": "Old", "type": "webhook", "webhook": receiver.url("/old"), "app": APP}
    made = api.http.post("/notification-handlers", headers={**auth, **JSON}, body=json.dumps(body).encode())
    assert made.status_code == 201
    old = send(api, "GET", BASE, auth).json_body["notifiers"][0]
    assert old["id"] == "no-1"
    assert get_notifier(api, auth, "no-1") == old
    patched = send(api, "PATCH", f"{BASE}/no-1", auth, {"notifier": {"name": "Renamed"}})
    assert patched.json_body["notifier"]["id"] == "no-1"


def test_a_uuid_of_another_account_or_a_forged_one_names_nothing(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    created = create(api, auth, webhook(receiver.url("/a")))
    forged = "no-" + notifier_uuid("acme", 2)[:-12] + "000000000001"
    assert_not_found(send(api, "GET", f"{BASE}/{forged}", auth))
    assert_not_found(send(api, "GET", f"{BASE}/{created['id']}", other_account()))
    assert_not_found(send(api, "GET", f"{BASE}/{created['id'].upper()}", auth))


def test_a_bad_name_and_a_bad_setting_are_reported_together(api: Any, auth: dict[str, str]) -> None:
    fields = {"platform_id": WEBHOOK, "name": "n" * 200, "type_data": {"webhook_url": "not a url"}}
    answer = send(api, "POST", BASE, auth, {"notifier": fields})
    assert answer.status_code == 422, answer.body
    assert set(answer.json_body["errors"]) == {"name", "type_data.webhook_url"}, answer.body
