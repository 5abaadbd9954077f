"""Assemble a mode: mode file + override file + command line, then validate everything it touches.

Order of precedence (later wins): the mode YAML, the override YAML (deep-merged; may also carry
`share_class_overrides:` and `venue_overrides:`), then `cli_overrides` (dotted keys). Validation runs
once on the merged result and reports every problem of every file involved in one ConfigError.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from .common import CEX_VENUES, MODES, VENUES
from .documents import Layer, load_share_class, load_venue
from .errors import ConfigError, ConfigIssue
from .mode_models import ModeConfig
from .mode_rules import STRUCTURE_RULES, VENUE_RULES, ModeContext, required_venues
from .overrides import OverrideLayer, layer_from_cli, split_layer
from .paths import available_share_classes, mode_path, resolve_root, share_class_path, venue_path
from .share_class import ShareClassConfig
from .sources import CLI_SOURCE, Source, SourceMap, deep_merge
from .validation_messages import describe_type, issues_from_validation_error, yaml_type_name
from .venue_models import CexVenueConfig, VenueConfig
from .yaml_io import YamlDocument, dump_yaml, parse_yaml_text, read_yaml_file


@dataclass
class ResolvedConfig:
    """A validated mode with its share class and the venue files it needs."""

    mode: ModeConfig
    share_class: ShareClassConfig
    venues: dict[str, VenueConfig]
    warnings: list[ConfigIssue] = field(default_factory=list)
    source_files: list[Path] = field(default_factory=list)

    def required_venues(self) -> list[str]:
        """Venues the mode trades on or reads from (eth_leveraged: etherfi, aave_v3, morpho, alchemy)."""
        return required_venues(
            {name: getattr(self.mode, name) for name in ("lending", "staking", "leverage", "hedge")}
        )


def load_config(
    mode: str,
    *,
    config_root: Path | None = None,
    override_file: Path | None = None,
    cli_overrides: Mapping[str, object] | None = None,
) -> ResolvedConfig:
    """Load configs/modes/<mode>.yaml with overrides applied and validate it (raises ConfigError)."""
    root = resolve_root(config_root)
    _check_mode_name(mode, mode_path(root, mode) if isinstance(mode, str) else root / "modes")
    document = read_yaml_file(mode_path(root, mode), what=f"mode file for {mode!r}")
    layers: list[OverrideLayer] = []
    if override_file is not None:
        layers.append(split_layer(read_yaml_file(Path(override_file), what="override file")))
    if cli_overrides:
        layers.append(layer_from_cli(cli_overrides))
    return _resolve(mode, document, root, layers)


def validate_document(
    mode_name: str, doc: Any, *, file: str, config_root: Path | None = None
) -> ResolvedConfig:
    """Validate an already-parsed mode document (the live editor's buffer) as if it were `file`."""
    _check_mode_name(mode_name, Path(file))
    return _resolve(mode_name, YamlDocument(file=file, data=doc), resolve_root(config_root), [])


def validate_yaml_text(
    mode_name: str, text: str, *, file: str, config_root: Path | None = None
) -> ResolvedConfig:
    """Parse and validate YAML text; issues carry line numbers (for an editor)."""
    _check_mode_name(mode_name, Path(file))
    return _resolve(mode_name, parse_yaml_text(text, file), resolve_root(config_root), [])


def dump_mode_yaml(model: ModeConfig | ResolvedConfig) -> str:
    """YAML text of a mode in file order; loading it back gives an equal ModeConfig."""
    mode = model.mode if isinstance(model, ResolvedConfig) else model
    return dump_yaml(mode.model_dump(mode="python"))


# --------------------------------------------------------------------------------------- internals
def _check_mode_name(mode: Any, file: Path) -> None:
    if mode not in MODES:
        raise ConfigError.single(str(file), "mode", f"unknown mode {mode!r} (allowed: {', '.join(MODES)})")


def _resolve(mode: str, document: YamlDocument, root: Path, layers: list[OverrideLayer]) -> ResolvedConfig:
    sources = SourceMap(Source(document.file, document.positions))
    data = document.data
    if not isinstance(data, dict):
        raise ConfigError([sources.issue((), f"expected a mapping of mode keys, got {yaml_type_name(data)}")])
    for layer in layers:
        if layer.mode:
            data = deep_merge(data, layer.mode, layer.mode_source, sources)

    parts, issues = _validate_parts(data, sources)
    ctx = ModeContext(expected_mode=mode, parts=parts, sources=sources)
    source_files = [Path(document.file)] + [
        Path(layer.mode_source.file) for layer in layers if layer.mode_source.file != CLI_SOURCE
    ]

    share_layers: list[Layer] = [
        (layer.share_class, layer.share_class_source)
        for layer in layers
        if layer.share_class and layer.share_class_source is not None
    ]
    if "share_class" in parts:
        ctx.share_class, share_issues = _load_share_class(parts["share_class"], root, share_layers, sources)
        issues += share_issues
        source_files.append(share_class_path(root, parts["share_class"]))
        ctx.share_class_currencies = _share_class_currencies(root)

    for rule in STRUCTURE_RULES:
        rule(ctx)

    # Venues named in overrides are validated too, so a bad override is reported even when a mode
    # error elsewhere hides that the venue is needed.
    overridden = {name for layer in layers for name in layer.venues}
    venue_names = [name for name in VENUES if name in set(required_venues(ctx.parts)) | overridden]
    for name in venue_names:
        venue_layers: list[Layer] = [
            (layer.venues[name], layer.venue_sources[name]) for layer in layers if name in layer.venues
        ]
        venue, venue_issues = load_venue(name, root, venue_layers)
        issues += venue_issues
        source_files.append(venue_path(root, name))
        if venue is not None:
            ctx.venues[name] = venue
    ctx.cex_catalog = {
        **_cex_catalog(root),
        **{n: v for n, v in ctx.venues.items() if isinstance(v, CexVenueConfig)},
    }

    for rule in VENUE_RULES:
        rule(ctx)

    issues += ctx.issues
    errors = [i for i in issues if i.severity == "error"]
    warnings = [i for i in issues if i.severity == "warning"]
    if errors:
        raise ConfigError(errors, warnings)
    assert ctx.share_class is not None  # a missing or invalid share class is always an error above
    try:
        mode_config = ModeConfig.model_validate({**ctx.parts})
    except ValidationError as exc:  # the parts were validated one by one; this is a safety net
        raise ConfigError(issues_from_validation_error(exc, ModeConfig, sources), warnings) from None
    return ResolvedConfig(
        mode=mode_config,
        share_class=ctx.share_class,
        venues={name: ctx.venues[name] for name in required_venues(ctx.parts)},
        warnings=warnings,
        source_files=list(dict.fromkeys(source_files)),
    )


def _validate_parts(data: dict[str, Any], sources: SourceMap) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Validate each top-level key on its own so valid sections can still be checked by the rules."""
    fields = ModeConfig.model_fields
    issues: list[ConfigIssue] = []
    parts: dict[str, Any] = {}
    for key in data:
        if key not in fields:
            issues.append(sources.issue((str(key),), f"unknown key {key!r} (allowed: {', '.join(fields)})"))
    for name, info in fields.items():
        if name not in data:
            expected = _describe_field(name)
            issues.append(sources.issue((name,), f"required key is missing (expected: {expected})"))
            continue
        annotation = info.annotation
        try:
            if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
                parts[name] = annotation.model_validate(data[name])
            else:
                parts[name] = _scalar_adapter(name).validate_python(data[name])
        except ValidationError as exc:
            root = annotation if inspect.isclass(annotation) else _scalar_type(name)
            issues += issues_from_validation_error(exc, root, sources, (name,))
    return parts, issues


def _scalar_type(name: str) -> Any:
    info = ModeConfig.model_fields[name]
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


@functools.cache
def _scalar_adapter(name: str) -> TypeAdapter:
    return TypeAdapter(_scalar_type(name), config=ConfigDict(strict=True))


def _describe_field(name: str) -> str:
    return describe_type(ModeConfig.model_fields[name].annotation)


def _load_share_class(
    name: str, root: Path, layers: list[Layer], sources: SourceMap
) -> tuple[ShareClassConfig | None, list[ConfigIssue]]:
    available = available_share_classes(root)
    if name not in available:
        return None, [
            sources.issue(
                ("share_class",),
                f"unknown share class {name!r} (allowed: {', '.join(available) or 'none found'})",
            )
        ]
    return load_share_class(name, root, layers)


def _share_class_currencies(root: Path) -> dict[str, str]:
    currencies = {}
    for name in available_share_classes(root):
        share, _ = load_share_class(name, root)
        if share is not None:
            currencies[name] = str(share.currency)
    return currencies


def _cex_catalog(root: Path) -> dict[str, CexVenueConfig]:
    catalog = {}
    for name in CEX_VENUES:
        venue, _ = load_venue(name, root)
        if isinstance(venue, CexVenueConfig):
            catalog[name] = venue
    return catalog
