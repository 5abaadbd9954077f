"""Finished trials on disk, one JSON file per trial key, written atomically.

A trial is only ever visible complete (written to a temporary file, then renamed), so a sweep
killed at any moment leaves finished trials readable and no half-written one: the rerun takes
what is there and runs the rest.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

TRIALS_DIR = "trials"
TABLE_PARQUET = "results.parquet"
TABLE_CSV = "results.csv"


class TrialStore:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.trials = self.folder / TRIALS_DIR

    def path(self, key: str) -> Path:
        return self.trials / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.path(key).read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None        # cannot happen through put(); a hand-edited file is recomputed

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.trials.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.trials, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(record, fh, allow_nan=False, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def keys(self) -> set[str]:
        return {p.stem for p in self.trials.glob("*.json")} if self.trials.is_dir() else set()


def write_table(rows: list[dict[str, Any]], folder: Path) -> tuple[Path, Path]:
    """The sweep's table as Parquet and CSV (same columns: grid values first, then every metric)."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    parquet, csv = folder / TABLE_PARQUET, folder / TABLE_CSV
    frame.to_parquet(parquet, index=False)
    frame.to_csv(csv, index=False, float_format="%.10g")
    return parquet, csv
