"""Journal: events, orders and fills in SQLite under the user data dir.

One small database per environment; writes are tiny and committed at once (WAL mode), so a crash
loses nothing that was acknowledged. On restart the journal says which orders we believe are open and
which positions our fills imply, and `recovery` compares that with what the venues report.

The journal lists the account's orders, sizes and fills: it is private to the user, so the file is
0600 in a 0700 folder (and SQLite gives its -wal/-shm files the database's mode).
"""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from platformdirs import user_data_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL, session TEXT NOT NULL, venue TEXT NOT NULL, type TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    session TEXT NOT NULL, venue TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    type TEXT NOT NULL, amount TEXT NOT NULL, price TEXT, reduce_only INTEGER NOT NULL,
    status TEXT NOT NULL, exchange_order_id TEXT, filled TEXT NOT NULL DEFAULT '0',
    average TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL, error TEXT
);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT NOT NULL, venue TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    amount TEXT NOT NULL, price TEXT NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS books (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL, session TEXT NOT NULL, mode TEXT NOT NULL, execution TEXT NOT NULL, book TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS books_by_mode ON books(mode, execution, id);
"""
OPEN_STATUSES = ("submitted", "open", "unknown")   # "unknown": accepted, final state not yet read


def default_journal_path(environment: str) -> Path:
    return Path(user_data_dir("basis-workstation")) / f"journal-{environment}.sqlite3"


@dataclass(frozen=True, slots=True)
class JournalOrder:
    client_order_id: str
    venue: str
    symbol: str
    side: str
    amount: Decimal
    status: str
    exchange_order_id: str | None


class JournalError(ValueError):
    """The journal file cannot be used (corrupt, not a database, unreadable); the message names it."""


def _private_dir(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = folder.stat().st_mode
    if mode & 0o077 and not mode & stat.S_ISVTX:     # never tighten a shared sticky folder such as /tmp
        os.chmod(folder, 0o700)


def _private_file(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    os.chmod(path, 0o600)


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        db: sqlite3.Connection | None = None
        try:
            _private_dir(path.parent)
            _private_file(path)
            db = sqlite3.connect(path, isolation_level=None)   # autocommit: every write is durable
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            if db is not None:
                db.close()
            raise JournalError(f"journal {path} is not a usable SQLite database ({exc}); move it aside to "
                               "start a new journal (restart recovery then relies on the venues alone)") from None
        except OSError as exc:
            raise JournalError(f"journal {path}: {exc.strerror or exc}") from None
        self.db = db

    def close(self) -> None:
        self.db.close()

    # ---------------------------------------------------------------- writes
    def event(self, session: str, venue: str, type_: str, **detail) -> None:
        self.db.execute("INSERT INTO events(at, session, venue, type, detail) VALUES (?,?,?,?,?)",
                        (time.time(), session, venue, type_, json.dumps(detail, default=str)))

    def order_submitted(self, session: str, venue: str, request) -> None:
        now = time.time()
        self.db.execute(
            "INSERT OR REPLACE INTO orders(client_order_id, session, venue, symbol, side, type, amount, price,"
            " reduce_only, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (request.client_order_id, session, venue, request.symbol, request.side.value, request.type.value,
             str(request.amount), None if request.price is None else str(request.price),
             int(request.reduce_only), "submitted", now, now))

    def order_update(self, client_order_id: str, status: str, exchange_order_id: str | None = None,
                     filled: Decimal | None = None, average: Decimal | None = None,
                     error: str | None = None) -> None:
        self.db.execute(
            "UPDATE orders SET status=?, exchange_order_id=COALESCE(?, exchange_order_id),"
            " filled=COALESCE(?, filled), average=COALESCE(?, average), error=COALESCE(?, error),"
            " updated_at=? WHERE client_order_id=?",
            (status, exchange_order_id, None if filled is None else str(filled),
             None if average is None else str(average), error, time.time(), client_order_id))

    def fill(self, client_order_id: str, venue: str, symbol: str, side: str, amount: Decimal,
             price: Decimal) -> None:
        self.db.execute("INSERT INTO fills(client_order_id, venue, symbol, side, amount, price, at)"
                        " VALUES (?,?,?,?,?,?,?)",
                        (client_order_id, venue, symbol, side, str(amount), str(price), time.time()))

    # ---------------------------------------------------------------- reads
    def open_orders(self) -> list[JournalOrder]:
        rows = self.db.execute(
            "SELECT client_order_id, venue, symbol, side, amount, status, exchange_order_id FROM orders"
            f" WHERE status IN ({','.join('?' * len(OPEN_STATUSES))}) ORDER BY created_at", OPEN_STATUSES)
        return [JournalOrder(r[0], r[1], r[2], r[3], Decimal(r[4]), r[5], r[6]) for r in rows]

    def positions(self) -> dict[tuple[str, str], Decimal]:
        """Net base-asset position per (venue, symbol) implied by the journal's fills."""
        out: dict[tuple[str, str], Decimal] = {}
        for venue, symbol, side, amount in self.db.execute("SELECT venue, symbol, side, amount FROM fills"):
            signed = Decimal(amount) if side == "buy" else -Decimal(amount)
            out[(venue, symbol)] = out.get((venue, symbol), Decimal(0)) + signed
        return {k: v for k, v in out.items() if v != 0}

    # ---------------------------------------------------------------- strategy books
    def save_book(self, session: str, mode: str, execution: str, book: dict) -> None:
        """The strategy's holdings as the session sees them (JSON), written when they change.

        A restarted live session resumes from the latest book of its mode instead of entering
        again on top of positions it already holds (recovery then checks it against the venues).
        """
        self.db.execute("INSERT INTO books(at, session, mode, execution, book) VALUES (?,?,?,?,?)",
                        (time.time(), session, mode, execution, json.dumps(book, sort_keys=True)))

    def latest_book(self, mode: str, execution: str) -> tuple[str, float, dict] | None:
        """(session, time.time() written, book) of the newest book for the mode, or None."""
        row = self.db.execute("SELECT session, at, book FROM books WHERE mode=? AND execution=? ORDER BY id DESC"
                              " LIMIT 1", (mode, execution)).fetchone()
        return None if row is None else (row[0], row[1], json.loads(row[2]))

    def events(self, limit: int = 1000) -> list[tuple]:
        return list(self.db.execute(
            "SELECT at, session, venue, type, detail FROM events ORDER BY id DESC LIMIT ?", (limit,)))
