"""Provenance of merged configuration documents.

A mode is assembled from the mode file, an optional override file and command-line overrides. When
a value is wrong the message must name the place the operator has to edit, so every key path of
the merged document remembers which source set it (and the source remembers line numbers and how
the key is spelled there, e.g. `venue_overrides.binance.fees.perp_taker_bps`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigIssue, Severity
from .yaml_io import KeyPath, Position

#: File name shown for values given as `key=value` on the command line.
CLI_SOURCE = "<command line>"


@dataclass(frozen=True)
class Source:
    """One origin of configuration values."""

    file: str
    positions: dict[KeyPath, Position] = field(default_factory=dict, compare=False, hash=False)
    #: How the document's key paths are spelled in this file (overrides nest them under a namespace).
    prefix: KeyPath = ()


@dataclass(frozen=True)
class Location:
    file: str
    key: str
    line: int | None
    column: int | None


class SourceMap:
    """Maps key paths of one merged document to the source that set them."""

    def __init__(self, base: Source):
        self.base = base
        self._owners: dict[KeyPath, Source] = {}

    def assign(self, path: KeyPath, source: Source) -> None:
        """Record that `source` set the value (and whole subtree) at `path`."""
        for owned in [p for p in self._owners if p[: len(path)] == path]:
            del self._owners[owned]
        self._owners[path] = source

    def locate(self, path: KeyPath) -> Location:
        source = self.base
        for cut in range(len(path), 0, -1):
            owner = self._owners.get(path[:cut])
            if owner is not None:
                source = owner
                break
        full = (*source.prefix, *path)
        line = column = None
        for cut in range(len(full), 0, -1):
            position = source.positions.get(full[:cut])
            if position is not None:
                line, column = position
                break
        return Location(source.file, ".".join(full) if full else "(document)", line, column)

    def issue(self, path: KeyPath, message: str, severity: Severity = "error") -> ConfigIssue:
        where = self.locate(path)
        blamed = self._override_below(path) if where.file == self.base.file else None
        if blamed is not None:
            # The file owns the section but an override changed part of it (--set hedge.allocation.
            # binance=0.9 makes the weights sum to 1.5): the override is what the operator must look at.
            changed = self.locate(blamed)
            what = f"--set {changed.key}" if changed.file == CLI_SOURCE else \
                f"{changed.key}" + (f" at line {changed.line}" if changed.line else "")
            rest = f"; the rest is from {where.file}" + (f" line {where.line}" if where.line else "")
            return ConfigIssue(changed.file, where.key, f"{message} (after {what}{rest})",
                               severity, changed.line, changed.column)
        return ConfigIssue(where.file, where.key, message, severity, where.line, where.column)

    def _override_below(self, path: KeyPath) -> KeyPath | None:
        """The key under `path` most recently set by an override, if any."""
        below = [p for p, owner in self._owners.items() if p[: len(path)] == path and p != path
                 and owner.file != self.base.file]
        return below[-1] if below else None


def deep_merge(base: Any, override: Any, source: Source, sources: SourceMap, path: KeyPath = ()) -> Any:
    """Return `base` with `override` merged in (mappings merge key by key, anything else replaces).

    `base` is not modified. Every key that `override` sets is attributed to `source`.
    """
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            child = (*path, str(key))
            if key in merged and isinstance(merged[key], dict) and isinstance(value, dict):
                merged[key] = deep_merge(merged[key], value, source, sources, child)
            else:
                merged[key] = copy.deepcopy(value)
                sources.assign(child, source)
        return merged
    sources.assign(path, source)
    return copy.deepcopy(override)
