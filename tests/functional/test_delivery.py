"""The delivery engine end to end on moto: events in, fan-out over SQS, signed webhooks out."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chalicelib import clients
from chalicelib.settings import get_settings
from chalicelib.storage.stores import get_stores
from tests.functional.sqs_driver import drain, lambda_record, queue_depth, receive, run_batch
from tests.receiver import Receiver, Reply

pytestmark = pytest.mark.usefixtures("stack")

JSON = {"Content-Type": "application/json"}


def api_post(api: Any, path: str, auth: dict[str, str], body: dict[str, Any]) -> Any:
    return api.http.post(path, headers={**auth, **JSON}, body=json.dumps(body))


def webhook(api: Any, auth: dict[str, str], url: str, **extra: Any) -> tuple[int, str]:
    answer = api_post(
        api, "/notification-handlers", auth, {"name": "hook", "type": "webhook", "webhook": url, **extra}
    )
    assert answer.status_code == 201, answer.body
    return answer.json_body["data"]["id"], answer.json_body["data"]["secret"]


def publish(api: Any, auth: dict[str, str], **body: Any) -> Any:
    body.setdefault("type", "deployment")
    answer = api_post(api, "/v1/events", auth, body)
    assert answer.status_code == 202, answer.body
    return answer.json_body


def deliveries(api: Any, auth: dict[str, str], handler_id: int) -> list[dict[str, Any]]:
    answer = api.http.get(f"/notification-handlers/{handler_id}/deliveries", headers=auth)
    assert answer.status_code == 200
    return list(answer.json_body["data"])


@pytest.fixture
def deliver() -> Any:
    from app import deliver

    return deliver


DEPLOYMENT = {
    "app": "my-app",
    "user": {"username": "johndoe", "email": "john@doe.com", "id": "51e6bc626edfe40bbb000001"},
    "type_data": {
        "deployment_id": "5343eccd",
        "pusher": "johndoe",
        "git_ref": "0123abc",
        "status": "success",
    },
}


def test_an_event_reaches_a_signed_webhook_in_the_seed_format(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, secret = webhook(api, auth, receiver.url("/hook"))
    assert secret.startswith("whsec_")
    published = publish(api, auth, **DEPLOYMENT)
    assert published["matched"] == 1
    drain(deliver)
    (request,) = receiver.to("/hook")
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["id"] == published["id"]
    assert set(payload) == {"id", "created_at", "user", "app_id", "app_name", "type", "type_data"}
    assert payload["type"] == "deployment"
    assert payload["app_name"] == "my-app"
    assert payload["user"]["username"] == "johndoe"
    assert payload["type_data"]["git_ref"] == "0123abc"
    assert request.headers["webhook-id"] == f"msg_{published['id']}_{handler_id}"
    handler = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    assert handler["last_datetime"] is not None


def test_tampered_and_stale_messages_fail_verification(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    _, secret = webhook(api, auth, receiver.url("/hook"))
    publish(api, auth)
    drain(deliver)
    (request,) = receiver.to("/hook")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body.replace(b"deployment", b"deploymenT"), request.headers)
    stale = {**request.headers, "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) - 3600)}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body, stale)


def test_a_receiver_failing_twice_gets_the_event_once_after_three_attempts(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/flaky"))
    receiver.script("/flaky", Reply(500, "boom"), Reply(503, "busy"), Reply(200, "ok"))
    publish(api, auth)
    drain(deliver)
    assert [r.method for r in receiver.to("/flaky")] == ["POST"] * 3
    ids = {r.headers["webhook-id"] for r in receiver.to("/flaky")}
    assert len(ids) == 1, "retries keep the same webhook-id"
    log = deliveries(api, auth, handler_id)
    assert [(a["attempt"], a["status"], a["http_status"]) for a in log] == [
        (3, "delivered", 200),
        (2, "retrying", 503),
        (1, "retrying", 500),
    ]
    assert "boom" in log[2]["error"]


def test_a_retry_waits_for_its_backoff_before_sqs_redelivers_it(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    webhook(api, auth, receiver.url("/down"))
    receiver.script("/down", Reply(500))
    publish(api, auth)
    queue = get_settings().deliveries_queue
    failed = run_batch(deliver, queue, receive(queue))
    assert len(failed) == 1
    assert receive(queue) == [], "the message is hidden for its backoff delay"
    assert queue_depth(queue) == 1, "and not lost"


def test_an_sqs_message_delivered_twice_is_sent_once(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    webhook(api, auth, receiver.url("/once"))
    publish(api, auth)
    queue = get_settings().deliveries_queue
    (message,) = receive(queue)
    duplicate = {**message, "MessageId": message["MessageId"] + "-again"}
    deliver({"Records": [lambda_record(message, queue)]}, None)
    deliver({"Records": [lambda_record(duplicate, queue)]}, None)
    assert len(receiver.to("/once")) == 1


def test_a_batch_of_ten_names_exactly_its_three_failures(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    failing = set()
    for i in range(10):
        handler_id, _ = webhook(api, auth, receiver.url(f"/r{i}"))
        if i in (2, 5, 7):
            receiver.script(f"/r{i}", Reply(500))
            failing.add(handler_id)
    publish(api, auth)
    queue = get_settings().deliveries_queue
    messages = receive(queue)
    assert len(messages) == 10
    assert len({m["MessageId"] for m in messages}) == 10
    records = [lambda_record(m, queue) for m in messages]
    answer = deliver({"Records": records}, None)
    expected = {m["MessageId"] for m in messages if json.loads(m["Body"])["handler_id"] in failing}
    assert {f["itemIdentifier"] for f in answer["batchItemFailures"]} == expected
    assert sum(len(receiver.to(f"/r{i}")) for i in range(10)) == 10


def test_a_batch_is_recorded_in_one_write_and_retried_whole_if_that_fails(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    ids = [webhook(api, auth, receiver.url(f"/b{i}"))[0] for i in range(3)]
    publish(api, auth)
    queue = get_settings().deliveries_queue
    records = [lambda_record(m, queue) for m in receive(queue)]
    writes: list[int] = []

    def unavailable(params: dict[str, Any], **_: Any) -> None:
        writes.append(sum(len(items) for items in params["RequestItems"].values()))
        raise ConnectionError("DynamoDB is unreachable")

    events = clients.client("dynamodb").meta.events
    events.register("before-parameter-build.dynamodb.BatchWriteItem", unavailable)
    try:
        answer = deliver({"Records": records}, None)
    finally:
        events.unregister("before-parameter-build.dynamodb.BatchWriteItem", unavailable)
    assert writes == [6], "three delivery records and three log entries, one call"
    assert len(answer["batchItemFailures"]) == 3, "sent but not on record: every message comes back"
    assert all(deliveries(api, auth, handler_id) == [] for handler_id in ids)
    assert sum(len(receiver.to(f"/b{i}")) for i in range(3)) == 3

    answer = deliver({"Records": records}, None)  # within the lease: nobody sends twice at once
    assert len(answer["batchItemFailures"]) == 3
    assert sum(len(receiver.to(f"/b{i}")) for i in range(3)) == 3


def test_a_batch_claims_in_one_call_and_one_by_one_if_that_call_fails(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    for i in range(3):
        webhook(api, auth, receiver.url(f"/c{i}"))
    publish(api, auth)
    publish(api, auth)
    queue = get_settings().deliveries_queue
    first = [lambda_record(m, queue) for m in receive(queue, 3)]
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    def unavailable(**_: Any) -> None:
        raise ConnectionError("DynamoDB is unreachable")

    events = clients.client("dynamodb").meta.events
    events.register("before-call.dynamodb", count)
    try:
        assert deliver({"Records": first}, None)["batchItemFailures"] == []
        assert calls.count("TransactWriteItems") == 1
        assert calls.count("UpdateItem") == 4, "a health note per delivery, the account's hour, no claim"
        calls.clear()
        second = [lambda_record(m, queue) for m in receive(queue, 3)]
        events.register("before-parameter-build.dynamodb.TransactWriteItems", unavailable)
        assert deliver({"Records": second}, None)["batchItemFailures"] == []
    finally:
        events.unregister("before-call.dynamodb", count)
        events.unregister("before-parameter-build.dynamodb.TransactWriteItems", unavailable)
    assert calls.count("UpdateItem") == 7, "three claims one by one, three notes, the account's hour"
    assert sum(len(receiver.to(f"/c{i}")) for i in range(3)) == 6


def test_410_disables_the_handler_and_tells_the_account(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/gone"))
    receiver.script("/gone", Reply(410, "gone"))
    publish(api, auth)
    drain(deliver)
    assert len(receiver.to("/gone")) == 1, "410 is not retried"
    handler = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    assert handler["is_enabled"] is False
    assert "410" in handler["disabled_reason"]
    inbox = _inbox("acme")
    assert [n["handler_id"] for n in inbox] == [handler_id]
    assert publish(api, auth)["matched"] == 0, "a disabled handler gets no more events"


def _inbox(account: str) -> list[dict[str, Any]]:

    page = get_stores().inbox.list_page(account, None, 1, 100, now=datetime.now(UTC))
    return [n.model_dump() for n in page.notifications]


def test_429_waits_at_least_its_retry_after(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    webhook(api, auth, receiver.url("/limited"))
    receiver.script("/limited", Reply(429, "slow down", {"Retry-After": "900"}))
    publish(api, auth)
    resent: list[dict[str, Any]] = []

    def spy(params: dict[str, Any], **_: Any) -> None:
        resent.extend(params["Entries"])

    events = clients.client("sqs").meta.events
    events.register("provide-client-params.sqs.SendMessageBatch", spy)
    queue = get_settings().deliveries_queue
    sent_ms = time.time() * 1000
    assert run_batch(deliver, queue, receive(queue)) == set()  # a delayed message waits instead
    (waiting,) = resent
    assert waiting["DelaySeconds"] == 900
    assert json.loads(waiting["MessageBody"])["due_at"] >= sent_ms + 900_000


def test_a_permanent_4xx_is_recorded_failed_without_retry(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/bad"))
    receiver.script("/bad", Reply(400, "bad payload"))
    publish(api, auth)
    drain(deliver)
    assert len(receiver.to("/bad")) == 1
    (attempt,) = deliveries(api, auth, handler_id)
    assert (attempt["status"], attempt["http_status"]) == ("failed", 400)
    assert queue_depth(get_settings().deliveries_dlq) == 0


def test_after_the_last_attempt_the_delivery_is_failed_and_dead_lettered(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/dead"))
    receiver.default = Reply(500, "down for good")
    published = publish(api, auth)
    drain(deliver)
    assert len(receiver.to("/dead")) == 8, "Svix's schedule: the first try and seven retries"
    assert deliveries(api, auth, handler_id)[0]["status"] == "failed"
    dlq = get_settings().deliveries_dlq
    (parked,) = receive(dlq)
    assert json.loads(parked["Body"]) == {
        "account": "acme",
        "event_id": published["id"],
        "handler_id": handler_id,
        "generation": 0,
    }
    assert "gave up after 8 attempts" in parked["MessageAttributes"]["reason"]["StringValue"]


def test_publishing_the_same_id_twice_is_one_event(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    webhook(api, auth, receiver.url("/idem"))
    first = publish(api, auth, id="evt-123")
    second = publish(api, auth, id="evt-123")
    assert first["id"] == second["id"] == "evt-123"
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert second["matched"] == 1
    drain(deliver)
    assert len(receiver.to("/idem")) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "no_such_event"}, "type"),
        ({}, "type"),
        ({"type": "deployment", "extra": 1}, "extra"),
        ({"type": "deployment", "type_data": "x"}, "type_data"),
        ({"type": "deployment", "id": "has space"}, "id"),
    ],
)
def test_bad_events_are_400_naming_the_field(
    api: Any, auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    answer = api_post(api, "/v1/events", auth, body)
    assert answer.status_code == 400
    assert answer.json_body["errors"][0]["field"] == field
    assert queue_depth(get_settings().deliveries_queue) == 0


def test_events_need_an_api_key(api: Any) -> None:
    assert api.http.post("/v1/events", headers=JSON, body="{}").status_code == 401


def test_the_event_type_catalog_is_public(api: Any) -> None:
    types = api.http.get("/v1/event_types").json_body["event_types"]
    names = {t["name"] for t in types}
    assert {
        "deployment",
        "build_created",
        "build_processed",
        "feedback_created",
        "certificate_will_expire",
    } <= names
    assert {"alert_triggered"} <= names
    ids = {t["id"] for t in types}
    assert {"5982f139d48c360021b1eb69", "59c52a9c7651ce001f62f578", "5b28bf2485232200126f373e"} <= ids
    assert all(
        set(t) == {"id", "name", "display_name", "category", "description", "type_data"} for t in types
    )
    operational = {t["name"]: t for t in types if t["category"] == "operational"}
    assert set(operational) == {"handler_disabled", "delivery_exhausted", "handler_recovered"}
    assert all(
        {"handler_id", "handler_name", "handler_type"} <= set(t["type_data"]) for t in operational.values()
    )


def test_subscriptions_select_which_handlers_match(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    url = receiver.url("/x")
    webhook(api, auth, url)  # everything
    webhook(api, auth, url, send_all_events=False, selected_event_ids=["build_created"])
    webhook(api, auth, url, app="other-app")
    webhook(api, auth, url, app="my-app", send_all_alerts=False)
    webhook(api, auth, url, is_enabled=False)
    assert publish(api, auth, app="my-app")["matched"] == 2
    assert publish(api, auth, type="build_created", app="other-app")["matched"] == 3
    # alerts: the first two (send_all_alerts defaults to true), not the one that opted out
    assert publish(api, auth, type="alert_triggered", app="my-app")["matched"] == 2
    assert publish(api, auth, type="build_created")["matched"] == 2


def test_selected_event_ids_accept_ids_and_names_from_forms(api: Any, auth: dict[str, str]) -> None:
    answer = api.http.post(
        "/notification-handlers",
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
        body="name=n&type=email&email=a@b.co&send_all_events=0&selected_event_ids=deployment,5b28bf2485232200126f373e",
    )
    assert answer.status_code == 201
    data = api.http.get(f"/notification-handlers/{answer.json_body['data']['id']}", headers=auth).json_body[
        "data"
    ]
    assert data["send_all_events"] is False
    assert data["selected_event_ids"] == ["5982f139d48c360021b1eb69", "5b28bf2485232200126f373e"]
    bad = api_post(
        api,
        "/notification-handlers",
        auth,
        {"name": "n", "type": "email", "email": "a@b.co", "selected_event_ids": ["nope"]},
    )
    assert bad.status_code == 400
    assert bad.json_body["errors"][0]["field"].startswith("selected_event_ids")


def test_the_test_endpoint_reports_the_outcome_synchronously(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    handler_id, secret = webhook(api, auth, receiver.url("/t"))
    receiver.script("/t", Reply(200), Reply(500, "nope"))
    ok = api.http.post(f"/notification-handlers/{handler_id}/test", headers=auth).json_body["data"]
    assert (ok["ok"], ok["outcome"], ok["http_status"], ok["error"]) == (True, "sent", 200, None)
    payload = Webhook(secret).verify(receiver.to("/t")[0].body, receiver.to("/t")[0].headers)
    assert payload["type"] == "test"
    failed = api.http.post(f"/notification-handlers/{handler_id}/test", headers=auth).json_body["data"]
    assert (failed["ok"], failed["http_status"]) == (False, 500)
    assert "nope" in failed["error"]
    assert [a["status"] for a in deliveries(api, auth, handler_id)] == ["failed", "delivered"]


def test_a_rotated_secret_overlaps_with_the_old_one(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, old = webhook(api, auth, receiver.url("/rot"))
    answer = api.http.post(f"/notification-handlers/{handler_id}/rotate-secret", headers=auth)
    assert answer.status_code == 200
    new = answer.json_body["data"]["secret"]
    assert new != old
    publish(api, auth)
    drain(deliver)
    (request,) = receiver.to("/rot")
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(request.body, request.headers)
    Webhook(new).verify(request.body, request.headers)
    assert api.http.post("/notification-handlers/99/rotate-secret", headers=auth).status_code == 404


def test_a_handler_failing_for_days_is_disabled(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/long"))
    receiver.default = Reply(400)
    stores = get_stores()
    long_ago = datetime.now(UTC) - timedelta(days=6)
    stores.handlers.update_handler(
        "acme",
        handler_id,
        fields={"failing_since": long_ago.isoformat()},
        settings={},
        replace_settings=False,
        expected_type=None,
        now=long_ago,
    )
    publish(api, auth)
    drain(deliver)
    handler = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"]
    assert handler["is_enabled"] is False
    assert "5 days" in handler["disabled_reason"]
    assert len(_inbox("acme")) == 1


def test_the_ingest_queue_publishes_like_the_api(
    auth: dict[str, str], api: Any, receiver: Receiver, deliver: Any
) -> None:
    from app import ingest_events

    webhook(api, auth, receiver.url("/ingested"))
    sqs = clients.client("sqs")
    settings = get_settings()
    sqs.send_message(
        QueueUrl=clients.queue_url(settings.ingest_queue),
        MessageBody=json.dumps({"account": "acme", "type": "deployment", "app": "a"}),
    )
    sqs.send_message(
        QueueUrl=clients.queue_url(settings.ingest_queue),
        MessageBody=json.dumps({"account": "acme", "type": "nope"}),
    )
    (first, second) = receive(settings.ingest_queue)
    run_batch(ingest_events, settings.ingest_queue, [first, second])
    run_batch(ingest_events, settings.ingest_queue, [first])  # redelivered: still one event
    drain(deliver)
    assert len(receiver.to("/ingested")) == 1
    (refused,) = receive(settings.ingest_dlq)
    assert "unknown event type" in refused["MessageAttributes"]["reason"]["StringValue"]


def test_without_partial_batch_reporting_a_failure_fails_the_whole_batch(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.delivery.worker import BatchIncomplete

    monkeypatch.setenv("HERALD_REPORT_BATCH_ITEM_FAILURES", "0")
    webhook(api, auth, receiver.url("/ok"))
    webhook(api, auth, receiver.url("/ko"))
    receiver.script("/ko", Reply(500))
    publish(api, auth)
    queue = get_settings().deliveries_queue
    messages = receive(queue)
    with pytest.raises(BatchIncomplete):
        deliver({"Records": [lambda_record(m, queue) for m in messages]}, None)
    monkeypatch.setenv("HERALD_REPORT_BATCH_ITEM_FAILURES", "1")
    for m in messages:
        clients.client("sqs").change_message_visibility(
            QueueUrl=clients.queue_url(queue), ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
        )
    drain(deliver)
    assert len(receiver.to("/ok")) == 1, "the delivered one is not sent again when the batch comes back"
    assert len(receiver.to("/ko")) == 2


def test_redrive_replays_a_dead_lettered_delivery_with_fresh_attempts(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib.cli import main

    webhook(api, auth, receiver.url("/later"))
    receiver.script("/later", *[Reply(500)] * 8)
    publish(api, auth)
    drain(deliver)
    assert queue_depth(get_settings().deliveries_dlq) == 1
    assert main(["dlq", "redrive"]) == 0
    assert "redriven: 1" in capsys.readouterr().out
    assert queue_depth(get_settings().deliveries_dlq) == 0
    drain(deliver)
    assert [r.method for r in receiver.to("/later")][-1] == "POST"
    assert len(receiver.to("/later")) == 9, "the ninth try, after redrive, succeeds"
    assert queue_depth(get_settings().deliveries_dlq) == 0


def test_numbers_in_event_data_arrive_as_json_numbers(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    webhook(api, auth, receiver.url("/numbers"))
    publish(api, auth, type_data={"duration": 40, "ratio": 0.25, "nested": {"n": [1, 2.5]}})
    drain(deliver)
    (request,) = receiver.to("/numbers")
    assert request.json()["type_data"] == {"duration": 40, "ratio": 0.25, "nested": {"n": [1, 2.5]}}
