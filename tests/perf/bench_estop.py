"""Emergency-stop benchmark (run by hand, not part of pass/fail):

    python tests/perf/bench_estop.py [--repeat 20] [--fault-repeat 3] [--orders 50] [--hung-timeout 2]
                                     [--only healthy,503-burst,latency-2s,okx-hung,bybit-html]

A live eth_basis session runs against the loopback exchange emulator (binance, bybit, okx) with
ccxt's real per-venue request pacing and its tick loop going. Each round places ``--orders`` resting
orders spread over the three venues, presses the emergency stop the way the app and the CLI do (one
call: ``service.emergency_stop(reason)``), reads the venues back at the emulator, and resets.

Scenarios (the faults the emulator injects while the stop runs):
- healthy: three healthy venues;
- 503-burst: every venue answers 503 for the first 150 ms after the press (the stop retries);
- latency-2s: every request to every venue takes 2 s (list, cancel and read back within the
  configured per-venue budgets, configs/venues: 8 s);
- okx-hung: OKX never answers (reported TIMEOUT at ``--hung-timeout``; the others unaffected);
- bybit-html: Bybit answers every request 200 with an HTML maintenance page (FAILED, never "done").

Reported per scenario (median / p90 / max over the rounds): press -> HALTED (from the state machine's
own timestamp), press -> the call returned, press -> each venue's final status with that status, and
the orders left open at each venue afterwards (read at the emulator, not from the report).
Budget (docs/ARCHITECTURE.md): HALTED < 50 ms; all cancels < 500 ms healthy; a faulty venue reported
within its budget without delaying the others; zero orders left on every venue that answers.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.services.live import CancelStatus, TradingState  # noqa: E402
from tests.integration.emulator import TEST_KEYS, ExchangeEmulator  # noqa: E402
from tests.integration.live_support import make_service, open_orders, place_resting, request, wait_until  # noqa: E402
from tests.integration.memory_keyring import MemoryKeyring  # noqa: E402
from venues.credentials import CredentialStore  # noqa: E402


def store() -> CredentialStore:
    s = CredentialStore(MemoryKeyring())
    for venue, keys in TEST_KEYS.items():
        s.set("testnet", venue, "api_key", keys.api_key)
        s.set("testnet", venue, "secret", keys.secret)
        if keys.passphrase:
            s.set("testnet", venue, "passphrase", keys.passphrase)
    return s


def stats(values: list[float]) -> str:
    p90 = sorted(values)[max(0, int(round(0.9 * len(values))) - 1)]
    return f"median {statistics.median(values):8.2f} ms   p90 {p90:8.2f} ms   max {max(values):8.2f} ms"


async def press(service, session) -> tuple[float, float, dict]:
    """(press -> HALTED, press -> the call returned (state listeners: journal, view), report)."""
    t0 = time.perf_counter()
    handle = service.emergency_stop("benchmark press")
    returned_ms = (time.perf_counter() - t0) * 1000.0
    halted_ms = (session.state.history[-1].monotonic - t0) * 1000.0
    report = (await handle.done)[session.request_id]
    return halted_ms, returned_ms, report


VENUES = ("binance", "bybit", "okx")


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    arm: Callable[[ExchangeEmulator], None]                 # inject the faults just before the press
    budget_s: float | None = None                           # None: the venues' configured budgets
    faulty: tuple[str, ...] = ()                            # venues expected not to confirm


def burst_503(emulator: ExchangeEmulator) -> None:
    for venue in VENUES:
        emulator.set_faults(venue, http_status=503)
    asyncio.get_running_loop().call_later(0.15, emulator.clear_faults)


def scenarios(hung_timeout: float) -> list[Scenario]:
    return [
        Scenario("healthy", "three healthy venues", lambda e: None),
        Scenario("503-burst", "every venue answers 503 for the first 150 ms", burst_503, budget_s=3.0),
        Scenario("latency-2s", "2 s on every request to every venue (configured budgets)",
                 lambda e: [e.set_faults(v, latency_s=2.0) for v in VENUES]),
        Scenario("okx-hung", f"OKX never answers (budget {hung_timeout:g} s)",
                 lambda e: e.set_faults("okx", hang=True), budget_s=hung_timeout, faulty=("okx",)),
        Scenario("bybit-html", "Bybit answers 200 with an HTML page", lambda e: e.set_faults("bybit", body="html"),
                 budget_s=1.0, faulty=("bybit",)),
    ]


async def run_scenario(service, session, emulator: ExchangeEmulator, sc: Scenario, rounds: int,
                       orders: int, configured: dict[str, float]) -> None:
    session.estop.budgets = dict.fromkeys(VENUES, sc.budget_s) if sc.budget_s is not None else dict(configured)
    halted, returned = [], []
    elapsed: dict[str, list[float]] = {v: [] for v in VENUES}
    statuses: dict[str, set[str]] = {v: set() for v in VENUES}
    left: dict[str, list[int]] = {v: [] for v in VENUES}
    for _ in range(rounds):
        service.reset(session.request_id)
        place_resting(emulator, orders)
        sc.arm(emulator)
        h, r, report = await press(service, session)
        emulator.clear_faults()
        halted.append(h)
        returned.append(r)
        assert session.state.state is TradingState.HALTED
        remaining = open_orders(emulator)
        for venue, progress in report.venues.items():
            elapsed[venue].append(progress.elapsed_ms)
            statuses[venue].add(progress.status.value)
            left[venue].append(remaining[venue])
            if venue not in sc.faulty:
                assert progress.status is CancelStatus.DONE and remaining[venue] == 0, (sc.name, progress.describe())
            else:
                assert progress.status is not CancelStatus.DONE, (sc.name, progress.describe())
        for venue in sc.faulty:                # their cancels never arrived: start the next round clean
            st = emulator.venues[venue]
            for order in st.open_orders():
                st.cancel(order)
        await asyncio.sleep(0.2)               # a hung request's socket is closed; the tick settles
    budget = f"budget {sc.budget_s:g} s" if sc.budget_s is not None else \
        "budgets " + "/".join(f"{configured[v]:g}" for v in VENUES) + " s"
    print(f"{sc.name}: {sc.what} ({rounds} presses, {budget})")
    print(f"  press -> HALTED                 {stats(halted)}")
    print(f"  press -> the call returned      {stats(returned)}")
    for venue in VENUES:
        print(f"  press -> {venue:<7} {'/'.join(sorted(statuses[venue])):<8}{stats(elapsed[venue])}   "
              f"left open: max {max(left[venue])}")


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20, help="presses in the healthy scenario")
    ap.add_argument("--fault-repeat", type=int, default=3, help="presses in each fault scenario")
    ap.add_argument("--orders", type=int, default=50)
    ap.add_argument("--hung-timeout", type=float, default=2.0, help="per-venue cancel budget in the hung runs")
    ap.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    args = ap.parse_args()
    chosen = [sc for sc in scenarios(args.hung_timeout) if not args.only or sc.name in args.only.split(",")]
    if not chosen:
        ap.error(f"--only {args.only!r} names no scenario")
    emulator = ExchangeEmulator()
    await emulator.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-estop-"))
    # ccxt's own pacing (rate_limit_ms None); adapter timeout above the e-stop's so the e-stop decides.
    service = make_service(emulator, store(), tmp / "journal", tmp / "cache", rate_limit_ms=None, timeout_s=10.0)
    try:
        rid = await service.start(request(tick_seconds=1.0, cancel_timeout_seconds=None, data_timeout_seconds=5.0))
        session = service.session(rid)
        configured = dict(session.estop.budgets)
        await wait_until(lambda: session.status().trades == 4, timeout=30, what="the live entry")
        ticks = session.ticks      # the last entry order settles (an order in flight at a press is waited for)
        await wait_until(lambda: session.ticks >= ticks + 2, timeout=30, what="the entry to settle")
        print(f"live eth_basis session on the loopback emulator, {args.orders} open orders over three venues "
              "per press, ccxt's own request pacing")
        for sc in chosen:
            rounds = args.repeat if sc.name == "healthy" else args.fault_repeat
            await run_scenario(service, session, emulator, sc, rounds, args.orders, configured)
    finally:
        await service.close()
        await emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
