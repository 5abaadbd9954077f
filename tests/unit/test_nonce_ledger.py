"""The nonce ledger: durable, ordered by nonce, written before broadcast, in the journal's file."""

from __future__ import annotations

import os
import stat

from engine.domain.onchain_ports import LedgerStatus, LedgerTx
from engine.services.live.journal import Journal
from engine.services.live.nonce_ledger import NonceLedger

SENDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def tx(nonce: int, tx_hash: str, status: LedgerStatus = LedgerStatus.SIGNED, kind: str = "send") -> LedgerTx:
    return LedgerTx(
        chain_id=1,
        sender=SENDER,
        nonce=nonce,
        tx_hash=tx_hash,
        kind=kind,
        label=f"op {nonce}",
        status=status,
        raw="0x02aa",
        max_fee_wei=30 * 10**9,
        priority_fee_wei=10**9,
        gas_limit=90_000,
    )


def test_pending_are_the_unfinished_ones_oldest_nonce_first(tmp_path):
    ledger = NonceLedger(tmp_path / "j.sqlite3")
    ledger.record(tx(3, "0xc"))
    ledger.record(tx(1, "0xa"))
    ledger.record(tx(2, "0xb"))
    ledger.update("0xb", LedgerStatus.CONFIRMED, block_number=10, block_hash="0xblock")
    ledger.update("0xa", LedgerStatus.SENT)
    assert [(t.nonce, t.status) for t in ledger.pending(1, SENDER)] == [
        (1, LedgerStatus.SENT),
        (3, LedgerStatus.SIGNED),
    ]
    assert ledger.pending(1, SENDER.lower()) == ledger.pending(1, SENDER)  # address case does not matter
    assert ledger.pending(5, SENDER) == []
    assert ledger.get("0xb").block_number == 10 and ledger.get("0xb").status is LedgerStatus.CONFIRMED
    assert ledger.highest_nonce(1, SENDER) == 3


def test_replacements_share_a_nonce_and_failed_ones_do_not_hold_it(tmp_path):
    ledger = NonceLedger(tmp_path / "j.sqlite3")
    ledger.record(tx(0, "0x1"))
    ledger.record(tx(0, "0x2", kind="replace"))
    assert [t.kind for t in ledger.by_nonce(1, SENDER, 0)] == ["send", "replace"]
    ledger.record(tx(1, "0x3"))
    ledger.update("0x3", LedgerStatus.FAILED, detail="refused by the node: insufficient funds")
    assert ledger.highest_nonce(1, SENDER) == 0
    assert ledger.get("0x3").detail == "refused by the node: insufficient funds"


def test_resigning_identical_fields_revives_the_row(tmp_path):
    ledger = NonceLedger(tmp_path / "j.sqlite3")
    ledger.record(tx(0, "0x1"))
    ledger.update("0x1", LedgerStatus.FAILED, detail="refused")
    ledger.record(tx(0, "0x1"))
    assert ledger.get("0x1").status is LedgerStatus.SIGNED
    assert [e[2] for e in ledger.events("0x1")] == ["signed", "failed", "signed"]


def test_survives_a_restart_and_shares_the_journal_file(tmp_path):
    path = tmp_path / "data" / "journal-testnet.sqlite3"
    journal = Journal(path)
    ledger = NonceLedger.beside(journal)
    ledger.record(tx(7, "0x7"))
    ledger.note("0x7", "broadcast uncertain (timeout)")
    journal.event("s1", "alchemy", "note", text="hello")
    ledger.close()
    journal.close()
    reopened = NonceLedger(path)
    assert [t.nonce for t in reopened.pending(1, SENDER)] == [7]
    assert "broadcast uncertain" in reopened.events("0x7")[-1][3]
    assert Journal(path).events()[0][3] == "note"


def test_a_new_ledger_file_is_private(tmp_path):
    path = tmp_path / "fresh" / "ledger.sqlite3"
    NonceLedger(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
