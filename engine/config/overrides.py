"""Override layers: an override YAML file and `key=value` pairs from the command line.

Both layers use one shape: mode keys at the top level (deep-merged into the mode file), plus two
namespaces, `share_class_overrides:` and `venue_overrides: {<venue>: {...}}`, merged into the share
class and venue files. Command-line keys are dotted paths into that same shape, e.g.
`hedge.allocation.binance=0.5` or `venue_overrides.binance.fees.perp_taker_bps=4`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .common import VENUES
from .errors import DOCUMENT_KEY, ConfigError, ConfigIssue
from .sources import CLI_SOURCE, Source
from .validation_messages import yaml_type_name
from .yaml_io import MAX_DEPTH, YamlDocument, parse_yaml_value

SHARE_CLASS_NAMESPACE = "share_class_overrides"
VENUE_NAMESPACE = "venue_overrides"

#: The longest real key is ~50 characters (venue_overrides.binance.fees.perp_taker_bps).
MAX_KEY_CHARS = 200
_SEGMENT = re.compile(r"^[A-Za-z0-9_]+$")
#: Exponent-only numbers ("5e5", "1e-9") that YAML 1.1 leaves as text; on a command line they mean numbers.
_EXPONENT_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


@dataclass
class OverrideLayer:
    """One override source split by target document."""

    mode: dict[str, Any]
    mode_source: Source
    share_class: dict[str, Any] = field(default_factory=dict)
    share_class_source: Source | None = None
    venues: dict[str, dict[str, Any]] = field(default_factory=dict)
    venue_sources: dict[str, Source] = field(default_factory=dict)


def parse_cli_overrides(pairs: list[str]) -> dict[str, object]:
    """Parse `key=value` strings; values are YAML scalars (`0.5`, `true`, `null`, `atomic`).

    Unlike YAML 1.1, `5e5` and `1e-9` are read as numbers (nobody types them on a command line
    meaning text).

    A pair without `=`, an empty key or value, a malformed value or a key given twice is an error
    (a repeated key is ambiguous, so it is refused rather than resolved silently). Values are parsed
    with the same size, depth and alias limits as a configuration file.
    """
    result: dict[str, object] = {}
    issues: list[ConfigIssue] = []
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep:
            issues.append(ConfigIssue(CLI_SOURCE, _shown(pair), "expected key=value (e.g. leverage.target_ltv=0.8)"))
            continue
        problem = _key_problem(key)
        if problem:
            issues.append(ConfigIssue(CLI_SOURCE, _shown(key or pair), problem))
            continue
        if not text.strip():
            issues.append(ConfigIssue(CLI_SOURCE, key, "missing value (write key=null to set null)"))
            continue
        try:
            value = parse_yaml_value(text, CLI_SOURCE, key)
        except ConfigError as exc:
            issues.extend(exc.errors)
            continue
        if isinstance(value, str) and _EXPONENT_NUMBER.match(value.strip()):
            value = float(value)
        if key in result:
            issues.append(ConfigIssue(CLI_SOURCE, key, "given more than once on the command line"))
            continue
        result[key] = value
    if issues:
        raise ConfigError(issues)
    return result


def expand_dotted(overrides: Mapping[str, object]) -> dict[str, Any]:
    """{"a.b": 1, "a.c": 2} -> {"a": {"b": 1, "c": 2}}; a key that is also a prefix of another is an error."""
    tree: dict[str, Any] = {}
    set_paths: dict[tuple[str, ...], str] = {}
    issues: list[ConfigIssue] = []
    for dotted, value in overrides.items():
        problem = _key_problem(dotted)
        if problem:
            issues.append(ConfigIssue(CLI_SOURCE, _shown(str(dotted)), problem))
            continue
        path = tuple(dotted.split("."))
        clash = next((set_paths[p] for p in set_paths if p == path[: len(p)] or path == p[: len(path)]), None)
        if clash is not None:
            issues.append(ConfigIssue(CLI_SOURCE, dotted, f"conflicts with {clash!r} (set one or the other)"))
            continue
        set_paths[path] = dotted
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    if issues:
        raise ConfigError(issues)
    return tree


def layer_from_cli(overrides: Mapping[str, object]) -> OverrideLayer:
    return split_layer(YamlDocument(file=CLI_SOURCE, data=expand_dotted(overrides)))


def split_layer(document: YamlDocument) -> OverrideLayer:
    """Split an override document into its mode / share-class / venue parts (errors for bad shapes)."""
    data = document.data
    file = document.file
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError.single(
            file, DOCUMENT_KEY, f"expected a mapping of keys at the top level, got {yaml_type_name(data)}"
        )
    issues: list[ConfigIssue] = []
    mode = {k: v for k, v in data.items() if k not in (SHARE_CLASS_NAMESPACE, VENUE_NAMESPACE)}
    layer = OverrideLayer(mode=mode, mode_source=Source(file, document.positions))

    share = data.get(SHARE_CLASS_NAMESPACE)
    if share is not None:
        if isinstance(share, dict):
            layer.share_class = share
            layer.share_class_source = Source(file, document.positions, (SHARE_CLASS_NAMESPACE,))
        else:
            issues.append(
                _issue(
                    document,
                    (SHARE_CLASS_NAMESPACE,),
                    f"expected a mapping of share-class keys, got {yaml_type_name(share)}",
                )
            )

    venues = data.get(VENUE_NAMESPACE)
    if venues is not None:
        if not isinstance(venues, dict):
            issues.append(
                _issue(
                    document,
                    (VENUE_NAMESPACE,),
                    f"expected a mapping of venue name -> overrides, got {yaml_type_name(venues)}",
                )
            )
        else:
            for name, values in venues.items():
                path = (VENUE_NAMESPACE, str(name))
                if name not in VENUES:
                    issues.append(
                        _issue(document, path, f"unknown venue {name!r} (allowed: {', '.join(VENUES)})")
                    )
                elif not isinstance(values, dict):
                    issues.append(
                        _issue(
                            document, path, f"expected a mapping of venue keys, got {yaml_type_name(values)}"
                        )
                    )
                else:
                    layer.venues[name] = values
                    layer.venue_sources[name] = Source(file, document.positions, path)
    if issues:
        raise ConfigError(issues)
    return layer


def _issue(document: YamlDocument, path: tuple[str, ...], message: str) -> ConfigIssue:
    line, column = document.positions.get(path, (None, None))
    return ConfigIssue(document.file, ".".join(path), message, "error", line, column)


def _shown(text: str, limit: int = 80) -> str:
    """A key as echoed in a message: a hostile 10,000-character key is cut, not printed whole."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _key_problem(key: object) -> str | None:
    if not isinstance(key, str) or not key:
        return "empty key (expected a dotted key such as hedge.allocation.binance)"
    if len(key) > MAX_KEY_CHARS or key.count(".") >= MAX_DEPTH:
        return f"key is too long (at most {MAX_DEPTH} dotted parts and {MAX_KEY_CHARS} characters)"
    bad = [part for part in key.split(".") if not _SEGMENT.match(part)]
    if bad:
        return f"invalid key segment {bad[0]!r} (allowed: letters, digits and _ separated by dots)"
    return None
