"""The notification-handlers API (seeds 003/004) through chalice.test on moto."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib import apikeys
from chalicelib.storage.stores import get_stores

FORM = "application/x-www-form-urlencoded"


def multipart(fields: dict[str, str]) -> tuple[dict[str, str], bytes]:
    boundary = "----heraldtestboundary"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n')
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body


def post(api: Any, path: str, auth: dict[str, str], fields: dict[str, Any], kind: str = "json") -> Any:
    if kind == "json":
        headers, body = {"Content-Type": "application/json"}, json.dumps(fields).encode()
    elif kind == "form":
        headers, body = {"Content-Type": FORM}, urlencode(fields).encode()
    else:
        headers, body = multipart(fields)
    return api.http.post(path, headers={**auth, **headers}, body=body)


def create(api: Any, auth: dict[str, str], **fields: Any) -> int:
    fields.setdefault("name", "Work email")
    fields.setdefault("type", "email")
    if fields["type"] == "email":
        fields.setdefault("email", "hey@example.com")
    answer = post(api, "/notification-handlers", auth, fields)
    assert answer.status_code == 201, answer.body
    return int(answer.json_body["data"]["id"])


@pytest.mark.parametrize("kind", ["json", "form", "multipart"])
def test_create_accepts_json_form_and_multipart_bodies(api: Any, auth: dict[str, str], kind: str) -> None:
    answer = post(
        api,
        "/notification-handlers",
        auth,
        {"name": "Example", "type": "email", "email": "hello@example.com"},
        kind,
    )
    assert answer.status_code == 201
    assert answer.json_body == {"data": {"id": 1}}
    got = api.http.get("/notification-handlers/1", headers=auth).json_body["data"]
    assert got["name"] == "Example"
    assert got["settings"] == {"email": "hello@example.com"}


def test_get_returns_the_seed_shape(api: Any, auth: dict[str, str]) -> None:
    handler_id = create(api, auth)
    data = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    seed_fields = {"id", "type", "name", "settings", "is_enabled", "last_datetime", "datetime"}
    subscription = {"send_all_events", "send_all_alerts", "selected_event_ids", "app", "disabled_reason"}
    subscription.add("email_confirmed")
    subscription.add("rate_limit_per_second")  # the handler's own send rate, null for the platform's
    assert set(data) == seed_fields | subscription
    assert data["id"] == handler_id
    assert data["type"] == "email"
    assert data["is_enabled"] is True
    assert data["last_datetime"] is None
    assert len(data["datetime"]) == 19 and data["datetime"][10] == " "


def test_list_has_data_meta_and_links(api: Any, auth: dict[str, str]) -> None:
    create(api, auth)
    answer = api.http.get("/notification-handlers/", headers=auth)
    assert answer.status_code == 200
    body = answer.json_body
    assert [h["id"] for h in body["data"]] == [1]
    assert body["meta"] == {"page": 1, "results_per_page": 25, "total": 1, "total_pages": 1}
    assert body["links"] == {
        "first": "https://herald.test/notification-handlers?page=1",
        "last": "https://herald.test/notification-handlers?page=1",
        "next": None,
        "prev": None,
        "self": "https://herald.test/notification-handlers?page=1",
    }


def test_links_keep_results_per_page(api: Any, auth: dict[str, str]) -> None:
    for _ in range(25):
        create(api, auth)
    body = api.http.get("/notification-handlers?page=2&results_per_page=10", headers=auth).json_body
    assert [h["id"] for h in body["data"]] == list(range(11, 21))
    assert body["meta"] == {"page": 2, "results_per_page": 10, "total": 25, "total_pages": 3}
    links = body["links"]
    assert links["next"] == "https://herald.test/notification-handlers?page=3&results_per_page=10"
    assert links["prev"] == "https://herald.test/notification-handlers?page=1&results_per_page=10"
    assert links["last"] == "https://herald.test/notification-handlers?page=3&results_per_page=10"


def test_page_past_the_end_is_empty(api: Any, auth: dict[str, str]) -> None:
    create(api, auth)
    answer = api.http.get("/notification-handlers?page=7", headers=auth)
    assert answer.status_code == 200
    assert answer.json_body["data"] == []
    assert answer.json_body["meta"]["total"] == 1
    assert answer.json_body["links"]["next"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=-1", "page"),
        ("results_per_page=30", "results_per_page"),
        ("results_per_page=x", "results_per_page"),
    ],
)
def test_bad_paging_parameters_are_400_naming_them(
    api: Any, auth: dict[str, str], query: str, field: str
) -> None:
    answer = api.http.get(f"/notification-handlers?{query}", headers=auth)
    assert answer.status_code == 400
    assert answer.json_body["errors"][0]["field"] == field
    if field == "results_per_page" and "30" in query:
        assert "10, 25, 50, 100, 250, 500, 1000" in answer.json_body["errors"][0]["detail"]


def test_update_is_partial_by_post_and_by_patch(api: Any, auth: dict[str, str]) -> None:
    handler_id = create(api, auth)
    answer = post(
        api,
        f"/notification-handlers/{handler_id}",
        auth,
        {"name": "Example new name", "is_enabled": "0"},
        "multipart",
    )
    assert answer.status_code == 200
    assert answer.json_body == {"data": {"id": handler_id}}
    data = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    assert data["name"] == "Example new name"
    assert data["is_enabled"] is False
    assert data["settings"] == {"email": "hey@example.com"}
    api.http.patch(
        f"/notification-handlers/{handler_id}",
        headers={**auth, "Content-Type": "application/json"},
        body=json.dumps({"is_enabled": "true"}),
    )
    data = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    assert data["is_enabled"] is True
    assert data["name"] == "Example new name"


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("0", False), ("true", True), ("false", False)])
def test_booleans_accept_1_0_true_false(api: Any, auth: dict[str, str], raw: str, expected: bool) -> None:
    handler_id = create(api, auth, is_enabled="0" if expected else "1")
    post(api, f"/notification-handlers/{handler_id}", auth, {"is_enabled": raw}, "form")
    assert (
        api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]["is_enabled"]
        is expected
    )


def test_changing_type_requires_the_new_types_fields(api: Any, auth: dict[str, str]) -> None:
    handler_id = create(api, auth)
    answer = post(api, f"/notification-handlers/{handler_id}", auth, {"type": "webhook"})
    assert answer.status_code == 400
    assert answer.json_body["errors"][0]["field"] == "webhook"
    answer = post(
        api,
        f"/notification-handlers/{handler_id}",
        auth,
        {"type": "webhook", "webhook": "https://hooks.example.com/x"},
    )
    assert answer.status_code == 200
    data = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    assert data["type"] == "webhook"
    assert data["settings"] == {"webhook": "https://hooks.example.com/x"}


def test_settings_of_another_type_are_refused_on_update(api: Any, auth: dict[str, str]) -> None:
    handler_id = create(api, auth)
    answer = post(api, f"/notification-handlers/{handler_id}", auth, {"slack": "https://hooks.slack.com/x"})
    assert answer.status_code == 400
    assert answer.json_body["errors"][0]["field"] == "slack"


def test_credentials_are_masked_and_urls_returned_as_given(api: Any, auth: dict[str, str]) -> None:
    telegram = create(
        api, auth, type="telegram", name="tg", telegram="123456:ABCDEFsecrettoken", telegram_chat_id="-1001"
    )
    x = create(
        api,
        auth,
        type="x",
        name="x",
        x_consumer_key="ck-000000001111",
        x_consumer_secret="cs-000000002222",
        x_access_token="at-000000003333",
        x_access_token_secret="as-000000004444",
    )
    slack = create(api, auth, type="slack", name="s", slack="https://hooks.slack.com/services/T/B/XyZ?a=1")
    tg = api.http.get(f"/notification-handlers/{telegram}", headers=auth).json_body["data"]["settings"]
    assert tg == {"telegram": "****oken", "telegram_chat_id": "-1001"}
    xs = api.http.get(f"/notification-handlers/{x}", headers=auth).json_body["data"]["settings"]
    assert xs == {
        "x_consumer_key": "****1111",
        "x_consumer_secret": "****2222",
        "x_access_token": "****3333",
        "x_access_token_secret": "****4444",
    }
    listed = api.http.get("/notification-handlers", headers=auth).json_body["data"]
    assert "secrettoken" not in json.dumps(listed)
    sl = api.http.get(f"/notification-handlers/{slack}", headers=auth).json_body["data"]["settings"]
    assert sl == {"slack": "https://hooks.slack.com/services/T/B/XyZ?a=1"}


def test_echoing_a_mask_back_keeps_the_secret(api: Any, auth: dict[str, str]) -> None:
    handler_id = create(
        api, auth, type="telegram", name="tg", telegram="123456:ABCDEFsecrettoken", telegram_chat_id="1"
    )
    post(api, f"/notification-handlers/{handler_id}", auth, {"telegram": "****oken", "telegram_chat_id": "2"})
    stored = get_stores().handlers.get_handler("acme", handler_id)
    assert stored is not None
    assert stored.settings == {"telegram": "123456:ABCDEFsecrettoken", "telegram_chat_id": "2"}


def test_delete_answers_204_then_404(api: Any, auth: dict[str, str]) -> None:
    handler_id = create(api, auth)
    assert api.http.delete(f"/notification-handlers/{handler_id}", headers=auth).status_code == 204
    assert api.http.get(f"/notification-handlers/{handler_id}", headers=auth).status_code == 404
    assert api.http.delete(f"/notification-handlers/{handler_id}", headers=auth).status_code == 404
    assert api.http.get("/notification-handlers", headers=auth).json_body["meta"]["total"] == 0


def test_ids_are_per_account_and_never_reused(api: Any, auth: dict[str, str]) -> None:
    first = create(api, auth)
    api.http.delete(f"/notification-handlers/{first}", headers=auth)
    assert create(api, auth) == 2
    other, _ = apikeys.create_key(get_stores(), "globex")
    assert create(api, {"Authorization": f"Bearer {other}"}) == 1


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing Authorization"),
        ({"Authorization": "Bearer hk_wrongwrongwrongwrongwrong"}, "invalid"),
        ({"Authorization": "Basic abc"}, "Bearer"),
        ({"Authorization": "Bearer"}, "Bearer"),
    ],
)
def test_missing_or_wrong_key_is_401_json(
    api: Any, api_key: str, headers: dict[str, str], detail: str
) -> None:
    for method, path in [
        ("get", "/notification-handlers"),
        ("get", "/notification-handlers/1"),
        ("post", "/notification-handlers"),
        ("delete", "/notification-handlers/1"),
    ]:
        answer = getattr(api.http, method)(path, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["Content-Type"] == "application/json"
        assert detail in answer.json_body["errors"][0]["detail"]


def test_revoked_key_is_401(api: Any, api_key: str, auth: dict[str, str]) -> None:
    assert api.http.get("/notification-handlers", headers=auth).status_code == 200
    assert apikeys.revoke_key(get_stores(), api_key)
    assert api.http.get("/notification-handlers", headers=auth).status_code == 401


def test_another_accounts_handler_is_invisible_and_unwritable(api: Any, auth: dict[str, str]) -> None:
    handler_id = create(api, auth)
    other_key, _ = apikeys.create_key(get_stores(), "globex")
    other = {"Authorization": f"Bearer {other_key}"}
    assert api.http.get(f"/notification-handlers/{handler_id}", headers=other).status_code == 404
    assert post(api, f"/notification-handlers/{handler_id}", other, {"name": "pwned"}).status_code == 404
    assert post(api, f"/notification-handlers/{handler_id}", other, {"email": "a@b.co"}).status_code == 404
    assert api.http.delete(f"/notification-handlers/{handler_id}", headers=other).status_code == 404
    assert api.http.get("/notification-handlers", headers=other).json_body["data"] == []
    mine = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    assert mine["name"] == "Work email"


def test_update_of_a_missing_handler_writes_nothing(api: Any, auth: dict[str, str]) -> None:
    assert post(api, "/notification-handlers/99", auth, {"name": "ghost"}).status_code == 404
    assert api.http.get("/notification-handlers", headers=auth).json_body["meta"]["total"] == 0
    assert get_stores().handlers.get_handler("acme", 99) is None


@pytest.mark.parametrize("raw_id", ["abc", "0", "-1", "1.5", "9999999999999"])
def test_non_numeric_ids_are_404(api: Any, auth: dict[str, str], raw_id: str) -> None:
    assert api.http.get(f"/notification-handlers/{raw_id}", headers=auth).status_code == 404


def test_a_warm_container_remembers_keys_for_the_cache_ttl(
    api: Any, api_key: str, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_AUTH_CACHE_SECONDS", "300")
    assert api.http.get("/notification-handlers", headers=auth).status_code == 200
    assert apikeys.revoke_key(get_stores(), api_key)
    assert api.http.get("/notification-handlers", headers=auth).status_code == 200, "cached for the TTL"
    monkeypatch.setenv("HERALD_AUTH_CACHE_SECONDS", "0")
    assert api.http.get("/notification-handlers", headers=auth).status_code == 401


# --- a dashboard form posts the fields of every type -----------------------------------------

EVERY_FIELD_EMPTY = {
    "email": "",
    "webhook": "",
    "slack": "",
    "discord": "",
    "telegram": "",
    "telegram_chat_id": "",
    "microsoft_teams": "",
    "google_chat": "",
    "x_consumer_key": "",
    "x_consumer_secret": "",
    "x_access_token": "",
    "x_access_token_secret": "",
    "push_subscriber_id": "",
}


@pytest.mark.parametrize("kind", ["form", "multipart"])
def test_a_form_of_every_type_creates_with_the_chosen_types_fields(
    api: Any, auth: dict[str, str], kind: str
) -> None:
    fields = {**EVERY_FIELD_EMPTY, "name": "Example", "type": "email", "email": "hello@example.com"}
    answer = post(api, "/notification-handlers", auth, fields, kind)
    assert answer.status_code == 201, answer.body
    got = api.http.get(f"/notification-handlers/{answer.json_body['data']['id']}", headers=auth)
    assert got.json_body["data"]["settings"] == {"email": "hello@example.com"}


def test_a_form_of_every_type_updates_with_or_without_the_type(api: Any, auth: dict[str, str]) -> None:
    handler_id = create(api, auth)
    path = f"/notification-handlers/{handler_id}"
    with_type = {**EVERY_FIELD_EMPTY, "type": "email", "email": "new@example.com", "name": "Renamed"}
    assert post(api, path, auth, with_type, "form").status_code == 200
    without_type = {**EVERY_FIELD_EMPTY, "email": "other@example.com", "is_enabled": "1"}
    answer = post(api, path, auth, without_type, "multipart")
    assert answer.status_code == 200, answer.body
    data = api.http.get(path, headers=auth).json_body["data"]
    assert (data["name"], data["settings"]) == ("Renamed", {"email": "other@example.com"})


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": "email", "email": "hello@example.com", "webhook": "https://example.com/h"}, "webhook"),
        ({"type": "email", "email": "", "webhook": ""}, "email"),
        ({"type": "email", "email": "hello@example.com", "webhok": ""}, "webhok"),
    ],
)
def test_a_filled_field_of_another_type_an_empty_own_field_or_an_unknown_name_stay_400(
    api: Any, auth: dict[str, str], fields: dict[str, str], field: str
) -> None:
    answer = post(api, "/notification-handlers", auth, {"name": "Example", **fields}, "form")
    assert answer.status_code == 400, answer.body
    assert [e["field"] for e in answer.json_body["errors"]] == [field]
    assert api.http.get("/notification-handlers", headers=auth).json_body["meta"]["total"] == 0


def test_an_update_without_type_still_refuses_an_empty_own_field(api: Any, auth: dict[str, str]) -> None:
    handler_id = create(api, auth)
    answer = post(api, f"/notification-handlers/{handler_id}", auth, {"email": "", "webhook": ""}, "form")
    assert answer.status_code == 400, answer.body
    assert [e["field"] for e in answer.json_body["errors"]] == ["email"]
