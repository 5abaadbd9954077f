"""A temporary copy of the shipped configs to break on purpose: the config tests edit one key of one
file and check the error names that file and key, without touching configs/."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ConfigError, load_venue_config


def edit(path: Path, old: str, new: str) -> None:
    """Replace the first `old` in `path`; fails loudly when the shipped file no longer says `old`."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def venue_errors(name: str, root: Path) -> list:
    """The ConfigError issues of loading venue file `name` from `root`."""
    with pytest.raises(ConfigError) as info:
        load_venue_config(name, root)
    return info.value.errors
