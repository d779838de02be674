"""Plain service functions over the stores: the rules every API face shares."""

from __future__ import annotations

import html
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import ValidationError

from chalicelib import clock
from chalicelib.delivery.mail import ses_mailer
from chalicelib.delivery.safe_http import UnsafeTarget, check_target
from chalicelib.delivery.signing import new_secret
from chalicelib.errors import Contended, InvalidInput, NotFound
from chalicelib.models.addresses import check_email_list, comma_separated, email_addresses
from chalicelib.models.commands import CreateHandler, UpdateHandler
from chalicelib.models.deliveries import (
    AccountStats,
    Attempt,
    AttemptStatus,
    Confirmation,
    DeliveryStats,
    HourOfAttempts,
    HourTally,
    Outcome,
)
from chalicelib.models.events import new_event_id
from chalicelib.models.handlers import (
    URL_FIELDS,
    Handler,
    misplaced_fields,
    missing_fields,
    setting_values,
)
from chalicelib.models.users import user_address, user_id
from chalicelib.settings import get_settings
from chalicelib.storage.deliveries import AttemptPage
from chalicelib.storage.handlers import HandlerPage
from chalicelib.storage.stores import Stores
from chalicelib.storage.table import ConditionFailed

logger = logging.getLogger("herald.services")
Command = TypeVar("Command", CreateHandler, UpdateHandler)
CONFIRMATION_TTL_SECONDS = 7 * 24 * 3600


def _now() -> datetime:
    return clock.now().replace(microsecond=0)


def invalid_input(exc: ValidationError, within: str = "") -> InvalidInput:
    """Name each bad field and its problem, in the validated model's field names
    (`within` prefixes them: the model's place in a larger one)."""
    problems: list[tuple[str | None, str]] = []
    for error in exc.errors():
        field = ".".join([*([within] if within else []), *(str(part) for part in error["loc"])]) or None
        message = error["msg"].removeprefix("Value error, ")
        if field is None and ": " in message:  # model-level checks name their field
            field, _, message = message.partition(": ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "literal_error":
            message = "must be one of: " + message.removeprefix("Input should be ")
        problems.append((field, message))
    return InvalidInput.of(problems)


def parse(model: type[Any], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_input(exc) from None


def build_command(model: type[Command], fields: dict[str, Any]) -> Command:
    """A command from a face's fields. When it is refused, the refusal also names the
    settings whose shape is wrong, so one answer lists every bad field, as when a face's
    own model checked them all at once."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = invalid_input(exc).problems
    settings = fields.get("settings")
    if isinstance(settings, dict):
        try:
            setting_values(settings)
        except ValidationError as exc:
            named = {problem.field for problem in problems}
            problems += [p for p in invalid_input(exc, within="settings").problems if p.field not in named]
    raise InvalidInput.of(problems)


MISSING = "required for type {type}"
MISSING_FOR_NEW_TYPE = "required when changing type to {type}"
CREATE_TRIES = 5
"""Ids tried for one create before answering 503."""


def create_handler(stores: Stores, account: str, command: CreateHandler, base_url: str) -> Handler:
    """Create a handler; an email handler stays pending until its address confirms.

    If the id handed out is taken (the counter lost an update to a concurrent writer),
    the counter is moved past the ids in use and the create tried again with a new id:
    a client never sees our counter's trouble, except as a 503 if it lasts."""
    settings = _checked_settings(stores, account, command.settings)
    _check_type_fit(command.type, settings, missing=None if command.awaiting_setup else MISSING)
    now = _now()
    addresses = email_addresses(settings.get("email", "")) if command.type == "email" else []
    confirm = get_settings().email_confirmation
    handler = Handler(
        account=account,
        id=stores.handlers.allocate_handler_id(account),
        type=command.type,
        name=command.name,
        settings=settings,
        is_enabled=command.enabled,
        signing_secret=new_secret(),
        confirmed_emails=[] if confirm else addresses,
        uuid_id=command.uuid_id,
        rate_limit_per_second=command.rate_limit_per_second or None,
        created_at=now,
        updated_at=now,
        **command.subscription.given(),
    )
    for _ in range(CREATE_TRIES):
        try:
            stores.handlers.create_handler(handler)
        except ConditionFailed:
            logger.warning("handler id %s of %s was taken; allocating another", handler.id, account)
            stores.handlers.skip_taken_ids(account)
            handler = handler.model_copy(update={"id": stores.handlers.allocate_handler_id(account)})
            continue
        for address in addresses if confirm else []:
            request_confirmation(stores, handler, address, base_url)
        return handler
    raise Contended("no free handler id was found; send the request again")


def _checked_settings(stores: Stores, account: str, given: dict[str, str]) -> dict[str, str]:
    """The settings to store: each value checked as its channel's settings model says,
    echoed-back masks dropped, then the URL policy and the references checked."""
    try:
        settings = setting_values(given)
    except ValidationError as exc:
        raise invalid_input(exc, within="settings") from None
    if "email_user_ids" in settings:
        _add_user_addresses(account, settings)
    _check_targets(settings)
    _check_references(stores, account, settings)
    return settings


def _add_user_addresses(account: str, settings: dict[str, str]) -> None:
    """`email_user_ids` name the account's users; each one's address joins `email`. The
    account has one user, and an address only when its name is one."""
    ids = list(dict.fromkeys(comma_separated(settings["email_user_ids"])))
    own = user_id(account)
    for given in ids:
        if given != own:
            raise InvalidInput("settings.email_user_ids", f"{given!r} is not a user of this account ({own})")
    address = user_address(account)
    if ids and not address:
        raise InvalidInput(
            "settings.email_user_ids",
            f"the account {account!r} has no email address (its name is not one): give the addresses instead",
        )
    try:
        settings["email"] = check_email_list(", ".join(filter(None, [settings.get("email", ""), address])))
    except ValueError as exc:
        raise InvalidInput("settings.email", str(exc)) from None
    settings["email_user_ids"] = ", ".join(ids)


def _check_type_fit(handler_type: str, settings: dict[str, str], *, missing: str | None) -> None:
    """Settings of `handler_type` only; with a `missing` message, all its required ones."""
    for field in misplaced_fields(handler_type, settings):
        raise InvalidInput(f"settings.{field}", f"not available for type {handler_type}")
    absent = missing_fields(handler_type, settings)
    if missing is not None and absent:
        raise InvalidInput(f"settings.{absent[0]}", missing.format(type=handler_type))


def _check_targets(settings: dict[str, str]) -> None:
    """No SSRF through a saved URL: once the request's shape is valid, each URL is checked
    against the target policy here rather than in the model, since the check may look the
    host up. A name that does not resolve yet is accepted and checked again at delivery."""
    allow_private = get_settings().allow_private_targets
    problems: list[tuple[str | None, str]] = []
    for field in (f for f in settings if f in URL_FIELDS):
        try:
            check_target(settings[field], allow_private=allow_private)
        except UnsafeTarget as exc:
            problems.append((f"settings.{field}", str(exc)))
    if problems:
        raise InvalidInput.of(problems)


def _check_references(stores: Stores, account: str, settings: dict[str, str]) -> None:
    """A push handler must point at one of the account's registered subscribers."""
    subscriber = settings.get("push_subscriber_id")
    if subscriber is not None and stores.push.get(account, subscriber) is None:
        raise InvalidInput(
            "settings.push_subscriber_id", "no such push subscriber; POST /push-subscribers first"
        )


def request_confirmation(stores: Stores, handler: Handler, address: str, base_url: str) -> None:
    """Mail a one-time link to one of the handler's addresses: Herald mails only people who
    asked for it."""
    token = secrets.token_urlsafe(24)
    expires_at = int(_now().timestamp()) + CONFIRMATION_TTL_SECONDS
    stores.confirmations.put_confirmation(token, handler, address, expires_at)
    link = f"{base_url}/email-confirmations/{token}"
    text = (
        f"Someone asked Herald to send notifications for '{handler.name}' to this address.\n"
        f"Confirm with this link (valid 7 days): {link}\nIf it was not you, ignore this email."
    )
    page = (
        f"<p>Someone asked Herald to send notifications for <b>{html.escape(handler.name)}</b> to this "
        f"address.</p><p><a href='{html.escape(link)}'>Confirm this address</a> (valid 7 days).</p>"
        "<p>If it was not you, ignore this email.</p>"
    )
    result = ses_mailer().send([address], "Confirm your address for Herald notifications", text, page)
    if result.outcome != Outcome.SENT:
        logger.error("confirmation mail for handler %s not sent: %s", handler.id, result.error)


def confirm_email(stores: Stores, token: str) -> Confirmation:
    item = stores.confirmations.confirm_email(token, int(_now().timestamp()))
    if item is None:
        raise NotFound("unknown, used or expired confirmation link")
    return Confirmation(id=int(item["handler_id"]), email=item["address"], confirmed=True)


def get_handler(stores: Stores, account: str, handler_id: int) -> Handler:
    handler = stores.handlers.get_handler(account, handler_id)
    if handler is None:
        raise NotFound(f"notification handler {handler_id} not found")
    return handler


def update_handler(
    stores: Stores, account: str, handler_id: int, command: UpdateHandler, base_url: str
) -> str | None:
    """Apply a partial update; returns a new signing secret when the handler became a webhook."""
    settings = _checked_settings(stores, account, command.settings)
    secret = None
    to_confirm: list[str] = []
    fields: dict[str, Any] = command.subscription.given()
    if command.name is not None:
        fields["name"] = command.name
    if command.rate_limit_per_second is not None:
        fields["rate_limit_per_second"] = command.rate_limit_per_second or None
    if command.enabled is not None:
        fields["is_enabled"] = command.enabled
        if command.enabled:  # a fresh start: forget why and since when it failed
            fields["disabled_reason"] = None
            fields["failing_since"] = None
    expected_type = None
    replace = False
    if settings or command.type is not None:
        # Which settings are allowed depends on the stored type: read it, then write on
        # the condition that it is still that type (optimistic, no lost update).
        current = get_handler(stores, account, handler_id)
        target = command.type or current.type
        changing = target != current.type
        _check_type_fit(target, settings, missing=MISSING_FOR_NEW_TYPE if changing else None)
        expected_type = current.type
        new_list = settings.get("email", current.settings.get("email", ""))
        if target == "email" and (changing or new_list != current.settings.get("email")):
            to_confirm = _addresses_to_confirm(current, new_list, fields)
        if changing:
            fields["type"] = target
            replace = True
            if target == "webhook":  # its receiver has never seen a secret: show one
                secret = fields["signing_secret"] = new_secret()
    stores.handlers.update_handler(
        account,
        handler_id,
        fields=fields,
        settings=settings,
        replace_settings=replace,
        expected_type=expected_type,
        now=_now(),
    )
    if to_confirm:
        updated = get_handler(stores, account, handler_id)
        for address in to_confirm:
            request_confirmation(stores, updated, address, base_url)
    return secret


def _addresses_to_confirm(current: Handler, new_list: str, fields: dict[str, Any]) -> list[str]:
    """A new address list keeps the confirmations of the addresses it keeps (of the same
    type); the others are asked to confirm (or all count as confirmed, when that is off)."""
    addresses = email_addresses(new_list)
    if not get_settings().email_confirmation:
        fields["confirmed_emails"] = addresses
        return []
    had = {a.lower() for a in current.confirmed_emails} if current.type == "email" else set()
    fields["confirmed_emails"] = [a for a in addresses if a.lower() in had]
    return [a for a in addresses if a.lower() not in had]


def delete_handler(stores: Stores, account: str, handler_id: int) -> None:
    if not stores.handlers.delete_handler(account, handler_id):
        raise NotFound(f"notification handler {handler_id} not found")


def list_handlers(stores: Stores, account: str, page: int, per_page: int) -> HandlerPage:
    return stores.handlers.list_handlers(account, page, per_page)


def list_attempts(
    stores: Stores,
    handler: Handler,
    page: int,
    per_page: int,
    *,
    status: str | None = None,
    event_id: str | None = None,
) -> AttemptPage:
    """A page of the handler's attempt log, newest first (numbered by the handler), of
    one status and one event if given."""
    top = stores.handlers.attempt_count(handler.account, handler.id)
    return stores.deliveries.list_attempts(
        handler.account, handler.id, top, page, per_page, status=status, event_id=event_id
    )


def delivery_stats(stores: Stores, handler: Handler, hours: int, now: datetime) -> DeliveryStats:
    """The handler's attempts of the last `hours` whole hours (and this one) per hour, by
    outcome and latency: read from its attempt log, so the cost is the window's attempts."""
    this_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    since = this_hour - timedelta(hours=hours - 1)
    top = stores.handlers.attempt_count(handler.account, handler.id)
    attempts = stores.deliveries.attempts_since(handler.account, handler.id, top, since)
    by_hour: dict[int, list[Attempt]] = {}
    for attempt in attempts:
        hour = int((attempt.at.astimezone(UTC) - since).total_seconds() // 3600)
        by_hour.setdefault(hour, []).append(attempt)
    return DeliveryStats(
        handler_id=handler.id,
        hours=hours,
        attempts=len(attempts),
        delivered=sum(a.status == AttemptStatus.DELIVERED for a in attempts),
        success_rate=_success_rate(attempts),
        last_attempt_at=attempts[0].at.isoformat(timespec="seconds") if attempts else None,
        last_status=attempts[0].status if attempts else None,
        per_hour=[_hour_of(since + timedelta(hours=n), by_hour.get(n, [])) for n in range(hours)],
    )


def account_stats(stores: Stores, account: str, hours: int, now: datetime) -> AccountStats:
    """Every handler's attempts of the last `hours` hours together, per hour: read from the
    account's hourly counts (one Query of at most 168 items, whatever the account's size).
    Latency is the hour's mean: counts cannot give a median."""
    this_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    since = this_hour - timedelta(hours=hours - 1)
    counted = {tally.hour: tally for tally in stores.deliveries.account_hours(account, since)}
    per_hour = []
    for n in range(hours):
        start = since + timedelta(hours=n)
        tally = counted.get(start, HourTally(start))
        per_hour.append(
            HourOfAttempts(
                hour=start.isoformat(timespec="seconds"),
                delivered=tally.delivered,
                retrying=tally.retrying,
                failed=tally.failed,
                skipped=tally.skipped,
                mean_ms=tally.sent_ms // tally.sent if tally.sent else None,
            )
        )
    delivered = sum(t.delivered for t in counted.values())
    sent = sum(t.sent for t in counted.values())
    return AccountStats(
        hours=hours,
        attempts=sum(t.sent + t.skipped for t in counted.values()),
        delivered=delivered,
        success_rate=round(delivered / sent, 4) if sent else None,
        per_hour=per_hour,
    )


def _success_rate(attempts: list[Attempt]) -> float | None:
    sent = [a for a in attempts if a.status != AttemptStatus.SKIPPED]
    if not sent:
        return None
    return round(sum(a.status == AttemptStatus.DELIVERED for a in sent) / len(sent), 4)


def _hour_of(start: datetime, attempts: list[Attempt]) -> HourOfAttempts:
    durations = sorted(a.duration_ms for a in attempts if a.status != AttemptStatus.SKIPPED)
    statuses = [a.status for a in attempts]
    return HourOfAttempts(
        hour=start.isoformat(timespec="seconds"),
        delivered=statuses.count(AttemptStatus.DELIVERED),
        retrying=statuses.count(AttemptStatus.RETRYING),
        failed=statuses.count(AttemptStatus.FAILED),
        skipped=statuses.count(AttemptStatus.SKIPPED),
        median_ms=durations[len(durations) // 2] if durations else None,
        max_ms=durations[-1] if durations else None,
    )


def rotate_secret(stores: Stores, account: str, handler_id: int) -> str:
    """A new signing secret; the old one keeps signing for 24 h so receivers can switch."""
    secret = new_secret()
    stores.handlers.rotate_secret(account, handler_id, secret, _now() + timedelta(hours=24))
    return secret


def app_id(stores: Stores, account: str, app: str) -> str:
    """Apps are namespaces of an account, created on first use with an ObjectId-like id."""
    return stores.apps.app_id(account, app, new_event_id())
