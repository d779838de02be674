"""The local stack's data directory: one stack at a time, a private key file, a reset that
keeps the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald_local.data import Busy, DataDir


def test_a_held_directory_refuses_a_second_stack_and_a_reset(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "herald")
    with data.locked():
        with pytest.raises(Busy, match="another local stack"), data.locked():
            pass
        with pytest.raises(Busy):
            data.wipe()
    with data.locked():  # released at the end of the block
        pass


def test_reset_wipes_the_database_and_keeps_the_key(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "herald")
    data.dynamodb.mkdir(parents=True)
    (data.dynamodb / "shared-local-instance.db").write_bytes(b"tables")
    data.save_key("hk_kept-0123456789abcdefghij")
    assert data.has_dynamodb_data()
    assert data.wipe() is True
    assert not data.has_dynamodb_data()
    assert data.saved_key() == "hk_kept-0123456789abcdefghij"
    assert oct(data.key_file.stat().st_mode & 0o777) == "0o600"
    assert data.wipe() is False
