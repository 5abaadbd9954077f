"""On-disk cache of aligned frames (npz) keyed by what produced them.

The key hashes the normalized requirements, the requested window, every input file's content
(BLAKE2b of its bytes), the data code's source digest and CACHE_VERSION, so editing a data file or
the alignment code can never serve stale data. One uncompressed .npz holds the grid, a 2-D float64
block of all columns and a JSON metadata string; loading it is a few milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.data.aligned import AlignedMarketData
from engine.data.provenance import SeriesProvenance
from engine.data.requirements import DataRequirements
from engine.domain.rewards import RewardPayout

# Bump when the cache layout changes. Code changes need no bump: the key also hashes the source of
# the modules that clean and align the data (CODE_DIGEST), so editing a rule can never serve stale data.
CACHE_VERSION = "4"
CODE_DIGEST = hashlib.blake2b(
    b"".join(p.read_bytes() for p in sorted(Path(__file__).parent.glob("*.py"))), digest_size=16
).hexdigest()

log = logging.getLogger(__name__)


class FileDigests:
    """Content digests of data files, memoized per (path, size, mtime) within a process.

    BLAKE2b (fast) keys the cache; SHA-256 is what a run's provenance records, because it is the
    digest anyone can recompute with `sha256sum`.
    """

    def __init__(self, algorithm: str = "blake2b") -> None:
        if algorithm not in ("blake2b", "sha256"):
            raise ValueError(f"unknown digest {algorithm!r} (allowed: blake2b, sha256)")
        self.algorithm = algorithm
        self._memo: dict[tuple[str, int, int], str] = {}

    def digest(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self._memo:
            h = hashlib.blake2b(digest_size=16) if self.algorithm == "blake2b" else hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            self._memo[key] = h.hexdigest()
        return self._memo[key]


def cache_key(
    kind: str, req: DataRequirements, start: str | None, end: str | None, files: dict[str, str]
) -> str:
    """Stable hex key for (kind, requirements, window, file digests, CACHE_VERSION)."""
    payload = {
        "version": CACHE_VERSION,
        "code": CODE_DIGEST,
        "kind": kind,
        "req": {
            "spot": list(req.spot),
            "perps": [list(p) for p in req.perps],
            "aave_reserves": list(req.aave_reserves),
            "lsts": list(req.lsts),
            "etherfi_rewards": list(req.etherfi_rewards),
        },
        "start": start,
        "end": end,
        "files": dict(sorted(files.items())),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_aligned(path: Path, data: AlignedMarketData) -> None:
    """Write the frame; failures are logged, not raised (the cache is an optimisation)."""
    names = list(data.columns)
    block = np.vstack([data.columns[n] for n in names]) if names else np.empty((0, len(data)))
    meta = {
        "version": CACHE_VERSION,
        "columns": names,
        "fallbacks": data.fallbacks,
        "notes": data.notes,
        "gas_units": data.gas_units,
        "aave_risk_params": data.aave_risk_params,
        "reward_payouts": [p.as_dict() for p in data.reward_payouts],
        "reward_benchmark": [list(row) for row in data.reward_benchmark],
        "provenance": data.provenance_summary(),
    }
    index_ns = data.index.as_unit("ns").asi8
    try:
        _atomic_write(
            path, lambda fh: np.savez(fh, index_ns=index_ns, values=block, meta=np.array(json.dumps(meta)))
        )
    except OSError as exc:
        log.warning("could not write aligned-data cache %s: %s", path, exc)


def load_aligned(path: Path) -> AlignedMarketData | None:
    """The cached frame, or None if absent or unreadable (a corrupt file is ignored and rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta: dict[str, Any] = json.loads(str(npz["meta"]))
            index_ns = npz["index_ns"]
            block = npz["values"]
        if meta.get("version") != CACHE_VERSION or block.shape != (len(meta["columns"]), index_ns.size):
            return None
        index = pd.DatetimeIndex(index_ns.astype("datetime64[ns]")).tz_localize("UTC")
        return AlignedMarketData(
            index=index,
            columns={name: block[i] for i, name in enumerate(meta["columns"])},
            fallbacks=list(meta["fallbacks"]),
            notes=list(meta["notes"]),
            gas_units={k: int(v) for k, v in meta["gas_units"].items()},
            aave_risk_params=meta["aave_risk_params"],
            reward_payouts=[RewardPayout.from_dict(doc) for doc in meta["reward_payouts"]],
            reward_benchmark=[(int(d), float(v)) for d, v in meta["reward_benchmark"]],
            provenance={c: SeriesProvenance.from_dict(c, d) for c, d in meta["provenance"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable aligned-data cache %s: %s", path, exc)
        return None


def save_window(path: Path, start_s: int, end_s: int) -> None:
    try:
        _atomic_write(
            path,
            lambda fh: fh.write(
                json.dumps({"version": CACHE_VERSION, "start_s": start_s, "end_s": end_s}).encode()
            ),
        )
    except OSError as exc:
        log.warning("could not write window cache %s: %s", path, exc)


def load_window(path: Path) -> tuple[int, int] | None:
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        if doc.get("version") != CACHE_VERSION:
            return None
        return int(doc["start_s"]), int(doc["end_s"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable window cache %s: %s", path, exc)
        return None
