"""check-venues verdicts for the CEX venues against the emulator, healthy and with each fault."""
from __future__ import annotations

import socket
import time

import pytest

from venues.checks import CheckResult, CheckSettings, Status, exit_code, iter_checks, plan_for_mode, run_checks

CEX = ("binance", "bybit", "okx")
FAST = dict(rate_limit_ms=1)


def verdicts(results: list[CheckResult], venue: str) -> dict[str, Status]:
    return {r.check: r.status for r in results if r.venue == venue}


def by(results: list[CheckResult], venue: str, check: str) -> CheckResult:
    return next(r for r in results if r.venue == venue and r.check == check)


async def run(emulator, store, *, env="production", mode="eth_basis", overrides=None, **settings) -> list[CheckResult]:
    plan = plan_for_mode(mode, env)
    urls = overrides if overrides is not None else {v: emulator.base_url(v) for v in CEX}
    return await run_checks(plan, store=store, settings=CheckSettings(**{"timeout_s": 2.0, **FAST, **settings}),
                            url_overrides=urls)


async def test_healthy_venues_are_all_ok(emulator, cex_store):
    results = await run(emulator, cex_store)
    assert {(r.venue, r.check, r.status) for r in results if r.status is not Status.OK} == set()
    for venue in CEX:
        assert set(verdicts(results, venue)) == {"credentials", "reachable", "clock", "markets", "funding", "account",
                                                 "permissions", "account_mode"}
        assert by(results, venue, "reachable").latency_ms is not None
    assert "ETH/USDT:USDT" in by(results, "okx", "markets").message
    assert exit_code(results) == 0


async def test_testnet_uses_the_sandbox_and_says_what_cannot_be_checked(emulator, cex_store):
    results = await run(emulator, cex_store, env="testnet")
    # Binance's testnet has no key-restrictions endpoint: reported, not failed.
    assert by(results, "binance", "permissions").status is Status.SKIP
    assert exit_code(results) == 0
    okx_requests = emulator.venues["okx"].requests
    assert okx_requests, "the OKX demo environment went to the emulator"


@pytest.mark.parametrize("latency_s, warn_ms, expected", [(0.25, 100.0, Status.WARN), (0.25, 2000.0, Status.OK)])
async def test_latency_is_judged_by_the_threshold(emulator, cex_store, latency_s, warn_ms, expected):
    emulator.set_faults("bybit", latency_s=latency_s)
    results = await run(emulator, cex_store, latency_warn_ms=warn_ms)
    reach = by(results, "bybit", "reachable")
    assert reach.status is expected and reach.latency_ms >= latency_s * 1000
    assert by(results, "binance", "reachable").status is Status.OK


async def test_server_errors_fail_the_venue_and_skip_its_other_checks(emulator, cex_store):
    emulator.set_faults("okx", http_status=503)
    results = await run(emulator, cex_store)
    assert by(results, "okx", "reachable").status is Status.FAIL
    assert "unavailable" in by(results, "okx", "reachable").message
    assert {c: s for c, s in verdicts(results, "okx").items() if c not in ("credentials", "reachable")} == \
        {c: Status.SKIP for c in ("clock", "markets", "funding", "account", "permissions", "account_mode")}
    assert verdicts(results, "binance")["account"] is Status.OK
    assert exit_code(results) == 1


async def test_a_hung_venue_fails_at_its_timeout_without_delaying_the_others(emulator, cex_store):
    emulator.set_faults("binance", hang=True)
    timeout_s = 1.0
    finished_at: dict[str, float] = {}
    t0 = time.perf_counter()
    plan = plan_for_mode("eth_basis", "production")
    results = []
    async for r in iter_checks(plan, store=cex_store, settings=CheckSettings(timeout_s=timeout_s, **FAST),
                               url_overrides={v: emulator.base_url(v) for v in CEX}):
        results.append(r)
        finished_at[r.venue] = time.perf_counter() - t0
    total = time.perf_counter() - t0
    reach = by(results, "binance", "reachable")
    assert reach.status is Status.FAIL and "timeout" in reach.message
    assert timeout_s <= reach.latency_ms / 1000 < timeout_s + 0.5
    assert total < timeout_s + 1.5
    # the healthy venues' results streamed in before the hung one gave up
    assert finished_at["bybit"] < timeout_s and finished_at["okx"] < timeout_s


async def test_bad_auth_fails_with_a_hint_about_the_keys(emulator, cex_store):
    emulator.set_faults("bybit", bad_auth=True)
    results = await run(emulator, cex_store)
    account = by(results, "bybit", "account")
    assert account.status is Status.FAIL and account.message.startswith("auth:")
    assert "api_key" in account.hint and "credentials set" in account.hint
    assert verdicts(results, "bybit")["reachable"] is Status.OK          # public endpoints still fine
    assert verdicts(results, "bybit")["permissions"] is Status.SKIP


@pytest.mark.parametrize("skew_ms, expected", [(700, Status.WARN), (-3000, Status.FAIL), (100, Status.OK)])
async def test_clock_skew(emulator, cex_store, skew_ms, expected):
    emulator.set_faults("binance", clock_skew_ms=skew_ms)
    results = await run(emulator, cex_store)
    clock = by(results, "binance", "clock")
    assert clock.status is expected, clock.message
    if expected is not Status.OK:
        assert "clock" in clock.hint.lower()


async def test_large_skew_also_breaks_signed_requests_and_says_it_is_the_clock(emulator, cex_store):
    emulator.set_faults("okx", clock_skew_ms=-45_000)      # OKX accepts +-30 s
    results = await run(emulator, cex_store)
    account = by(results, "okx", "account")
    assert account.status is Status.FAIL and account.message.startswith("clock:")
    assert "clock" in account.hint.lower()


async def test_no_keys_runs_public_checks_and_fails_credentials(emulator, memory_store):
    t0 = time.perf_counter()
    results = await run(emulator, memory_store)
    assert time.perf_counter() - t0 < 5
    for venue in CEX:
        v = verdicts(results, venue)
        assert v["credentials"] is Status.FAIL
        assert v["reachable"] is Status.OK and v["markets"] is Status.OK
        assert v["account"] is Status.SKIP and "credentials" in by(results, venue, "account").message
    assert "passphrase" in by(results, "okx", "credentials").message
    assert exit_code(results) == 1


async def test_no_network_finishes_promptly_and_says_so_per_venue(cex_store):
    with socket.socket() as s:                      # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    t0 = time.perf_counter()
    results = await run(None, cex_store, overrides={v: dead for v in CEX}, timeout_s=5.0)
    assert time.perf_counter() - t0 < 3
    for venue in CEX:
        reach = by(results, venue, "reachable")
        assert reach.status is Status.FAIL and reach.message.startswith("network:")
        assert "network" in reach.hint.lower()


async def test_key_with_withdrawal_rights_warns_and_hedge_mode_warns(emulator, cex_store):
    emulator.venues["okx"].can_withdraw = True
    emulator.venues["binance"].hedge_mode = True
    emulator.venues["bybit"].read_only = True
    results = await run(emulator, cex_store)
    assert by(results, "okx", "permissions").status is Status.WARN
    assert "withdraw" in by(results, "okx", "permissions").message
    assert by(results, "binance", "account_mode").status is Status.WARN
    assert by(results, "bybit", "permissions").status is Status.FAIL


async def test_funding_interval_differing_from_the_venue_file_warns(emulator, cex_store):
    emulator.venues["binance"].funding_interval_h = 4
    emulator.venues["okx"].funding_interval_h = 4
    results = await run(emulator, cex_store)
    assert by(results, "binance", "funding").status is Status.WARN
    assert by(results, "okx", "funding").status is Status.WARN
    assert "4 h" in by(results, "okx", "funding").message


async def test_btc_mode_checks_btc_markets(emulator, cex_store):
    results = await run(emulator, cex_store, mode="btc_basis")
    assert "BTC/USDT:USDT" in by(results, "binance", "markets").message
    assert exit_code(results) == 0


@pytest.mark.parametrize("body", ["truncated", "html"])
async def test_garbled_answers_fail_as_malformed_not_as_a_bug(emulator, cex_store, body):
    emulator.set_faults("okx", body=body)
    results = await run(emulator, cex_store)
    okx = [r for r in results if r.venue == "okx" and r.status is Status.FAIL]
    assert okx and all(r.message.startswith("malformed answer from okx: ") for r in okx), okx
    assert not any("bug" in (r.hint + r.message) for r in results)
    assert "proxy" in okx[0].hint
    assert exit_code(results) == 1


async def test_a_malformed_balance_alone_fails_the_account_check(emulator, cex_store):
    emulator.add_fault("okx", "api/v5/account/balance", "GET", body="truncated")
    results = await run(emulator, cex_store)
    account = by(results, "okx", "account")
    assert account.status is Status.FAIL
    assert account.message.startswith("malformed answer from okx: answered with text that is not valid JSON")
    assert by(results, "okx", "markets").status is Status.OK
    assert exit_code(results) == 1                                      # not "ready"
