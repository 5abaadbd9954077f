"""Load and validate single documents: one venue file or one share-class file (plus overrides).

Each function returns the model (or None) and the issues found instead of raising, so the mode
loader can report the problems of every file involved in one ConfigError.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from .common import VENUES
from .errors import DOCUMENT_KEY, ConfigError, ConfigIssue
from .paths import resolve_root, share_class_path, venue_path
from .share_class import ShareClassConfig
from .sources import Source, SourceMap, deep_merge
from .validation_messages import issues_from_validation_error, yaml_type_name
from .venue_models import VENUE_MODELS, VenueConfig
from .venue_rules import check_venue
from .yaml_io import read_yaml_file

Layer = tuple[dict[str, Any], Source]


def _read_merged(path: Path, what: str, layers: Sequence[Layer]) -> tuple[Any, SourceMap] | list[ConfigIssue]:
    """The file's data with the override layers merged in and a map of where each key came from,
    or the read/parse issues."""
    try:
        document = read_yaml_file(path, what=what)
    except ConfigError as exc:
        return exc.errors
    sources = SourceMap(Source(str(path), document.positions))
    data = document.data
    for values, source in layers:
        data = deep_merge(data, values, source, sources)
    return data, sources


def load_venue(
    name: str, root: Path, layers: Sequence[Layer] = ()
) -> tuple[VenueConfig | None, list[ConfigIssue]]:
    """Read configs/venues/<name>.yaml, merge `layers` into it and validate."""
    if name not in VENUES:
        return None, [
            ConfigIssue(
                str(venue_path(root, name)),
                DOCUMENT_KEY,
                f"unknown venue {name!r} (allowed: {', '.join(VENUES)})",
            )
        ]
    merged = _read_merged(venue_path(root, name), f"venue file for {name!r}", layers)
    if isinstance(merged, list):
        return None, merged
    data, sources = merged
    return validate_venue_document(name, data, sources)


def validate_venue_document(
    name: str, data: Any, sources: SourceMap
) -> tuple[VenueConfig | None, list[ConfigIssue]]:
    if not isinstance(data, dict):
        return None, [sources.issue((), f"expected a mapping of venue keys, got {yaml_type_name(data)}")]
    model_type = VENUE_MODELS[name]
    try:
        venue = cast(VenueConfig, model_type.model_validate(data))
    except ValidationError as exc:
        return None, issues_from_validation_error(exc, model_type, sources)
    issues = check_venue(name, venue, sources)
    return (None if any(i.severity == "error" for i in issues) else venue), issues


def load_venue_config(name: str, config_root: Path | None = None) -> VenueConfig:
    """The validated venue file `name`; raises ConfigError listing every problem."""
    venue, issues = load_venue(name, resolve_root(config_root))
    errors = [issue for issue in issues if issue.severity == "error"]
    if errors or venue is None:
        raise ConfigError(errors)
    return venue


def load_share_class(
    name: str, root: Path, layers: Sequence[Layer] = ()
) -> tuple[ShareClassConfig | None, list[ConfigIssue]]:
    """Read configs/share_classes/<name>.yaml, merge `layers` into it and validate."""
    merged = _read_merged(share_class_path(root, name), f"share class file for {name!r}", layers)
    if isinstance(merged, list):
        return None, merged
    data, sources = merged
    if not isinstance(data, dict):
        return None, [
            sources.issue((), f"expected a mapping of share-class keys, got {yaml_type_name(data)}")
        ]
    try:
        share_class = ShareClassConfig.model_validate(data)
    except ValidationError as exc:
        return None, issues_from_validation_error(exc, ShareClassConfig, sources)
    issues: list[ConfigIssue] = []
    if share_class.name != name:
        issues.append(sources.issue(("name",), f"must equal the file name {name!r} (allowed: {name})"))
    if share_class.market_neutral and not share_class.allows_hedging:
        issues.append(
            sources.issue(
                ("allows_hedging",), "a market-neutral share class must be able to hedge (allowed: true)"
            )
        )
    return (None if issues else share_class), issues


def load_venue_configs(
    names: Iterable[str],
    *,
    override_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    config_root: Path | None = None,
) -> dict[str, VenueConfig]:
    """Venue files with an override document's ``venue_overrides:`` merged in, each validated.

    ``override_file`` is read from disk (``python main.py devchain`` writes one); ``overrides`` is
    the same shape already parsed. Raises ConfigError listing every problem of every venue.
    """
    from .overrides import split_layer
    from .yaml_io import YamlDocument

    layer = None
    if override_file is not None:
        layer = split_layer(read_yaml_file(Path(override_file), what="override file"))
    elif overrides is not None:
        layer = split_layer(YamlDocument(file="<overrides>", data=dict(overrides)))
    root = resolve_root(config_root)
    out: dict[str, VenueConfig] = {}
    errors: list[ConfigIssue] = []
    for name in names:
        layers: list[Layer] = []
        if layer is not None and name in layer.venues:
            layers.append((layer.venues[name], layer.venue_sources[name]))
        venue, issues = load_venue(name, root, layers)
        errors += [issue for issue in issues if issue.severity == "error"]
        if venue is not None:
            out[name] = venue
    if errors:
        raise ConfigError(errors)
    return out
