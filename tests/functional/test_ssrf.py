"""No SSRF through user URLs: refused when saved, and again at delivery."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from chalicelib import services
from chalicelib.models.handlers import URL_FIELDS
from chalicelib.storage.stores import get_stores
from tests.commands import create_command
from tests.functional.sqs_driver import drain
from tests.receiver import Receiver
from tests.scalingo_seed import WEBHOOK


@pytest.fixture
def production_like(stack: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.delivery.context import reset_sender

    monkeypatch.setenv("HERALD_ALLOW_PRIVATE_TARGETS", "0")
    reset_sender()


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


# (host as written, the refusal's words): special-use names that resolve locally.
LOCAL_NAMES = [
    ("localhost", "localhost names this machine; use a public address"),
    ("LOCALHOST.", "localhost. names this machine; use a public address"),
    ("api.localhost", "api.localhost names this machine; use a public address"),
    ("printer.local", "printer.local is a multicast DNS name of the local network; use a public address"),
    ("Printer.LOCAL.", "printer.local. is a multicast DNS name of the local network; use a public address"),
    ("foo.Internal.", "foo.internal. is a private network name; use a public address"),
    ("metadata.google.internal", "metadata.google.internal is a private network name; use a public address"),
    ("nas.home.arpa", "nas.home.arpa is a home network name; use a public address"),
    ("ROUTER.HOME.ARPA.", "router.home.arpa. is a home network name; use a public address"),
]


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names resolved: a local name is refused by name, before any lookup."""
    seen: list[str] = []
    real = socket.getaddrinfo

    def recording(host: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    return seen


def post(api: Any, path: str, auth: dict[str, str], body: dict[str, Any]) -> Any:
    return api.http.post(path, headers={**auth, "Content-Type": "application/json"}, body=json.dumps(body))


@pytest.mark.parametrize("field", sorted(URL_FIELDS))
@pytest.mark.parametrize(("host", "words"), LOCAL_NAMES, ids=[host for host, _ in LOCAL_NAMES])
def test_local_names_are_refused_when_saved(
    production_like: None,
    api: Any,
    auth: dict[str, str],
    lookups: list[str],
    *,
    field: str,
    host: str,
    words: str,
) -> None:
    answer = post(
        api, "/notification-handlers", auth, {"name": "x", "type": field, field: f"https://{host}:8443/h"}
    )
    assert answer.status_code == 400, answer.body
    (error,) = answer.json_body["errors"]
    assert (error["field"], error["detail"]) == (field, f"{field}: {words}")
    assert lookups == []
    assert api.http.get("/notification-handlers", headers=auth).json_body["meta"]["total"] == 0


@pytest.mark.parametrize("field", sorted(URL_FIELDS))
@pytest.mark.parametrize(("host", "words"), LOCAL_NAMES[:2], ids=[host for host, _ in LOCAL_NAMES[:2]])
def test_local_names_are_refused_when_updated(
    production_like: None, api: Any, auth: dict[str, str], *, field: str, host: str, words: str
) -> None:
    saved = "https://93.184.215.14/hook"
    handler_id = post(
        api, "/notification-handlers", auth, {"name": "x", "type": field, field: saved}
    ).json_body["data"]["id"]
    answer = post(api, f"/notification-handlers/{handler_id}", auth, {field: f"http://{host}/hook"})
    assert answer.status_code == 400, answer.body
    (error,) = answer.json_body["errors"]
    assert (error["field"], error["detail"]) == (field, f"{field}: {words}")
    settings = api.http.get(f"/notification-handlers/{handler_id}", headers=auth).json_body["data"][
        "settings"
    ]
    assert settings[field] == saved


def test_the_other_faces_refuse_local_names_naming_their_field(
    production_like: None, api: Any, auth: dict[str, str]
) -> None:
    app_face = post(
        api,
        "/v1/organizations/acme-org/apps/my-app/notifications",
        auth,
        {
            "type": "webhook",
            "events": {"buildProcessed": True},
            "setup": {"webhook": {"url": "http://nas.local/h"}},
        },
    )
    assert app_face.status_code == 400, app_face.body
    assert app_face.json_body["error"] == {
        "code": 5001,
        "message": "Invalid parameters: setup.webhook.url: "
        "nas.local is a multicast DNS name of the local network; use a public address",
    }
    paas_face = post(
        api,
        "/v1/apps/my-app/notifiers",
        auth,
        {
            "notifier": {
                "platform_id": WEBHOOK,
                "name": "n",
                "type_data": {"webhook_url": "http://localhost/h"},
            }
        },
    )
    assert paas_face.status_code == 422, paas_face.body
    assert paas_face.json_body == {
        "errors": {"type_data.webhook_url": ["localhost names this machine; use a public address"]}
    }
    assert api.http.get("/notification-handlers", headers=auth).json_body["meta"]["total"] == 0


def test_local_names_are_accepted_when_private_targets_are(
    stack: None, api: Any, auth: dict[str, str]
) -> None:
    for host in ("localhost", "printer.local", "foo.internal", "nas.home.arpa"):
        answer = post(
            api,
            "/notification-handlers",
            auth,
            {"name": "x", "type": "webhook", "webhook": f"http://{host}/h"},
        )
        assert answer.status_code == 201, (host, answer.body)


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
        get_stores(),
        "acme",
        create_command({"name": "x", "type": "webhook", "webhook": receiver.url("/inside")}),
        "http://h",
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
