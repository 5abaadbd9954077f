"""Transfers between the exchanges and the wallet: a journaled state machine that survives restarts.

Every transfer is written to the journal before anything moves (``requested``), then advanced one
step at a time by reading the venues and the chain, each step written as it happens:

    requested -> sent (withdraw id / tx hash) -> arrived (wallet)  | credited (exchange) | failed

- CEX -> wallet and CEX -> CEX are exchange withdrawals. The address must be on the environment's
  whitelist (an operator-kept list in configs/transfers.yaml): anything else is refused before the
  journal or the venue sees it. The withdrawal carries the transfer id as its client id, so after a
  crash between the request and the venue's answer the restart finds it instead of paying twice.
- wallet -> CEX pays the venue's deposit address as the venue reports it (fetchDepositAddress);
  where the whitelist names an address for the venue, the reported one must equal it. The payment is
  signed under the label ``transfer <id>``, so a restart finds it in the nonce ledger.
- Arrival: in the wallet once the withdrawal's transaction paid it under ``confirmations`` blocks;
  at an exchange once the exchange reports the deposit of that transaction credited.
- Accounts: an exchange credits a deposit to one account and trades from another
  (configs/transfers.yaml ``venue_accounts``). A credited deposit is moved to the trading account, and before a withdrawal
  the amount and fee are moved to the withdrawal account, each move its own journaled step
  (``transfer_moves``, keyed ``<id>-in`` / ``<id>-out``): sent once, looked up before it could be
  sent again, and the transfer is ``credited`` only once the move is done.
- Amounts and fees: before a withdrawal is journaled the venue's withdrawal terms are read (fee,
  minimum, precision); the amount is rounded down to the venue's step with Decimal, refused below its
  minimum, and the journal holds exactly what is sent and the fee (``fee_included``: Binance takes it
  out of the amount, OKX and Bybit charge it on top), updated to the venue's own record of the fee
  once it reports one. A wallet payment is journaled in whole base units of the token, as paid.

``resume()`` advances every transfer the journal holds unfinished; nothing is requested twice.
``in_flight(venue)`` answers whether a transfer to or from an exchange is still on its way (a cash
reconciliation skips that venue's cash until it lands).
"""
from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from pathlib import Path
from typing import Any

from engine.domain.transfers import (
    WALLET,
    CexTransferPort,
    Transfer,
    TransferKind,
    TransferRefused,
    TransferStatus,
    WalletTransferPort,
    WithdrawalTerms,
)
from engine.domain.onchain_ports import TransactionError, TxStage
from engine.domain.venue_ports import VenueError, VenueErrorKind
from engine.services.live.transfer_settings import (  # noqa: F401 - re-exported: the settings' old home
    CONFIG_PATH,
    TransferConfigError,
    TransferSettings,
    VenueAccounts,
    load_transfer_settings,
)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, asset TEXT NOT NULL, amount TEXT NOT NULL,
    source TEXT NOT NULL, destination TEXT NOT NULL, address TEXT NOT NULL, status TEXT NOT NULL,
    withdraw_id TEXT NOT NULL DEFAULT '', tx_hash TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL, updated_at REAL NOT NULL, detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS transfer_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, transfer_id TEXT NOT NULL, at REAL NOT NULL,
    status TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transfer_moves (
    id TEXT PRIMARY KEY, transfer_id TEXT NOT NULL, venue TEXT NOT NULL, asset TEXT NOT NULL,
    amount TEXT NOT NULL, from_account TEXT NOT NULL, to_account TEXT NOT NULL, status TEXT NOT NULL,
    venue_id TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, updated_at REAL NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
"""
_COLUMNS = "id, kind, asset, amount, source, destination, address, status, withdraw_id, tx_hash, " \
           "created_at, updated_at, detail, fee, fee_included"
#: ccxt transaction statuses that end a withdrawal or deposit without the asset arriving ("ok" lands it;
#: "pending", "processing", "unknown" mean the venue is still on it)
REFUSED = frozenset({"failed", "fail", "canceled", "cancelled", "rejected"})
#: a wallet payment that failed at these stages may still have been broadcast (or be mined later)
UNCERTAIN_STAGES = frozenset({TxStage.SUBMISSION, TxStage.STUCK})


@dataclass(frozen=True)
class Move:
    """One move between two accounts of an exchange, as the journal holds it. ``status``:
    requested (not sent yet) | sending (sent, its answer not recorded: look it up first) | done."""

    id: str
    transfer_id: str
    venue: str
    asset: str
    amount: Decimal
    from_account: str
    to_account: str
    status: str
    venue_id: str
    created_at: float
    updated_at: float
    detail: str = ""


@dataclass(frozen=True)
class WithdrawalPlan:
    """What a withdrawal will send, shown before it is: ``amount`` (rounded down to the venue's step
    from ``asked``), the fee debited on top, and the venue's minimum."""

    venue: str
    asset: str
    asked: Decimal
    amount: Decimal
    terms: WithdrawalTerms
    address: str

    @property
    def fee(self) -> Decimal:
        return self.terms.fee

    @property
    def debit(self) -> Decimal:
        return self.amount if self.terms.fee_included else self.amount + self.terms.fee

    @property
    def arrives(self) -> Decimal:
        return self.amount - self.terms.fee if self.terms.fee_included else self.amount

    def line(self) -> str:
        rounded = f" (asked {plain(self.asked)}, rounded down to {plain(self.terms.step)})" \
            if self.amount != self.asked else ""
        how = "taken out of the amount" if self.terms.fee_included else "on top"
        return (f"{self.venue} withdraws {plain(self.amount)} {self.asset}{rounded} to {self.address}: withdrawal "
                f"fee {plain(self.fee)} {self.asset} {how}, {plain(self.debit)} debited, {plain(self.arrives)} "
                f"arrives; minimum {plain(self.terms.minimum)}")


class TransferJournal:
    """The transfers table in the journal's SQLite file (its own connection; WAL lets both write)."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        created = not path.exists()
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)      # autocommit: each step is durable
        if created:
            os.chmod(path, 0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=2000")
        self.db.executescript(SCHEMA)
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(transfers)")}
        if "fee" not in columns:          # a journal written before fees were journaled
            self.db.execute("ALTER TABLE transfers ADD COLUMN fee TEXT NOT NULL DEFAULT '0'")
        if "fee_included" not in columns:
            self.db.execute("ALTER TABLE transfers ADD COLUMN fee_included INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self.db.close()

    def insert(self, t: Transfer) -> None:
        self.db.execute(f"INSERT INTO transfers({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (t.id, t.kind.value, t.asset, str(t.amount), t.source, t.destination, t.address,
                         t.status.value, t.withdraw_id, t.tx_hash, t.created_at, t.updated_at, t.detail, str(t.fee),
                         int(t.fee_included)))
        self._event(t)

    def update(self, t: Transfer) -> None:
        self.db.execute("UPDATE transfers SET status=?, withdraw_id=?, tx_hash=?, updated_at=?, detail=?, fee=? "
                        "WHERE id=?", (t.status.value, t.withdraw_id, t.tx_hash, t.updated_at, t.detail, str(t.fee),
                                       t.id))
        self._event(t)

    def _event(self, t: Transfer) -> None:
        self.db.execute("INSERT INTO transfer_events(transfer_id, at, status, detail) VALUES (?,?,?,?)",
                        (t.id, t.updated_at, t.status.value, t.detail))

    def _rows(self, where: str, args: tuple) -> list[Transfer]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM transfers WHERE {where} ORDER BY created_at", args)
        return [Transfer(id=r[0], kind=TransferKind(r[1]), asset=r[2], amount=Decimal(r[3]), source=r[4],
                         destination=r[5], address=r[6], status=TransferStatus(r[7]), withdraw_id=r[8], tx_hash=r[9],
                         created_at=r[10], updated_at=r[11], detail=r[12], fee=Decimal(r[13]),
                         fee_included=bool(r[14])) for r in rows]

    def get(self, transfer_id: str) -> Transfer | None:
        rows = self._rows("id=?", (transfer_id,))
        return rows[0] if rows else None

    def all(self) -> list[Transfer]:
        return self._rows("1=1", ())

    def unfinished(self) -> list[Transfer]:
        return self._rows("status IN (?,?)", (TransferStatus.REQUESTED.value, TransferStatus.SENT.value))

    def in_flight(self, venue: str) -> list[Transfer]:
        """The unfinished transfers to or from ``venue`` (an exchange name, or WALLET)."""
        return [t for t in self.unfinished() if venue in (t.source, t.destination)]

    def save_move(self, m: Move) -> None:
        self.db.execute("INSERT OR REPLACE INTO transfer_moves(id, transfer_id, venue, asset, amount, from_account, "
                        "to_account, status, venue_id, created_at, updated_at, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (m.id, m.transfer_id, m.venue, m.asset, str(m.amount), m.from_account, m.to_account,
                         m.status, m.venue_id, m.created_at, m.updated_at, m.detail))
        self.db.execute("INSERT INTO transfer_events(transfer_id, at, status, detail) VALUES (?,?,?,?)",
                        (m.transfer_id, m.updated_at, f"move {m.status}",
                         f"{m.id}: {m.amount} {m.asset} {m.venue} {m.from_account} -> {m.to_account}"
                         + (f" ({m.venue_id})" if m.venue_id else "") + (f": {m.detail}" if m.detail else "")))

    def move(self, move_id: str) -> Move | None:
        r = self.db.execute("SELECT id, transfer_id, venue, asset, amount, from_account, to_account, status, venue_id, "
                            "created_at, updated_at, detail FROM transfer_moves WHERE id=?", (move_id,)).fetchone()
        return None if r is None else Move(r[0], r[1], r[2], r[3], Decimal(r[4]), r[5], r[6], r[7], r[8], r[9], r[10],
                                           r[11])

    def moves(self, transfer_id: str) -> list[Move]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM transfer_moves WHERE transfer_id=? ORDER BY created_at",
                                             (transfer_id,))]
        return [m for m in (self.move(i) for i in ids) if m is not None]

    def events(self, transfer_id: str) -> list[tuple[str, str]]:
        """(status, detail) of every step of one transfer, in order."""
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT status, detail FROM transfer_events WHERE transfer_id=? ORDER BY id", (transfer_id,))]


def payment_label(transfer_id: str) -> str:
    return f"transfer {transfer_id}"


class TransferService:
    """Requests transfers and advances them to a final state (see the module docstring)."""

    def __init__(self, journal: TransferJournal, cex: Mapping[str, CexTransferPort],
                 wallet: WalletTransferPort | None, settings: TransferSettings, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.journal = journal
        self.cex = dict(cex)
        self.wallet = wallet
        self.settings = settings
        self.clock = clock

    # -- requests ----------------------------------------------------------------------------------
    async def plan_withdrawal(self, venue: str, asset: str, amount: Decimal, address: str) -> WithdrawalPlan:
        """The venue's terms applied to ``amount`` (rounded down to its step with Decimal, never more
        than asked); raises TransferRefused below the venue's minimum. Nothing is journaled or sent."""
        _positive(amount)
        terms = await self._venue(venue).withdrawal_terms(asset)
        rounded = amount.quantize(terms.step, rounding=ROUND_DOWN) if terms.step > 0 else amount
        rounded = amount if rounded == amount else Decimal(format(rounded.normalize(), "f"))
        if rounded < terms.minimum or rounded <= 0 or (terms.fee_included and rounded <= terms.fee):
            raise TransferRefused(f"{plain(amount)} {asset} is below {venue}'s minimum withdrawal of "
                                  f"{plain(terms.minimum)} {asset}"
                                  + (f" (rounded down to its step {plain(terms.step)}: {plain(rounded)})"
                                     if rounded != amount else "")
                                  + ": nothing sent")
        return WithdrawalPlan(venue, asset, amount, rounded, terms, address)

    async def cex_to_wallet(self, venue: str, asset: str, amount: Decimal) -> Transfer:
        wallet = self._wallet()
        address = self._withdrawal_address(wallet.address, f"the wallet {wallet.address}")
        plan = await self.plan_withdrawal(venue, asset, amount, address)
        return await self._start(TransferKind.CEX_TO_WALLET, asset, plan.amount, venue, WALLET, address, plan)

    async def wallet_to_cex(self, venue: str, asset: str, amount: Decimal) -> Transfer:
        self._wallet()
        address = await self._venue(venue).deposit_address(asset)
        named = self.settings.whitelist.get(venue)
        if named is not None and named.lower() != address.lower():
            raise TransferRefused(f"{venue} reports the {asset} deposit address {address}, but the whitelist names "
                                  f"{named} for {venue}: refusing to pay an address the whitelist does not hold")
        _positive(amount)
        # the chain moves whole base units: journal exactly what the payment sends (rounded down)
        paid = amount.quantize(await self._wallet().payment_step(asset), rounding=ROUND_DOWN)
        if paid <= 0:
            raise TransferRefused(f"{plain(amount)} {asset} is less than one base unit of {asset}: nothing sent")
        paid = amount if paid == amount else Decimal(plain(paid))
        return await self._start(TransferKind.WALLET_TO_CEX, asset, paid, WALLET, venue, address)

    async def cex_to_cex(self, source: str, destination: str, asset: str, amount: Decimal) -> Transfer:
        if source == destination:
            raise TransferRefused(f"a transfer from {source} to itself moves nothing")
        self._venue(source)
        address = await self._venue(destination).deposit_address(asset)
        address = self._withdrawal_address(address, f"{destination}'s {asset} deposit address {address}")
        plan = await self.plan_withdrawal(source, asset, amount, address)
        return await self._start(TransferKind.CEX_TO_CEX, asset, plan.amount, source, destination, address, plan)

    # -- progress ----------------------------------------------------------------------------------
    async def advance(self, transfer_id: str, *, resuming: bool = False) -> Transfer:
        """One step: read the venues and the chain and record what changed (a final transfer stays)."""
        t = self._get(transfer_id)
        try:
            if t.status is TransferStatus.REQUESTED:
                return await self._send(t, resuming=resuming)
            if t.status is TransferStatus.SENT:
                return await self._follow(t)
        except TransactionError as exc:
            if t.status is not TransferStatus.REQUESTED:
                raise
            if exc.stage in UNCERTAIN_STAGES:    # signed and maybe broadcast: the nonce ledger knows, resume() looks
                log.warning("transfer %s: the wallet payment is unresolved (%s); resume() finds it", t.id, exc)
                return t
            return self._set(t, TransferStatus.FAILED, detail=f"the wallet payment did not happen: {exc}")
        except VenueError as exc:
            if t.status is TransferStatus.REQUESTED and not resuming:
                return await self._withdrawal_failed(t, exc)
            log.info("transfer %s: %s (retried at the next step)", t.id, exc)
        return t

    async def _withdrawal_failed(self, t: Transfer, exc: VenueError) -> Transfer:
        """The withdrawal request raised: refused, or no answer (then it may have been made)."""
        venue = self._venue(t.source)
        if venue.finds_by_client_id:
            found = await self._find_withdrawal(t)       # made after all (an answer lost on the way back)
            if found is not None:
                return found
            return self._set(t, TransferStatus.FAILED, detail=f"the withdrawal was not made: {exc}")
        if exc.kind in (VenueErrorKind.TIMEOUT, VenueErrorKind.UNAVAILABLE, VenueErrorKind.NETWORK,
                        VenueErrorKind.MALFORMED, VenueErrorKind.UNKNOWN):
            return self._set(t, TransferStatus.FAILED, detail=(
                f"{t.source} did not answer the withdrawal request ({exc}) and cannot look it up by client id: "
                f"check its withdrawal history for {t.amount} {t.asset} to {t.address}; not sent again"))
        return self._set(t, TransferStatus.FAILED, detail=f"the withdrawal was not made: {exc}")

    async def wait(self, transfer_id: str, timeout_s: float) -> Transfer:
        """Advance until final; raises TimeoutError (the transfer stays journaled as it is)."""
        deadline = self.clock() + timeout_s
        while True:
            t = await self.advance(transfer_id)
            if t.status.final:
                return t
            if self.clock() >= deadline:
                raise TimeoutError(f"transfer {t.id} is still {t.status.value} after {timeout_s:g} s")
            await asyncio.sleep(self.settings.poll_interval_s)

    async def resume(self) -> list[Transfer]:
        """One step for every unfinished transfer of the journal (a restart's first call)."""
        return [await self.advance(t.id, resuming=True) for t in self.journal.unfinished()]

    def transfers(self) -> list[Transfer]:
        return self.journal.all()

    def in_flight(self, venue: str) -> list[Transfer]:
        """The transfers to or from ``venue`` still on their way (requested or sent; a deposit credited
        but not yet moved to the trading account counts as on its way). A cash reconciliation skips
        the venue's cash while this is non-empty; a finished transfer is booked on both sides."""
        return self.journal.in_flight(venue)

    # -- internals ---------------------------------------------------------------------------------
    def _wallet(self) -> WalletTransferPort:
        if self.wallet is None:
            raise TransferRefused("no wallet is configured (rpc_url and private_key in the keyring)")
        return self.wallet

    def _venue(self, venue: str) -> CexTransferPort:
        if venue not in self.cex:
            raise TransferRefused(f"no exchange {venue!r} for transfers (have: {', '.join(self.cex) or 'none'})")
        if self.settings.accounts(venue) is None:
            # where the venue credits deposits and trades decides whether a move follows: never guessed
            raise TransferRefused(f"configs/transfers.yaml: venue_accounts.{venue} is missing (where {venue} credits "
                                  f"deposits, trades and withdraws from)")
        return self.cex[venue]

    def _withdrawal_address(self, address: str, what: str) -> str:
        if self.settings.whitelisted(address) is None:
            listed = ", ".join(f"{k} {v}" for k, v in self.settings.whitelist.items()) or "it is empty"
            raise TransferRefused(f"refusing to withdraw to {what}: it is not on the withdrawal whitelist "
                                  f"(configs/transfers.yaml; {listed})")
        return address

    async def _start(self, kind: TransferKind, asset: str, amount: Decimal, source: str, destination: str,
                     address: str, plan: WithdrawalPlan | None = None) -> Transfer:
        _positive(amount)
        now = self.clock()
        t = Transfer(id=uuid.uuid4().hex[:20], kind=kind, asset=asset, amount=amount, source=source,
                     destination=destination, address=address, status=TransferStatus.REQUESTED,
                     created_at=now, updated_at=now, fee=plan.fee if plan else Decimal(0),
                     fee_included=plan.terms.fee_included if plan else False,
                     detail=plan.line() if plan else "")
        self.journal.insert(t)
        return await self.advance(t.id)

    def _get(self, transfer_id: str) -> Transfer:
        t = self.journal.get(transfer_id)
        if t is None:
            raise KeyError(f"no transfer {transfer_id}")
        return t

    def _set(self, t: Transfer, status: TransferStatus, **changes: Any) -> Transfer:
        t = replace(t, status=status, updated_at=self.clock(), **changes)
        self.journal.update(t)
        log.info("transfer %s %s %s %s -> %s: %s%s", t.id, t.amount, t.asset, t.source, t.destination,
                 status.value, f" ({t.detail})" if t.detail else "")
        return t

    async def _find_withdrawal(self, t: Transfer) -> Transfer | None:
        found = await self._venue(t.source).find_withdrawal(t.asset, client_id=t.id)
        if found is None:
            return None
        return self._set(t, TransferStatus.SENT, withdraw_id=found.withdraw_id, tx_hash=found.tx_hash or "",
                         detail="withdrawal accepted")

    async def _send(self, t: Transfer, *, resuming: bool) -> Transfer:
        if t.source == WALLET:
            wallet = self._wallet()
            tx_hash = await wallet.find_payment(payment_label(t.id)) if resuming else None
            if tx_hash is None:
                tx_hash = await wallet.pay(t.asset, t.amount, t.address, payment_label(t.id))
            return self._set(t, TransferStatus.SENT, tx_hash=tx_hash, detail="paid from the wallet")
        venue = self._venue(t.source)
        if resuming and not venue.finds_by_client_id:
            return self._set(t, TransferStatus.FAILED, detail=(
                f"interrupted before {t.source} acknowledged the withdrawal, and {t.source} cannot look it up by "
                f"client id: check its withdrawal history for {t.amount} {t.asset} to {t.address}; not sent again"))
        found = await self._find_withdrawal(t) if venue.finds_by_client_id else None   # a restart after the venue accepted it
        if found is not None:
            return found
        accounts = self.settings.accounts(t.source)
        if accounts is not None and accounts.moves(t.asset) and accounts.trading_account != accounts.withdraw_account:
            # the withdrawal leaves from another account than the one that trades: move amount and fee first
            try:
                await self._ensure_move(t, "out", t.source, t.debit, accounts.trading_account,
                                        accounts.withdraw_account)
            except VenueError as exc:
                m = self.journal.move(f"{t.id}-out")
                maybe = m is not None and m.status == "sending"
                return self._set(t, TransferStatus.FAILED, detail=(
                    f"the move of {t.debit} {t.asset} {accounts.trading_account} -> {accounts.withdraw_account} "
                    f"before the withdrawal failed ({exc}); nothing was withdrawn"
                    + (f" (the move may have been made: check {t.source}'s {accounts.withdraw_account} account)"
                       if maybe else "")))
        withdraw_id = await venue.withdraw(t.asset, t.amount, t.address, t.id)
        return self._set(t, TransferStatus.SENT, withdraw_id=withdraw_id, detail="withdrawal accepted")

    async def _follow(self, t: Transfer) -> Transfer:
        if t.source != WALLET and not t.tx_hash:
            state = await self._venue(t.source).find_withdrawal(t.asset, withdraw_id=t.withdraw_id, client_id=t.id)
            if state is None:
                return t
            if state.status in REFUSED:
                return self._set(t, TransferStatus.FAILED, detail=f"{t.source} reports the withdrawal {state.status}")
            if not state.tx_hash:
                return t
            fee = state.fee if state.fee is not None else t.fee
            t = self._set(t, TransferStatus.SENT, tx_hash=state.tx_hash, fee=fee,
                          detail="on chain" + (f"; {t.source} charged a fee of {plain(fee)} {t.asset} (quoted "
                                               f"{plain(t.fee)})" if fee != t.fee else f"; fee {plain(fee)} {t.asset}"))
        if t.destination == WALLET:
            try:
                confirmations = await self._wallet().arrival(t.asset, t.tx_hash, t.arrives)
            except ValueError as exc:
                return self._set(t, TransferStatus.FAILED, detail=str(exc))
            if confirmations is not None and confirmations >= self._wallet().confirmations:
                return self._set(t, TransferStatus.ARRIVED, detail=f"{confirmations} confirmations")
            return t
        deposit = await self._venue(t.destination).find_deposit(t.asset, t.tx_hash)
        if deposit is None:
            return t
        if deposit.status == "ok":
            accounts = self.settings.accounts(t.destination)
            moved = ""
            if accounts is not None and accounts.moves(t.asset) and accounts.deposit_account != accounts.trading_account:
                m = await self._ensure_move(t, "in", t.destination, deposit.amount, accounts.deposit_account,
                                            accounts.trading_account)
                moved = f", moved {plain(m.amount)} {accounts.deposit_account} -> {accounts.trading_account}"
                if m.amount != deposit.amount:
                    moved += (f" ({plain(deposit.amount - m.amount)} {t.asset} below {t.destination}'s transfer "
                              f"precision stays in {accounts.deposit_account})")
            return self._set(t, TransferStatus.CREDITED,
                             detail=f"{t.destination} credited {plain(deposit.amount)} {t.asset}{moved}")
        if deposit.status in REFUSED:
            return self._set(t, TransferStatus.FAILED, detail=f"{t.destination} reports the deposit {deposit.status}")
        return t                     # pending, processing, unknown: the venue is still confirming it

    async def _ensure_move(self, t: Transfer, leg: str, venue: str, amount: Decimal, from_account: str,
                           to_account: str) -> Move:
        """Make the move ``<t.id>-<leg>`` once. A move journaled as ``sending`` (its answer not recorded:
        a crash, a lost answer) is looked up at the venue before it could be sent again. Raises the
        venue's error when it refuses (the transfer stays where it was; the next step tries again)."""
        move_id = f"{t.id}-{leg}"
        m = self.journal.move(move_id)
        now = self.clock()
        port = self._venue(venue)
        if m is None:
            # A credit is moved rounded down (never more than arrived; the dust stays in the deposit
            # account), a withdrawal's debit rounded up (never short of what the withdrawal needs).
            step = port.move_step(t.asset)
            if step > 0:
                amount = amount.quantize(step, rounding=ROUND_DOWN if leg == "in" else ROUND_UP)
                amount = Decimal(plain(amount))
            m = Move(move_id, t.id, venue, t.asset, amount, from_account, to_account, "requested", "", now, now)
            self.journal.save_move(m)
        if m.status == "done":
            return m
        if m.status == "sending":
            found = await port.find_move(m.asset, m.amount, m.from_account, m.to_account, m.id,
                                         since_ms=int(m.created_at * 1000) - 60_000)
            if found is not None:
                m = replace(m, status="done", venue_id=found, updated_at=self.clock(), detail="found at the venue")
                self.journal.save_move(m)
                return m
        m = replace(m, status="sending", updated_at=self.clock(), detail="")
        self.journal.save_move(m)
        venue_id = await port.move(m.asset, m.amount, m.from_account, m.to_account, m.id)
        m = replace(m, status="done", venue_id=venue_id, updated_at=self.clock())
        self.journal.save_move(m)
        return m


def plain(amount: Decimal) -> str:
    """A Decimal as a person writes it: no exponent, no trailing zeros (300, 0.00000001, 25.123456)."""
    text = format(amount.normalize(), "f")
    return text


def _positive(amount: Decimal) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise TransferRefused(f"the amount must be a positive Decimal, got {amount!r}")
