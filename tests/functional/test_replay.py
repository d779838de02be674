"""Events and their deliveries, replays, recovers and the account's dead letters, on moto
through the routes and the real delivery function."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import apikeys
from chalicelib.models.deliveries import DeliveryTask
from chalicelib.settings import get_settings
from chalicelib.storage.stores import get_stores
from tests.functional.sqs_driver import drain, queue_depth, receive, run_batch
from tests.functional.test_delivery import JSON, api_post, deliveries, publish, webhook
from tests.receiver import Receiver, Reply

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture
def deliver() -> Any:
    from app import deliver

    return deliver


@pytest.fixture
def other_auth(api_key: str) -> dict[str, str]:
    key, _ = apikeys.create_key(get_stores(), "globex")
    return {"Authorization": f"Bearer {key}"}


def get(api: Any, path: str, auth: dict[str, str]) -> Any:
    return api.http.get(path, headers=auth)


def post(api: Any, path: str, auth: dict[str, str], body: dict[str, Any] | None = None) -> Any:
    return api_post(api, path, auth, body or {})


def show(api: Any, auth: dict[str, str], event_id: str) -> dict[str, Any]:
    answer = get(api, f"/v1/events/{event_id}", auth)
    assert answer.status_code == 200, answer.body
    return dict(answer.json_body["data"])


def test_the_accounts_events_are_listed_newest_first_paged_and_filtered(
    api: Any, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    published = [
        publish(api, auth, type=kind, app=app)["id"]
        for kind, app in [
            ("deployment", "a"),
            ("app_crashed", "a"),
            ("deployment", "b"),
            ("deployment", None),
        ]
    ]
    publish(api, other_auth, type="deployment")
    page = get(api, "/v1/events?results_per_page=10", auth).json_body
    assert [e["id"] for e in page["data"]] == published[::-1]
    assert page["meta"]["total"] == 4
    assert set(page["data"][0]) == {"id", "type", "app", "app_id", "user", "type_data", "created_at"}
    deployments = get(api, "/v1/events?type=deployment&app=a", auth).json_body
    assert [e["id"] for e in deployments["data"]] == [published[0]]
    assert deployments["links"]["self"] == "https://herald.test/v1/events?page=1&type=deployment&app=a"
    of_b = get(api, "/v1/events?app=b", auth).json_body
    assert [e["id"] for e in of_b["data"]] == [published[2]]
    assert [e["type"] for e in get(api, "/v1/events", other_auth).json_body["data"]] == ["deployment"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("type=nope", "type"),
        ("app=bad%20name", "app"),
        ("page=0", "page"),
        ("results_per_page=7", "results_per_page"),
    ],
)
def test_a_bad_filter_of_the_events_list_is_a_400_naming_it(
    api: Any, auth: dict[str, str], query: str, field: str
) -> None:
    answer = get(api, f"/v1/events?{query}", auth)
    assert answer.status_code == 400
    assert answer.json_body["errors"][0]["field"] == field


def test_an_event_shows_each_handlers_delivery_status_attempts_and_next_try(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    ok, _ = webhook(api, auth, receiver.url("/ok"))
    flaky, _ = webhook(api, auth, receiver.url("/flaky"))
    receiver.script("/flaky", Reply(503, "busy"))
    event_id = publish(api, auth)["id"]
    before = show(api, auth, event_id)
    assert [(d["handler_id"], d["status"], d["attempts"]) for d in before["deliveries"]] == [
        (ok, "pending", 0),
        (flaky, "pending", 0),
    ]
    run_batch(deliver, get_settings().deliveries_queue, receive(get_settings().deliveries_queue))
    after = {d["handler_id"]: d for d in show(api, auth, event_id)["deliveries"]}
    assert (after[ok]["status"], after[ok]["attempts"], after[ok]["http_status"]) == ("delivered", 1, 200)
    assert after[ok]["next_attempt_at"] is None
    assert (after[flaky]["status"], after[flaky]["http_status"]) == ("retrying", 503)
    assert "busy" in after[flaky]["error"]
    assert after[flaky]["next_attempt_at"] > after[flaky]["last_attempt_at"]


def test_the_accounts_stats_count_every_handlers_attempts_per_hour_and_no_other_accounts(
    api: Any, auth: dict[str, str], other_auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    webhook(api, auth, receiver.url("/ok"))
    webhook(api, auth, receiver.url("/flaky"))
    receiver.script("/flaky", Reply(503, "busy"))
    for _ in range(2):
        publish(api, auth)
    run_batch(deliver, get_settings().deliveries_queue, receive(get_settings().deliveries_queue))
    stats = get(api, "/v1/stats?hours=168", auth).json_body["data"]
    assert (stats["hours"], len(stats["per_hour"])) == (168, 168)
    # /flaky answers its first request 503, then 200
    assert (stats["attempts"], stats["delivered"], stats["success_rate"]) == (4, 3, 0.75)
    now = stats["per_hour"][-1]
    assert (now["delivered"], now["retrying"], now["failed"]) == (3, 1, 0)
    assert now["mean_ms"] is not None and now["median_ms"] is None
    assert get(api, "/v1/stats", other_auth).json_body["data"]["attempts"] == 0
    assert get(api, "/v1/stats?hours=5", auth).status_code == 400


def test_a_replay_sends_a_delivered_event_again_with_the_same_webhook_id_and_once(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/hook"))
    event_id = publish(api, auth)["id"]
    drain(deliver)
    answer = post(api, f"/v1/events/{event_id}/deliveries/{handler_id}/replay", auth)
    assert answer.status_code == 202, answer.body
    assert answer.json_body["data"] == {"event_id": event_id, "replayed": [handler_id], "in_flight": []}
    assert show(api, auth, event_id)["deliveries"][0]["status"] == "pending"
    drain(deliver)
    first, replayed = receiver.to("/hook")
    assert first.headers["webhook-id"] == replayed.headers["webhook-id"] == f"msg_{event_id}_{handler_id}"
    state = show(api, auth, event_id)["deliveries"][0]
    assert (state["status"], state["attempts"], state["replays"]) == ("delivered", 1, 1)
    assert [a["status"] for a in deliveries(api, auth, handler_id)] == ["delivered", "delivered"]


def test_a_replay_supersedes_the_retrying_message_so_the_event_is_sent_once_more(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/flaky"))
    receiver.script("/flaky", Reply(500))
    event_id = publish(api, auth)["id"]
    queue = get_settings().deliveries_queue
    run_batch(deliver, queue, receive(queue))  # the first try fails; its retry waits in the queue
    assert post(api, f"/v1/events/{event_id}/replay", auth).json_body["data"]["replayed"] == [handler_id]
    drain(deliver)  # the old retry comes back too, and is dropped
    assert len(receiver.to("/flaky")) == 2
    assert show(api, auth, event_id)["deliveries"][0]["status"] == "delivered"


def test_replaying_to_every_handler_leaves_one_in_flight_to_its_attempt(
    api: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    first, _ = webhook(api, auth, receiver.url("/a"))
    second, _ = webhook(api, auth, receiver.url("/b"))
    event_id = publish(api, auth)["id"]
    leased = DeliveryTask(account="acme", event_id=event_id, handler_id=second)
    now = int(datetime.now(UTC).timestamp())
    assert get_stores().deliveries.claim_delivery(leased, now, 60).state == "claimed", "an attempt in flight"
    answer = post(api, f"/v1/events/{event_id}/replay", auth)
    assert answer.json_body["data"] == {"event_id": event_id, "replayed": [first], "in_flight": [second]}
    one = post(api, f"/v1/events/{event_id}/deliveries/{second}/replay", auth)
    assert one.status_code == 409
    assert "in flight" in one.json_body["errors"][0]["detail"]


def test_a_recover_requeues_what_failed_since_a_moment_and_a_second_one_nothing(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/down"))
    receiver.script("/down", Reply(400, "not yet"), Reply(400, "not yet"))
    failed = [publish(api, auth)["id"] for _ in range(2)]
    drain(deliver)
    assert [a["status"] for a in deliveries(api, auth, handler_id)] == ["failed", "failed"]
    answer = post(api, f"/notification-handlers/{handler_id}/recover", auth)
    assert answer.status_code == 202, answer.body
    assert sorted(answer.json_body["data"]["requeued"]) == sorted(failed)
    again = post(api, f"/notification-handlers/{handler_id}/recover", auth)
    assert again.json_body["data"]["requeued"] == [], "idempotent: both are pending now"
    drain(deliver)
    assert len(receiver.to("/down")) == 4, "each failed event sent once more, not twice"
    assert {show(api, auth, e)["deliveries"][0]["status"] for e in failed} == {"delivered"}
    assert post(api, f"/notification-handlers/{handler_id}/recover", auth).json_body["data"]["requeued"] == []


def test_a_recover_since_after_the_failures_requeues_nothing(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/down"))
    receiver.script("/down", Reply(400))
    publish(api, auth)
    drain(deliver)
    after_the_failure = datetime.now(UTC).isoformat()
    answer = post(api, f"/notification-handlers/{handler_id}/recover", auth, {"since": after_the_failure})
    assert answer.status_code == 202, answer.body
    assert answer.json_body["data"]["requeued"] == []
    future = post(
        api, f"/notification-handlers/{handler_id}/recover", auth, {"since": "2999-01-01T00:00:00Z"}
    )
    assert future.status_code == 400
    assert future.json_body["errors"][0] == {
        "status": 400,
        "title": "Invalid input",
        "detail": "since: must not be in the future",
        "field": "since",
    }


@pytest.mark.parametrize("since", ["yesterday", "", 12.5e300, "2025-13-01T00:00:00"])
def test_a_bad_since_is_a_400_naming_it(
    api: Any, auth: dict[str, str], receiver: Receiver, since: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/x"))
    answer = api.http.post(
        f"/notification-handlers/{handler_id}/recover",
        headers={**auth, **JSON},
        body=json.dumps({"since": since}),
    )
    assert answer.status_code == 400, answer.body
    assert answer.json_body["errors"][0]["field"] == "since"


def test_the_attempt_log_is_filtered_by_status_and_event_with_the_filters_in_its_links(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/mixed"))
    receiver.script("/mixed", Reply(400, "no"), Reply(200))
    published = {publish(api, auth)["id"], publish(api, auth)["id"]}
    drain(deliver)  # whichever SQS hands over first is refused
    failed = get(api, f"/notification-handlers/{handler_id}/deliveries?status=failed", auth).json_body
    [(refused, status)] = [(a["event_id"], a["status"]) for a in failed["data"]]
    assert status == "failed"
    [accepted] = published - {refused}
    assert failed["meta"]["total"] == 1
    assert failed["links"]["next"] is None
    assert failed["links"]["self"].endswith("?page=1&status=failed")
    of_event = get(api, f"/notification-handlers/{handler_id}/deliveries?event_id={accepted}", auth).json_body
    assert [(a["event_id"], a["status"]) for a in of_event["data"]] == [(accepted, "delivered")]
    bad = get(api, f"/notification-handlers/{handler_id}/deliveries?status=lost", auth)
    assert bad.status_code == 400
    assert bad.json_body["errors"][0]["field"] == "status"


def test_the_api_redrives_the_accounts_dead_letters_and_never_anothers(
    api: Any, auth: dict[str, str], other_auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    mine, _ = webhook(api, auth, receiver.url("/mine"))
    theirs, _ = webhook(api, other_auth, receiver.url("/theirs"))
    receiver.script("/mine", *[Reply(500)] * 8)
    receiver.script("/theirs", *[Reply(500)] * 8)
    mine_event = publish(api, auth)["id"]
    theirs_event = publish(api, other_auth)["id"]
    drain(deliver)
    dlq = get_settings().deliveries_dlq
    assert queue_depth(dlq) == 2
    assert show(api, auth, mine_event)["deliveries"][0]["dead_lettered"] is True
    answer = post(api, "/v1/dead-letters/redrive", auth)
    assert answer.status_code == 200, answer.body
    assert answer.json_body["data"] == {"redriven": 1}
    assert queue_depth(dlq) == 1
    (left,) = receive(dlq)
    assert json.loads(left["Body"])["account"] == "globex"
    drain(deliver)
    assert len(receiver.to("/mine")) == 9
    assert len(receiver.to("/theirs")) == 8
    assert post(api, "/v1/dead-letters/redrive?limit=0", auth).json_body["errors"][0]["field"] == "limit"
    assert {d["handler_id"] for d in show(api, other_auth, theirs_event)["deliveries"]} == {theirs}
    assert show(api, auth, mine_event)["deliveries"][0]["handler_id"] == mine


def test_a_recovered_dead_letter_is_dropped_not_resent_when_the_dlq_is_redriven(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/later"))
    receiver.script("/later", *[Reply(500)] * 8)
    publish(api, auth)
    drain(deliver)
    assert (
        len(post(api, f"/notification-handlers/{handler_id}/recover", auth).json_body["data"]["requeued"])
        == 1
    )
    drain(deliver)
    assert len(receiver.to("/later")) == 9
    assert post(api, "/v1/dead-letters/redrive", auth).json_body["data"] == {"redriven": 0}
    assert queue_depth(get_settings().deliveries_dlq) == 0
    drain(deliver)
    assert len(receiver.to("/later")) == 9, "the superseded DLQ message sent nothing"


def test_another_account_gets_404_for_the_events_and_deliveries_it_does_not_own(
    api: Any, auth: dict[str, str], other_auth: dict[str, str], receiver: Receiver, deliver: Any
) -> None:
    handler_id, _ = webhook(api, auth, receiver.url("/hook"))
    event_id = publish(api, auth)["id"]
    drain(deliver)
    for path in (f"/v1/events/{event_id}", f"/notification-handlers/{handler_id}/deliveries"):
        assert get(api, path, other_auth).status_code == 404
    for path in (
        f"/v1/events/{event_id}/replay",
        f"/v1/events/{event_id}/deliveries/{handler_id}/replay",
        f"/notification-handlers/{handler_id}/recover",
    ):
        assert post(api, path, other_auth).status_code == 404, path
    assert get(api, "/v1/events", other_auth).json_body["data"] == []
    drain(deliver)
    assert len(receiver.to("/hook")) == 1, "nothing was replayed"
    assert get(api, "/v1/events/no%20such", auth).status_code == 404
    assert post(api, f"/v1/events/{event_id}/deliveries/99/replay", auth).status_code == 404
