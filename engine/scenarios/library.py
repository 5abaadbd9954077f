"""Read and validate scenario files (configs/scenarios/<name>.yaml).

Problems are reported like every other configuration file: `<file>: <dotted.key>: <problem>
(allowed: ...)`, all of a file's problems in one ConfigError. Each shock is validated against the
model its `kind` names, so a wrong key is reported as `shocks.2.ramp_hours`, with that kind's keys
and ranges, rather than as a failed match against every kind.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from engine.config.errors import DOCUMENT_KEY, ConfigError, ConfigIssue
from engine.config.paths import resolve_root
from engine.config.sources import Source, SourceMap
from engine.config.validation_messages import issues_from_validation_error, yaml_type_name
from engine.config.yaml_io import read_yaml_file
from engine.scenarios.models import SHOCK_MODELS, Scenario

SCENARIO_DIR = "scenarios"
TOP_KEYS = tuple(Scenario.model_fields)


def scenarios_dir(config_root: Path | None = None) -> Path:
    return resolve_root(config_root) / SCENARIO_DIR


def available_scenarios(config_root: Path | None = None) -> list[str]:
    folder = scenarios_dir(config_root)
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_scenario(name: str, config_root: Path | None = None) -> Scenario:
    """The validated scenario `name` from the library; raises ConfigError naming the file and keys."""
    names = available_scenarios(config_root)
    folder = scenarios_dir(config_root)
    if name not in names:
        raise ConfigError.single(str(folder), "scenario",
                                 f"unknown scenario {name!r} (allowed: {', '.join(names) or 'none found'})")
    return load_scenario_file(folder / f"{name}.yaml")


def load_library(config_root: Path | None = None) -> list[Scenario]:
    return [load_scenario(name, config_root) for name in available_scenarios(config_root)]


def load_scenario_file(path: Path) -> Scenario:
    document = read_yaml_file(Path(path), what="scenario file")
    sources = SourceMap(Source(document.file, document.positions))
    data = document.data
    if not isinstance(data, dict):
        raise ConfigError([sources.issue((), f"expected a mapping with keys {', '.join(TOP_KEYS)}, "
                                             f"got {yaml_type_name(data)}")])
    issues: list[ConfigIssue] = []
    for key in data:
        if key not in TOP_KEYS:
            issues.append(sources.issue((str(key),), f"unknown key {key!r} (allowed: {', '.join(TOP_KEYS)})"))
    for key in TOP_KEYS:
        if key not in data:
            issues.append(sources.issue((key,), "required key is missing"))
    shocks = data.get("shocks")
    validated = []
    if "shocks" in data:
        if not isinstance(shocks, list) or not shocks:
            issues.append(sources.issue(("shocks",), f"expected a non-empty list of shocks, got "
                                                     f"{yaml_type_name(shocks)}"))
        else:
            for i, raw in enumerate(shocks):
                shock, shock_issues = _validate_shock(raw, i, sources)
                issues += shock_issues
                validated.append(shock)
    stem = Path(document.file).stem
    if "name" in data and data["name"] != stem:
        issues.append(sources.issue(("name",), f"must equal the file name {stem!r} (allowed: {stem})"))
    if not issues:
        try:
            return Scenario.model_validate({"name": data["name"], "description": data["description"],
                                            "shocks": validated})
        except ValidationError as exc:
            issues += [i for i in issues_from_validation_error(exc, Scenario, sources)
                       if not i.key.startswith("shocks")]
    if not issues:   # pragma: no cover - every shock error is reported above
        raise ConfigError.single(document.file, DOCUMENT_KEY, "invalid scenario")
    raise ConfigError(issues)


def _validate_shock(raw: object, index: int, sources: SourceMap):
    path = ("shocks", str(index))
    kinds = ", ".join(SHOCK_MODELS)
    if not isinstance(raw, dict):
        return None, [sources.issue(path, f"expected a mapping with a kind ({kinds}), got {yaml_type_name(raw)}")]
    kind = raw.get("kind")
    if kind is None:
        return None, [sources.issue(path + ("kind",), f"required key is missing (allowed: {kinds})")]
    model = SHOCK_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return None, [sources.issue(path + ("kind",), f"unknown shock kind {kind!r} (allowed: {kinds})")]
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, issues_from_validation_error(exc, model, sources, path)
