"""Emergency-stop benchmark (run by hand, not part of pass/fail):

    python tests/perf/bench_estop.py [--repeat 20] [--orders 50] [--hung-timeout 2]

A live eth_basis session runs against the loopback exchange emulator (binance, bybit, okx) with
ccxt's real per-venue request pacing and its tick loop going. Each round places ``--orders`` resting
orders spread over the three venues, presses the emergency stop the way the app and the CLI do (one
call: ``service.emergency_stop(reason)``), checks that the venues hold no open order, and resets.

Reported (median / max over the rounds):
- press -> HALTED: until the trading state changed (from the state machine's own timestamp);
- press -> the call returned: the whole synchronous body (state listeners: journal, view; the
  handle's own halt latency is this figure for one session);
- press -> all cancels acknowledged: until every venue confirmed (cancel-all answered and the
  read-back found nothing open);
- with OKX hung: the healthy venues' time to acknowledged, and when the hung venue was reported
  (TIMEOUT at ``--hung-timeout``).
Budget (docs/ARCHITECTURE.md): HALTED < 50 ms; all cancels < 500 ms; a hung venue reported at its timeout
without delaying the others.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
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


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--orders", type=int, default=50)
    ap.add_argument("--hung-timeout", type=float, default=2.0, help="per-venue cancel timeout in the hung runs")
    args = ap.parse_args()
    emulator = ExchangeEmulator()
    await emulator.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-estop-"))
    # ccxt's own pacing (rate_limit_ms None); adapter timeout above the e-stop's so the e-stop decides.
    service = make_service(emulator, store(), tmp / "journal", tmp / "cache", rate_limit_ms=None, timeout_s=10.0)
    try:
        rid = await service.start(request(tick_seconds=1.0, cancel_timeout_seconds=args.hung_timeout,
                                          data_timeout_seconds=5.0))
        session = service.session(rid)
        await wait_until(lambda: session.status().trades == 4, timeout=30, what="the live entry")
        ticks = session.ticks      # the last entry order settles (an order in flight at a press is waited for)
        await wait_until(lambda: session.ticks >= ticks + 2, timeout=30, what="the entry to settle")
        print(f"live eth_basis session on the loopback emulator, {args.orders} open orders per press, "
              f"{args.repeat} presses per scenario")

        halted, returned, done = [], [], []
        for _ in range(args.repeat):
            service.reset(rid)
            place_resting(emulator, args.orders)
            h, r, report = await press(service, session)
            returned.append(r)
            assert report.all_cancelled, [p.describe() for p in report.venues.values()]
            assert sum(open_orders(emulator).values()) == 0 and session.state.state is TradingState.HALTED
            assert sum(p.canceled for p in report.venues.values()) == args.orders
            halted.append(h)
            done.append(report.finished_after_ms)
        print("three healthy venues:")
        print(f"  press -> HALTED                     {stats(halted)}")
        print(f"  press -> the call returned          {stats(returned)}  (incl. journal write + view hook)")
        print(f"  press -> all cancels acknowledged   {stats(done)}")

        emulator.set_faults("okx", hang=True)
        h_halted, healthy, hung_at, statuses = [], [], [], set()
        for _ in range(max(3, args.repeat // 4)):
            service.reset(rid)
            place_resting(emulator, args.orders)
            h, _, report = await press(service, session)
            v = report.venues
            assert v["binance"].status is CancelStatus.DONE and v["bybit"].status is CancelStatus.DONE
            assert open_orders(emulator)["binance"] == 0 and open_orders(emulator)["bybit"] == 0
            h_halted.append(h)
            healthy.append(max(v["binance"].elapsed_ms, v["bybit"].elapsed_ms))
            hung_at.append(v["okx"].elapsed_ms)
            statuses.add(v["okx"].status.value)
            emulator.venues["okx"].orders.clear()          # its cancels never arrived; start the next round clean
        print(f"OKX hung (cancel timeout {args.hung_timeout:g} s):")
        print(f"  press -> HALTED                      {stats(h_halted)}")
        print(f"  press -> healthy venues acknowledged {stats(healthy)}")
        print(f"  press -> hung venue reported         {stats(hung_at)}  (status {', '.join(sorted(statuses))})")
    finally:
        await service.close()
        await emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
