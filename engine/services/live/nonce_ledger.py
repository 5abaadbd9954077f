"""The nonce ledger: every transaction the workstation signs, in the journal's SQLite database.

A signed transaction is recorded *before* it is broadcast (status ``signed``), then follows it to a
final state. After a crash the ledger therefore knows every nonce that may be in flight and holds
the signed bytes, so the transaction manager can find out what happened to each (mined, replaced,
still in the mempool, or never sent) and rebroadcast or cancel it. The signed bytes are public once
broadcast; no key material is ever written here.

Its own tables and its own connection to the journal file (WAL mode lets both write), so the ledger
stays out of the journal's write path: transaction records are synchronous and durable by design.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from engine.domain.onchain_ports import PENDING_STATUSES, LedgerStatus, LedgerTx

SCHEMA = """
CREATE TABLE IF NOT EXISTS chain_transactions (
    tx_hash TEXT PRIMARY KEY,
    chain_id INTEGER NOT NULL, sender TEXT NOT NULL, nonce INTEGER NOT NULL,
    kind TEXT NOT NULL, label TEXT NOT NULL, status TEXT NOT NULL, raw TEXT NOT NULL,
    max_fee_wei TEXT NOT NULL, priority_fee_wei TEXT NOT NULL, gas_limit INTEGER NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    block_number INTEGER, block_hash TEXT, detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS chain_transactions_by_nonce ON chain_transactions(chain_id, sender, nonce);
CREATE TABLE IF NOT EXISTS chain_transaction_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tx_hash TEXT NOT NULL, at REAL NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL
);
"""
_COLUMNS = (
    "chain_id, sender, nonce, tx_hash, kind, label, status, raw, max_fee_wei, priority_fee_wei, gas_limit,"
    " created_at, block_number, block_hash, detail"
)


class NonceLedger:
    """Implements engine.domain.onchain_ports.NonceLedgerPort on SQLite."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        created = not path.exists()
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)  # autocommit: every write is durable
        if created:
            os.chmod(path, 0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=2000")
        self.db.executescript(SCHEMA)

    @classmethod
    def beside(cls, journal) -> "NonceLedger":
        """The ledger in the same database file as an engine.services.live.journal.Journal."""
        return cls(journal.path)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------------------------ writes
    def record(self, tx: LedgerTx) -> None:
        """A newly signed transaction. Signing the same fields again gives the same hash (a resend after
        the node refused it): that row is brought back to life instead of duplicated."""
        now = time.time()
        self.db.execute(
            f"INSERT INTO chain_transactions({_COLUMNS}, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(tx_hash) DO UPDATE SET status=excluded.status, label=excluded.label,"
            " detail=excluded.detail, updated_at=excluded.updated_at, block_number=NULL, block_hash=NULL",
            (
                tx.chain_id,
                tx.sender.lower(),
                tx.nonce,
                tx.tx_hash,
                tx.kind,
                tx.label,
                tx.status.value,
                tx.raw,
                str(tx.max_fee_wei),
                str(tx.priority_fee_wei),
                tx.gas_limit,
                tx.created_at or now,
                tx.block_number,
                tx.block_hash,
                tx.detail,
                now,
            ),
        )
        self._event(tx.tx_hash, tx.status, tx.detail or f"{tx.kind} nonce {tx.nonce}: {tx.label}")

    def update(
        self,
        tx_hash: str,
        status: LedgerStatus,
        *,
        block_number: int | None = None,
        block_hash: str | None = None,
        detail: str = "",
    ) -> None:
        self.db.execute(
            "UPDATE chain_transactions SET status=?, block_number=?, block_hash=?,"
            " detail=CASE WHEN ?='' THEN detail ELSE ? END, updated_at=? WHERE tx_hash=?",
            (status.value, block_number, block_hash, detail, detail, time.time(), tx_hash),
        )
        self._event(tx_hash, status, detail)

    def note(self, tx_hash: str, detail: str) -> None:
        """An event without a status change (a reorg seen, a rebroadcast)."""
        row = self.db.execute("SELECT status FROM chain_transactions WHERE tx_hash=?", (tx_hash,)).fetchone()
        if row is not None:
            self._event(tx_hash, LedgerStatus(row[0]), detail)

    def _event(self, tx_hash: str, status: LedgerStatus, detail: str) -> None:
        self.db.execute(
            "INSERT INTO chain_transaction_events(tx_hash, at, status, detail) VALUES (?,?,?,?)",
            (tx_hash, time.time(), status.value, detail),
        )

    # ------------------------------------------------------------------------------------ reads
    def _rows(self, where: str, args: tuple) -> list[LedgerTx]:
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM chain_transactions WHERE {where} ORDER BY nonce, created_at", args
        )
        return [
            LedgerTx(
                chain_id=r[0],
                sender=r[1],
                nonce=r[2],
                tx_hash=r[3],
                kind=r[4],
                label=r[5],
                status=LedgerStatus(r[6]),
                raw=r[7],
                max_fee_wei=int(r[8]),
                priority_fee_wei=int(r[9]),
                gas_limit=r[10],
                created_at=r[11],
                block_number=r[12],
                block_hash=r[13],
                detail=r[14],
            )
            for r in rows
        ]

    def get(self, tx_hash: str) -> LedgerTx | None:
        rows = self._rows("tx_hash=?", (tx_hash,))
        return rows[0] if rows else None

    def pending(self, chain_id: int, sender: str) -> list[LedgerTx]:
        marks = ",".join("?" * len(PENDING_STATUSES))
        return self._rows(
            f"chain_id=? AND sender=? AND status IN ({marks})",
            (chain_id, sender.lower(), *(s.value for s in PENDING_STATUSES)),
        )

    def by_nonce(self, chain_id: int, sender: str, nonce: int) -> list[LedgerTx]:
        return self._rows("chain_id=? AND sender=? AND nonce=?", (chain_id, sender.lower(), nonce))

    def by_label(self, label: str) -> list[LedgerTx]:
        """Every transaction signed under ``label`` (a transfer finds its payment after a restart)."""
        return self._rows("label=?", (label,))

    def highest_nonce(self, chain_id: int, sender: str) -> int | None:
        row = self.db.execute(
            "SELECT MAX(nonce) FROM chain_transactions WHERE chain_id=? AND sender=? AND status<>?",
            (chain_id, sender.lower(), LedgerStatus.FAILED.value),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def events(self, tx_hash: str | None = None) -> list[tuple[str, float, str, str]]:
        if tx_hash is None:
            return list(
                self.db.execute(
                    "SELECT tx_hash, at, status, detail FROM chain_transaction_events ORDER BY id"
                )
            )
        return list(
            self.db.execute(
                "SELECT tx_hash, at, status, detail FROM chain_transaction_events WHERE tx_hash=?"
                " ORDER BY id",
                (tx_hash,),
            )
        )
