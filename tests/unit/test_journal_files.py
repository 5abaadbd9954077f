"""The journal's files are private (0600 in a 0700 folder) and a corrupt journal names its path."""
from __future__ import annotations

import stat
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.venue_ports import OrderRequest, OrderType, Side
from engine.services.live.journal import Journal, JournalError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_journal_file_and_folder_are_private(tmp_path: Path):
    folder = tmp_path / "state"
    journal = Journal(folder / "journal-testnet.sqlite3")
    try:
        journal.order_submitted("s", "okx", OrderRequest("ETH/USDT", Side.BUY, OrderType.MARKET, Decimal(1), "c1"))
        files = sorted(folder.iterdir())
        assert {p.name for p in files} >= {"journal-testnet.sqlite3", "journal-testnet.sqlite3-wal"}
        assert mode(folder) == 0o700
        for path in files:
            assert mode(path) == 0o600, f"{path.name} is {oct(mode(path))}"
    finally:
        journal.close()


def test_an_existing_world_readable_journal_is_tightened(tmp_path: Path):
    folder = tmp_path / "state"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    path = folder / "journal-testnet.sqlite3"
    Journal(path).close()
    path.chmod(0o644)
    Journal(path).close()
    assert (mode(folder), mode(path)) == (0o700, 0o600)


@pytest.mark.parametrize("content", [b"this is not a database, just text\n" * 100, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_corrupt_journal_names_its_path(tmp_path: Path, content: bytes):
    path = tmp_path / "journal-testnet.sqlite3"
    path.write_bytes(content)
    with pytest.raises(JournalError) as info:
        Journal(path)
    assert str(info.value).startswith(f"journal {path} is not a usable SQLite database")
    assert "move it aside" in str(info.value)
