"""Portal links through the routes: who may make one, what a token may do, how it ends; the
page's headers and assets; a handler's hourly stats."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import apikeys
from chalicelib.api import portal
from chalicelib.models.deliveries import Attempt, AttemptStatus
from chalicelib.settings import ConfigurationError, get_settings
from chalicelib.storage.stores import get_stores


def new_link(api: Any, auth: dict[str, str]) -> dict[str, Any]:
    answer = api.http.post("/v1/portal/sessions", headers=auth)
    assert answer.status_code == 201, answer.body
    data: dict[str, Any] = json.loads(answer.body)["data"]
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_webhook(api: Any, auth: dict[str, str], name: str = "hook") -> int:
    body = json.dumps({"name": name, "type": "webhook", "webhook": "https://example.com/hook"})
    answer = api.http.post(
        "/notification-handlers", body=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert answer.status_code == 201, answer.body
    return int(json.loads(answer.body)["data"]["id"])


def test_a_portal_link_carries_its_token_in_the_fragment_and_stores_only_its_hash(
    api: Any, auth: dict[str, str]
) -> None:
    link = new_link(api, auth)
    assert link["url"] == f"https://herald.test/portal#token={link['token']}"
    assert link["token"].startswith("hp_")
    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    session_id = apikeys.key_id_of(link["token"])
    stored = get_stores().portal_sessions.get_portal_session(session_id)
    assert stored is not None and stored.account == "acme"
    assert link["token"] not in repr(stored)


def test_a_portal_token_reads_its_account_and_no_other(api: Any, auth: dict[str, str]) -> None:
    mine = create_webhook(api, auth)
    other_key, _ = apikeys.create_key(get_stores(), "globex")
    theirs = create_webhook(api, bearer(other_key), "theirs")
    token = new_link(api, auth)["token"]
    listed = json.loads(api.http.get("/notification-handlers", headers=bearer(token)).body)["data"]
    assert [h["id"] for h in listed] == [mine]
    if theirs != mine:
        assert api.http.get(f"/notification-handlers/{theirs}", headers=bearer(token)).status_code == 404
    other_token = new_link(api, bearer(other_key))["token"]
    seen = json.loads(api.http.get("/notification-handlers", headers=bearer(other_token)).body)["data"]
    assert [h["name"] for h in seen] == ["theirs"]


def test_a_portal_token_cannot_make_portal_links_or_exchange_tokens(api: Any, auth: dict[str, str]) -> None:
    token = new_link(api, auth)["token"]
    refused = api.http.post("/v1/portal/sessions", headers=bearer(token))
    assert refused.status_code == 403
    assert "cannot make portal links" in refused.body.decode()
    basic = {"Authorization": "Basic " + __import__("base64").b64encode(f":{token}".encode()).decode()}
    assert api.http.post("/v1/tokens/exchange", headers=basic).status_code == 401


def test_an_expired_or_unknown_portal_token_is_401_saying_so(
    api: Any, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_PORTAL_SESSION_SECONDS", "-1")
    expired = new_link(api, auth)["token"]
    answer = api.http.get("/notification-handlers", headers=bearer(expired))
    assert answer.status_code == 401
    assert "this portal link has expired" in json.loads(answer.body)["errors"][0]["detail"]
    unknown = api.http.get("/notification-handlers", headers=bearer("hp_" + "x" * 43))
    assert unknown.status_code == 401
    assert "invalid portal link" in unknown.body.decode()


def test_the_page_has_a_strict_policy_and_versioned_assets(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_PORTAL_FRAME_ANCESTORS", "https://dashboard.example.com 'self'")
    page = api.http.get("/portal")
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "frame-ancestors https://dashboard.example.com 'self';" in policy
    assert "form-action 'none'" in policy and "base-uri 'none'" in policy
    html = page.body.decode()
    assert "{{" not in html and "style=" not in html
    for src in re.findall(r'(?:src|href)="(portal/assets/[^"]+)"', html):
        asset = api.http.get("/" + src)
        assert asset.status_code == 200, src
        assert "immutable" in asset.headers["Cache-Control"]
    assert api.http.get("/portal/assets/000000000000/main.js").status_code == 404
    assert api.http.get(f"/portal/assets/{portal.assets_version()}/index.html").status_code == 404


def test_handler_types_in_the_page_cannot_close_their_element() -> None:
    types = portal.handler_types()
    assert types["telegram"]["secret"] == ["telegram"]
    assert types["webhook"]["required"] == ["webhook"]


@pytest.mark.parametrize("value", ["https://a.example; script-src *", "javascript:x", "'unsafe-inline'"])
def test_a_frame_ancestors_setting_that_could_smuggle_a_directive_is_refused(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_PORTAL_FRAME_ANCESTORS", value)
    with pytest.raises(ConfigurationError):
        get_settings()


def test_stats_count_attempts_per_hour_by_outcome_and_latency(api: Any, auth: dict[str, str]) -> None:
    handler_id = create_webhook(api, auth)
    stores = get_stores()
    now = datetime.now(UTC)
    outcomes = [(AttemptStatus.DELIVERED, 20), (AttemptStatus.DELIVERED, 40), (AttemptStatus.FAILED, 90)]
    handler = stores.handlers.get_handler("acme", handler_id)
    assert handler is not None
    for number, (status, duration) in enumerate(outcomes, start=1):
        noted = stores.handlers.note_attempts(handler, [status], now)
        assert noted is not None
        seq = noted.seq
        attempt = Attempt(
            seq=seq, event_id=f"e{number}", event_type="deployment", attempt=1,
            status=status, duration_ms=duration, at=now,
        )  # fmt: skip
        stores.deliveries.log_attempt("acme", handler_id, attempt)
    answer = api.http.get(f"/notification-handlers/{handler_id}/stats?hours=168", headers=auth)
    assert answer.status_code == 200, answer.body
    stats = json.loads(answer.body)["data"]
    assert (stats["attempts"], stats["delivered"], stats["success_rate"]) == (3, 2, 0.6667)
    assert len(stats["per_hour"]) == 168
    last = stats["per_hour"][-1]
    assert (last["delivered"], last["failed"], last["median_ms"], last["max_ms"]) == (2, 1, 40, 90)
    assert api.http.get(f"/notification-handlers/{handler_id}/stats?hours=5", headers=auth).status_code == 400


def test_the_cli_prints_a_working_link_for_any_account(
    api: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import cli

    assert cli.main(["portal-link", "--account", "globex", "--url", "https://herald.example.com/"]) == 0
    printed = capsys.readouterr()
    url = printed.out.strip()
    assert url.startswith("https://herald.example.com/portal#token=hp_")
    assert "account globex; works until" in printed.err
    token = url.split("#token=", 1)[1]
    assert api.http.get("/notification-handlers", headers=bearer(token)).status_code == 200
    monkeypatch.delenv("HERALD_PUBLIC_URL")
    monkeypatch.delenv("HERALD_URL", raising=False)
    assert cli.main(["portal-link", "--account", "globex"]) == 2
    assert "give --url" in capsys.readouterr().err


def test_a_portal_link_has_a_rate_limit_of_its_own(
    api: Any, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_RATE_LIMIT_PER_MINUTE", "2")
    monkeypatch.setenv("HERALD_PORTAL_RATE_LIMIT_PER_MINUTE", "3")
    token = new_link(api, auth)["token"]
    statuses = [api.http.get("/notification-handlers", headers=bearer(token)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
