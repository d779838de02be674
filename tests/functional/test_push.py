"""Web Push: subscribers API, RFC 8291 encryption and VAPID, decrypted here like a browser."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from chalicelib import apikeys, vapid
from chalicelib.channels import get_channel
from chalicelib.channels.push_subscriber_id import MAX_PLAINTEXT, payload
from chalicelib.delivery.context import delivery_context
from chalicelib.delivery.safe_http import SafeSender
from chalicelib.models.deliveries import Outcome, SendResult
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.storage.stores import get_stores
from tests.functional.sqs_driver import drain
from tests.receiver import Receiver, Reply

JSON = {"Content-Type": "application/json"}
ACCOUNT = "acme"
SUBJECT = "mailto:ops@example.com"
MARKER = "… [truncated]"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """What a browser keeps for one subscription: its ECDH key pair and auth secret."""

    key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> Browser:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    @property
    def p256dh(self) -> str:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64(point)

    def subscription(self, endpoint: str, **extra: Any) -> dict[str, Any]:
        return {"endpoint": endpoint, "keys": {"p256dh": self.p256dh, "auth": b64(self.auth)}, **extra}

    def decrypt(self, body: bytes) -> Any:
        plain = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm")
        return json.loads(plain)


@pytest.fixture
def vapid_keys(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    private, public = vapid.generate_vapid_keys()
    monkeypatch.setenv("HERALD_VAPID_PRIVATE_KEY", private)
    monkeypatch.setenv("HERALD_VAPID_SUBJECT", SUBJECT)
    return private, public


@pytest.fixture
def private_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_ALLOW_PRIVATE_TARGETS", "1")


def subscribe(client: Any, auth: dict[str, str], subscription: dict[str, Any]) -> Any:
    return client.http.post("/push-subscribers", headers={**auth, **JSON}, body=json.dumps(subscription))


def subscriber(client: Any, auth: dict[str, str], browser: Browser, endpoint: str) -> str:
    answer = subscribe(client, auth, browser.subscription(endpoint))
    assert answer.status_code == 201, answer.body
    return str(answer.json_body["data"]["id"])


def handler_for(subscriber_id: str) -> Handler:
    now = datetime.now(UTC)
    return Handler(
        account=ACCOUNT,
        id=1,
        type="push_subscriber_id",
        name="browser",
        settings={"push_subscriber_id": subscriber_id},
        created_at=now,
        updated_at=now,
    )


def event(**type_data: Any) -> Event:
    return Event(
        account=ACCOUNT,
        id="5f1a00000000000000000002",
        type="app_crashed",
        app="my-app",
        type_data=type_data,
        created_at=datetime.now(UTC),
    )


def deliver(subscriber_id: str, ev: Event | None = None, now: datetime | None = None) -> SendResult:
    sender = SafeSender(allow_private=True)
    try:
        context = delivery_context(get_stores(), sender, lambda: now or datetime.now(UTC))
        return get_channel("push_subscriber_id").deliver(
            ev or event(message="hello"), handler_for(subscriber_id), context
        )
    finally:
        sender.close()


def vapid_claims(authorization: str, public_key: str) -> dict[str, Any]:
    """Check `vapid t=<JWT>,k=<key>` (RFC 8292) with cryptography alone; return the claims."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid"
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    assert parts["k"] == public_key
    header, claims, signature = parts["t"].split(".")
    assert json.loads(unb64(header)) == {"typ": "JWT", "alg": "ES256"}
    raw = unb64(signature)
    assert len(raw) == 64
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(public_key))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    decoded: dict[str, Any] = json.loads(unb64(claims))
    return decoded


# --- delivery -------------------------------------------------------------------------


@pytest.mark.usefixtures("stack")
def test_an_event_reaches_the_browser_encrypted_and_vapid_signed(
    api: Any, auth: dict[str, str], receiver: Receiver, vapid_keys: tuple[str, str]
) -> None:
    from app import deliver as deliver_lambda

    browser = Browser.new()
    subscriber_id = subscriber(api, auth, browser, receiver.url("/push/v2/abc"))
    created = api.http.post(
        "/notification-handlers",
        headers={**auth, **JSON},
        body=json.dumps(
            {"name": "Browser", "type": "push_subscriber_id", "push_subscriber_id": subscriber_id}
        ),
    )
    assert created.status_code == 201, created.body
    receiver.default = Reply(201)
    published = api.http.post(
        "/v1/events",
        headers={**auth, **JSON},
        body=json.dumps(
            {
                "type": "app_crashed",
                "app": "my-app",
                "type_data": {"message": "boom", "url": "https://x.io/1"},
            }
        ),
    )
    assert published.status_code == 202, published.body
    drain(deliver_lambda)

    (request,) = receiver.to("/push/v2/abc")
    assert browser.decrypt(request.body) == {
        "title": "Application crashed — my-app",
        "body": "boom",
        "url": "https://x.io/1",
        "event_id": published.json_body["id"],
        "type": "app_crashed",
    }
    assert request.headers["Content-Encoding"] == "aes128gcm"
    assert request.headers["Content-Type"] == "application/octet-stream"
    assert int(request.headers["TTL"]) > 0
    assert request.headers["Urgency"] == "normal"
    claims = vapid_claims(request.headers["Authorization"], vapid_keys[1])
    assert claims["aud"] == receiver.base  # the endpoint's origin, no path
    assert claims["sub"] == SUBJECT
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    attempts = api.http.get(
        f"/notification-handlers/{created.json_body['data']['id']}/deliveries", headers=auth
    ).json_body["data"]
    assert [(a["status"], a["http_status"]) for a in attempts] == [("delivered", 201)]


@pytest.mark.usefixtures("private_ok", "vapid_keys")
def test_hostile_text_is_just_json_data(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    browser = Browser.new()
    subscriber_id = subscriber(api, auth, browser, receiver.url("/p"))
    hostile = '"},"title":"pwned","x":{"<script>alert(1)</script>\\u0000 \u202e ${{7*7}} \n'
    result = deliver(subscriber_id, event(message=hostile, url="https://ok.example/\"'<>"))
    assert result.outcome == Outcome.SENT
    got = browser.decrypt(receiver.to("/p")[0].body)
    assert got["body"] == hostile.strip()
    assert got["title"] == "Application crashed — my-app"
    assert got["url"] == "https://ok.example/\"'<>"


@pytest.mark.parametrize(
    ("message", "url"),
    [
        ("x" * 20_000, None),
        ("é€😀" * 3000, "https://example.com/" + "a" * 2000),
        ('\u0001"\\' * 3000, None),  # JSON escaping inflates these six-fold
    ],
)
def test_long_text_is_cut_with_the_marker_to_fit_one_record(message: str, url: str | None) -> None:
    ev = event(message=message, **({"url": url} if url else {}))
    data = payload(ev)
    assert len(data) <= MAX_PLAINTEXT
    decoded = json.loads(data)
    assert decoded["body"].endswith(MARKER)
    assert message.startswith(decoded["body"].removesuffix(MARKER))
    assert len(data) > MAX_PLAINTEXT - 64  # cut to the limit, not far below it
    assert decoded["event_id"] == ev.id
    assert decoded["url"] == url
    browser = Browser.new()
    from chalicelib.channels.push_subscriber_id import encrypt

    body = encrypt(data, unb64(browser.p256dh), browser.auth)
    assert len(body) <= 4096
    assert browser.decrypt(body) == decoded


def test_an_oversized_title_and_url_give_way_too() -> None:
    ev = Event(
        account=ACCOUNT,
        id="e1",
        type="deployment",
        app="my-app",
        type_data={"status": "\u0002" * 5000, "url": "https://example.com/" + "\u0003" * 2000},
        created_at=datetime.now(UTC),
    )
    decoded = json.loads(payload(ev))
    assert len(payload(ev)) <= MAX_PLAINTEXT
    assert decoded["title"].startswith("Deployment of my-app: \u0002")
    assert decoded["title"].endswith(MARKER)
    assert decoded["url"] is None
    assert decoded["body"] == "someone deployed to my-app."  # the short body is kept whole
    assert decoded["type"] == "deployment"


@pytest.mark.usefixtures("private_ok", "vapid_keys")
@pytest.mark.parametrize("status", [404, 410])
def test_a_vanished_subscription_is_deleted_and_gone(
    api: Any, auth: dict[str, str], receiver: Receiver, status: int
) -> None:
    subscriber_id = subscriber(api, auth, Browser.new(), receiver.url("/gone"))
    receiver.script("/gone", Reply(status, "push subscription has unsubscribed or expired"))
    result = deliver(subscriber_id)
    assert result.outcome == Outcome.GONE
    assert result.http_status == status
    assert api.http.get(f"/push-subscribers/{subscriber_id}", headers=auth).status_code == 404
    again = deliver(subscriber_id)
    assert again.outcome == Outcome.GONE
    assert len(receiver.to("/gone")) == 1  # nothing sent to a deleted subscription


@pytest.mark.usefixtures("stack", "vapid_keys")
def test_a_gone_subscription_disables_its_handler(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    from app import deliver as deliver_lambda

    subscriber_id = subscriber(api, auth, Browser.new(), receiver.url("/gone"))
    created = api.http.post(
        "/notification-handlers",
        headers={**auth, **JSON},
        body=json.dumps({"name": "B", "type": "push_subscriber_id", "push_subscriber_id": subscriber_id}),
    )
    handler_id = created.json_body["data"]["id"]
    receiver.default = Reply(410)
    api.http.post("/v1/events", headers={**auth, **JSON}, body=json.dumps({"type": "app_crashed"}))
    drain(deliver_lambda)
    got = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    assert got["is_enabled"] is False
    assert get_stores().push.get(ACCOUNT, subscriber_id) is None


@pytest.mark.usefixtures("private_ok", "vapid_keys")
def test_429_is_retried_after_the_asked_delay(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    subscriber_id = subscriber(api, auth, Browser.new(), receiver.url("/busy"))
    receiver.script("/busy", Reply(429, "slow down", {"Retry-After": "120"}))
    result = deliver(subscriber_id)
    assert result.outcome == Outcome.RETRY
    assert result.retry_after == 120
    assert get_stores().push.get(ACCOUNT, subscriber_id) is not None


@pytest.mark.usefixtures("private_ok", "vapid_keys")
@pytest.mark.parametrize(("status", "outcome"), [(413, Outcome.PERMANENT), (503, Outcome.RETRY)])
def test_other_answers_are_classified(
    api: Any, auth: dict[str, str], receiver: Receiver, status: int, outcome: Outcome
) -> None:
    subscriber_id = subscriber(api, auth, Browser.new(), receiver.url("/x"))
    receiver.script("/x", Reply(status))
    assert deliver(subscriber_id).outcome == outcome
    assert get_stores().push.get(ACCOUNT, subscriber_id) is not None


@pytest.mark.usefixtures("private_ok")
def test_without_vapid_keys_delivery_fails_permanently_without_sending(
    api: Any, auth: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HERALD_VAPID_PRIVATE_KEY", raising=False)
    subscriber_id = subscriber(api, auth, Browser.new(), receiver.url("/p"))
    result = deliver(subscriber_id)
    assert (result.outcome, result.error) == (Outcome.PERMANENT, "VAPID keys are not configured")
    assert receiver.requests == []


BadVapid = tuple[str | None, str, str]


@pytest.mark.usefixtures("private_ok")
@pytest.mark.parametrize(
    "case",
    [
        ("not base64!", SUBJECT, "neither base64url nor PEM"),
        (b64(b"short"), SUBJECT, "32 bytes"),
        (b64(b"\x00" * 32), SUBJECT, "not a valid P-256 private key"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", SUBJECT, "PEM"),
        (None, "admin@example.com", "mailto: or https:"),
    ],
)
def test_bad_vapid_configuration_is_a_permanent_failure(
    api: Any, auth: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch, case: BadVapid
) -> None:
    key, subject, error = case
    monkeypatch.setenv("HERALD_VAPID_PRIVATE_KEY", key or vapid.generate_vapid_keys()[0])
    monkeypatch.setenv("HERALD_VAPID_SUBJECT", subject)
    subscriber_id = subscriber(api, auth, Browser.new(), receiver.url("/p"))
    result = deliver(subscriber_id)
    assert result.outcome == Outcome.PERMANENT
    assert error in (result.error or "")
    assert receiver.requests == []


@pytest.mark.usefixtures("moto_aws", "vapid_keys")
def test_a_deleted_subscriber_is_gone() -> None:
    result = deliver("ps_" + "0" * 24)
    assert result.outcome == Outcome.GONE
    assert result.http_status is None


@pytest.mark.usefixtures("private_ok", "vapid_keys")
def test_an_expired_subscription_is_gone_and_deleted(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    expires = int((time.time() + 3600) * 1000)
    answer = subscribe(api, auth, Browser.new().subscription(receiver.url("/p"), expirationTime=expires))
    subscriber_id = answer.json_body["data"]["id"]
    shown = api.http.get(f"/push-subscribers/{subscriber_id}", headers=auth).json_body["data"]
    assert shown["expiration_time"] == expires
    result = deliver(subscriber_id, now=datetime.now(UTC) + timedelta(hours=2))
    assert result.outcome == Outcome.GONE
    assert receiver.requests == []
    assert get_stores().push.get(ACCOUNT, subscriber_id) is None


# --- VAPID keys -----------------------------------------------------------------------


def test_generated_keys_are_a_p256_pair_in_the_browser_form(monkeypatch: pytest.MonkeyPatch) -> None:
    private, public = vapid.generate_vapid_keys()
    assert len(unb64(private)) == 32
    point = unb64(public)
    assert len(point) == 65 and point[0] == 4
    assert "=" not in private + public
    monkeypatch.setenv("HERALD_VAPID_PRIVATE_KEY", private)
    config = vapid.vapid_config()
    assert config is not None
    assert config.subject == "mailto:admin@localhost"
    assert vapid.application_server_key(config) == public


def test_a_pem_private_key_signs_too(monkeypatch: pytest.MonkeyPatch) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    monkeypatch.setenv("HERALD_VAPID_PRIVATE_KEY", pem.replace("\n", "\\n"))
    config = vapid.vapid_config()
    assert config is not None
    public = b64(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    header = vapid.authorization(config, "https://fcm.googleapis.com/fcm/send/abc", datetime.now(UTC))
    assert vapid_claims(header, public)["aud"] == "https://fcm.googleapis.com"


@pytest.mark.parametrize(
    ("endpoint", "aud"),
    [
        (
            "https://updates.push.services.mozilla.com/wpush/v2/gAAA?x=1",
            "https://updates.push.services.mozilla.com",
        ),
        ("https://Push.Example.com:443/a", "https://push.example.com"),
        ("https://push.example.com:8443/a", "https://push.example.com:8443"),
        ("http://127.0.0.1:8080/a", "http://127.0.0.1:8080"),
    ],
)
def test_the_audience_is_the_push_service_origin(endpoint: str, aud: str) -> None:
    assert vapid.audience(endpoint) == aud


# --- the subscribers API --------------------------------------------------------------


@pytest.mark.usefixtures("private_ok")
def test_a_subscriber_is_shown_without_its_keys_and_deleted(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    subscriber_id = subscriber(api, auth, Browser.new(), receiver.url("/p"))
    assert subscriber_id.startswith("ps_")
    shown = api.http.get(f"/push-subscribers/{subscriber_id}", headers=auth)
    assert shown.status_code == 200
    data = shown.json_body["data"]
    assert data["id"] == subscriber_id
    assert data["endpoint"] == receiver.url("/p")
    assert data["expiration_time"] is None
    assert "keys" not in data and "p256dh" not in json.dumps(data) and "auth" not in data
    deleted = api.http.delete(f"/push-subscribers/{subscriber_id}", headers=auth)
    assert deleted.status_code == 204
    assert api.http.get(f"/push-subscribers/{subscriber_id}", headers=auth).status_code == 404
    assert api.http.delete(f"/push-subscribers/{subscriber_id}", headers=auth).status_code == 404


@pytest.mark.usefixtures("private_ok")
def test_the_same_endpoint_again_refreshes_its_keys_under_the_same_id(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    first = subscriber(api, auth, Browser.new(), receiver.url("/p"))
    renewed = Browser.new()
    second = subscriber(api, auth, renewed, receiver.url("/p"))
    assert second == first
    stored = get_stores().push.get(ACCOUNT, first)
    assert stored is not None
    assert stored.p256dh == renewed.p256dh


@pytest.mark.usefixtures("private_ok")
def test_another_accounts_subscriber_is_404(api: Any, auth: dict[str, str], receiver: Receiver) -> None:
    theirs, _ = apikeys.create_key(get_stores(), "globex")
    their_auth = {"Authorization": f"Bearer {theirs}"}
    subscriber_id = subscriber(api, their_auth, Browser.new(), receiver.url("/p"))
    assert api.http.get(f"/push-subscribers/{subscriber_id}", headers=auth).status_code == 404
    assert api.http.delete(f"/push-subscribers/{subscriber_id}", headers=auth).status_code == 404
    assert api.http.get(f"/push-subscribers/{subscriber_id}", headers=their_auth).status_code == 200


def test_subscribers_need_an_api_key(api: Any) -> None:
    answer = api.http.post("/push-subscribers", headers=JSON, body="{}")
    assert answer.status_code == 401


def _bad_point() -> str:
    return b64(b"\x04" + b"\x01" * 64)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "http://push.example.com/a"}, "endpoint"),
        ({"endpoint": "https://10.1.2.3/a"}, "endpoint"),
        ({"endpoint": "https://169.254.169.254/latest"}, "endpoint"),
        ({"endpoint": "https://push.localhost/a"}, "endpoint"),
        ({"endpoint": "https://printer.LOCAL./a"}, "endpoint"),
        ({"endpoint": "https://metadata.google.internal/a"}, "endpoint"),
        ({"endpoint": "ftp://push.example.com/a"}, "endpoint"),
        ({"endpoint": "/relative"}, "endpoint"),
        ({"endpoint": None}, "endpoint"),
        ({"keys": None}, "keys"),
        ({"keys": {"auth": b64(b"a" * 16)}}, "keys.p256dh"),
        ({"keys": {"p256dh": b64(b"\x04" * 33), "auth": b64(b"a" * 16)}}, "keys.p256dh"),
        ({"keys": {"p256dh": _bad_point(), "auth": b64(b"a" * 16)}}, "keys.p256dh"),
        ({"keys": {"p256dh": "!!!", "auth": b64(b"a" * 16)}}, "keys.p256dh"),
        ({"keys": {"p256dh": None, "auth": b64(b"a" * 15)}}, "keys.auth"),
        ({"keys": {"p256dh": None, "auth": "not base64?"}}, "keys.auth"),
        ({"expirationTime": 1000}, "expirationTime"),
        ({"expirationTime": "soon"}, "expirationTime"),
    ],
)
def test_bad_subscriptions_are_400_naming_the_field(
    api: Any, auth: dict[str, str], change: dict[str, Any], field: str
) -> None:
    browser = Browser.new()
    body = browser.subscription("https://push.example.com/wpush/abc")
    for name, value in change.items():
        keys = value if name == "keys" and isinstance(value, dict) else None
        body[name] = {k: browser.p256dh if v is None else v for k, v in keys.items()} if keys else value
    answer = subscribe(api, auth, body)
    assert answer.status_code == 400, answer.body
    assert field in [e.get("field") for e in answer.json_body["errors"]]


def test_a_browser_subscription_json_is_accepted_as_is(api: Any, auth: dict[str, str]) -> None:
    browser = Browser.new()
    body = browser.subscription("https://fcm.googleapis.com/fcm/send/abc:def", expirationTime=None)
    body["keys"]["p256dh"] += "="  # padding is tolerated
    answer = subscribe(api, auth, body)
    assert answer.status_code == 201, answer.body
    stored = get_stores().push.get(ACCOUNT, answer.json_body["data"]["id"])
    assert stored is not None
    assert stored.p256dh == browser.p256dh
