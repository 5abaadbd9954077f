"""Provenance of a run: its id, the configuration it really ran, the overrides, the data, the code.

A result folder must say, without the person who produced it, exactly what produced it: the
effective configuration after every override (not the file it started from), which override file
and `--set` keys were applied, the SHA-256 of every data file read, and the code version. The code
version comes from git when the engine runs from a checkout, else from the installed package's
version; finding neither is reported as such and never stops a run.
"""
from __future__ import annotations

import hashlib
import subprocess
import uuid
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

PACKAGE = "basis-workstation"
SOURCE_ROOT = Path(__file__).resolve().parents[2]
GIT_TIMEOUT_S = 5.0


def new_run_id(now: datetime | None = None) -> str:
    """'20250918T230000Z-3f9a1c': sortable by start time, unique by its random suffix."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def _git(*args: str, cwd: Path) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


@lru_cache(maxsize=4)
def code_version(root: Path = SOURCE_ROOT) -> dict[str, Any]:
    """{"source": "git", "describe", "commit", "dirty"} from a checkout; else {"source": "package",
    "version"}; else {"source": "unknown"}. Cached per process: a sweep asks once."""
    commit = _git("rev-parse", "HEAD", cwd=root)
    if commit is not None:
        describe = _git("describe", "--always", "--dirty", "--tags", cwd=root) or commit[:12]
        return {"source": "git", "describe": describe, "commit": commit, "dirty": describe.endswith("-dirty")}
    try:
        return {"source": "package", "version": metadata.version(PACKAGE)}
    except metadata.PackageNotFoundError:
        return {"source": "unknown", "note": f"not a git checkout and {PACKAGE} is not installed"}


def effective_config(resolved: Any) -> dict[str, Any]:
    """The validated mode, share class and venue files as the run used them (after overrides and
    auto-corrections), as plain JSON values. Venue files carry endpoints and contract addresses,
    never secrets (those live in the keyring)."""
    return {
        "mode": resolved.mode.model_dump(mode="json"),
        "share_class": resolved.share_class.model_dump(mode="json"),
        "venues": {name: venue.model_dump(mode="json") for name, venue in resolved.venues.items()},
    }


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def overrides(request: Any) -> dict[str, Any]:
    """What the request changed on top of the shipped files."""
    override_file = request.override_file
    return {
        "config_file": str(override_file) if override_file is not None else None,
        "config_file_sha256": _sha256(Path(override_file)) if override_file is not None else None,
        "set": {key: _jsonable(value) for key, value in dict(request.cli_overrides).items()},
        "capital": request.capital,
        "start": _when(request.start),
        "end": _when(request.end),
    }


def _when(value: Any) -> str | None:
    """A request bound (timestamp or text; naive means UTC) as ISO text."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
