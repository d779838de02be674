"""No SSRF through user URLs: refused when saved, and again at delivery."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import services
from chalicelib.storage.dynamo import get_store
from tests.functional.sqs_driver import drain
from tests.receiver import Receiver


@pytest.fixture
def production_like(stack: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.delivery import worker

    monkeypatch.setenv("HERALD_ALLOW_PRIVATE_TARGETS", "0")
    worker.reset_sender()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://localhost/hook",
    ],
)
def test_private_targets_are_refused_when_saved(
    production_like: None, api: Any, auth: dict[str, str], url: str
) -> None:
    answer = api.http.post(
        "/notification-handlers",
        headers={**auth, "Content-Type": "application/json"},
        body=json.dumps({"name": "x", "type": "webhook", "webhook": url}),
    )
    assert answer.status_code == 400, answer.body
    assert answer.json_body["errors"][0]["field"] == "webhook"
    assert api.http.get("/notification-handlers", headers=auth).json_body["meta"]["total"] == 0


def test_a_name_that_does_not_resolve_yet_is_accepted(
    production_like: None, api: Any, auth: dict[str, str]
) -> None:
    answer = api.http.post(
        "/notification-handlers",
        headers={**auth, "Content-Type": "application/json"},
        body=json.dumps({"name": "x", "type": "webhook", "webhook": "https://not-yet.invalid/hook"}),
    )
    assert answer.status_code == 201


def test_a_private_target_is_a_permanent_failure_at_delivery(
    production_like: None, api: Any, auth: dict[str, str], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import deliver

    # Saved while private targets were allowed (or a DNS name that later moved inside).
    monkeypatch.setenv("HERALD_ALLOW_PRIVATE_TARGETS", "1")
    handler = services.create_handler(
        get_store(), "acme", {"name": "x", "type": "webhook", "webhook": receiver.url("/inside")}, "http://h"
    )
    monkeypatch.setenv("HERALD_ALLOW_PRIVATE_TARGETS", "0")
    api.http.post(
        "/v1/events", headers={**auth, "Content-Type": "application/json"}, body='{"type":"deployment"}'
    )
    drain(deliver)
    assert receiver.to("/inside") == []
    (attempt,) = api.http.get(f"/notification-handlers/{handler.id}/deliveries", headers=auth).json_body[
        "data"
    ]
    assert attempt["status"] == "failed"
    assert attempt["http_status"] is None
