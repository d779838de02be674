"""The email channel on moto's SES: confirmation before any notification, then delivery."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib.settings import get_settings
from tests.functional.sqs_driver import drain

pytestmark = pytest.mark.usefixtures("stack")


def sent_mail() -> list[Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def create_email_handler(api: Any, auth: dict[str, str], address: str = "ops@example.com") -> int:
    answer = api.http.post(
        "/notification-handlers",
        headers={**auth, "Content-Type": "application/json"},
        body=json.dumps({"name": "Ops", "type": "email", "email": address}),
    )
    assert answer.status_code == 201, answer.body
    return int(answer.json_body["data"]["id"])


def confirmation_link(address: str) -> str:
    (mail,) = [m for m in sent_mail() if address in m.destinations["ToAddresses"]]
    found = re.search(r"https://herald\.test(/email-confirmations/[A-Za-z0-9_-]+)", mail.body)
    assert found, mail.body
    return found.group(1)


def confirm(api: Any, link: str, accept: str = "application/json") -> Any:
    """What the page's button does: POST the link."""
    return api.http.post(link, headers={"Accept": accept})


def publish(api: Any, auth: dict[str, str]) -> dict[str, Any]:
    body = {"type": "deployment", "app": "my-app", "type_data": {"status": "success", "git_ref": "abc"}}
    answer = api.http.post(
        "/v1/events", headers={**auth, "Content-Type": "application/json"}, body=json.dumps(body)
    )
    return dict(answer.json_body)


def test_a_new_email_handler_is_pending_until_its_link_is_followed(api: Any, auth: dict[str, str]) -> None:
    from app import deliver

    handler_id = create_email_handler(api, auth)
    data = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    assert data["email_confirmed"] is False
    assert publish(api, auth)["matched"] == 0, "a pending address gets nothing"
    link = confirmation_link("ops@example.com")
    page = api.http.get(link)
    assert page.status_code == 200 and '<form method="post">' in page.body.decode()
    assert publish(api, auth)["matched"] == 0, "opening the link (as a mail scanner does) confirms nothing"
    confirmed = confirm(api, link)
    assert confirmed.status_code == 200
    assert confirmed.json_body["data"] == {"id": handler_id, "email": "ops@example.com", "confirmed": True}
    assert confirm(api, link).status_code == 404, "a link works once"
    assert publish(api, auth)["matched"] == 1
    drain(deliver)
    mails = [m for m in sent_mail() if m.subject.startswith("Deployment of my-app")]
    assert len(mails) == 1
    assert mails[0].source == get_settings().email_sender
    assert "my-app" in mails[0].body


def test_changing_the_address_needs_a_new_confirmation(api: Any, auth: dict[str, str]) -> None:
    handler_id = create_email_handler(api, auth)
    old_link = confirmation_link("ops@example.com")
    api.http.post(
        f"/notification-handlers/{handler_id}",
        headers={**auth, "Content-Type": "application/json"},
        body=json.dumps({"email": "new@example.com"}),
    )
    assert confirm(api, old_link).status_code == 404, "the old link no longer confirms anything"
    assert (
        api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"][
            "email_confirmed"
        ]
        is False
    )
    assert confirm(api, confirmation_link("new@example.com")).status_code == 200
    assert (
        api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"][
            "email_confirmed"
        ]
        is True
    )


def test_unknown_confirmation_tokens_are_404(api: Any) -> None:
    answer = confirm(api, "/email-confirmations/not-a-token")
    assert answer.status_code == 404
    assert answer.json_body["errors"][0]["status"] == 404


def test_a_browser_confirming_gets_pages_under_a_strict_policy(api: Any, auth: dict[str, str]) -> None:
    create_email_handler(api, auth, "o'neil&co@example.com")
    link = confirmation_link("o'neil&co@example.com")
    page = api.http.get(link)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    done = confirm(api, link, accept="text/html,application/xhtml+xml")
    assert (done.status_code, done.headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert "o&#x27;neil&amp;co@example.com will receive" in done.body.decode()
    again = confirm(api, link, accept="text/html")
    assert again.status_code == 404 and "unknown, used or expired" in again.body.decode()


def test_confirmation_can_be_switched_off_for_development(
    api: Any, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_EMAIL_CONFIRMATION", "0")
    handler_id = create_email_handler(api, auth, "dev@example.com")
    assert (
        api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"][
            "email_confirmed"
        ]
        is True
    )
    assert not [m for m in sent_mail() if "dev@example.com" in m.destinations["ToAddresses"]]


def test_hostile_event_text_is_escaped_in_the_html_part(
    api: Any, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import deliver

    monkeypatch.setenv("HERALD_EMAIL_CONFIRMATION", "0")
    create_email_handler(api, auth, "x@example.com")
    body = {"type": "deployment", "app": "a", "type_data": {"status": "<script>alert(1)</script>"}}
    api.http.post("/v1/events", headers={**auth, "Content-Type": "application/json"}, body=json.dumps(body))
    drain(deliver)
    (mail,) = [m for m in sent_mail() if "x@example.com" in m.destinations["ToAddresses"]]
    assert "<script>" not in mail.body
    assert "&lt;script&gt;" in mail.body


def post_json(api: Any, path: str, auth: dict[str, str], body: Any) -> Any:
    return api.http.post(path, headers={**auth, "Content-Type": "application/json"}, body=json.dumps(body))


def test_each_address_of_an_email_handler_is_confirmed_apart(api: Any, auth: dict[str, str]) -> None:
    from app import deliver

    handler_id = create_email_handler(api, auth, "ops@example.com, dev@example.com")
    assert publish(api, auth)["matched"] == 0, "no address has confirmed yet"
    assert confirm(api, confirmation_link("dev@example.com")).status_code == 200
    handler = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    assert (handler["settings"]["email"], handler["email_confirmed"]) == (
        "ops@example.com, dev@example.com",
        False,
    )
    assert publish(api, auth)["matched"] == 1, "one confirmed address is enough to deliver"
    drain(deliver)
    (mail,) = [m for m in sent_mail() if m.subject.startswith("Deployment of my-app")]
    assert mail.destinations["ToAddresses"] == ["dev@example.com"], "the pending address gets nothing"

    assert confirm(api, confirmation_link("ops@example.com")).status_code == 200
    handler = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    assert handler["email_confirmed"] is True
    publish(api, auth)
    drain(deliver)
    latest = [m for m in sent_mail() if m.subject.startswith("Deployment of my-app")][-1]
    assert latest.destinations["ToAddresses"] == ["ops@example.com", "dev@example.com"]


def test_a_new_address_list_keeps_the_confirmations_of_the_addresses_it_keeps(
    api: Any, auth: dict[str, str]
) -> None:
    handler_id = create_email_handler(api, auth, "ops@example.com")
    assert confirm(api, confirmation_link("ops@example.com")).status_code == 200
    post_json(
        api, f"/notification-handlers/{handler_id}", auth, {"email": "ops@example.com, new@example.com"}
    )
    assert len([m for m in sent_mail() if "ops@example.com" in m.destinations["ToAddresses"]]) == 1
    assert publish(api, auth)["matched"] == 1, "ops@ stays confirmed while new@ is pending"
    assert confirm(api, confirmation_link("new@example.com")).status_code == 200
    handler = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    assert handler["email_confirmed"] is True


def owner_key(account: str) -> dict[str, str]:
    from chalicelib import apikeys
    from chalicelib.storage.stores import get_stores

    key, _ = apikeys.create_key(get_stores(), account)
    return {"Authorization": f"Bearer {key}"}


SEED_EMAIL_PLATFORM = "59c52ac27651ce002c1d4620"


def test_the_seeds_email_notifier_of_user_ids_mails_the_accounts_address(api: Any) -> None:
    """Seed 001's listed notifier: `user_ids` of the caller, no `emails`."""
    auth = owner_key("owner@acme.example")
    user = api.http.get("/v1/users/self", headers=auth).json_body["user"]
    type_data = {"user_ids": [user["id"]], "emails": []}
    body = {
        "notifier": {
            "name": "Default 'myapp' notifier",
            "platform_id": SEED_EMAIL_PLATFORM,
            "type_data": type_data,
        }
    }
    answer = post_json(api, "/v1/apps/myapp/notifiers", auth, body)
    assert answer.status_code == 201, answer.body
    assert answer.json_body["notifier"]["type_data"] == type_data
    assert confirm(api, confirmation_link("owner@acme.example")).status_code == 200
    with_address = {**type_data, "emails": ["team@acme.example"]}
    notifier_id = answer.json_body["notifier"]["id"]
    path = f"/v1/apps/myapp/notifiers/{notifier_id}"
    updated = api.http.patch(
        path,
        headers={**auth, "Content-Type": "application/json"},
        body=json.dumps({"notifier": {"type_data": with_address}}),
    )
    assert updated.status_code == 200, updated.body
    assert updated.json_body["notifier"]["type_data"] == with_address


@pytest.mark.parametrize(
    ("account", "user_ids", "problem"),
    [
        (
            "acme",
            None,
            "the account 'acme' has no email address (its name is not one): give the addresses instead",
        ),
        ("owner@acme.example", ["us-someone-else"], "'us-someone-else' is not a user of this account"),
    ],
    ids=["account-without-an-address", "another-user"],
)
def test_user_ids_name_the_accounts_own_user_with_an_address(
    api: Any, account: str, user_ids: list[str] | None, problem: str
) -> None:
    auth = owner_key(account)
    own = api.http.get("/v1/users/self", headers=auth).json_body["user"]["id"]
    type_data = {"user_ids": user_ids or [own], "emails": []}
    body = {"notifier": {"name": "Mail", "platform_id": SEED_EMAIL_PLATFORM, "type_data": type_data}}
    answer = post_json(api, "/v1/apps/myapp/notifiers", auth, body)
    assert answer.status_code == 422
    (message,) = answer.json_body["errors"]["type_data.user_ids"]
    assert message.startswith(problem)
