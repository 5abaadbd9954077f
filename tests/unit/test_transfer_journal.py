"""The transfers journal: fees and moves are kept exactly, and a journal written before they were
journaled opens and reads (its transfers carry no fee)."""
from __future__ import annotations

import sqlite3
from decimal import Decimal as D

from engine.domain.transfers import Transfer, TransferKind, TransferStatus
from engine.services.live.transfers import Move, TransferJournal

OLD_SCHEMA = """
CREATE TABLE transfers (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, asset TEXT NOT NULL, amount TEXT NOT NULL,
    source TEXT NOT NULL, destination TEXT NOT NULL, address TEXT NOT NULL, status TEXT NOT NULL,
    withdraw_id TEXT NOT NULL DEFAULT '', tx_hash TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL, updated_at REAL NOT NULL, detail TEXT NOT NULL DEFAULT ''
);
INSERT INTO transfers VALUES ('old1', 'cex_to_wallet', 'USDT', '42', 'binance', 'wallet', '0xabc', 'sent', '7', '',
                              1.0, 1.0, '');
"""


def test_a_journal_from_before_fees_opens_and_reads(tmp_path):
    path = tmp_path / "journal-testnet.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.close()
    journal = TransferJournal(path)
    [old] = journal.all()
    assert (old.id, old.amount, old.fee, old.fee_included, old.debit, old.arrives) == \
        ("old1", D(42), D(0), False, D(42), D(42))
    assert [t.id for t in journal.in_flight("binance")] == ["old1"] and journal.in_flight("okx") == []


def test_fees_and_moves_are_journaled_exactly(tmp_path):
    journal = TransferJournal(tmp_path / "journal-testnet.sqlite3")
    t = Transfer("t1", TransferKind.CEX_TO_WALLET, "USDT", D("1250.5"), "binance", "wallet", "0xabc",
                 TransferStatus.REQUESTED, 1.0, 1.0, fee=D("0.8"), fee_included=True)
    journal.insert(t)
    journal.save_move(Move("t1-out", "t1", "binance", "USDT", D("1250.5"), "linear", "spot", "sending", "", 1.0, 1.5))
    journal.save_move(Move("t1-out", "t1", "binance", "USDT", D("1250.5"), "linear", "spot", "done", "99", 1.0, 2.0))
    [back] = journal.all()
    assert (back.fee, back.fee_included, back.debit, back.arrives) == (D("0.8"), True, D("1250.5"), D("1249.7"))
    [m] = journal.moves("t1")
    assert (m.status, m.venue_id, m.amount) == ("done", "99", D("1250.5"))
    assert [s for s, _ in journal.events("t1")] == ["requested", "move sending", "move done"]
    journal.close()
