"""Basis Workstation entry point.

    python main.py                      open the desktop workstation
    python main.py backtest --mode M    run a backtest headless (see --help of each subcommand)
    python main.py live --mode M        run a mode on paper or live headless (Ctrl-C = emergency stop)
    python main.py journal show --env E read a live session's journal (read-only), e.g. after a crash
    python main.py demo [--mode M]      the app on a local exchange emulator and DeFi chain (try it)
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from bootstrap import app_services, backtest_service, live_trading_service
    from engine.cli import add_backtest_parser
    from engine.services.live.cli import add_live_parser

    parser = argparse.ArgumentParser(prog="main.py", description="Basis Workstation")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_backtest_parser(sub, backtest_service)
    from engine.lab.cli import add_stress_parser, add_sweep_parser
    add_stress_parser(sub, backtest_service)
    add_sweep_parser(sub, backtest_service)
    add_live_parser(sub, live_trading_service)
    from engine.services.live.journal_cli import add_journal_parser
    add_journal_parser(sub)
    from venues.cli import register as register_venue_commands
    register_venue_commands(sub)
    try:
        from app.cli import register as register_app_commands
    except ImportError:
        register_app_commands = None
    if register_app_commands is not None:
        register_app_commands(sub, app_services)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        from app.main_window import run_app
        from bootstrap import app_services
        return run_app(app_services)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
