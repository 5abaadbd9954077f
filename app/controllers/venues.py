"""The app's way to the venues outside a trading session: pre-live checks and the keyring.

One `VenueAccess` is built by bootstrap (the OS keyring and the venues' real endpoints, or the
loopback emulator and an in-memory keyring in tests) and shared by the venue checks panel and the
credentials dialog; nothing in the panels knows which. Every keyring call runs in an abandonable
thread (a D-Bus call can hang), so the qasync loop never blocks on it; errors come back as
`CredentialProblem`, whose message and hint never hold a value.
"""
from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from engine.config import VENUES, load_venue_config
from engine.domain.readiness import CheckResult
from venues.blocking import run_abandonable
from venues.cex.factory import required_credential_fields
from venues.checks import CheckPlan, CheckSettings, exit_code, iter_checks, load_plan
from venues.credentials import (
    ENVIRONMENTS,
    FIELDS_BY_KIND,
    SECRET_FIELDS,
    CredentialError,
    CredentialStore,
    normalize_value,
)

#: Checks each venue kind runs (columns shown before the first result arrives).
EXPECTED_CHECKS = {
    "cex": ("credentials", "reachable", "clock", "markets", "funding", "account", "permissions", "account_mode"),
    "rpc": ("credentials", "rpc", "chain_id", "block_age", "gas"),
    "onchain": ("contracts",),
}


class CredentialProblem(Exception):
    """A keyring operation failed or a typed value is malformed (never carries a value)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def text(self) -> str:
        return f"{self.message}. {self.hint}" if self.hint else self.message


@dataclass(frozen=True)
class ChecksRun:
    """The venues a mode needs in an environment and the checks each will report."""

    mode: str
    environment: str
    venues: list[str]
    expected: set[str]
    plan: CheckPlan


@cache
def _venue_kind(venue: str) -> str:
    return load_venue_config(venue).kind


@dataclass
class VenueAccess:
    #: The keyring store every panel reads and writes (the OS keyring unless a test passes another).
    store: CredentialStore
    #: venue -> base URL replacing the venue's host (the loopback emulator in tests); empty = real venues.
    url_overrides: Mapping[str, str] = field(default_factory=dict)
    #: Timeouts and thresholds of the pre-live checks.
    check_settings: CheckSettings = field(default_factory=CheckSettings)

    environments: tuple[str, ...] = ENVIRONMENTS
    secret_fields: frozenset[str] = frozenset(SECRET_FIELDS)

    # ---- pre-live checks ------------------------------------------------------------------------
    async def plan(self, mode: str, environment: str, venue: str | None = None) -> ChecksRun:
        """What a run checks (raises ConfigError/ValueError for a mode that cannot be planned). With
        ``venue``, that venue alone, even one the mode does not use."""
        plan = await load_plan(mode, environment)
        if venue is not None:
            configs = dict(plan.venue_configs)
            if venue not in configs:
                configs[venue] = await asyncio.to_thread(load_venue_config, venue)
            plan = dataclasses.replace(plan, venues=[venue], venue_configs=configs)
        expected = {c for v in plan.venues for c in EXPECTED_CHECKS.get(getattr(plan.venue_configs[v], "kind", ""), ())}
        return ChecksRun(mode, environment, list(plan.venues), expected, plan)

    def checks(self, run: ChecksRun) -> AsyncIterator[CheckResult]:
        """The results of a run, each the moment its check finishes."""
        return iter_checks(run.plan, store=self.store, settings=self.check_settings, url_overrides=self.url_overrides)

    @staticmethod
    def ready(results: Sequence[CheckResult]) -> bool:
        """No check failed (what ``check-venues`` exits 0 on)."""
        return exit_code(list(results)) == 0

    async def keyring_problem(self) -> CredentialProblem | None:
        """Why there is no usable OS keyring, or None."""
        try:
            await run_abandonable(self.store.describe_backend, name="keyring-probe")
        except CredentialError as exc:
            return CredentialProblem(exc.message, exc.hint)
        return None

    # ---- credentials ----------------------------------------------------------------------------
    @staticmethod
    def credential_venues() -> dict[str, str]:
        """venue -> kind for every venue that holds credentials of its own (exchanges and the RPC)."""
        return {v: _venue_kind(v) for v in VENUES if FIELDS_BY_KIND.get(_venue_kind(v))}

    @staticmethod
    def display_name(venue: str) -> str:
        return load_venue_config(venue).display_name

    @staticmethod
    def venue_fields(venue: str) -> tuple[str, ...]:
        return _venue_fields(venue)

    @staticmethod
    def normalize(field_name: str, value: str) -> str:
        """The value as it will be stored (errors name the field, never the value)."""
        try:
            return normalize_value(field_name, value)
        except CredentialError as exc:
            raise CredentialProblem(exc.message, exc.hint) from None

    async def stored_fields(self, environment: str, venue: str) -> list[str]:
        """Names of the fields stored for a venue (never the values)."""
        return await self._keyring(self.store.list_fields, environment, venue, name="keyring-list")

    async def save(self, environment: str, venue: str, values: dict[str, str]) -> list[str]:
        """Write the fields; returns the stored field names after it."""
        kind = self.credential_venues()[venue]
        store = self.store

        def write() -> list[str]:
            for name, value in values.items():
                store.set(environment, venue, name, value, venue_kind=kind)
            return store.list_fields(environment, venue)

        return await self._keyring(write, name="keyring-write")

    async def delete(self, environment: str, venue: str) -> tuple[list[str], list[str]]:
        """Delete every field of a venue; returns (fields removed, fields still stored)."""
        store = self.store

        def remove() -> tuple[list[str], list[str]]:
            return store.delete(environment, venue), store.list_fields(environment, venue)

        return await self._keyring(remove, name="keyring-delete")

    @staticmethod
    async def _keyring(fn, *args, name: str):
        try:
            return await run_abandonable(fn, *args, name=name)
        except CredentialError as exc:
            raise CredentialProblem(exc.message, exc.hint) from None


@cache
def _venue_fields(venue: str) -> tuple[str, ...]:
    """The fields `venue` uses: what its ccxt classes require (OKX adds the passphrase), or the RPC's."""
    config = load_venue_config(venue)
    if config.kind == "cex":
        ids: Iterable[str] = [config.ccxt_id] + ([config.ccxt_perp_id] if config.ccxt_perp_id else [])
        needed = {f for i in ids for f in required_credential_fields(i)}
        return tuple(f for f in FIELDS_BY_KIND["cex"] if f in needed)
    return FIELDS_BY_KIND[config.kind]
