"""``python main.py transfer``: move an asset between an exchange and the wallet, or two exchanges.

    python main.py transfer send --env E --from binance --to wallet --asset USDT --amount 1000 [--wait 600]
    python main.py transfer send --env E --from wallet --to okx --asset ETH --amount 0.5
    python main.py transfer send --env E --from binance --to okx --asset USDT --amount 500
    python main.py transfer list --env E
    python main.py transfer resume --env E [--wait 600]

Withdrawals go only to addresses on the whitelist of configs/transfers.yaml (the wallet, and other
exchanges' deposit addresses); anything else is refused before a venue sees it. Before a withdrawal
the venue's terms are printed: the amount rounded down to its precision, its fee and its minimum
(below it the withdrawal is refused). Every step is in the
environment's journal; ``resume`` finishes what a crash interrupted, and never pays twice. Binance's
testnet has no wallet endpoints (ccxt: no sandbox URL for sapi), so Binance transfers need production.
"""
from __future__ import annotations

import argparse
import asyncio
from decimal import Decimal, InvalidOperation
from pathlib import Path

from engine.domain.transfers import WALLET, Transfer

ENVIRONMENTS = ("testnet", "production")
EXCHANGES = ("binance", "bybit", "okx")


def add_transfer_parser(subparsers: argparse._SubParsersAction, guard) -> None:
    p = subparsers.add_parser("transfer", help="move assets between the exchanges and the wallet (journaled)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="transfer_command", metavar="ACTION", required=True)
    send = sub.add_parser("send", help="request a transfer and follow it")
    send.add_argument("--from", dest="source", required=True, choices=(*EXCHANGES, WALLET))
    send.add_argument("--to", dest="destination", required=True, choices=(*EXCHANGES, WALLET))
    send.add_argument("--asset", required=True, help="ETH (native) or a token of the venue files, e.g. USDT")
    send.add_argument("--amount", required=True, help="in token units, e.g. 1000 or 0.5")
    resume = sub.add_parser("resume", help="advance every unfinished transfer of the journal")
    listing = sub.add_parser("list", help="show the journal's transfers")
    for q in (send, resume, listing):
        q.add_argument("--env", required=True, choices=ENVIRONMENTS)
        q.add_argument("--journal-dir", type=Path, help=argparse.SUPPRESS)
    for q in (send, resume):
        q.add_argument("--wait", type=float, default=0.0,
                       help="seconds to follow each transfer to arrival (default 0: one step, then exit)")
        q.add_argument("--config", type=Path, metavar="FILE",
                       help="override YAML with venue_overrides (e.g. the one `python main.py devchain` writes)")
    send.set_defaults(func=guard(cmd_send))
    resume.set_defaults(func=guard(cmd_resume))
    listing.set_defaults(func=guard(cmd_list))


def _journal_path(args: argparse.Namespace) -> Path:
    from engine.services.live.journal import default_journal_path

    if args.journal_dir is not None:
        return args.journal_dir / f"journal-{args.env}.sqlite3"
    return default_journal_path(args.env)


def _line(t: Transfer) -> str:
    moved = f"{t.amount} {t.asset} {t.source} -> {t.destination}"
    if t.fee:
        moved += f" (fee {t.fee} {t.asset}{' included' if t.fee_included else ' on top'})"
    ids = " ".join(x for x in (f"withdraw {t.withdraw_id}" if t.withdraw_id else "",
                               f"tx {t.tx_hash}" if t.tx_hash else "") if x)
    return f"{t.id}  {t.status.value:<9} {moved}  {ids}{'  (' + t.detail + ')' if t.detail else ''}"


async def _service(args: argparse.Namespace, cex: list[str], wallet: bool):
    from venues.credentials import CredentialStore
    from venues.transfer_factory import build_transfer_service

    return await build_transfer_service(args.env, CredentialStore(), cex_venues=cex, journal_path=_journal_path(args),
                                        wallet=wallet, override_file=getattr(args, "config", None))


def cmd_send(args: argparse.Namespace) -> int:
    try:
        amount = Decimal(args.amount)
    except InvalidOperation:
        raise ValueError(f"--amount {args.amount!r} is not a number") from None
    if args.source == args.destination:
        raise ValueError("--from and --to are the same")
    cex = [v for v in (args.source, args.destination) if v != WALLET]
    wallet = WALLET in (args.source, args.destination)

    async def run() -> int:
        service, close = await _service(args, cex, wallet)
        try:
            if args.source != WALLET:
                # the ticket: what the venue will send, its fee and minimum, before anything is journaled
                address = service.wallet.address if args.destination == WALLET and service.wallet is not None \
                    else await service.cex[args.destination].deposit_address(args.asset)
                print((await service.plan_withdrawal(args.source, args.asset, amount, address)).line(), flush=True)
            if args.destination == WALLET:
                t = await service.cex_to_wallet(args.source, args.asset, amount)
            elif args.source == WALLET:
                t = await service.wallet_to_cex(args.destination, args.asset, amount)
            else:
                t = await service.cex_to_cex(args.source, args.destination, args.asset, amount)
            print(_line(t), flush=True)
            if args.wait > 0 and not t.status.final:
                t = await service.wait(t.id, args.wait)
                print(_line(t))
            return 1 if t.status.value == "failed" else 0
        finally:
            await close()

    return asyncio.run(run())


def cmd_resume(args: argparse.Namespace) -> int:
    from engine.services.live.transfers import TransferJournal

    journal = TransferJournal(_journal_path(args))
    pending = journal.unfinished()
    journal.close()
    if not pending:
        print("no unfinished transfers")
        return 0
    cex = sorted({v for t in pending for v in (t.source, t.destination) if v != WALLET})
    wallet = any(WALLET in (t.source, t.destination) for t in pending)

    async def run() -> int:
        service, close = await _service(args, cex, wallet)
        try:
            failed = 0
            for t in await service.resume():
                if args.wait > 0 and not t.status.final:
                    t = await service.wait(t.id, args.wait)
                print(_line(t))
                failed += t.status.value == "failed"
            return 1 if failed else 0
        finally:
            await close()

    return asyncio.run(run())


def cmd_list(args: argparse.Namespace) -> int:
    from engine.services.live.transfers import TransferJournal

    path = _journal_path(args)
    if not path.exists():
        print(f"no journal for {args.env} yet ({path})")
        return 0
    journal = TransferJournal(path)
    try:
        rows = [(t, journal.moves(t.id)) for t in journal.all()]
    finally:
        journal.close()
    for t, moves in rows:
        print(_line(t))
        for m in moves:     # the moves between the exchange's own accounts this transfer needed
            print(f"    move {m.id}  {m.status:<9} {m.amount} {m.asset} {m.venue} {m.from_account} -> {m.to_account}"
                  + (f"  ({m.venue_id})" if m.venue_id else ""))
    if not rows:
        print("no transfers")
    return 0
