"""Pre-live connectivity and readiness checks (docs/ARCHITECTURE.md, Readiness checks and credentials).

Every venue the selected mode needs is checked concurrently, one task per venue (the on-chain venues
share the RPC, so they run after the RPC checks in one chain task). Inside a venue the checks run in
order because they depend on each other (no point asking for balances of a venue that does not
answer); each is bounded by its own ``asyncio.wait_for`` timeout, and when a venue is unreachable
the rest of its checks are reported SKIP at once, so a hung venue costs one timeout, never more,
and never delays the others.

Results stream as they finish: ``iter_checks`` is an async generator (a UI can render each row as it
arrives without blocking its loop); ``run_checks`` collects them and optionally calls ``on_result``
per result. Statuses: OK, WARN (works but look at it), FAIL (do not go live), SKIP (not run, the
reason says why). No message or hint ever contains a secret.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence

from engine.domain.readiness import CheckResult
from engine.domain.readiness import CheckStatus as Status
from engine.domain.venue_ports import MarketKind, VenueError, VenueErrorKind
from venues.blocking import run_abandonable
from venues.cex import diagnostics
from venues.cex.account import RetryPolicy
from venues.cex.adapter import CexVenueAdapter
from venues.cex.factory import CexConfigError, build_cex_adapter, required_credential_fields
from venues.credentials import CredentialError, CredentialStore, VenueCredentials, redact
from venues.onchain import readiness
from venues.onchain.factory import OnchainConfigError, build_chain_reader, expected_chain_id
from venues.onchain.reader import RPC_VENUE, ChainReader
from venues.onchain.tx.settings import TxSettings


@dataclass(frozen=True)
class CheckSettings:
    """Thresholds and time limits. Defaults are chosen for production venues over the internet."""

    timeout_s: float = 5.0                 # per check
    latency_warn_ms: float = 1000.0        # slower than this answers WARN
    skew_warn_ms: float = 500.0            # |venue clock - ours| above this: WARN
    skew_fail_ms: float = 1000.0           # Binance/Bybit reject requests > 1 s ahead of their clock
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=2, base_delay_s=0.1))
    rate_limit_ms: int | None = None       # override ccxt's per-venue pacing (tests on loopback)


Emit = Callable[[CheckResult], None]
_UNREACHABLE = {VenueErrorKind.NETWORK, VenueErrorKind.TIMEOUT, VenueErrorKind.UNAVAILABLE}
_KIND_HINT = {
    VenueErrorKind.NETWORK: "Check the network connection, DNS, proxy and firewall for this host.",
    VenueErrorKind.TIMEOUT: "The venue did not answer in time: check its status page and the connection, then rerun.",
    VenueErrorKind.UNAVAILABLE: "The venue answered with a server error or maintenance notice; retry later.",
    VenueErrorKind.RATE_LIMIT: "Rate limited: wait a minute before rerunning.",
    VenueErrorKind.CLOCK: "Sync the system clock (e.g. `timedatectl set-ntp true`); the venue rejects requests "
                          "whose timestamp is outside its window.",
    VenueErrorKind.PERMISSION: "The key lacks a permission or the IP is not whitelisted; fix it on the venue's "
                               "API management page.",
    VenueErrorKind.MALFORMED: "The venue's answer was not its API's JSON (a proxy, captive portal or maintenance "
                              "page answers instead of the venue?); check the network path and the venue's status.",
}


def _auth_hint(venue: str, environment: str, fields: Sequence[str]) -> str:
    return (f"Check the {', '.join(fields)} stored for {venue} ({environment}); testnet/demo keys differ from "
            f"production keys. Store them with `python main.py credentials set --env {environment} "
            f"--venue {venue} --field api_key` (and each other field).")


class _Runner:
    """Runs named checks for one venue, timing each and turning exceptions into results."""

    def __init__(self, venue: str, emit: Emit, settings: CheckSettings, environment: str) -> None:
        self.venue, self.emit, self.settings, self.environment = venue, emit, settings, environment
        self.blocked: str | None = None     # reason the remaining checks are skipped

    def result(self, check: str, status: Status, message: str, hint: str = "",
               latency_ms: float | None = None) -> CheckResult:
        r = CheckResult(self.venue, check, status, redact(message), redact(hint), latency_ms)
        self.emit(r)
        return r

    def skip(self, check: str, reason: str) -> CheckResult:
        return self.result(check, Status.SKIP, f"not run: {reason}")

    async def run(self, check: str, body: Callable[[], Awaitable[tuple[Status, str, str]]], *,
                  auth_fields: Sequence[str] = ("api_key", "secret"), blocks_on_unreachable: bool = True
                  ) -> CheckResult:
        if self.blocked:
            return self.skip(check, self.blocked)
        t0 = time.perf_counter()
        try:
            status, message, hint = await asyncio.wait_for(body(), self.settings.timeout_s)
        except asyncio.TimeoutError:
            ms = (time.perf_counter() - t0) * 1000
            if blocks_on_unreachable:
                self.blocked = f"{self.venue} did not answer within {self.settings.timeout_s:g}s"
            return self.result(check, Status.FAIL, f"no answer within {self.settings.timeout_s:g}s (timeout)",
                               _KIND_HINT[VenueErrorKind.TIMEOUT], ms)
        except VenueError as exc:
            ms = (time.perf_counter() - t0) * 1000
            if exc.kind in _UNREACHABLE and blocks_on_unreachable:
                self.blocked = f"{self.venue} is unreachable ({exc.kind.value})"
            if exc.kind is VenueErrorKind.AUTH:
                hint = _auth_hint(self.venue, self.environment, auth_fields)
            else:
                hint = _KIND_HINT.get(exc.kind, "")
            # a malformed answer's detail already says so ("malformed answer from okx: ...")
            message = exc.detail if exc.kind is VenueErrorKind.MALFORMED else f"{exc.kind.value}: {exc.detail}"
            return self.result(check, Status.FAIL, message, hint, ms)
        except diagnostics.NotAvailable as exc:
            return self.result(check, Status.SKIP, f"not available: {exc}")
        except Exception as exc:  # noqa: BLE001 - a check must never take the run down
            ms = (time.perf_counter() - t0) * 1000
            return self.result(check, Status.FAIL, f"unexpected error: {type(exc).__name__}: {exc}",
                               "This is a bug in the check; please report it with the message.", ms)
        return self.result(check, status, message, hint, (time.perf_counter() - t0) * 1000)


# ----------------------------------------------------------------------------------------------- CEX
@dataclass(frozen=True)
class _KeyringProblem:
    message: str
    hint: str


#: What the checks read from the keyring per venue kind: never the wallet's private key (no check
#: signs anything, and a key that is never read is never resident in this process).
_CHECK_FIELDS = {"cex": ("api_key", "secret", "passphrase"), "rpc": ("rpc_url", "wallet_address", "executor_address")}


async def _load_credentials(store: CredentialStore | None, environment: str, venue: str,
                            timeout_s: float, kind: str) -> tuple[VenueCredentials | None, _KeyringProblem | None]:
    """(credentials, problem). The keyring is synchronous (D-Bus): run it in a thread, bounded."""
    if store is None:
        return None, _KeyringProblem("no credential store configured", "")
    try:
        creds = await asyncio.wait_for(run_abandonable(store.load, environment, venue, _CHECK_FIELDS[kind],
                                                       name="keyring-load"), timeout_s)
        return creds, None
    except asyncio.TimeoutError:
        return None, _KeyringProblem(f"the OS keyring did not answer within {timeout_s:g}s",
                                     "Unlock the keyring (a hidden unlock prompt may be waiting) and rerun.")
    except CredentialError as exc:
        return None, _KeyringProblem(exc.message, exc.hint)


async def check_cex(venue: str, venue_config: Any, environment: str, underlying: str, emit: Emit, *,
                    store: CredentialStore | None, settings: CheckSettings, url_override: str | None = None) -> None:
    r = _Runner(venue, emit, settings, environment)
    ids = [venue_config.ccxt_id] + ([venue_config.ccxt_perp_id] if venue_config.ccxt_perp_id else [])
    # ccxt objects take a few ms each to build: build them off the loop so a UI never stutters.
    required = sorted({f for i in ids for f in await asyncio.to_thread(required_credential_fields, i)},
                      key=["api_key", "secret", "passphrase"].index)
    creds, cred_error = await _load_credentials(store, environment, venue, settings.timeout_s, "cex")
    missing = required if creds is None else creds.missing(required)
    if cred_error:
        r.result("credentials", Status.FAIL, f"cannot read the keyring: {cred_error.message}", cred_error.hint)
    elif missing:
        r.result("credentials", Status.FAIL, f"no {', '.join(missing)} stored for {venue} ({environment})",
                 f"`python main.py credentials set --env {environment} --venue {venue} --field {missing[0]}`; "
                 f"needed: {', '.join(required)}")
    else:
        r.result("credentials", Status.OK, f"{', '.join(required)} stored in the OS keyring")
    have_keys = not missing and not cred_error
    adapter = await asyncio.to_thread(
        build_cex_adapter, venue, venue_config, environment, creds if have_keys else None,
        url_override=url_override, timeout_s=settings.timeout_s, retry=settings.retry,
        underlyings=[underlying], rate_limit_ms=settings.rate_limit_ms)
    try:
        await _cex_checks(r, adapter, venue_config, underlying, have_keys, required)
    finally:
        await adapter.close()


async def _cex_checks(r: _Runner, adapter: CexVenueAdapter, venue_config: Any, underlying: str,
                      have_keys: bool, required: Sequence[str]) -> None:
    s = r.settings
    skews: list[float] = []

    async def reachable() -> tuple[Status, str, str]:
        times = await asyncio.gather(*(a.server_time_ms() for a in adapter.accounts))
        rtt = max(t[2] for t in times)
        skews.extend(server - local for server, local, _ in times)
        names = ", ".join(a.ccxt_id for a in adapter.accounts)
        if rtt > s.latency_warn_ms:
            return Status.WARN, f"reachable ({names}) but slow: {rtt:.0f} ms round trip", \
                "High latency delays orders and the emergency stop; check the network path."
        return Status.OK, f"reachable ({names}), {rtt:.0f} ms round trip", ""

    await r.run("reachable", reachable)

    async def clock() -> tuple[Status, str, str]:
        worst = max(skews, key=abs)
        text = f"venue clock {'ahead of' if worst > 0 else 'behind'} ours by {abs(worst):.0f} ms"
        if abs(worst) >= s.skew_fail_ms:
            return Status.FAIL, text, _KIND_HINT[VenueErrorKind.CLOCK]
        if abs(worst) >= s.skew_warn_ms:
            return Status.WARN, text, _KIND_HINT[VenueErrorKind.CLOCK]
        return Status.OK, text, ""

    if skews:
        await r.run("clock", clock)
    else:
        r.skip("clock", r.blocked or "no server time")

    async def markets() -> tuple[Status, str, str]:
        await adapter.load_markets()
        wanted = adapter.wanted_symbols()
        missing = [sym for sym in wanted if sym not in adapter.symbols()]
        if missing:
            return Status.FAIL, f"not listed: {', '.join(missing)}", \
                f"Check `markets` in configs/venues/{adapter.venue}.yaml against the venue's symbols."
        return Status.OK, f"listed: {', '.join(wanted)}", ""

    await r.run("markets", markets)

    async def funding() -> tuple[Status, str, str]:
        symbol = adapter.markets[MarketKind.PERP][underlying]
        hours = await diagnostics.funding_interval_hours(adapter, symbol)
        configured = Decimal(venue_config.funding_interval_hours)
        if hours != configured:
            return Status.WARN, f"{symbol} funds every {hours:g} h, the venue file says {configured:g} h", \
                f"Update funding_interval_hours in configs/venues/{adapter.venue}.yaml; backtests assume it."
        return Status.OK, f"{symbol} funds every {hours:g} h", ""

    if underlying in adapter.markets.get(MarketKind.PERP, {}):
        await r.run("funding", funding)

    private = ("account", "permissions", "account_mode")
    if not have_keys:
        for name in private:
            r.skip(name, "needs the API credentials (see credentials)")
        return

    async def account() -> tuple[Status, str, str]:
        balances = await adapter.fetch_balances()
        usdt = [b for b in balances if b.asset == "USDT"]
        summary = ", ".join(f"{b.account} {b.free:f} USDT free" for b in usdt) or "no USDT"
        if not balances:
            return Status.WARN, "authenticated; the account holds nothing", "Fund the account before going live."
        return Status.OK, f"authenticated; {summary}", ""

    acc = await r.run("account", account, auth_fields=required)
    if acc.status is Status.FAIL and not r.blocked:
        r.blocked = "the authenticated account read failed (see account)"

    async def permissions() -> tuple[Status, str, str]:
        p = await diagnostics.key_permissions(adapter)
        if not p.can_trade:
            return Status.FAIL, f"the key cannot trade ({p.detail})", \
                "Enable trading (spot and derivatives) for this key on the venue's API management page."
        if p.can_withdraw:
            return Status.WARN, f"the key can withdraw funds ({p.detail})", \
                "Use a key without withdrawal rights: a leaked trading key then cannot move funds out."
        return Status.OK, f"trading on, withdrawals off ({p.detail})", ""

    await r.run("permissions", permissions)

    async def account_mode() -> tuple[Status, str, str]:
        m = await diagnostics.account_mode(adapter)
        if not m.can_trade_perps:
            return Status.FAIL, f"this account cannot trade perpetuals ({m.detail})", \
                "Switch the account mode to one that allows derivatives (venue settings)."
        if m.hedge_mode:
            return Status.WARN, f"{m.detail}: orders assume one-way (net) positions", \
                "Switch the futures position mode to one-way before going live."
        return Status.OK, m.detail, ""

    if adapter.perp_accounts():
        await r.run("account_mode", account_mode)


# ---------------------------------------------------------------------------------------------- chain
@dataclass
class _ChainState:
    reader: ChainReader | None = None
    wallet: str | None = None
    usable: bool = False
    reason: str = ""
    executor: str | None = None  # the wallet's LeverageExecutor (keyring executor_address)
    configs: Mapping[str, Any] = field(default_factory=dict)  # the on-chain venue files of the plan


async def check_rpc(config: Any, environment: str, emit: Emit, *, store: CredentialStore | None,
                    settings: CheckSettings, venue_configs: Mapping[str, Any], gas_units: int) -> _ChainState:
    """Checks of the rpc venue; returns the reader (left open) for the protocol venues' checks."""
    r = _Runner(RPC_VENUE, emit, settings, environment)
    state = _ChainState(configs=venue_configs)
    creds, cred_error = await _load_credentials(store, environment, RPC_VENUE, settings.timeout_s, "rpc")
    if cred_error or creds is None:
        problem = cred_error or _KeyringProblem("no credentials", "")
        r.result("credentials", Status.FAIL, f"cannot read the keyring: {problem.message}", problem.hint)
        state.reason = "no RPC credentials (see alchemy)"
    else:
        missing = creds.missing(["rpc_url", "wallet_address"])
        if missing:
            r.result("credentials", Status.FAIL, f"no {', '.join(missing)} stored for {RPC_VENUE} ({environment})",
                     f"`python main.py credentials set --env {environment} --venue {RPC_VENUE} --field {missing[0]}`")
        else:
            r.result("credentials", Status.OK, "rpc_url and wallet_address stored in the OS keyring")
        state.wallet = creds.reveal("wallet_address")
        state.executor = creds.reveal("executor_address")
        if creds.has("rpc_url"):
            state.reader = build_chain_reader(venue_configs, environment, creds, timeout_s=settings.timeout_s,
                                              retry=settings.retry)
        else:
            state.reason = "no RPC URL stored (see alchemy)"
    checks = ("rpc", "chain_id", "block_age", "gas", "fee_cap")
    if state.reader is None:
        for name in checks:
            r.skip(name, state.reason)
        return state
    reader = state.reader
    heads = []

    async def rpc() -> tuple[Status, str, str]:
        t0 = time.perf_counter()
        heads.append(await reader.chain_head())
        ms = (time.perf_counter() - t0) * 1000
        if ms > s_latency:
            return Status.WARN, f"RPC answers slowly: {ms:.0f} ms", "Check the provider's status or plan limits."
        return Status.OK, f"RPC answers, block {heads[0].block_number}, {ms:.0f} ms", ""

    s_latency = settings.latency_warn_ms
    await r.run("rpc", rpc, auth_fields=["rpc_url"])
    if not heads:
        for name in checks[1:]:
            r.skip(name, r.blocked or "the RPC did not answer (see rpc)")
        state.reason = "the RPC is not usable (see alchemy)"
        return state
    head = heads[0]
    want = expected_chain_id(config, environment)

    async def chain_id() -> tuple[Status, str, str]:
        if head.chain_id != want:
            return Status.FAIL, f"the RPC serves chain {head.chain_id}, {environment} expects {want}", \
                f"Store the {environment} RPC URL for {RPC_VENUE} (network {getattr(config.environments, environment).network})."
        return Status.OK, f"chain {head.chain_id} as expected for {environment}", ""

    cid = await r.run("chain_id", chain_id)
    state.usable = cid.status is Status.OK
    if not state.usable:
        state.reason = f"the RPC is on the wrong chain (see {RPC_VENUE})"

    async def block_age() -> tuple[Status, str, str]:
        age = time.time() - head.block_timestamp
        limit = float(config.max_block_age_seconds)
        text = f"latest block {head.block_number} is {age:.0f} s old"
        if age > 10 * limit:
            return Status.FAIL, text, "The node is not syncing; use another RPC provider."
        if age > limit:
            return Status.WARN, f"{text} (limit {limit:g} s)", "The node may lag; check the provider."
        return Status.OK, text, ""

    await r.run("block_age", block_age)

    async def gas() -> tuple[Status, str, str]:
        if not state.wallet:
            raise diagnostics.NotAvailable("no wallet_address stored")
        balance, price = await asyncio.gather(reader.native_balance(state.wallet), reader.gas_price_wei())
        need = Decimal(price * gas_units).scaleb(-18)
        if balance.raw == 0:
            return Status.WARN, "the wallet holds 0 ETH: it cannot pay gas", \
                f"Send ETH for gas to the wallet (one full entry needs about {need:.6f} ETH at the current gas price)."
        if balance.amount < need:
            return Status.WARN, f"wallet {balance.amount:.6f} ETH < {need:.6f} ETH for one full entry at current gas", \
                "Top up ETH for gas."
        return Status.OK, f"wallet {balance.amount:.6f} ETH for gas (one full entry ~{need:.6f} ETH)", ""

    await r.run("gas", gas)

    async def fee_cap() -> tuple[Status, str, str]:
        verdict = await readiness.fee_cap(reader, TxSettings.for_environment(config, environment))
        return Status(verdict.level), verdict.message, verdict.hint

    await r.run("fee_cap", fee_cap)
    return state


def _onchain_env(config: Any, environment: str) -> Any:
    return getattr(config.environments, environment)


async def check_onchain(venue: str, config: Any, environment: str, chain: _ChainState, mode: Any, emit: Emit, *,
                        settings: CheckSettings) -> None:
    r = _Runner(venue, emit, settings, environment)
    env = _onchain_env(config, environment)
    plan = ["contracts"] + (["account", "tokens", *_write_checks(mode)] if venue == "aave_v3" else
                            ["rate", "tokens"] if getattr(config, "lst_symbol", None) else [])
    if not chain.usable or chain.reader is None:
        for name in plan:
            r.skip(name, chain.reason or "the RPC is not usable (see alchemy)")
        return
    reader = chain.reader

    async def contracts() -> tuple[Status, str, str]:
        roles = dict(env.contracts)
        absent = [role for role, address in roles.items() if address is None]
        present = {role: address for role, address in roles.items() if address is not None}
        codes = await asyncio.gather(*(reader.has_code(a) for a in present.values()))
        no_code = [role for role, has in zip(present, codes) if not has]
        if no_code:
            return Status.FAIL, f"no contract code at {', '.join(no_code)} on chain {env.chain_id}", \
                f"Check environments.{environment}.contracts in configs/venues/{venue}.yaml."
        needed = _needed_roles(venue, mode)
        blocking = [role for role in absent if role in needed]
        if blocking:
            return Status.FAIL, f"no {environment} deployment configured for {', '.join(blocking)}", \
                f"This mode cannot run on {environment} with {venue}; use the other environment or another venue."
        note = f" ({', '.join(absent)} not deployed on {environment}, unused by this mode)" if absent else ""
        return Status.OK, f"{len(present)} contract(s) deployed{note}", ""

    await r.run("contracts", contracts)
    if venue == "aave_v3":
        await _aave_checks(r, reader, chain.wallet, config, env, mode)
        await _aave_write_checks(r, chain, config, env, mode)
    elif getattr(config, "lst_symbol", None):
        await _lst_checks(r, reader, chain.wallet, config)


def _needed_roles(venue: str, mode: Any) -> set[str]:
    """Contract roles this mode uses at a venue (absent ones block going live)."""
    if venue == "aave_v3":
        roles = {"pool"}
        asset = mode.lending.asset.lower() if mode.lending.enabled else None
        if asset:
            roles.add(f"a_{asset}")
        if mode.leverage.enabled and mode.staking.enabled:
            roles |= {f"a_{mode.staking.lst_type.lower()}", "variable_debt_weth"}
        return roles
    if venue in ("lido", "etherfi"):
        return {"wsteth"} if venue == "lido" else {"weeth"}
    if venue in ("morpho", "instadapp"):
        return {"morpho_blue"} if venue == "morpho" else {"flash_aggregator"}
    return {"swap_router_02"}


async def _aave_checks(r: _Runner, reader: ChainReader, wallet: str | None, config: Any, env: Any, mode: Any) -> None:
    pool = env.contracts.get("pool")

    async def account() -> tuple[Status, str, str]:
        if not wallet:
            raise diagnostics.NotAvailable("no wallet_address stored (see alchemy)")
        data = await reader.aave_account(wallet, pool)
        emode_text = f"e-mode {data.emode_category}"
        if data.total_debt_base == 0 and data.total_collateral_base == 0:
            return Status.OK, f"no position yet; {emode_text}", ""
        hf = data.health_factor
        text = f"collateral {data.total_collateral:.2f}, debt {data.total_debt:.2f} (USD), " \
               f"HF {'∞' if hf is None else f'{hf:.3f}'}, {emode_text}"
        # the higher of the risk limit and the deleverage trigger: below it the strategy would act at once
        floor = max(Decimal(str(mode.risk.hf_floor)), Decimal(str(mode.rebalancing.hf_floor)))
        if hf is not None and hf < floor:
            return Status.WARN, f"{text}: below the mode's HF floor {floor}", "Deleverage or add collateral."
        if mode.leverage.enabled and mode.leverage.emode and data.total_debt_base > 0 \
                and data.emode_category != config.emode.category_id:
            return Status.WARN, f"{text}; the mode expects e-mode {config.emode.category_id}", \
                "Enable the ETH-correlated e-mode before looping (setUserEMode)."
        return Status.OK, text, ""

    await r.run("account", account)

    async def tokens() -> tuple[Status, str, str]:
        if not wallet:
            raise diagnostics.NotAvailable("no wallet_address stored (see alchemy)")
        wanted = {role: addr for role, addr in env.contracts.items()
                  if addr is not None and (role.startswith("a_") or role.startswith("variable_debt_"))}
        balances = await asyncio.gather(*(reader.token_balance(wallet, role, addr) for role, addr in wanted.items()))
        held = [f"{b.symbol} {b.amount:f}" for b in balances if b.raw]
        supply = mode.lending.asset if mode.lending.enabled else (
            mode.staking.lst_type if mode.leverage.enabled else None)
        allowance_text = ""
        if supply and env.tokens.get(supply) and pool:
            allowance = await reader.allowance(f"aave_v3.{supply}", wallet, pool)
            allowance_text = f"; {supply} allowance to the pool {allowance.amount:f}" + \
                             (" (an approval is needed before supplying)" if allowance.raw == 0 else "")
        return Status.OK, (f"holds {', '.join(held)}" if held else "no aTokens or debt tokens") + allowance_text, ""

    await r.run("tokens", tokens)


def _write_checks(mode: Any) -> list[str]:
    """Write readiness of a leveraged mode: e-mode, and for the atomic loop its executor and allowances."""
    if not (mode.leverage.enabled and mode.staking.enabled):
        return []
    names = ["emode"] if mode.leverage.emode else []
    if mode.leverage.loop_method == "atomic":
        names += ["executor", "allowances"]
    return names


async def _aave_write_checks(r: _Runner, chain: _ChainState, config: Any, env: Any, mode: Any) -> None:
    names = _write_checks(mode)
    if not names:
        return
    reader, wallet = chain.reader, chain.wallet
    assert reader is not None
    if not wallet:
        for name in names:
            r.skip(name, "no wallet_address stored (see alchemy)")
        return

    async def emode() -> tuple[Status, str, str]:
        account = await reader.aave_account(wallet, env.contracts.get("pool"))
        verdict = readiness.emode(account, config.emode.category_id, config.emode.label)
        return Status(verdict.level), verdict.message, verdict.hint

    if "emode" in names:
        await r.run("emode", emode)
    if "executor" not in names:
        return

    def other(venue: str, kind: str, name: str) -> str | None:
        venue_config = chain.configs.get(venue)
        if venue_config is None:
            return None
        return getattr(_onchain_env(venue_config, r.environment), kind).get(name)

    expectation = readiness.ExecutorExpectation(
        wallet=wallet, pool=env.contracts["pool"], morpho=other("morpho", "contracts", "morpho_blue"),
        weth=env.tokens["WETH"], swap_router=other("uniswap", "contracts", "swap_router_02") or "")
    executor_ok = False

    async def executor() -> tuple[Status, str, str]:
        nonlocal executor_ok
        verdict = await readiness.executor(reader, chain.executor, expectation, r.environment)
        executor_ok = verdict.level == "OK"
        return Status(verdict.level), verdict.message, verdict.hint

    await r.run("executor", executor)
    if not executor_ok:
        r.skip("allowances", "needs the wallet's executor (see executor)")
        return

    async def allowances() -> tuple[Status, str, str]:
        lst = mode.staking.lst_type
        facts = await readiness.allowance_facts(reader, wallet, chain.executor or "", env.contracts, env.tokens,
                                                env.contracts["oracle"], lst)
        flash_venue = mode.leverage.flash_venue
        fee = float(chain.configs[flash_venue].flash_loan_fee_rate) if flash_venue in chain.configs else 0.0
        verdict = readiness.allowances(facts, float(mode.leverage.target_ltv), fee)
        return Status(verdict.level), verdict.message, verdict.hint

    await r.run("allowances", allowances)


def config_token(config: Any, environment: str, symbol: str) -> str:
    address = getattr(config.environments, environment).tokens.get(symbol)
    if address is None:
        raise VenueError(config.name, VenueErrorKind.CONFIG,
                         f"no {environment} address for {symbol} in configs/venues/{config.name}.yaml")
    return address


async def _lst_checks(r: _Runner, reader: ChainReader, wallet: str | None, config: Any) -> None:
    lst = config.lst_symbol

    async def rate() -> tuple[Status, str, str]:
        value = await reader.lst_rate(lst, config_token(config, r.environment, lst))
        if not Decimal(1) <= value < Decimal(2):
            return Status.WARN, f"1 {lst} = {value:f} ETH looks wrong (expected 1-2)", \
                f"Check the {lst} address in configs/venues/{r.venue}.yaml."
        return Status.OK, f"1 {lst} = {value:.6f} ETH", ""

    await r.run("rate", rate)

    async def tokens() -> tuple[Status, str, str]:
        if not wallet:
            raise diagnostics.NotAvailable("no wallet_address stored (see alchemy)")
        balance = await reader.token_balance(wallet, lst, config_token(config, r.environment, lst))
        return Status.OK, f"wallet holds {balance.amount:f} {lst}", ""

    await r.run("tokens", tokens)


# ------------------------------------------------------------------------------------------ orchestration
@dataclass(frozen=True)
class CheckPlan:
    """What to check: the mode's venues and their configs, resolved once."""

    mode_name: str
    environment: str
    mode: Any
    venues: list[str]
    venue_configs: Mapping[str, Any]


def plan_for_mode(mode_name: str, environment: str, *, venue_configs: Mapping[str, Any] | None = None,
                  override_file: Any = None) -> CheckPlan:
    """Resolve the mode, with an override file (``venue_overrides:`` of a local chain) if given
    (raises engine.config.ConfigError on a bad config)."""
    from engine.config import load_config, load_venue_config

    if environment not in ("testnet", "production"):
        raise ValueError(f"unknown environment {environment!r}; allowed: testnet, production")
    resolved = load_config(mode_name, override_file=override_file)
    venues = resolved.required_venues()
    configs: dict[str, Any] = dict(resolved.venues)
    for name in venues:
        if name not in configs:
            configs[name] = load_venue_config(name)
    if venue_configs:
        configs.update(venue_configs)
    return CheckPlan(mode_name, environment, resolved.mode, venues, configs)


async def load_plan(mode_name: str, environment: str, *, venue_configs: Mapping[str, Any] | None = None
                    ) -> CheckPlan:
    """plan_for_mode off the event loop (reading and validating the YAML files takes ~0.2 s)."""
    return await asyncio.to_thread(plan_for_mode, mode_name, environment, venue_configs=venue_configs)


async def iter_checks(plan: CheckPlan, *, store: CredentialStore | None = None,
                      settings: CheckSettings = CheckSettings(),
                      url_overrides: Mapping[str, str] | None = None) -> AsyncIterator[CheckResult]:
    """Yield results as they finish; closing the generator cancels what is still running."""
    queue: asyncio.Queue[CheckResult | None] = asyncio.Queue()
    emit = queue.put_nowait
    overrides = dict(url_overrides or {})
    configs = plan.venue_configs
    cex = [v for v in plan.venues if getattr(configs[v], "kind", None) == "cex"]
    chain = [v for v in plan.venues if getattr(configs[v], "kind", None) in ("onchain", "rpc")]
    underlying = plan.mode.hedge.underlying

    async def guarded(venue: str, coro: Awaitable[None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except (CexConfigError, OnchainConfigError) as exc:
            emit(CheckResult(venue, "config", Status.FAIL, redact(str(exc)),
                             f"Fix configs/venues/{venue}.yaml (python main.py can validate it)."))
        except Exception as exc:  # noqa: BLE001 - one venue's bug must not hide the others' results
            emit(CheckResult(venue, "internal", Status.FAIL, redact(f"check crashed: {type(exc).__name__}: {exc}"),
                             "This is a bug in the checks; please report it."))

    async def chain_task() -> None:
        rpc_config = configs.get(RPC_VENUE)
        if rpc_config is None:
            for v in chain:
                emit(CheckResult(v, "rpc", Status.FAIL, f"the mode has no {RPC_VENUE} venue to read the chain"))
            return
        gas_units = int(rpc_config.gas_units.ATOMIC_ENTRY)
        onchain_configs = {v: configs[v] for v in chain if v != RPC_VENUE}
        state = await check_rpc(rpc_config, plan.environment, emit, store=store, settings=settings,
                                venue_configs=onchain_configs, gas_units=gas_units)
        try:
            await asyncio.gather(*(guarded(v, check_onchain(v, onchain_configs[v], plan.environment, state, plan.mode,
                                                            emit, settings=settings))
                                   for v in onchain_configs))
        finally:
            if state.reader is not None:
                await state.reader.close()

    tasks = [asyncio.create_task(guarded(v, check_cex(v, configs[v], plan.environment, underlying, emit,
                                                      store=store, settings=settings,
                                                      url_override=overrides.get(v))), name=f"check:{v}")
             for v in cex]
    if chain:
        tasks.append(asyncio.create_task(guarded(RPC_VENUE, chain_task()), name="check:chain"))
    # return_exceptions: when the consumer stops early the tasks are cancelled below, and a plain
    # gather would then hold a CancelledError nobody retrieves (asyncio logs it at collection).
    done = asyncio.gather(*tasks, return_exceptions=True)
    done.add_done_callback(lambda _: queue.put_nowait(None))
    try:
        while True:
            item = await queue.get()
            if item is None:
                break
            yield item
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_checks(plan: CheckPlan, *, store: CredentialStore | None = None, settings: CheckSettings = CheckSettings(),
                     url_overrides: Mapping[str, str] | None = None,
                     on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """All results (venue order of the plan, then completion order), calling ``on_result`` per result."""
    results = []
    async for result in iter_checks(plan, store=store, settings=settings, url_overrides=url_overrides):
        results.append(result)
        if on_result is not None:
            on_result(result)
    order = {v: i for i, v in enumerate(plan.venues)}
    return sorted(results, key=lambda x: order.get(x.venue, len(order)))


def exit_code(results: Sequence[CheckResult]) -> int:
    """0 only when nothing FAILed."""
    return 1 if any(r.status is Status.FAIL for r in results) else 0
