"""Pure parts of the local stack: which settings win, and moto's bounded memory of deletes."""

from __future__ import annotations

from herald_local.moto_server import RecentHandles
from herald_local.stack import layered_settings

STAGE = {"HERALD_TABLE": "herald-dev", "HERALD_RATE_LIMIT_PER_MINUTE": "1000"}


def test_a_herald_variable_of_the_environment_wins_over_the_stage() -> None:
    merged, changed = layered_settings(
        STAGE, {"HERALD_RATE_LIMIT_PER_MINUTE": "0", "HERALD_EMAIL_CONFIRMATION": "0", "PATH": "/bin"}
    )
    assert merged == {
        "HERALD_TABLE": "herald-dev",
        "HERALD_RATE_LIMIT_PER_MINUTE": "0",
        "HERALD_EMAIL_CONFIRMATION": "0",
    }
    assert changed == ["HERALD_EMAIL_CONFIRMATION", "HERALD_RATE_LIMIT_PER_MINUTE"]


def test_what_local_env_exports_is_not_reported_as_a_changed_setting() -> None:
    """A shell that sourced local.env starts the next `make dev` with the same values."""
    environ = {**STAGE, "HERALD_URL": "http://127.0.0.1:8000", "HERALD_API_KEY": "hk_x"}
    merged, changed = layered_settings(STAGE, environ)
    assert changed == []
    assert merged["HERALD_TABLE"] == "herald-dev"


def test_moto_remembers_only_the_newest_deleted_receipt_handles() -> None:
    handles = RecentHandles(limit=3)
    handles.update(["a", "b"], ["c"])
    handles.add("b")  # already there: nothing moves
    handles.update(["d", "e"])
    assert set(handles) == {"c", "d", "e"}
    assert "a" not in handles
    assert "e" in handles
