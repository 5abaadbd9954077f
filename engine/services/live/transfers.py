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

``resume()`` advances every transfer the journal holds unfinished; nothing is requested twice.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from engine.domain.transfers import (
    WALLET,
    CexTransferPort,
    Transfer,
    TransferKind,
    TransferRefused,
    TransferStatus,
    WalletTransferPort,
)
from engine.domain.onchain_ports import TransactionError, TxStage
from engine.domain.venue_ports import VenueError, VenueErrorKind

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
"""
_COLUMNS = "id, kind, asset, amount, source, destination, address, status, withdraw_id, tx_hash, " \
           "created_at, updated_at, detail"
#: ccxt transaction statuses that end a withdrawal or deposit without the asset arriving ("ok" lands it;
#: "pending", "processing", "unknown" mean the venue is still on it)
REFUSED = frozenset({"failed", "fail", "canceled", "cancelled", "rejected"})
#: a wallet payment that failed at these stages may still have been broadcast (or be mined later)
UNCERTAIN_STAGES = frozenset({TxStage.SUBMISSION, TxStage.STUCK})
CONFIG_PATH = Path(__file__).resolve().parents[3] / "configs" / "transfers.yaml"


class TransferConfigError(ValueError):
    """configs/transfers.yaml is missing a key or holds a bad value (the message names both)."""


@dataclass(frozen=True)
class TransferSettings:
    """``whitelist``: label -> address a withdrawal may pay ("wallet" the operator's wallet, a venue
    name that venue's deposit address). ``confirmations``: blocks before a wallet arrival counts."""

    confirmations: int
    poll_interval_s: float
    whitelist: Mapping[str, str] = field(default_factory=dict)

    def with_whitelist(self, extra: Mapping[str, str]) -> TransferSettings:
        return replace(self, whitelist={**self.whitelist, **extra})

    def whitelisted(self, address: str) -> str | None:
        """The label of ``address`` on the whitelist (None: not on it)."""
        return next((label for label, a in self.whitelist.items() if a.lower() == address.lower()), None)


def load_transfer_settings(environment: str, path: Path = CONFIG_PATH) -> TransferSettings:
    where = f"{path.name}: environments.{environment}"
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TransferConfigError(f"{path}: file not found") from None
    env = ((raw or {}).get("environments") or {}).get(environment)
    if not isinstance(env, dict):
        raise TransferConfigError(f"{path.name}: environments.{environment} is missing")
    for key in ("confirmations", "poll_interval_s", "whitelist"):
        if key not in env:
            raise TransferConfigError(f"{where}.{key} is missing")
    whitelist = env["whitelist"] or {}
    if not isinstance(whitelist, dict) or not all(isinstance(a, str) and a.startswith("0x") and len(a) == 42
                                                  for a in whitelist.values()):
        raise TransferConfigError(f"{where}.whitelist must map labels to 0x addresses (40 hex digits)")
    confirmations, poll = env["confirmations"], env["poll_interval_s"]
    if not isinstance(confirmations, int) or confirmations < 1:
        raise TransferConfigError(f"{where}.confirmations must be an integer >= 1, got {confirmations!r}")
    if not isinstance(poll, (int, float)) or poll <= 0:
        raise TransferConfigError(f"{where}.poll_interval_s must be a positive number, got {poll!r}")
    return TransferSettings(confirmations, float(poll), {str(k): str(v) for k, v in whitelist.items()})


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

    def close(self) -> None:
        self.db.close()

    def insert(self, t: Transfer) -> None:
        self.db.execute(f"INSERT INTO transfers({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (t.id, t.kind.value, t.asset, str(t.amount), t.source, t.destination, t.address,
                         t.status.value, t.withdraw_id, t.tx_hash, t.created_at, t.updated_at, t.detail))
        self._event(t)

    def update(self, t: Transfer) -> None:
        self.db.execute("UPDATE transfers SET status=?, withdraw_id=?, tx_hash=?, updated_at=?, detail=? WHERE id=?",
                        (t.status.value, t.withdraw_id, t.tx_hash, t.updated_at, t.detail, t.id))
        self._event(t)

    def _event(self, t: Transfer) -> None:
        self.db.execute("INSERT INTO transfer_events(transfer_id, at, status, detail) VALUES (?,?,?,?)",
                        (t.id, t.updated_at, t.status.value, t.detail))

    def _rows(self, where: str, args: tuple) -> list[Transfer]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM transfers WHERE {where} ORDER BY created_at", args)
        return [Transfer(id=r[0], kind=TransferKind(r[1]), asset=r[2], amount=Decimal(r[3]), source=r[4],
                         destination=r[5], address=r[6], status=TransferStatus(r[7]), withdraw_id=r[8], tx_hash=r[9],
                         created_at=r[10], updated_at=r[11], detail=r[12]) for r in rows]

    def get(self, transfer_id: str) -> Transfer | None:
        rows = self._rows("id=?", (transfer_id,))
        return rows[0] if rows else None

    def all(self) -> list[Transfer]:
        return self._rows("1=1", ())

    def unfinished(self) -> list[Transfer]:
        return self._rows("status IN (?,?)", (TransferStatus.REQUESTED.value, TransferStatus.SENT.value))

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
    async def cex_to_wallet(self, venue: str, asset: str, amount: Decimal) -> Transfer:
        wallet = self._wallet()
        return await self._start(TransferKind.CEX_TO_WALLET, asset, amount, venue, WALLET,
                                 self._withdrawal_address(wallet.address, f"the wallet {wallet.address}"))

    async def wallet_to_cex(self, venue: str, asset: str, amount: Decimal) -> Transfer:
        self._wallet()
        address = await self._venue(venue).deposit_address(asset)
        named = self.settings.whitelist.get(venue)
        if named is not None and named.lower() != address.lower():
            raise TransferRefused(f"{venue} reports the {asset} deposit address {address}, but the whitelist names "
                                  f"{named} for {venue}: refusing to pay an address the whitelist does not hold")
        return await self._start(TransferKind.WALLET_TO_CEX, asset, amount, WALLET, venue, address)

    async def cex_to_cex(self, source: str, destination: str, asset: str, amount: Decimal) -> Transfer:
        if source == destination:
            raise TransferRefused(f"a transfer from {source} to itself moves nothing")
        self._venue(source)
        address = await self._venue(destination).deposit_address(asset)
        return await self._start(TransferKind.CEX_TO_CEX, asset, amount, source, destination,
                                 self._withdrawal_address(address, f"{destination}'s {asset} deposit address {address}"))

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

    # -- internals ---------------------------------------------------------------------------------
    def _wallet(self) -> WalletTransferPort:
        if self.wallet is None:
            raise TransferRefused("no wallet is configured (rpc_url and private_key in the keyring)")
        return self.wallet

    def _venue(self, venue: str) -> CexTransferPort:
        if venue not in self.cex:
            raise TransferRefused(f"no exchange {venue!r} for transfers (have: {', '.join(self.cex) or 'none'})")
        return self.cex[venue]

    def _withdrawal_address(self, address: str, what: str) -> str:
        if self.settings.whitelisted(address) is None:
            listed = ", ".join(f"{k} {v}" for k, v in self.settings.whitelist.items()) or "it is empty"
            raise TransferRefused(f"refusing to withdraw to {what}: it is not on the withdrawal whitelist "
                                  f"(configs/transfers.yaml; {listed})")
        return address

    async def _start(self, kind: TransferKind, asset: str, amount: Decimal, source: str, destination: str,
                     address: str) -> Transfer:
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            raise TransferRefused(f"the amount must be a positive Decimal, got {amount!r}")
        now = self.clock()
        t = Transfer(id=uuid.uuid4().hex[:20], kind=kind, asset=asset, amount=amount, source=source,
                     destination=destination, address=address, status=TransferStatus.REQUESTED,
                     created_at=now, updated_at=now)
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
            t = self._set(t, TransferStatus.SENT, tx_hash=state.tx_hash, detail="on chain")
        if t.destination == WALLET:
            try:
                confirmations = await self._wallet().arrival(t.asset, t.tx_hash, t.amount)
            except ValueError as exc:
                return self._set(t, TransferStatus.FAILED, detail=str(exc))
            if confirmations is not None and confirmations >= self._wallet().confirmations:
                return self._set(t, TransferStatus.ARRIVED, detail=f"{confirmations} confirmations")
            return t
        deposit = await self._venue(t.destination).find_deposit(t.asset, t.tx_hash)
        if deposit is None:
            return t
        if deposit.status == "ok":
            return self._set(t, TransferStatus.CREDITED, detail=f"{t.destination} credited {deposit.amount} {t.asset}")
        if deposit.status in REFUSED:
            return self._set(t, TransferStatus.FAILED, detail=f"{t.destination} reports the deposit {deposit.status}")
        return t                     # pending, processing, unknown: the venue is still confirming it
