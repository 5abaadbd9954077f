"""Journal: events, orders, fills, strategy books and the instance lease in SQLite under the user data dir.

One small database per environment (WAL mode). Writes never run on the caller's thread: each one is
queued to a writer thread that commits it in order (several at once when they queue up), so the event
loop — and above all the emergency stop — never waits for the disk or for a lock another process
holds on the file. A write that cannot be committed (the file locked, the disk full) stays queued and
is retried; the journal reports it (`health`) instead of raising into the caller, and reports what
it had to give up when it is closed while still unable to write.

Order rows are the exception that proves the rule: before a new order is sent its row must be on
disk (`order_submitted` returns a future for that), so a restart always knows what may be at a
venue. The order gate waits for it, bounded; the emergency stop never does.

On restart the journal says which orders we believe are open or unresolved and which positions our
fills imply, and `recovery` resolves each with the venues.

The journal lists the account's orders, sizes and fills: it is private to the user, so the file is
0600 in a 0700 folder (and SQLite gives its -wal/-shm files the database's mode).
"""
from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import queue
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

log = logging.getLogger(__name__)

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
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL, started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
"""
#: Rows whose outcome a restart must resolve with the venue: "submitted" (sent, no answer yet),
#: "open" (resting), "unknown" (accepted, or an answer lost: final state not read yet).
OPEN_STATUSES = ("submitted", "open", "unknown")
#: How long the writer waits on a lock before it reports the journal as failing and retries.
WRITER_BUSY_TIMEOUT_S = 0.25
RETRY_DELAY_MAX_S = 1.0
BATCH = 200


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
    created_at: float = 0.0
    session: str = ""
    reduce_only: bool = False


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds the journal (and the accounts it records) for live trading."""

    holder: str
    pid: int
    host: str
    started_at: float
    heartbeat_at: float


@dataclass(frozen=True, slots=True)
class JournalHealth:
    """The writer's state: entries waiting, and since when writes fail and why."""

    pending: int
    written: int
    failing_since: float | None        # time.time() of the first failure of the current run of them
    last_error: str
    lost: int                          # entries given up at close because they could not be written

    @property
    def ok(self) -> bool:
        return self.failing_since is None and self.lost == 0

    def describe(self) -> str:
        if self.lost:
            return f"journal: {self.lost} entr{'y' if self.lost == 1 else 'ies'} could not be written ({self.last_error})"
        if self.failing_since is None:
            return "journal: ok"
        return (f"journal: writes failing for {time.time() - self.failing_since:.0f} s ({self.last_error}); "
                f"{self.pending} entr{'y' if self.pending == 1 else 'ies'} queued, trading goes on, new entries "
                "wait for it")


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


Statement = tuple[str, tuple[Any, ...]]


@dataclass
class _Entry:
    statements: list[Statement]
    done: concurrent.futures.Future[None] | None = None


_STOP = object()


class _Writer(threading.Thread):
    """Commits queued entries in order on its own connection; retries what a lock or a full disk
    refuses, and reports it through the journal's health instead of raising."""

    def __init__(self, path: Path) -> None:
        super().__init__(name=f"journal-writer {path.name}", daemon=True)
        self.path = path
        self.queue: queue.Queue[Any] = queue.Queue()
        self.lock = threading.Lock()
        self.pending = 0
        self.written = 0
        self.lost = 0
        self.failing_since: float | None = None
        self.last_error = ""
        self.give_up_at: float | None = None       # set by close(): after this, what is left is lost
        self._idle = threading.Condition(self.lock)

    def put(self, entry: _Entry) -> None:
        with self.lock:
            self.pending += 1
        self.queue.put(entry)

    def run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=WRITER_BUSY_TIMEOUT_S)
        try:
            while True:
                first = self.queue.get()
                if first is _STOP:
                    return
                batch: list[_Entry] = [first]
                stop = False
                while len(batch) < BATCH:
                    try:
                        nxt = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    batch.append(nxt)
                self._commit(db, batch)
                if stop:
                    return
        finally:
            db.close()

    def _commit(self, db: sqlite3.Connection, batch: list[_Entry]) -> None:
        delay = 0.02
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    for entry in batch:
                        for sql, args in entry.statements:
                            db.execute(sql, args)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                self._failed(exc)
                give_up = self.give_up_at
                if give_up is not None and time.monotonic() >= give_up:
                    self._lose(batch, exc)
                    return
                time.sleep(delay)
                delay = min(delay * 2, RETRY_DELAY_MAX_S)
                continue
            self._written(batch)
            return

    def _failed(self, exc: sqlite3.Error) -> None:
        with self.lock:
            first = self.failing_since is None
            if first:
                self.failing_since = time.time()
            self.last_error = f"{type(exc).__name__}: {exc}"
        if first:
            log.error("journal %s: cannot write (%s); entries stay queued and are retried", self.path, exc)

    def _written(self, batch: list[_Entry]) -> None:
        with self.lock:
            recovered = self.failing_since is not None
            self.failing_since = None
            self.pending -= len(batch)
            self.written += len(batch)
            if self.pending == 0:
                self._idle.notify_all()
        if recovered:
            log.warning("journal %s: writing again", self.path)
        for entry in batch:
            if entry.done is not None and not entry.done.done():
                entry.done.set_result(None)

    def _lose(self, batch: list[_Entry], exc: sqlite3.Error) -> None:
        with self.lock:
            self.pending -= len(batch)
            self.lost += len(batch)
            if self.pending == 0:
                self._idle.notify_all()
        log.error("journal %s: gave up %d entr%s at close: %s", self.path, len(batch),
                  "y" if len(batch) == 1 else "ies", exc)
        for entry in batch:
            if entry.done is not None and not entry.done.done():
                entry.done.set_exception(JournalUnwritable(f"journal {self.path}: {exc}"))

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True


class JournalUnwritable(RuntimeError):
    """A journal entry could not be written (the message names the file and why)."""


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        db: sqlite3.Connection | None = None
        try:
            _private_dir(path.parent)
            _private_file(path)
            db = sqlite3.connect(path, isolation_level=None, timeout=2.0, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            if db is not None:
                db.close()
            message = str(exc)
            if "locked" in message or "busy" in message:
                raise JournalError(f"journal {path} is locked by another process ({exc}); close the other "
                                   "workstation or command using it, then start again") from None
            raise JournalError(f"journal {path} is not a usable SQLite database ({exc}); move it aside to "
                               "start a new journal (restart recovery then relies on the venues alone)") from None
        except OSError as exc:
            raise JournalError(f"journal {path}: {exc.strerror or exc}") from None
        # Reads (restart recovery, the views) use this connection; writes go through the writer.
        self.db = db
        self._read_lock = threading.Lock()
        self._writer = _Writer(path)
        self._writer.start()
        self._closed = False

    def close(self, timeout: float = 5.0) -> JournalHealth:
        """Write what is queued (for up to ``timeout`` seconds: a journal locked for longer loses the
        rest, logged and counted) and close. Returns the final health."""
        if self._closed:
            return self.health()
        self._closed = True
        self._writer.give_up_at = time.monotonic() + timeout
        self._writer.queue.put(_STOP)
        self._writer.join(timeout + 1.0)
        if self._writer.is_alive():
            log.error("journal %s: the writer did not finish within %.0f s", self.path, timeout + 1.0)
        with self._read_lock:
            self.db.close()
        return self.health()

    # ---------------------------------------------------------------- health
    def health(self) -> JournalHealth:
        w = self._writer
        with w.lock:
            return JournalHealth(w.pending, w.written, w.failing_since, w.last_error, w.lost)

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every queued entry is written (False when that took longer than ``timeout``)."""
        return self._writer.wait_idle(timeout)

    # ---------------------------------------------------------------- writes (queued, never raise)
    def _enqueue(self, statements: Sequence[Statement], durable: bool = False) -> concurrent.futures.Future[None] | None:
        done: concurrent.futures.Future[None] | None = concurrent.futures.Future() if durable else None
        if self._closed:
            log.error("journal %s is closed: entry not written (%s)", self.path, statements[0][0][:40])
            if done is not None:
                done.set_exception(JournalUnwritable(f"journal {self.path} is closed"))
            return done
        self._writer.put(_Entry(list(statements), done))
        return done

    def event(self, session: str, venue: str, type_: str, **detail: Any) -> None:
        self._enqueue([("INSERT INTO events(at, session, venue, type, detail) VALUES (?,?,?,?,?)",
                        (time.time(), session, venue, type_, json.dumps(detail, default=str)))])

    def order_submitted(self, session: str, venue: str, request: Any) -> concurrent.futures.Future[None]:
        """Queue the order's row; the future resolves once it is on disk (the gate sends after that)."""
        now = time.time()
        done = self._enqueue([(
            "INSERT OR REPLACE INTO orders(client_order_id, session, venue, symbol, side, type, amount, price,"
            " reduce_only, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (request.client_order_id, session, venue, request.symbol, request.side.value, request.type.value,
             str(request.amount), None if request.price is None else str(request.price),
             int(request.reduce_only), "submitted", now, now))], durable=True)
        assert done is not None
        return done

    def order_update(self, client_order_id: str, status: str, exchange_order_id: str | None = None,
                     filled: Decimal | None = None, average: Decimal | None = None,
                     error: str | None = None) -> None:
        self._enqueue([(
            "UPDATE orders SET status=?, exchange_order_id=COALESCE(?, exchange_order_id),"
            " filled=COALESCE(?, filled), average=COALESCE(?, average), error=COALESCE(?, error),"
            " updated_at=? WHERE client_order_id=?",
            (status, exchange_order_id, None if filled is None else str(filled),
             None if average is None else str(average), error, time.time(), client_order_id))])

    def fill(self, client_order_id: str, venue: str, symbol: str, side: str, amount: Decimal,
             price: Decimal) -> None:
        self._enqueue([("INSERT INTO fills(client_order_id, venue, symbol, side, amount, price, at)"
                        " VALUES (?,?,?,?,?,?,?)",
                        (client_order_id, venue, symbol, side, str(amount), str(price), time.time()))])

    def save_book(self, session: str, mode: str, execution: str, book: dict) -> None:
        """The strategy's holdings as the session sees them (JSON), written when they change.

        A restarted live session resumes from the latest book of its mode instead of entering
        again on top of positions it already holds (recovery then checks it against the venues).
        Entries are committed in order, so a book written after an order's final row never lands
        before it: an order row still open at a restart was never applied to the latest book.
        """
        self._enqueue([("INSERT INTO books(at, session, mode, execution, book) VALUES (?,?,?,?,?)",
                        (time.time(), session, mode, execution, json.dumps(book, sort_keys=True)))])

    def lease_heartbeat(self, holder: str) -> None:
        self._enqueue([("UPDATE lease SET heartbeat_at=? WHERE holder=?", (time.time(), holder))])

    # ---------------------------------------------------------------- reads
    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        """Reads see every write queued before them (within 2 s; a locked journal is read as it is)."""
        self.flush(2.0)
        with self._read_lock:
            return list(self.db.execute(sql, tuple(args)))

    def open_orders(self) -> list[JournalOrder]:
        rows = self._read(
            "SELECT client_order_id, venue, symbol, side, amount, status, exchange_order_id, created_at, session,"
            f" reduce_only FROM orders WHERE status IN ({','.join('?' * len(OPEN_STATUSES))}) ORDER BY created_at",
            OPEN_STATUSES)
        return [JournalOrder(r[0], r[1], r[2], r[3], Decimal(r[4]), r[5], r[6], r[7], r[8], bool(r[9])) for r in rows]

    def positions(self) -> dict[tuple[str, str], Decimal]:
        """Net base-asset position per (venue, symbol) implied by the journal's fills."""
        out: dict[tuple[str, str], Decimal] = {}
        for venue, symbol, side, amount in self._read("SELECT venue, symbol, side, amount FROM fills"):
            signed = Decimal(amount) if side == "buy" else -Decimal(amount)
            out[(venue, symbol)] = out.get((venue, symbol), Decimal(0)) + signed
        return {k: v for k, v in out.items() if v != 0}

    def latest_book(self, mode: str, execution: str) -> tuple[str, float, dict] | None:
        """(session, time.time() written, book) of the newest book for the mode, or None."""
        rows = self._read("SELECT session, at, book FROM books WHERE mode=? AND execution=? ORDER BY id DESC"
                          " LIMIT 1", (mode, execution))
        return None if not rows else (rows[0][0], rows[0][1], json.loads(rows[0][2]))

    def events(self, limit: int = 1000) -> list[tuple]:
        return self._read("SELECT at, session, venue, type, detail FROM events ORDER BY id DESC LIMIT ?", (limit,))

    # ---------------------------------------------------------------- the lease (synchronous, at start)
    def lease(self) -> Lease | None:
        with self._read_lock:
            row = self.db.execute("SELECT holder, pid, host, started_at, heartbeat_at FROM lease WHERE id=1").fetchone()
        return None if row is None else Lease(row[0], int(row[1]), row[2], float(row[3]), float(row[4]))

    def take_lease(self, lease: Lease, may_take: Callable[[Lease | None], None]) -> None:
        """Write ``lease`` in one transaction after ``may_take(current)`` (which raises to refuse)."""
        with self._read_lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT holder, pid, host, started_at, heartbeat_at FROM lease WHERE id=1").fetchone()
                may_take(None if row is None else Lease(row[0], int(row[1]), row[2], float(row[3]), float(row[4])))
                db.execute("INSERT OR REPLACE INTO lease(id, holder, pid, host, started_at, heartbeat_at)"
                           " VALUES (1,?,?,?,?,?)",
                           (lease.holder, lease.pid, lease.host, lease.started_at, lease.heartbeat_at))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def drop_lease(self, holder: str) -> None:
        self._enqueue([("DELETE FROM lease WHERE holder=?", (holder,))])
