"""A live session in a process of its own, for the crash tests (the parent kills it with SIGKILL).

    python -m tests.integration.chain.live_child SPEC.json

SPEC: {"overrides": venue overrides of the local stack, "rpc_url", "wallet_key", "wallet", "executor",
"journal_dir", "cache_dir", "mode", "capital", "tick_seconds"}. The session runs until killed; it
prints one line per tick ("tick N entered=... steps=...") so the parent knows where it is.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from bootstrap import DATA_DIR, live_trading_service
from engine.config import load_venue_configs
from engine.services.live import LiveStartRequest
from tests.integration.memory_keyring import MemoryKeyring
from venues.credentials import CredentialStore
from venues.onchain.devstack.overrides import PROTOCOL_VENUES


async def main(spec: dict) -> None:
    store = CredentialStore(MemoryKeyring())
    for field in ("rpc_url", "private_key", "wallet_address", "executor_address"):
        store.set("testnet", "alchemy", field, spec[field])
    configs = load_venue_configs((*PROTOCOL_VENUES, "instadapp", "alchemy"), overrides=spec["overrides"])
    service = live_trading_service(store=store, journal_dir=Path(spec["journal_dir"]), data_dir=DATA_DIR,
                                   cache_dir=Path(spec["cache_dir"]), timeout_s=5.0, onchain_configs=configs)
    rid = await service.start(LiveStartRequest(
        mode=spec["mode"], execution="live", capital=spec["capital"], tick_seconds=spec["tick_seconds"],
        data_timeout_seconds=5.0, dead_man_seconds=None, acknowledge_recovery=spec.get("acknowledge", False)))
    s = service.session(rid)
    seen = -1
    while True:
        await asyncio.sleep(0.02)
        if s.ticks != seen:
            seen = s.ticks
            steps = len(s.router.progress.steps) if s.router else 0
            print(f"tick {s.ticks} entered={s.cycle.entered} steps={steps} state={s.state.state.value}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
