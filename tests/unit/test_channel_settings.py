"""Channels' settings models and what the handler models build from them, without I/O."""

from __future__ import annotations

import socket
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.channels import SETTINGS, get_channel
from chalicelib.models.handlers import SECRET_FIELDS, URL_FIELDS, Handler, HandlerCreate, HandlerOut

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("handler_type", list(SETTINGS))
def test_every_handler_type_has_a_settings_model_and_a_channel(handler_type: str) -> None:
    assert SETTINGS[handler_type].type_name == handler_type
    assert get_channel(handler_type).name == handler_type


def test_a_settings_field_belongs_to_one_type_only() -> None:
    """The request bodies are flat: a field name shared by two types would be ambiguous."""
    counts = Counter(field for model in SETTINGS.values() for field in model.model_fields)
    assert [field for field, count in counts.items() if count > 1] == []


# (type, settings as stored, settings as answered): credentials masked, nothing else.
ANSWERED = [
    ("webhook", {"webhook": "https://example.com/hook"}, {"webhook": "https://example.com/hook"}),
    (
        "slack",
        {"slack": "https://hooks.slack.com/services/T/B/x", "slack_team": "Acme", "slack_channel": "#ops"},
        {"slack": "https://hooks.slack.com/services/T/B/x", "slack_team": "Acme", "slack_channel": "#ops"},
    ),
    ("email", {"email": "ops@example.com"}, {"email": "ops@example.com"}),
    (
        "telegram",
        {"telegram": "123456:ABCDEFGHIJ", "telegram_chat_id": "-100123456789"},
        {"telegram": "****GHIJ", "telegram_chat_id": "-100123456789"},
    ),
    (
        "x",
        {
            "x_consumer_key": "consumer-key-1",
            "x_consumer_secret": "short",
            "x_access_token": "access-token-2",
            "x_access_token_secret": "access-secret-3",
        },
        {
            "x_consumer_key": "****ey-1",
            "x_consumer_secret": "****",
            "x_access_token": "****en-2",
            "x_access_token_secret": "****et-3",
        },
    ),
    ("push_subscriber_id", {"push_subscriber_id": "ps_1"}, {"push_subscriber_id": "ps_1"}),
    ("internal_notification", {}, {}),
]


@pytest.mark.parametrize(("handler_type", "stored", "answered"), ANSWERED, ids=[t for t, _, _ in ANSWERED])
def test_answers_mask_the_credentials_channels_declare_and_nothing_else(
    handler_type: str, stored: dict[str, str], answered: dict[str, str]
) -> None:
    handler = Handler(
        account="acme", id=1, type=handler_type, name="n", settings=stored, created_at=NOW, updated_at=NOW
    )
    assert HandlerOut.of(handler).settings == answered


def test_telegram_and_x_credentials_are_the_secret_fields() -> None:
    assert sorted(SECRET_FIELDS) == [
        "telegram",
        "x_access_token",
        "x_access_token_secret",
        "x_consumer_key",
        "x_consumer_secret",
    ]


def _valid(field: str) -> str:
    if field in URL_FIELDS:
        return "https://example.com/hook"
    return "ops@example.com" if field == "email" else "valid-value-1"


def _create(field: str, value: Any) -> dict[str, Any]:
    """A valid create body of the type that owns `field`, with `value` in it."""
    handler_type = next(t for t, model in SETTINGS.items() if field in model.model_fields)
    body: dict[str, Any] = {"name": "n", "type": handler_type}
    body.update({f: _valid(f) for f in SETTINGS[handler_type].required_fields()})
    body[field] = value
    return body


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names looked up; none resolves."""
    seen: list[str] = []

    def recording(host: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    return seen


@pytest.mark.parametrize("field", sorted(URL_FIELDS))
@pytest.mark.parametrize("url", ["https://hooks.example.com/x", "http://localhost/x", "http://10.0.0.1/x"])
def test_validating_a_request_looks_no_name_up_and_leaves_the_target_policy_to_the_services(
    lookups: list[str], field: str, url: str
) -> None:
    assert HandlerCreate.model_validate(_create(field, url)).given_settings()[field] == url
    assert lookups == []


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        *[(field, "ftp://example.com/x", "absolute http") for field in sorted(URL_FIELDS)],
        *[(field, "", "at least 1 character") for field in sorted(SECRET_FIELDS)],
        *[(field, "k" * 257, "at most 256 characters") for field in sorted(SECRET_FIELDS)],
        ("email", "not-an-address", "not a valid email address"),
        ("telegram_chat_id", "1" * 65, "at most 64 characters"),
        ("slack_team", "t" * 257, "at most 256 characters"),
    ],
)
def test_the_request_models_check_each_field_as_its_channel_declares(
    field: str, value: str, words: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        HandlerCreate.model_validate(_create(field, value))
    (error,) = refused.value.errors()
    assert error["loc"] == (field,)
    assert words in error["msg"]
