"""The services on typed commands, and each face's table of the domain's field names,
on the in-memory stores (no AWS, no sockets: every URL host is an IP literal)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import services
from chalicelib.channels import SETTINGS
from chalicelib.errors import InvalidInput, fields_named
from chalicelib.models.app_notifications import CLIENT_FIELDS, NotificationIn
from chalicelib.models.commands import CreateHandler, Subscription, UpdateHandler, fields_from
from chalicelib.models.events import BY_NAME, event_type
from chalicelib.models.handlers import HANDLER_FIELDS, HandlerCreate, HandlerUpdate, mask_secret
from chalicelib.models.notifiers import NOTIFIER_FIELDS, NotifierIn
from chalicelib.storage.stores import Stores
from tests.fakes import memory_stores

ACCOUNT = "acme"
PUBLIC_URL = "https://93.184.216.34/hook"
BASE_URL = "https://herald.test"
CRASHED = BY_NAME["app_crashed"]


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> Stores:
    monkeypatch.delenv("HERALD_ALLOW_PRIVATE_TARGETS", raising=False)
    monkeypatch.setenv("HERALD_EMAIL_CONFIRMATION", "0")
    return memory_stores()


def _create(stores: Stores, **fields: Any) -> int:
    command = CreateHandler.model_validate({"type": "webhook", "name": "hook", **fields})
    return services.create_handler(stores, ACCOUNT, command, BASE_URL).id


def _refusal(error: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str | None, str]]:
    return [(problem.field, problem.message) for problem in error.value.problems]


def test_a_create_command_stores_the_handler_its_settings_and_its_subscription(stores: Stores) -> None:
    handler_id = _create(
        stores,
        settings={"webhook": f" {PUBLIC_URL} "},
        enabled=False,
        subscription={"app": "shop", "send_all_events": False, "selected_event_ids": ["app_crashed"]},
    )

    stored = services.get_handler(stores, ACCOUNT, handler_id)
    assert (stored.settings, stored.is_enabled, stored.app) == ({"webhook": PUBLIC_URL}, False, "shop")
    assert (stored.send_all_events, stored.send_all_alerts) == (False, True)
    assert stored.selected_event_ids == [CRASHED.id]


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"settings": {"slack": PUBLIC_URL}}, ("settings.slack", "not available for type webhook")),
        ({"settings": {}}, ("settings.webhook", "required for type webhook")),
        ({"settings": {"webhook": "ftp://93.184.216.34/x"}}, ("settings.webhook", "must be an absolute")),
        ({"settings": {"webhook": "http://127.0.0.1/x"}}, ("settings.webhook", "")),
        (
            {"type": "push_subscriber_id", "settings": {"push_subscriber_id": "ps-nope"}},
            ("settings.push_subscriber_id", "no such push subscriber"),
        ),
    ],
)
def test_the_services_refuse_a_create_naming_the_domain_field(
    stores: Stores, fields: dict[str, Any], refusal: tuple[str, str]
) -> None:
    with pytest.raises(InvalidInput) as error:
        _create(stores, **fields)

    ((field, message),) = _refusal(error)
    assert field == refusal[0]
    assert message.startswith(refusal[1])
    assert stores.handlers.list_handlers(ACCOUNT, 1, 10).total == 0


def test_a_create_awaiting_setup_may_lack_the_types_required_settings(stores: Stores) -> None:
    handler_id = _create(stores, awaiting_setup=True)

    assert services.get_handler(stores, ACCOUNT, handler_id).missing_settings() == ["webhook"]


def test_an_unknown_event_type_is_refused_when_the_command_is_built() -> None:
    with pytest.raises(InvalidInput) as error:
        services.parse(
            CreateHandler, {"type": "webhook", "name": "n", "subscription": {"selected_event_ids": ["x"]}}
        )

    assert _refusal(error) == [
        ("subscription.selected_event_ids", "unknown event type 'x'; see GET /v1/event_types")
    ]


def test_changing_the_type_needs_every_setting_of_the_new_type(stores: Stores) -> None:
    handler_id = _create(stores, settings={"webhook": PUBLIC_URL})

    with pytest.raises(InvalidInput) as error:
        services.update_handler(stores, ACCOUNT, handler_id, UpdateHandler(type="telegram"), BASE_URL)

    assert _refusal(error) == [("settings.telegram", "required when changing type to telegram")]


def test_becoming_a_webhook_replaces_the_settings_and_shows_a_new_secret(stores: Stores) -> None:
    handler_id = _create(stores, type="slack", settings={"slack": PUBLIC_URL})

    command = UpdateHandler(type="webhook", settings={"webhook": PUBLIC_URL})
    secret = services.update_handler(stores, ACCOUNT, handler_id, command, BASE_URL)

    stored = services.get_handler(stores, ACCOUNT, handler_id)
    assert (stored.type, stored.settings, stored.signing_secret) == (
        "webhook",
        {"webhook": PUBLIC_URL},
        secret,
    )
    assert secret is not None


def test_an_echoed_back_mask_leaves_the_credential_as_it_was(stores: Stores) -> None:
    token = "123456:secret-token"
    handler_id = _create(stores, type="telegram", settings={"telegram": token, "telegram_chat_id": "42"})

    command = UpdateHandler(settings={"telegram": mask_secret(token), "telegram_chat_id": "43"})
    services.update_handler(stores, ACCOUNT, handler_id, command, BASE_URL)

    assert services.get_handler(stores, ACCOUNT, handler_id).settings == {
        "telegram": token,
        "telegram_chat_id": "43",
    }


def _domain_fields() -> set[str]:
    settings = {f"settings.{field}" for model in SETTINGS.values() for field in model.model_fields}
    subscription = {f"subscription.{field}" for field in Subscription.model_fields}
    return {*CreateHandler.model_fields, *UpdateHandler.model_fields, *settings, *subscription}


@pytest.mark.parametrize(
    "table", [HANDLER_FIELDS, NOTIFIER_FIELDS, CLIENT_FIELDS], ids=["handlers", "notifiers", "app"]
)
def test_each_faces_table_names_only_fields_the_domain_has(table: dict[str, str]) -> None:
    assert set(table) - _domain_fields() == set()


@pytest.mark.parametrize(
    ("table", "domain", "face"),
    [
        (HANDLER_FIELDS, "enabled", "is_enabled"),
        (HANDLER_FIELDS, "settings.webhook", "webhook"),
        (HANDLER_FIELDS, "subscription.selected_event_ids", "selected_event_ids"),
        (NOTIFIER_FIELDS, "enabled", "active"),
        (NOTIFIER_FIELDS, "settings.webhook", "type_data.webhook_url"),
        (NOTIFIER_FIELDS, "settings.telegram_chat_id", "type_data.chat_id"),
        (NOTIFIER_FIELDS, "settings.email", "type_data.emails"),
        (CLIENT_FIELDS, "name", "description"),
        (CLIENT_FIELDS, "settings.webhook", "setup.webhook.url"),
        (CLIENT_FIELDS, "settings.slack", "setup.slack.code"),
        (CLIENT_FIELDS, "subscription.selected_event_ids", "events"),
    ],
)
def test_a_refusal_from_the_services_names_the_faces_field(
    table: dict[str, str], domain: str, face: str
) -> None:
    with pytest.raises(InvalidInput) as error, fields_named(table):
        raise InvalidInput(domain, "is wrong")

    assert _refusal(error) == [(face, "is wrong")]
    assert error.value.problems[0].detail == f"{face}: is wrong"


def test_the_primary_faces_body_becomes_a_command_by_its_table() -> None:
    request = HandlerCreate.model_validate(
        {"type": "webhook", "name": "n", "webhook": PUBLIC_URL, "is_enabled": False, "app": "shop"}
    )

    command = CreateHandler.model_validate(fields_from(request.given_fields(), HANDLER_FIELDS))

    assert command == CreateHandler(
        type="webhook",
        name="n",
        settings={"webhook": PUBLIC_URL},
        enabled=False,
        subscription=Subscription(app="shop"),
    )


def test_a_partial_primary_update_becomes_a_command_of_only_the_given_fields() -> None:
    request = HandlerUpdate.model_validate({"send_all_alerts": False})

    command = UpdateHandler.model_validate(fields_from(request.given_fields(), HANDLER_FIELDS))

    assert command == UpdateHandler(subscription=Subscription(send_all_alerts=False))


def test_a_notifier_becomes_a_command_by_its_table() -> None:
    notifier = NotifierIn.model_validate(
        {
            "type": "telegram",
            "name": "n",
            "type_data": {"token": "t", "chat_id": "42"},
            "active": False,
        }
    )

    command = CreateHandler.model_validate(notifier.create_command_fields("shop"))

    assert command == CreateHandler(
        type="telegram",
        name="n",
        settings={"telegram": "t", "telegram_chat_id": "42"},
        enabled=False,
        subscription=Subscription(app="shop", send_all_events=False, send_all_alerts=False),
        uuid_id=True,
    )


def test_a_notifier_update_names_the_type_only_when_it_changes() -> None:
    notifier = NotifierIn.model_validate({"type": "webhook", "type_data": {"webhook_url": PUBLIC_URL}})

    assert UpdateHandler.model_validate(notifier.update_command_fields("webhook")) == UpdateHandler(
        settings={"webhook": PUBLIC_URL}
    )
    assert UpdateHandler.model_validate(notifier.update_command_fields("slack")).type == "webhook"


def test_an_app_notification_becomes_a_command_with_exactly_its_events() -> None:
    notification = NotificationIn.model_validate(
        {"type": "webhook", "events": {"buildCreated": True}, "setup": {"webhook": {"url": PUBLIC_URL}}}
    )

    command = UpdateHandler.model_validate(notification.command_fields("shop", None))

    assert command.settings == {"webhook": PUBLIC_URL}
    assert command.name == "Webhook notification"
    assert command.subscription == Subscription(
        app="shop",
        send_all_events=False,
        send_all_alerts=False,
        selected_event_ids=[event_type("build_created").id],
    )


def test_a_notifier_refused_by_the_url_policy_names_its_type_data_key(stores: Stores) -> None:
    notifier = NotifierIn.model_validate(
        {"type": "webhook", "name": "n", "type_data": {"webhook_url": "http://10.0.0.1/x"}}
    )

    with pytest.raises(InvalidInput) as error, fields_named(NOTIFIER_FIELDS):
        command = CreateHandler.model_validate(notifier.create_command_fields("shop"))
        services.create_handler(stores, ACCOUNT, command, BASE_URL)

    assert [problem.field for problem in error.value.problems] == ["type_data.webhook_url"]
