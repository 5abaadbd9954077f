"""``python main.py journal show``: read a live session's journal the way an operator does after a crash.

    python main.py journal show --env testnet [--session ID] [--limit N] [--json]

Prints, in the order they happened, what the environment's journal holds: session events, every
order (when it was submitted, and its latest status with what filled), fills, every wallet
transaction the nonce ledger signed (nonce, what it was for, each status it went through), every
transfer's steps and the strategy books the sessions saved. It ends with what is unfinished: orders
still ``submitted`` / ``open`` / ``unknown`` (a restart resolves them with the venue), transactions
not final, transfers on their way, and who holds the journal's lease.

Strictly read-only: the database is opened with SQLite's ``mode=ro``, so the command can run beside
a live session (or on a journal a crashed one left) without taking the lease, creating tables or
writing anything. Nothing secret is in the journal; the signed transaction bytes the ledger keeps are
not printed, and detail keys that look like credentials are masked all the same.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from engine.services.live.journal import OPEN_STATUSES, default_journal_path

ENVIRONMENTS = ("testnet", "production")
EXIT_OK, EXIT_USAGE = 0, 2
#: transaction statuses that are not final (a restart checks each with the chain)
TX_PENDING = ("signed", "sent", "mined")
TRANSFER_FINAL = ("arrived", "credited", "failed")
#: detail keys masked in the output, whatever a future writer puts there
MASKED = ("secret", "api_key", "apikey", "passphrase", "private_key", "password", "raw")


@dataclass(frozen=True, slots=True)
class JournalItem:
    """One line of the timeline: ``kind`` is event | order | order_status | fill | tx | transfer | book."""

    at: float
    kind: str
    session: str
    venue: str
    ref: str            # client order id, tx hash, transfer id ('' for events and books)
    text: str

    def line(self) -> str:
        stamp = dt.datetime.fromtimestamp(self.at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        ref = f" {self.ref}" if self.ref else ""
        return f"{stamp}  {self.kind:<12} {self.venue or '-':<16}{ref}  {self.text}"


@dataclass(frozen=True, slots=True)
class JournalView:
    items: list[JournalItem]
    unfinished: list[str]
    lease: str | None


class JournalUnreadable(ValueError):
    """The journal file is missing or not a journal."""


def add_journal_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("journal", help="read a live session's journal (read-only): events, orders, "
                                              "transactions, transfers", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print the journal in order, then what is unfinished")
    show.add_argument("--env", required=True, choices=ENVIRONMENTS)
    show.add_argument("--journal-dir", type=Path, help="folder of the journal (default: the user data dir)")
    show.add_argument("--session", help="only this session's events, orders and books (transactions and "
                                        "transfers are the wallet's and always shown)")
    show.add_argument("--limit", type=int, default=None, help="only the last N lines of the timeline")
    show.add_argument("--json", action="store_true", help="one JSON object instead of text")
    show.set_defaults(func=run_journal_show)


def journal_path(env: str, journal_dir: Path | None) -> Path:
    return default_journal_path(env) if journal_dir is None else journal_dir / f"journal-{env}.sqlite3"


def run_journal_show(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if args.limit is not None and args.limit < 1:
        print(f"error: --limit must be at least 1, got {args.limit}", file=err)
        return EXIT_USAGE
    path = journal_path(args.env, args.journal_dir)
    try:
        view = read_journal(path, session=args.session)
    except JournalUnreadable as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    items = view.items[-args.limit:] if args.limit else view.items
    if args.json:
        json.dump({"journal": str(path), "items": [asdict(i) for i in items], "unfinished": view.unfinished,
                   "lease": view.lease}, out, indent=1)
        out.write("\n")
        return EXIT_OK
    print(f"journal {path}: {len(view.items)} entries" + (f" (last {len(items)} shown)" if len(items) < len(view.items)
                                                         else ""), file=out)
    for item in items:
        print(item.line(), file=out)
    print("unfinished: " + ("nothing" if not view.unfinished else f"{len(view.unfinished)}"), file=out)
    for line in view.unfinished:
        print(f"  {line}", file=out)
    print(f"lease: {view.lease or 'free'}", file=out)
    return EXIT_OK


def read_journal(path: Path, *, session: str | None = None) -> JournalView:
    """The journal's timeline (oldest first) and what is unfinished. Raises JournalUnreadable."""
    if not path.is_file():
        raise JournalUnreadable(f"no journal at {path} (a live session of this environment creates it)")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error as exc:
        raise JournalUnreadable(f"journal {path}: {exc}") from None
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "events" not in tables or "orders" not in tables:
            raise JournalUnreadable(f"{path} is not a journal of this workstation (no events/orders tables)")
        items: list[JournalItem] = []
        unfinished: list[str] = []
        _events(db, session, items)
        _orders(db, session, items, unfinished)
        if "chain_transactions" in tables:
            _transactions(db, items, unfinished)
        if "transfers" in tables:
            _transfers(db, items, unfinished)
        if "books" in tables:
            _books(db, session, items)
        lease = _lease(db) if "lease" in tables else None
    except sqlite3.DatabaseError as exc:
        raise JournalUnreadable(f"journal {path} cannot be read: {exc}") from None
    finally:
        db.close()
    items.sort(key=lambda i: i.at)             # stable: same-instant rows keep their table order
    return JournalView(items, unfinished, lease)


def _where_session(session: str | None, column: str = "session") -> tuple[str, tuple[Any, ...]]:
    return (f" WHERE {column}=?", (session,)) if session else ("", ())


def _masked(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {k: "***" if any(m in k.lower() for m in MASKED) else _masked(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_masked(v) for v in detail]
    return detail


def _events(db: sqlite3.Connection, session: str | None, items: list[JournalItem]) -> None:
    where, args = _where_session(session)
    for at, sess, venue, type_, detail in db.execute(
            f"SELECT at, session, venue, type, detail FROM events{where} ORDER BY id", args):
        try:
            shown = json.dumps(_masked(json.loads(detail)), sort_keys=True, default=str)
        except ValueError:
            shown = detail
        items.append(JournalItem(at, "event", sess, venue, "", f"{type_} {shown}"))


def _orders(db: sqlite3.Connection, session: str | None, items: list[JournalItem], unfinished: list[str]) -> None:
    where, args = _where_session(session)
    rows = db.execute("SELECT client_order_id, session, venue, symbol, side, type, amount, price, reduce_only, status,"
                      f" exchange_order_id, filled, average, created_at, updated_at, error FROM orders{where}"
                      " ORDER BY created_at", args).fetchall()
    for (cid, sess, venue, symbol, side, type_, amount, price, reduce_only, status, xid, filled, average,
         created, updated, error) in rows:
        limit = f" @ {price}" if price else ""
        flag = " reduce-only" if reduce_only else ""
        items.append(JournalItem(created, "order", sess, venue, cid,
                                 f"{symbol} {type_} {side} {amount}{limit}{flag}: submitted"))
        if status != "submitted" or updated != created:
            got = f" filled {filled}" + (f" avg {average}" if average else "")
            xid_text = f" exchange id {xid}" if xid else ""
            why = f" ({error})" if error else ""
            items.append(JournalItem(updated, "order_status", sess, venue, cid, f"{status}{got}{xid_text}{why}"))
        if status in OPEN_STATUSES:
            unfinished.append(f"order {cid} {venue} {symbol} {side} {amount}: {status} "
                              "(a restart resolves it with the venue by its client order id)")
    fills_where = " WHERE o.session=?" if session else ""
    for cid, sess, venue, symbol, side, amount, price, at in db.execute(
            "SELECT f.client_order_id, COALESCE(o.session, ''), f.venue, f.symbol, f.side, f.amount, f.price, f.at"
            f" FROM fills f LEFT JOIN orders o ON o.client_order_id = f.client_order_id{fills_where} ORDER BY f.id",
            args):
        items.append(JournalItem(at, "fill", sess, venue, cid, f"{symbol} {side} {amount} at {price}"))


def _transactions(db: sqlite3.Connection, items: list[JournalItem], unfinished: list[str]) -> None:
    txs = {r[0]: r[1:] for r in db.execute(
        "SELECT tx_hash, chain_id, nonce, kind, label, status, block_number FROM chain_transactions")}
    for tx_hash, at, status, detail in db.execute(
            "SELECT tx_hash, at, status, detail FROM chain_transaction_events ORDER BY id"):
        chain_id, nonce, kind, label, _, _ = txs.get(tx_hash, (None, "?", "?", "", None, None))
        text = f"nonce {nonce} {kind} {label!r}: {status}" + (f" ({detail})" if detail else "")
        items.append(JournalItem(at, "tx", "", f"chain {chain_id}", tx_hash, text))
    for tx_hash, (_, nonce, kind, label, status, _) in sorted(txs.items(), key=lambda kv: kv[1][1]):
        if status in TX_PENDING:
            unfinished.append(f"transaction {tx_hash} nonce {nonce} {kind} {label!r}: {status} "
                              "(a restart finds out whether it was mined, and asks to rebroadcast or cancel)")


def _transfers(db: sqlite3.Connection, items: list[JournalItem], unfinished: list[str]) -> None:
    rows = {r[0]: r[1:] for r in db.execute(
        "SELECT id, asset, amount, source, destination, status FROM transfers")}
    for tid, at, status, detail in db.execute(
            "SELECT transfer_id, at, status, detail FROM transfer_events ORDER BY id"):
        asset, amount, source, destination, _ = rows.get(tid, ("?", "?", "?", "?", None))
        text = f"{amount} {asset} {source} -> {destination}: {status}" + (f" ({detail})" if detail else "")
        items.append(JournalItem(at, "transfer", "", f"{source}->{destination}", tid, text))
    for tid, (asset, amount, source, destination, status) in rows.items():
        if status not in TRANSFER_FINAL:
            unfinished.append(f"transfer {tid} {amount} {asset} {source} -> {destination}: {status} "
                              "(python main.py transfer resume finishes it)")


def _books(db: sqlite3.Connection, session: str | None, items: list[JournalItem]) -> None:
    where, args = _where_session(session)
    for at, sess, mode, execution, text in db.execute(
            f"SELECT at, session, mode, execution, book FROM books{where} ORDER BY id", args):
        try:
            book = json.loads(text)
        except ValueError:
            items.append(JournalItem(at, "book", sess, "", "", f"{mode} {execution}: unreadable book"))
            continue
        perps = ", ".join(f"{v} {a} {size:+.6g}" for v, acct in sorted((book.get("cex") or {}).items())
                          for a, (size, _entry) in sorted((acct.get("perps") or {}).items()) if size)
        wallet = book.get("wallet") or {}
        aave = ", ".join([f"supply {k} {q:.6g}" for k, q in sorted((wallet.get("supply_scaled") or {}).items()) if q]
                         + [f"debt {k} {q:.6g}" for k, q in sorted((wallet.get("debt_scaled") or {}).items()) if q])
        parts = [f"{mode} {execution}", f"entered={book.get('entered')}", f"perps: {perps or 'none'}",
                 f"AAVE (scaled): {aave or 'none'}"]
        items.append(JournalItem(at, "book", sess, "", "", "; ".join(parts)))


def _lease(db: sqlite3.Connection) -> str | None:
    row = db.execute("SELECT holder, pid, host, started_at, heartbeat_at FROM lease WHERE id=1").fetchone()
    if row is None:
        return None
    holder, pid, host, _started, beat = row
    stamp = dt.datetime.fromtimestamp(float(beat), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return (f"held by {holder} (pid {pid} on {host}), last heartbeat {stamp} UTC (a session that crashed leaves "
            "it behind: the next start takes it over once that pid no longer runs here or the heartbeat is stale)")
