"""The chain in restart recovery and in the per-tick reconciliation of a live session.

Every saved strategy book of a session with on-chain legs carries ``chain``: the wallet's holdings as
the chain reported them right after the last on-chain step the session booked. So the journal knows,
to the wei of every token and scaled AAVE balance, what the wallet held when it last wrote.

On restart the wallet (tokens, AAVE scaled supply and debt, e-mode) and the transaction manager's
pending nonces are read from the chain and compared with that record:

- a token or scaled balance that differs is a difference (a step that became final after the crash
  was journaled, a transfer that arrived, someone else's transaction): shown and, once acknowledged,
  booked into the resumed book exactly as the router books a step, so nothing is lost or done twice
  (the strategy sees the step as done and does not repeat it);
- a transaction still pending is a difference: the operator rebroadcasts or cancels it. Acknowledging
  the report does not clear it: until the nonce is mined, replaced or cancelled the session sends
  nothing that adds risk (engine/services/live/pending_tx_hold.py), and says why in its phase line.

Either way the session waits for the acknowledgement before any new risk is taken.

Every tick the same comparison runs between the chain and the holdings the session last booked:
scaled balances and tokens never move without a transaction, so any difference means the book no
longer matches the chain, which halts like a CEX position mismatch. The health factor the chain
reports is checked against the floor on the same read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.domain.onchain_live import CHAIN_TOLERANCE, ChainHoldings, PendingChainTx
from engine.services.live.recovery import Difference, RecoveryReport

if TYPE_CHECKING:                      # the session imports this module's helpers
    from engine.services.live.session import LiveSession

#: Absolute dust below which a token difference is not one (wei rounding of float books).
DUST = 1e-12


def holdings_dict(h: ChainHoldings) -> dict[str, Any]:
    return dataclasses.asdict(h)


def holdings_from(d: dict[str, Any]) -> ChainHoldings:
    fields = {f.name for f in dataclasses.fields(ChainHoldings)}
    return ChainHoldings(**{k: v for k, v in d.items() if k in fields})


def differences(expected: ChainHoldings, found: ChainHoldings) -> list[str]:
    """Human lines for every token / scaled balance / e-mode that differs (interest on the
    underlying amounts is not a difference: scaled balances carry it)."""
    out: list[str] = []
    for label, a, b in (("wallet", expected.tokens, found.tokens),
                        ("AAVE supply (scaled)", expected.supply_scaled, found.supply_scaled),
                        ("AAVE debt (scaled)", expected.debt_scaled, found.debt_scaled)):
        for key in sorted(set(a) | set(b)):
            x, y = a.get(key, 0.0), b.get(key, 0.0)
            if abs(x - y) > max(DUST, CHAIN_TOLERANCE * max(abs(x), abs(y))):
                out.append(f"{label} {key}: journal {x:.12g}, chain {y:.12g}")
    if expected.emode != found.emode:
        out.append(f"e-mode: journal {'on' if expected.emode else 'off'}, chain {'on' if found.emode else 'off'}")
    return out


@dataclass
class ChainRecovery:
    """What the chain said at restart, against the journal."""

    found: ChainHoldings
    journaled: ChainHoldings | None
    pending: list[PendingChainTx] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


async def reconcile_chain(session: "LiveSession", report: RecoveryReport | None) -> RecoveryReport:
    """Add the chain's differences to the restart report (creating one when there is none)."""
    assert session.onchain is not None
    report = report or RecoveryReport()
    found = await session.onchain.holdings()
    saved = (report.book or {}).get("chain")
    journaled = holdings_from(saved) if saved else None
    pending = session.onchain.pending()
    rec = ChainRecovery(found, journaled, pending)
    chain = session.onchain.chain
    if journaled is not None:
        for line in differences(journaled, found):
            rec.lines.append(line)
            report.differences.append(Difference(f"chain:{chain}", "chain_balance_changed", line))
    for tx in pending:
        line = f"nonce {tx.nonce} {tx.label or tx.tx_hash} is not final: rebroadcast or cancel it before trading"
        rec.lines.append(line)
        report.differences.append(Difference(f"chain:{chain}", "transaction_pending", line))
    session.chain_recovery = rec
    session.refresh_tx_hold()     # new risk waits for these even once the report is acknowledged
    return report


def adopt_chain(session: "LiveSession") -> list[str]:
    """After the operator acknowledged: book what changed on chain since the journal last wrote (or,
    for a fresh book, take the chain as it is as the starting point). Returns what was booked."""
    rec = session.chain_recovery
    router = session.router
    if rec is None or router is None:
        return []
    if rec.journaled is None:
        router.last_holdings = rec.found
        return []
    t = len(session.feed.view.timestamps) - 1
    booked = differences(rec.journaled, rec.found)
    if t < 0:
        # No prices yet to value the change with: the first tick books it before anything else.
        router.last_holdings = rec.journaled
        session.chain_adopt_pending = True
        return booked
    router.adopt(rec.journaled, rec.found, t)
    return booked


def adopt_pending(session: "LiveSession", t: int) -> None:
    """The first tick of a resumed session books what recovery found (see adopt_chain)."""
    rec, router = session.chain_recovery, session.router
    if not session.chain_adopt_pending or rec is None or rec.journaled is None or router is None:
        return
    router.adopt(rec.journaled, rec.found, t)
    session.chain_adopt_pending = False


def underfunded(book_tokens: dict[str, float], found: ChainHoldings) -> list[str]:
    """A fresh session's book starts with its capital in the wallet: the chain must hold it."""
    return [f"{token}: the book starts with {amount:.6g}, the wallet holds {found.tokens.get(token, 0.0):.6g}"
            for token, amount in book_tokens.items() if amount > found.tokens.get(token, 0.0) * (1 + 1e-12) + DUST]


def check_chain(expected: ChainHoldings | None, found: ChainHoldings) -> dict[str, float]:
    """Per-tick: "chain:<what>" -> difference, for every balance the book's last record misses."""
    if expected is None:
        return {}
    out: dict[str, float] = {}
    for label, a, b in (("", expected.tokens, found.tokens), ("aave supply ", expected.supply_scaled,
                                                             found.supply_scaled),
                        ("aave debt ", expected.debt_scaled, found.debt_scaled)):
        for key in set(a) | set(b):
            x, y = a.get(key, 0.0), b.get(key, 0.0)
            if abs(x - y) > max(DUST, CHAIN_TOLERANCE * max(abs(x), abs(y))):
                out[f"chain:{found.chain} {label}{key}"] = y - x
    return out
