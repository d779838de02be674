"""The handler store on every backend: round trips, ids, counters and paging, conditional
writes, secrets, health, tenant isolation."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.pagination import make_handlers
from chalicelib import services
from chalicelib.api.pagination import ALLOWED_PER_PAGE
from chalicelib.errors import Conflict, NotFound
from chalicelib.models.deliveries import AttemptStatus, Noted
from chalicelib.models.handlers import Handler
from chalicelib.storage import keys
from chalicelib.storage.stores import Stores
from chalicelib.storage.table import ConditionFailed
from tests.commands import create_command, update_command
from tests.fakes.stores import every_handler

ACME = "acme"
GLOBEX = "globex"
# No URL: URL fields resolve their host at save time (SSRF check).
TELEGRAM = {"type": "telegram", "telegram": "123456:ABC-token", "telegram_chat_id": "-1001"}
BASE_URL = "https://herald.example.com"
MOMENT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def create(stores: Stores, account: str = ACME, name: str = "Ops channel") -> Handler:
    return services.create_handler(
        stores, account, create_command({"name": name, **TELEGRAM}), base_url=BASE_URL
    )


def update(stores: Stores, account: str, handler_id: int, body: dict[str, Any]) -> None:
    services.update_handler(stores, account, handler_id, update_command(body), base_url=BASE_URL)


def update_in_store(
    stores: Stores,
    handler_id: int,
    fields: dict[str, Any],
    settings: dict[str, str] | None = None,
    expected_type: str | None = None,
) -> None:
    """The store's update as services call it (settings replaced when given)."""
    stores.handlers.update_handler(
        ACME,
        handler_id,
        fields=fields,
        settings=settings or {},
        replace_settings=settings is not None,
        expected_type=expected_type,
        now=MOMENT,
    )


def ids(stores: Stores, account: str = ACME) -> list[int]:
    return [h.id for h in every_handler(stores, account)]


def test_a_handler_round_trips_through_create_get_update_and_delete(stores: Stores) -> None:
    created = create(stores)
    assert services.get_handler(stores, ACME, created.id) == created

    update(stores, ACME, created.id, {"name": "Renamed", "is_enabled": False})
    renamed = services.get_handler(stores, ACME, created.id)
    assert (renamed.name, renamed.is_enabled) == ("Renamed", False)
    assert renamed.settings == {"telegram": "123456:ABC-token", "telegram_chat_id": "-1001"}
    assert renamed.created_at == created.created_at

    update(stores, ACME, created.id, {"telegram_chat_id": "-1002"})
    assert services.get_handler(stores, ACME, created.id).settings == {
        "telegram": "123456:ABC-token",
        "telegram_chat_id": "-1002",
    }

    update(stores, ACME, created.id, {"type": "discord", "discord": "https://discord.com/api/webhooks/1/z"})
    changed = services.get_handler(stores, ACME, created.id)
    assert changed.type == "discord"
    assert changed.settings == {"discord": "https://discord.com/api/webhooks/1/z"}
    assert changed.name == "Renamed"

    services.delete_handler(stores, ACME, created.id)
    with pytest.raises(NotFound):
        services.get_handler(stores, ACME, created.id)
    with pytest.raises(NotFound):
        services.delete_handler(stores, ACME, created.id)
    assert stores.handlers.count_handlers(ACME) == 0
    assert ids(stores) == []


def test_the_store_keeps_every_field_of_a_handler(stores: Stores) -> None:
    handler = Handler(
        account=ACME,
        id=stores.handlers.allocate_handler_id(ACME),
        type="telegram",
        name="Ops chat",
        settings={"telegram": "123456:secret-token", "telegram_chat_id": "-100200"},
        is_enabled=False,
        send_all_events=False,
        send_all_alerts=True,
        selected_event_ids=["a", "b"],
        app="billing",
        signing_secret="whsec_current",
        previous_secret="whsec_previous",
        previous_secret_expires_at=MOMENT,
        disabled_reason="failing for 3 days",
        failing_since=MOMENT,
        last_datetime=MOMENT,
        created_at=MOMENT,
        updated_at=MOMENT,
    )
    stores.handlers.create_handler(handler)
    assert stores.handlers.get_handler(ACME, handler.id) == handler
    assert stores.handlers.delete_handler(ACME, handler.id) is True
    assert stores.handlers.get_handler(ACME, handler.id) is None
    assert stores.handlers.delete_handler(ACME, handler.id) is False


def test_ids_ascend_from_1_per_account_and_are_never_reused(stores: Stores) -> None:
    assert [create(stores).id for _ in range(3)] == [1, 2, 3]
    services.delete_handler(stores, ACME, 3)
    services.delete_handler(stores, ACME, 2)
    assert create(stores).id == 4
    assert create(stores, GLOBEX).id == 1
    assert create(stores).id == 5
    assert ids(stores) == [1, 4, 5]


def test_creating_an_existing_id_fails_and_counts_the_handler_once(stores: Stores) -> None:
    first = create(stores)
    clash = first.model_copy(update={"name": "Clash"})
    with pytest.raises(ConditionFailed):
        stores.handlers.create_handler(clash)
    assert stores.handlers.get_handler(ACME, first.id) == first
    assert stores.handlers.block_counts(ACME) == [(0, 1)]


def test_skipping_taken_ids_moves_the_counter_past_the_highest_id_in_use(stores: Stores) -> None:
    for handler in make_handlers(ACME, 3):
        stores.handlers.create_handler(handler)  # ids 1..3 taken, the counter never moved
    stores.handlers.skip_taken_ids(ACME)
    assert stores.handlers.allocate_handler_id(ACME) == 4
    stores.handlers.skip_taken_ids(ACME)
    assert stores.handlers.allocate_handler_id(ACME) == 5, "a counter ahead is never moved back"
    stores.handlers.skip_taken_ids(GLOBEX)
    assert stores.handlers.allocate_handler_id(GLOBEX) == 1


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Blocks of 10 ids instead of 100: the same boundaries with a tenth of the handlers
    (moto reads every item of the table on each Query, so paging tests cost it dearly)."""
    monkeypatch.setattr(keys, "BLOCK_SIZE", 10)
    return keys.BLOCK_SIZE


def test_pages_of_every_size_are_contiguous_and_complete_across_deletions(
    stores: Stores, small_blocks: int
) -> None:
    block, count = small_blocks, 2 * small_blocks + 9  # the last id shares its block
    for handler in make_handlers(ACME, count):
        stores.handlers.create_handler(handler)
    # The first id, both sides of a block boundary, scattered ids and the last id.
    doomed = {1, block - 1, block, block + 1, 2 * block - 1, 2 * block, count} | set(range(7, count, 7))
    for handler_id in sorted(doomed):
        assert stores.handlers.delete_handler(ACME, handler_id) is True
    live = [i for i in range(1, count + 1) if i not in doomed]
    assert ids(stores) == live
    assert stores.handlers.block_counts(ACME) == sorted(Counter(keys.block_of(i) for i in live).items())
    for per_page in (3, 7, *ALLOWED_PER_PAGE[:2]):
        pages = -(-len(live) // per_page)
        listed = [stores.handlers.list_handlers(ACME, page, per_page) for page in range(1, pages + 2)]
        assert {page.total for page in listed} == {len(live)}
        assert [h.id for page in listed for h in page.handlers] == live, per_page
        assert listed[-1].handlers == [], "the page after the last is empty"


def test_a_page_past_the_end_is_empty_and_still_counts_the_total(stores: Stores) -> None:
    for _ in range(3):
        create(stores)
    stores.handlers.delete_handler(ACME, 2)
    assert [h.id for h in stores.handlers.list_handlers(ACME, 1, 10).handlers] == [1, 3]
    past = stores.handlers.list_handlers(ACME, 2, 10)
    assert (past.handlers, past.total) == ([], 2)
    far = stores.handlers.list_handlers(ACME, 10_000, 1000)
    assert (far.handlers, far.total) == ([], 2)
    empty = stores.handlers.list_handlers(GLOBEX, 1, 25)
    assert (empty.handlers, empty.total) == ([], 0)


def test_listed_handlers_are_the_stored_handlers(stores: Stores) -> None:
    handlers = make_handlers(ACME, 30)
    for handler in handlers:
        stores.handlers.create_handler(handler)
    assert stores.handlers.list_handlers(ACME, 2, 10).handlers == handlers[10:20]
    assert every_handler(stores, ACME) == handlers


def test_updating_a_missing_handler_is_not_found_and_creates_no_item(stores: Stores) -> None:
    create(stores)
    with pytest.raises(NotFound):
        update_in_store(stores, 99, {"name": "ghost"})
    with pytest.raises(NotFound):
        update(stores, ACME, 99, {"name": "ghost"})
    with pytest.raises(NotFound):
        update(stores, ACME, 99, {"telegram_chat_id": "-1002"})
    assert ids(stores) == [1]
    assert stores.handlers.block_counts(ACME) == [(0, 1)]


def test_deleting_a_missing_handler_returns_false_and_leaves_the_counters(stores: Stores) -> None:
    create(stores)
    assert stores.handlers.delete_handler(ACME, 2) is False
    assert stores.handlers.delete_handler(ACME, 150) is False  # a block that has no counter yet
    assert stores.handlers.block_counts(ACME) == [(0, 1)]
    assert stores.handlers.delete_handler(ACME, 1) is True
    assert stores.handlers.delete_handler(ACME, 1) is False
    assert stores.handlers.block_counts(ACME) == [(0, 0)]
    assert stores.handlers.list_handlers(ACME, 1, 25).total == 0


def test_an_update_expecting_another_type_is_a_conflict_and_changes_nothing(stores: Stores) -> None:
    handler = create(stores)
    with pytest.raises(Conflict):
        update_in_store(
            stores, handler.id, {"name": "late"}, {"webhook": "https://example.com/hook"}, "webhook"
        )
    assert stores.handlers.get_handler(ACME, handler.id) == handler


def test_an_update_sets_each_field_and_merges_or_replaces_the_settings(stores: Stores) -> None:
    handler = create(stores)
    later = MOMENT + timedelta(days=1)
    stores.handlers.update_handler(
        ACME,
        handler.id,
        fields={"name": "Renamed", "selected_event_ids": ["x"], "disabled_reason": None},
        settings={"telegram_chat_id": "-9"},
        replace_settings=False,
        expected_type="telegram",
        now=later,
    )
    merged = stores.handlers.get_handler(ACME, handler.id)
    assert merged == handler.model_copy(
        update={
            "name": "Renamed",
            "selected_event_ids": ["x"],
            "settings": {**handler.settings, "telegram_chat_id": "-9"},
            "updated_at": later,
        }
    )
    stores.handlers.update_handler(
        ACME,
        handler.id,
        fields={"type": "slack"},
        settings={"slack": "https://hooks.slack.com/services/T/B/x"},
        replace_settings=True,
        expected_type=None,
        now=later,
    )
    replaced = stores.handlers.get_handler(ACME, handler.id)
    assert replaced is not None
    assert (replaced.type, replaced.settings) == (
        "slack",
        {"slack": "https://hooks.slack.com/services/T/B/x"},
    )


def test_a_rotated_secret_keeps_the_old_one_until_the_overlap_ends(stores: Stores) -> None:
    handler = create(stores)
    stores.handlers.rotate_secret(ACME, handler.id, "whsec_new", MOMENT)
    rotated = stores.handlers.get_handler(ACME, handler.id)
    assert rotated is not None
    assert (rotated.signing_secret, rotated.previous_secret) == ("whsec_new", handler.signing_secret)
    assert rotated.previous_secret_expires_at == MOMENT
    with pytest.raises(NotFound):
        stores.handlers.rotate_secret(ACME, 99, "whsec_x", MOMENT)


def test_attempts_are_numbered_and_the_failing_clock_runs_until_a_success(stores: Stores) -> None:
    handler = create(stores)
    later = MOMENT + timedelta(hours=1)
    assert stores.handlers.attempt_count(ACME, handler.id) == 0
    assert stores.handlers.note_attempts(handler, [AttemptStatus.RETRYING], MOMENT) == Noted(1, MOMENT)
    failing = services.get_handler(stores, ACME, handler.id)  # as the worker reads it
    assert failing.failing_since == MOMENT
    assert stores.handlers.note_attempts(failing, [AttemptStatus.FAILED], later) == Noted(2, MOMENT)
    assert stores.handlers.note_attempts(failing, [AttemptStatus.SKIPPED], later) == Noted(3, MOMENT)
    assert stores.handlers.note_attempts(failing, [AttemptStatus.DELIVERED], later) == Noted(
        4, None, recovered_from=MOMENT
    )
    healthy = stores.handlers.get_handler(ACME, handler.id)
    assert healthy is not None
    assert (healthy.failing_since, healthy.last_datetime) == (None, later)
    assert stores.handlers.attempt_count(ACME, handler.id) == 4
    assert (
        stores.handlers.note_attempts(handler.model_copy(update={"id": 99}), [AttemptStatus.FAILED], later)
        is None
    )
    assert stores.handlers.attempt_count(ACME, 99) == 0


def test_a_batchs_attempts_to_one_handler_are_numbered_together(stores: Stores) -> None:
    handler = create(stores)
    retrying, skipped = AttemptStatus.RETRYING, AttemptStatus.SKIPPED
    assert stores.handlers.note_attempts(handler, [retrying, skipped, retrying], MOMENT) == Noted(1, MOMENT)
    mixed = [AttemptStatus.FAILED, AttemptStatus.DELIVERED]
    later = MOMENT + timedelta(minutes=1)
    assert stores.handlers.note_attempts(handler, mixed, later) == Noted(4, None, recovered_from=MOMENT)
    assert stores.handlers.attempt_count(ACME, handler.id) == 5


def test_only_the_delivered_attempt_that_ends_a_run_of_failures_is_a_recovery(stores: Stores) -> None:
    handler = create(stores)
    later = MOMENT + timedelta(minutes=5)
    assert stores.handlers.note_attempts(handler, [AttemptStatus.DELIVERED], MOMENT) == Noted(1, None)
    stores.handlers.note_attempts(handler, [AttemptStatus.RETRYING], MOMENT)
    ended = stores.handlers.note_attempts(handler, [AttemptStatus.DELIVERED], later)
    again = stores.handlers.note_attempts(handler, [AttemptStatus.DELIVERED], later)
    assert (ended, again) == (Noted(3, None, recovered_from=MOMENT), Noted(4, None))


def test_clearing_the_failing_clock_lets_the_next_failure_start_it_again(stores: Stores) -> None:
    """Re-enabling a handler clears `failing_since` (services send None): the next failure
    must start the clock afresh, or a handler failing again is never disabled."""
    handler = create(stores)
    stores.handlers.note_attempts(handler, [AttemptStatus.FAILED], MOMENT)
    stores.handlers.update_handler(
        ACME,
        handler.id,
        fields={"is_enabled": True, "failing_since": None, "disabled_reason": None},
        settings={},
        replace_settings=False,
        expected_type=None,
        now=MOMENT,
    )
    reenabled = services.get_handler(stores, ACME, handler.id)
    assert reenabled.failing_since is None
    later = MOMENT + timedelta(days=1)
    assert stores.handlers.note_attempts(reenabled, [AttemptStatus.FAILED], later) == Noted(2, later)
    assert services.get_handler(stores, ACME, handler.id).failing_since == later


def test_a_handler_is_disabled_once_with_its_reason(stores: Stores) -> None:
    handler = create(stores)
    assert stores.handlers.disable_handler(ACME, handler.id, "gone", MOMENT) is True
    assert stores.handlers.disable_handler(ACME, handler.id, "again", MOMENT) is False
    disabled = stores.handlers.get_handler(ACME, handler.id)
    assert disabled is not None
    assert (disabled.is_enabled, disabled.disabled_reason, disabled.updated_at) == (False, "gone", MOMENT)
    assert stores.handlers.disable_handler(ACME, 99, "ghost", MOMENT) is False


def test_another_account_can_neither_read_nor_update_nor_delete_a_handler(stores: Stores) -> None:
    mine = create(stores)
    assert stores.handlers.get_handler(GLOBEX, mine.id) is None
    with pytest.raises(NotFound):
        services.get_handler(stores, GLOBEX, mine.id)
    with pytest.raises(NotFound):
        update(stores, GLOBEX, mine.id, {"name": "pwned"})
    with pytest.raises(NotFound):
        update(stores, GLOBEX, mine.id, {"telegram_chat_id": "-666"})
    with pytest.raises(NotFound):
        update(stores, GLOBEX, mine.id, {"type": "webhook", "webhook": "https://evil.example/hook"})
    assert stores.handlers.delete_handler(GLOBEX, mine.id) is False
    with pytest.raises(NotFound):
        services.delete_handler(stores, GLOBEX, mine.id)
    assert stores.handlers.list_handlers(GLOBEX, 1, 25).handlers == []
    assert every_handler(stores, GLOBEX) == []

    theirs = create(stores, GLOBEX, name="Theirs")
    assert theirs.id == mine.id
    assert stores.handlers.get_handler(ACME, mine.id) == mine
    assert (stores.handlers.count_handlers(ACME), stores.handlers.count_handlers(GLOBEX)) == (1, 1)


def scoped(stores: Stores, app: str | None, handler_type: str = "telegram", name: str = "Ops") -> Handler:
    """A handler of `app` (None: account-wide) of a type that needs no URL check."""
    body: dict[str, Any] = {"name": name, **TELEGRAM, "app": app or ""}
    if handler_type != "telegram":
        body = {"name": name, "type": handler_type, "app": app or ""}
    command = create_command(body).model_copy(update={"awaiting_setup": True})
    return services.create_handler(stores, ACME, command, base_url=BASE_URL)


def app_page(
    stores: Stores, app: str, types: tuple[str, ...], page: int, per_page: int
) -> tuple[list[int], int]:
    found = stores.handlers.list_app_handlers(ACME, app, types, page, per_page)
    return [h.id for h in found.handlers], found.total


def test_an_apps_handlers_are_read_without_other_apps_or_the_account_wide_ones(stores: Stores) -> None:
    web = [scoped(stores, "web").id, scoped(stores, "web", "internal_notification").id]
    api = scoped(stores, "api")
    everywhere = scoped(stores, None)
    web.append(scoped(stores, "web").id)
    create(stores, GLOBEX)  # another account's handler of no app
    assert [h.id for h in stores.handlers.app_handlers(ACME, "web")] == web
    assert stores.handlers.app_handlers(ACME, "api") == [api]
    assert stores.handlers.app_handlers(ACME, "we") == [], "a prefix of an app's name is another app"
    assert stores.handlers.app_handlers(GLOBEX, "web") == []
    assert stores.handlers.handlers_in_scope(ACME, "web") == sorted(
        [*stores.handlers.app_handlers(ACME, "web"), everywhere], key=lambda h: h.id
    )
    assert stores.handlers.handlers_in_scope(ACME, None) == [everywhere]
    assert stores.handlers.handlers_in_scope(ACME, "new") == [everywhere]


def test_an_apps_handlers_of_some_types_are_paged_in_id_order_with_their_total(
    stores: Stores, small_blocks: int
) -> None:
    block, count = small_blocks, 2 * small_blocks + 30
    for handler in make_handlers(ACME, count):
        app = "web" if handler.id % 3 else ("api" if handler.id % 2 else None)
        kind = "slack" if handler.id % 5 == 0 else ("x" if handler.id % 7 == 0 else handler.type)
        stores.handlers.create_handler(handler.model_copy(update={"app": app, "type": kind}))
    # around block boundaries, the last
    for handler_id in (1, 2, block - 1, block, block + 1, 2 * block, count - 1, count):
        stores.handlers.delete_handler(ACME, handler_id)
    live = {h.id: h for h in every_handler(stores, ACME)}
    for types in (("webhook", "slack"), ("x",), ("webhook", "slack", "x")):
        wanted = [i for i, h in live.items() if h.app == "web" and h.type in types]
        # pages of one handler only for the rarest type: every page boundary, in few reads
        for per_page in (1, 7, 10, 50, 100) if types == ("x",) else (7, 10, 50, 100):
            pages = -(-len(wanted) // per_page)
            listed = [app_page(stores, "web", types, page, per_page) for page in range(1, pages + 2)]
            assert {total for _, total in listed} == {len(wanted)}
            assert [i for page_ids, _ in listed for i in page_ids] == wanted, (types, per_page)
            assert listed[-1][0] == [], "the page after the last is empty"
    assert app_page(stores, "nowhere", ("webhook",), 1, 10) == ([], 0)


def test_moving_a_handler_between_apps_and_types_moves_it_in_the_lists_and_counts(stores: Stores) -> None:
    handler = scoped(stores, "web", "webhook")
    notifications = ("webhook", "slack")
    update(stores, ACME, handler.id, {"app": "api"})
    assert (stores.handlers.app_handlers(ACME, "web"), app_page(stores, "web", notifications, 1, 10)) == (
        [],
        ([], 0),
    )
    assert app_page(stores, "api", notifications, 1, 10) == ([handler.id], 1)
    update(stores, ACME, handler.id, {"type": "internal_notification"})
    assert app_page(stores, "api", notifications, 1, 10) == ([], 0)
    assert app_page(stores, "api", ("internal_notification",), 1, 10) == ([handler.id], 1)
    update(stores, ACME, handler.id, {"app": ""})
    assert stores.handlers.app_handlers(ACME, "api") == []
    assert [h.id for h in stores.handlers.handlers_in_scope(ACME, None)] == [handler.id]
    update(stores, ACME, handler.id, {"app": "web", "name": "Back"})
    assert [h.name for h in stores.handlers.app_handlers(ACME, "web")] == ["Back"]
    assert app_page(stores, "web", ("internal_notification",), 1, 10) == ([handler.id], 1)
    services.delete_handler(stores, ACME, handler.id)
    assert app_page(stores, "web", ("internal_notification",), 1, 10) == ([], 0)
    assert stores.handlers.handlers_in_scope(ACME, "web") == []
    assert stores.handlers.count_handlers(ACME) == 0


def test_an_update_that_keeps_the_app_keeps_the_handler_listed_once(stores: Stores) -> None:
    handler = scoped(stores, "web", "webhook")
    update(stores, ACME, handler.id, {"app": "web", "name": "Renamed"})
    assert app_page(stores, "web", ("webhook",), 1, 10) == ([handler.id], 1)
    assert [h.name for h in stores.handlers.app_handlers(ACME, "web")] == ["Renamed"]


def test_moving_a_handler_to_another_type_is_refused_if_its_type_changed_meanwhile(stores: Stores) -> None:
    handler = scoped(stores, "web")
    with pytest.raises(Conflict):
        update_in_store(stores, handler.id, {"app": "api"}, {"email": "ops@example.com"}, "email")
    assert app_page(stores, "web", ("telegram",), 1, 10) == ([handler.id], 1)
    assert app_page(stores, "api", ("telegram",), 1, 10) == ([], 0)
    with pytest.raises(NotFound):
        update_in_store(stores, 99, {"app": "api"})
