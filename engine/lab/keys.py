"""Content keys of sweep trials: data + config + scenario + code.

A trial's result depends on exactly these four things, so a key built from their digests lets a
rerun (or an interrupted sweep) take every finished trial from the store and compute nothing twice,
and guarantees that a changed data file, config file, scenario or line of engine code is recomputed.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

ENGINE_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = ENGINE_DIR.parent
#: Source that decides a backtest's numbers: the engine and the simulated venues it is wired to.
CODE_DIRS = (ENGINE_DIR, REPO_DIR / "venues" / "simulated")


def digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@functools.cache
def code_digest() -> str:
    """Digest of every .py file of the engine and the simulated venues (content, not git state, so
    uncommitted edits count too)."""
    h = hashlib.sha256()
    for folder in CODE_DIRS:
        for path in sorted(folder.rglob("*.py")):
            h.update(str(path.relative_to(REPO_DIR)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def config_digest(resolved: Any, capital: float | None) -> str:
    """Digest of the effective configuration (mode, share class and every venue file it uses, after
    overrides): two override sets that resolve to the same config share their trials."""
    return digest({
        "mode": resolved.mode.model_dump(mode="json"),
        "share_class": resolved.share_class.model_dump(mode="json"),
        "venues": {name: v.model_dump(mode="json") for name, v in resolved.venues.items()},
        "capital": capital,
    })[:16]


def scenario_digest(scenario: Any, at: str | None) -> str:
    if scenario is None:
        return "none"
    return digest({"shocks": scenario.digest_payload(), "at": at})[:16]


def trial_key(data_key: str, config_key: str, scenario_key: str, code_key: str) -> str:
    return digest([data_key, config_key, scenario_key, code_key])[:24]
