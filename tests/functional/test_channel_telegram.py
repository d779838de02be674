"""Telegram: the bot token lives in the URL path and nowhere else."""

from __future__ import annotations

import socket

import pytest

from chalicelib.channels import get_channel
from chalicelib.delivery.safe_http import SafeSender
from chalicelib.models.deliveries import Outcome
from tests.functional.test_channels_chat import (
    CHAT_ID,
    TOKEN,
    context,
    make_event,
    make_handler,
    platform_urls,
    seed_event,
    send,
    sender,
)
from tests.receiver import Receiver, Reply

__all__ = ["platform_urls", "sender"]  # fixtures shared with the table-driven tests


def test_the_token_is_in_the_path_only(receiver: Receiver, sender: SafeSender) -> None:
    result, request = send("telegram", receiver, sender, seed_event())
    assert result.outcome == Outcome.SENT
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert "?" not in request.path
    assert TOKEN not in request.body.decode()
    assert TOKEN not in str(request.headers)
    assert request.json()["chat_id"] == CHAT_ID


def test_a_token_with_url_characters_stays_in_the_path(receiver: Receiver, sender: SafeSender) -> None:
    handler = make_handler("telegram", {"telegram": "123:AB?x=1#frag/..", "telegram_chat_id": CHAT_ID})
    receiver.script("/bot123:AB%3Fx%3D1%23frag%2F../sendMessage", Reply(200, {"ok": True}))
    result = get_channel("telegram").deliver(seed_event(), handler, context(sender))
    assert result.outcome == Outcome.SENT
    assert receiver.requests[-1].path == "/bot123:AB%3Fx%3D1%23frag%2F../sendMessage"


def test_a_bad_token_disables_without_showing_it(receiver: Receiver, sender: SafeSender) -> None:
    reply = Reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    result, _ = send("telegram", receiver, sender, seed_event(), reply)
    assert result.outcome == Outcome.GONE
    assert result.error == "HTTP 401: Unauthorized"


@pytest.mark.parametrize("echo", [TOKEN, TOKEN.partition(":")[2]], ids=["token", "secret-half"])
def test_an_error_echoing_the_token_is_scrubbed(echo: str, receiver: Receiver, sender: SafeSender) -> None:
    reply = Reply(400, {"ok": False, "error_code": 400, "description": f"Bad Request: bot{echo} is odd"})
    result, _ = send("telegram", receiver, sender, seed_event(), reply)
    assert result.outcome == Outcome.PERMANENT
    assert result.error is not None
    assert result.error.startswith("HTTP 400: Bad Request: bot")
    assert result.error.endswith("<token> is odd")
    assert TOKEN.partition(":")[2] not in result.error


def test_a_refused_connection_names_only_the_origin(
    receiver: Receiver, sender: SafeSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HERALD_TELEGRAM_API_URL", f"http://127.0.0.1:{port}")
    handler = make_handler("telegram", {"telegram": TOKEN, "telegram_chat_id": CHAT_ID})
    result = get_channel("telegram").deliver(seed_event(), handler, context(sender))
    assert result.outcome == Outcome.RETRY
    assert result.error == f"connection refused by http://127.0.0.1:{port}"
    assert TOKEN.split(":")[1] not in result.error


def test_a_migrated_group_says_where_it_went(receiver: Receiver, sender: SafeSender) -> None:
    body = {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1009876543210},
    }
    result, _ = send("telegram", receiver, sender, seed_event(), Reply(400, body))
    assert result.outcome == Outcome.PERMANENT
    assert result.error is not None
    assert "-1009876543210" in result.error and "telegram_chat_id" in result.error


def test_html_is_escaped_and_the_title_bold(receiver: Receiver, sender: SafeSender) -> None:
    event = make_event("app_crashed", app="my-app", type_data={"message": "1 < 2 & <b>not bold</b>"})
    _, request = send("telegram", receiver, sender, event)
    text = request.json()["text"]
    assert text.startswith(
        "<b>Application crashed — my-app</b>\n1 &lt; 2 &amp; &lt;b&gt;not bold&lt;/b&gt;\n"
    )
    assert request.json()["parse_mode"] == "HTML"
    assert request.json()["link_preview_options"] == {"is_disabled": True}
