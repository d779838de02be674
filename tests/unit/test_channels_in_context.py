"""The channels that reach a store or a mailer, on the fakes of their delivery context: the
in-app inbox, Web Push and email, at a fixed time, with no AWS and no sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import vapid
from chalicelib.channels import get_channel
from chalicelib.delivery.safe_http import HttpResult
from chalicelib.models.deliveries import Outcome
from chalicelib.models.handlers import Handler
from chalicelib.models.inbox import Counts, notification_id
from chalicelib.models.push import PushSubscriber
from chalicelib.storage.stores import Stores
from tests.fakes.delivery import RecordingMailer, RecordingSender, fake_context
from tests.fakes.stores import memory_stores
from tests.functional.test_push import Browser, b64, vapid_claims
from tests.functional.test_push import event as make_event

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
ACCOUNT = "acme"
ENDPOINT = "https://push.example.net/send/abc123"
SUBJECT = "mailto:ops@example.com"


def make_handler(handler_type: str, settings: dict[str, str]) -> Handler:
    return Handler(
        account=ACCOUNT, id=3, type=handler_type, name="n", settings=settings, created_at=NOW, updated_at=NOW
    )


# ---------------------------------------------------------------- the in-app inbox


def test_an_internal_notification_lands_in_the_inbox_of_the_day_the_clock_says() -> None:
    stores, sender = memory_stores(), RecordingSender()
    event = make_event(message="It fell over.", url="https://status.example.com/1")
    result = get_channel("internal_notification").deliver(
        event, make_handler("internal_notification", {}), fake_context(NOW, stores=stores, sender=sender)
    )
    assert result.outcome == Outcome.SENT
    assert sender.posted == []
    (note,) = stores.inbox.list_page(ACCOUNT, None, 1, 25, now=NOW).notifications
    assert note.id == notification_id(event.created_at, f"{event.id}\n3")
    assert (note.type, note.title, note.body) == (
        "app_crashed",
        "Application crashed — my-app",
        "It fell over.",
    )
    assert note.link == "https://status.example.com/1"
    assert [(f.name, f.value) for f in note.fields] == [("App", "my-app")]
    assert (note.event_id, note.handler_id, note.read) == (event.id, 3, False)
    assert note.created_at == event.created_at
    assert note.day == "20260304"


def test_an_internal_notification_delivered_twice_is_in_the_inbox_once() -> None:
    stores = memory_stores()
    channel, handler, event = (
        get_channel("internal_notification"),
        make_handler("internal_notification", {}),
        make_event(),
    )
    for later in (NOW, NOW + timedelta(hours=1)):
        assert channel.deliver(event, handler, fake_context(later, stores=stores)).outcome == Outcome.SENT
    assert stores.inbox.counts(ACCOUNT, NOW) == Counts(unread=1, total=1)


# ---------------------------------------------------------------- Web Push


@pytest.fixture
def keys() -> tuple[vapid.VapidConfig, str]:
    private, public = vapid.generate_vapid_keys()
    return vapid.VapidConfig(private, SUBJECT), public


def subscribe(stores: Stores, browser: Browser, expiration_time: int | None = None) -> PushSubscriber:
    return stores.push.save(
        ACCOUNT,
        endpoint=ENDPOINT,
        p256dh=browser.p256dh,
        auth=b64(browser.auth),
        expiration_time=expiration_time,
        now=NOW,
    )


def push(
    stores: Stores, ident: str, config: vapid.VapidConfig | None, sender: RecordingSender
) -> tuple[Outcome, str | None]:
    handler = make_handler("push_subscriber_id", {"push_subscriber_id": ident})
    context = fake_context(NOW, stores=stores, sender=sender, vapid=config)
    result = get_channel("push_subscriber_id").deliver(make_event(message="hello"), handler, context)
    return result.outcome, result.error


def test_a_push_is_one_encrypted_post_signed_for_the_clocks_time(keys: tuple[vapid.VapidConfig, str]) -> None:
    config, public = keys
    stores, sender, browser = (
        memory_stores(),
        RecordingSender(HttpResult(201, {}, b"", 4, None)),
        Browser.new(),
    )
    subscriber = subscribe(stores, browser)
    assert push(stores, subscriber.id, config, sender) == (Outcome.SENT, None)
    (request,) = sender.posted
    assert request.url == ENDPOINT
    authorization = request.headers.pop("Authorization")
    assert request.headers == {
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": "86400",
        "Urgency": "normal",
    }
    assert vapid_claims(authorization, public) == {
        "sub": SUBJECT,
        "aud": "https://push.example.net",
        "exp": int(NOW.timestamp()) + vapid.TOKEN_LIFETIME_SECONDS,
    }
    assert browser.decrypt(request.body) == {
        "title": "Application crashed — my-app",
        "body": "hello",
        "url": None,
        "event_id": "5f1a00000000000000000002",
        "type": "app_crashed",
    }
    assert stores.push.get(ACCOUNT, subscriber.id) == subscriber


@pytest.mark.parametrize("status", [404, 410])
def test_a_push_service_that_forgot_the_subscription_makes_herald_forget_it(
    status: int, keys: tuple[vapid.VapidConfig, str]
) -> None:
    stores, sender = memory_stores(), RecordingSender(HttpResult(status, {}, b"gone", 4, None))
    subscriber = subscribe(stores, Browser.new())
    assert push(stores, subscriber.id, keys[0], sender) == (Outcome.GONE, f"HTTP {status}: gone")
    assert stores.push.get(ACCOUNT, subscriber.id) is None


def test_a_subscription_expired_by_the_clock_is_forgotten_without_a_request(
    keys: tuple[vapid.VapidConfig, str],
) -> None:
    stores, sender = memory_stores(), RecordingSender()
    subscriber = subscribe(stores, Browser.new(), expiration_time=int(NOW.timestamp() * 1000))
    outcome = push(stores, subscriber.id, keys[0], sender)
    assert outcome == (Outcome.GONE, f"push subscription {subscriber.id} expired")
    assert sender.posted == []
    assert stores.push.get(ACCOUNT, subscriber.id) is None


def test_a_push_to_a_deleted_subscriber_is_gone_without_a_request(
    keys: tuple[vapid.VapidConfig, str],
) -> None:
    sender = RecordingSender()
    assert push(memory_stores(), "ps_missing", keys[0], sender) == (
        Outcome.GONE,
        "push subscriber ps_missing no longer exists",
    )
    assert sender.posted == []


def test_a_push_without_vapid_keys_fails_for_good_without_a_request() -> None:
    stores, sender = memory_stores(), RecordingSender()
    subscriber = subscribe(stores, Browser.new())
    assert push(stores, subscriber.id, None, sender) == (Outcome.PERMANENT, "VAPID keys are not configured")
    assert sender.posted == []


# ---------------------------------------------------------------- email


def test_an_email_is_one_mail_through_the_contexts_mailer_to_the_confirmed_addresses() -> None:
    mailer, sender = RecordingMailer(), RecordingSender()
    handler = make_handler("email", {"email": "ops@example.com, new@example.com"})
    handler.confirmed_emails = ["ops@example.com"]
    event = make_event(message="<b>It</b> fell over.")
    result = get_channel("email").deliver(event, handler, fake_context(NOW, mailer=mailer, sender=sender))
    assert result.outcome == Outcome.SENT
    assert sender.posted == []
    (mail,) = mailer.sent
    assert (mail.to, mail.subject) == (["ops@example.com"], "Application crashed — my-app")
    assert mail.text == "Application crashed — my-app\n<b>It</b> fell over.\nApp: my-app"
    assert mail.html_body == (
        "<h2>Application crashed — my-app</h2><p>&lt;b&gt;It&lt;/b&gt; fell over.</p>"
        "<table><tr><th align='left'>App</th><td>my-app</td></tr></table>"
    )


def test_an_email_handler_without_a_confirmed_address_mails_no_one() -> None:
    mailer = RecordingMailer()
    handler = make_handler("email", {"email": "ops@example.com"})
    result = get_channel("email").deliver(make_event(), handler, fake_context(NOW, mailer=mailer))
    assert (result.outcome, mailer.sent) == (Outcome.PERMANENT, [])
