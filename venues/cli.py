"""Headless venue commands for main.py: ``credentials set|delete|list`` and ``check-venues``.

    python main.py credentials set --env testnet --venue okx --field passphrase   (hidden prompt / stdin)
    python main.py credentials list --env testnet [--venue okx]
    python main.py credentials delete --env testnet --venue okx [--field secret]
    python main.py check-venues --mode eth_basis --env testnet [--json] [--timeout 5]

Errors print one line on stderr (never a traceback, never a secret) and exit non-zero. check-venues
exits 0 only when no check FAILed.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

from engine.cli_args import check_range
from venues.credentials import (
    ENVIRONMENTS,
    FIELDS,
    FIELDS_BY_KIND,
    CredentialError,
    CredentialStore,
    Secret,
    redact,
    validate_field,
)

EXIT_FAIL = 1      # a check failed
EXIT_USAGE = 2     # bad input, config error, keyring unusable


class UsageError(ValueError):
    """Bad command-line input (message names the flag and the allowed values)."""


def _venue_kind(venue: str) -> str:
    from engine.config import VENUES, load_venue_config

    if venue not in VENUES:
        raise UsageError(f"--venue: unknown venue {venue!r}; allowed: {', '.join(VENUES)}")
    return str(load_venue_config(venue).kind)


def read_secret(prompt: str, stdin: TextIO | None = None) -> Secret:
    """From a hidden prompt on a terminal, else the first line of stdin (a pipe or file)."""
    stream = stdin if stdin is not None else sys.stdin
    if stream.isatty():
        value = getpass.getpass(prompt)
    else:
        value = stream.readline()
    value = value.strip()
    if not value:
        raise UsageError("no value given (type it at the hidden prompt or pipe it on stdin)")
    return Secret(value)


# ----------------------------------------------------------------------------------------------- credentials
def cmd_credentials_set(args: argparse.Namespace, store: CredentialStore | None = None,
                        stdin: TextIO | None = None) -> int:
    kind = _venue_kind(args.venue)
    if getattr(args, "field", None) is None:       # argparse requires it; callers building args by hand
        raise UsageError(f"--field is required for set; allowed for {args.venue}: "
                         f"{', '.join(FIELDS_BY_KIND[kind]) or 'none'}")
    validate_field(args.field, kind)
    store = store or CredentialStore()
    store.describe_backend()      # fail before prompting when there is no keyring
    value = read_secret(f"{args.field} for {args.venue} ({args.env}), input hidden: ", stdin)
    store.set(args.env, args.venue, args.field, value, venue_kind=kind)
    print(f"stored {args.field} for {args.venue} ({args.env}) in {store.describe_backend()}")
    return 0


def cmd_credentials_delete(args: argparse.Namespace, store: CredentialStore | None = None) -> int:
    _venue_kind(args.venue)
    store = store or CredentialStore()
    deleted = store.delete(args.env, args.venue, args.field)
    if not deleted:
        what = args.field or "credentials"
        print(f"no {what} stored for {args.venue} ({args.env}); nothing deleted")
        return 0
    print(f"deleted {', '.join(deleted)} for {args.venue} ({args.env})")
    return 0


def cmd_credentials_list(args: argparse.Namespace, store: CredentialStore | None = None) -> int:
    from engine.config import VENUES

    venues = [args.venue] if args.venue else list(VENUES)
    kinds = {v: _venue_kind(v) for v in venues}
    store = store or CredentialStore()
    print(f"keyring backend: {store.describe_backend()}")
    for venue in venues:
        if not FIELDS_BY_KIND[kinds[venue]] and not args.venue:
            continue        # protocol venues hold no credentials of their own
        fields = store.list_fields(args.env, venue)
        print(f"{venue} ({args.env}): {', '.join(fields) if fields else 'none stored'}")
    return 0


# ----------------------------------------------------------------------------------------------- checks
_ORDER = {"FAIL": 0, "WARN": 1, "SKIP": 2, "OK": 3}


def _format(result) -> str:
    latency = f"{result.latency_ms:7.0f} ms" if result.latency_ms is not None else " " * 10
    line = f"{result.status.value:<4}  {result.venue:<9} {result.check:<13} {latency}  {result.message}"
    if result.hint and result.status.value in ("FAIL", "WARN"):
        line += f"\n{'':>40}hint: {result.hint}"
    return line


async def run_check_venues(args: argparse.Namespace, store: CredentialStore | None = None,
                           url_overrides: dict[str, str] | None = None) -> int:
    """check-venues on the running loop (the app and tests); prints rows as they finish, or JSON."""
    from venues.checks import CheckSettings, exit_code, plan_for_mode, run_checks

    check_range(args.timeout, "--timeout", 0.1, 600, unit="s")
    plan = plan_for_mode(args.mode, args.env, override_file=getattr(args, "config", None))
    settings = CheckSettings(timeout_s=args.timeout)
    store = store or CredentialStore()
    started = time.monotonic()
    on_result: Callable | None = None
    if not args.json:
        print(f"checking {', '.join(plan.venues)} for {args.mode} ({args.env}), {args.timeout:g}s per check ...",
              flush=True)
        on_result = lambda r: print(_format(r), flush=True)  # noqa: E731 - stream rows as they finish
    results = await run_checks(plan, store=store, settings=settings, url_overrides=url_overrides,
                               on_result=on_result)
    elapsed = time.monotonic() - started
    code = exit_code(results)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        counts = {s: sum(1 for r in results if r.status.value == s) for s in ("OK", "WARN", "FAIL", "SKIP")}
        verdict = "ready" if code == 0 else "NOT ready (fix every FAIL)"
        print(f"{counts['OK']} OK, {counts['WARN']} WARN, {counts['FAIL']} FAIL, {counts['SKIP']} SKIP "
              f"in {elapsed:.1f}s: {verdict}")
    return code


def cmd_check_venues(args: argparse.Namespace) -> int:
    return asyncio.run(run_check_venues(args))


# ----------------------------------------------------------------------------------------------- wiring
def _guard(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """One clear line on stderr and a non-zero exit for every expected failure; no traceback."""

    def run(args: argparse.Namespace) -> int:
        from engine.config import ConfigError

        try:
            return command(args)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
        except ConfigError as exc:          # before ValueError, which it subclasses
            text = " | ".join(line.strip() for line in exc.describe().splitlines())
            print(f"error: {redact(text)}", file=sys.stderr)
            return EXIT_USAGE
        except (UsageError, CredentialError, ValueError) as exc:
            print(f"error: {redact(str(exc))}", file=sys.stderr)
            return EXIT_USAGE
        except Exception as exc:  # noqa: BLE001 - the CLI never dumps a traceback
            print(f"error: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
            return EXIT_USAGE

    return run


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``credentials`` and ``check-venues`` to main.py's subcommands."""
    from engine.config import MODES, VENUES

    creds = subparsers.add_parser("credentials", help="store, list or delete venue keys in the OS keyring")
    csub = creds.add_subparsers(dest="credentials_command", metavar="ACTION", required=True)
    env_help = f"environment: {' | '.join(ENVIRONMENTS)}"
    for action, help_text in (("set", "store one field (value from a hidden prompt or stdin)"),
                              ("delete", "delete one field, or all fields of the venue"),
                              ("list", "show which fields are stored (never the values)")):
        p = csub.add_parser(action, help=help_text)
        p.add_argument("--env", required=True, choices=ENVIRONMENTS, help=env_help)
        p.add_argument("--venue", required=action != "list", metavar="VENUE", help=f"one of: {', '.join(VENUES)}")
        if action == "set":
            p.add_argument("--field", required=True, choices=FIELDS, metavar="FIELD",
                           help="one of: " + "; ".join(f"{kind} venues: {', '.join(names)}"
                                                       for kind, names in FIELDS_BY_KIND.items() if names))
        elif action == "delete":
            p.add_argument("--field", choices=FIELDS, metavar="FIELD",
                           help=f"one of: {', '.join(FIELDS)} (default: every field of the venue)")
    csub.choices["set"].set_defaults(func=_guard(cmd_credentials_set))
    csub.choices["delete"].set_defaults(func=_guard(cmd_credentials_delete))
    csub.choices["list"].set_defaults(func=_guard(cmd_credentials_list))

    check = subparsers.add_parser("check-venues", help="check every venue a mode needs before going live")
    check.add_argument("--mode", required=True, choices=MODES, metavar="MODE", help=f"one of: {', '.join(MODES)}")
    check.add_argument("--env", required=True, choices=ENVIRONMENTS, help=env_help)
    check.add_argument("--json", action="store_true", help="print the results as a JSON list")
    check.add_argument("--timeout", type=float, default=5.0, help="seconds per check, 0.1..600 (default 5)")
    check.add_argument("--config", type=Path, metavar="FILE",
                       help="override YAML deep-merged over the mode (e.g. the venue_overrides that "
                            "`python main.py devchain` writes for a local chain)")
    check.set_defaults(func=_guard(cmd_check_venues))

    from venues.onchain.devstack.cli import add_devchain_parser
    add_devchain_parser(subparsers)
    from venues.onchain.executor_cli import add_executor_parser
    add_executor_parser(subparsers, _guard)
