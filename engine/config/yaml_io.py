"""YAML reading with positions, and writing.

PyYAML's `safe_load` forgets where each key was and silently keeps the last of two duplicate keys.
The editor needs line numbers for every error, and a duplicated key is almost always a mistake that
would otherwise change a risk parameter without anyone noticing, so this module composes the node
tree itself: it records the line/column of every key path and reports duplicates as errors.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import DOCUMENT_KEY, ConfigError, ConfigIssue

#: libyaml's parser is ~10x faster than the pure-Python one and reports the same marks.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

KeyPath = tuple[str, ...]
Position = tuple[int, int]  # 1-based line, column


@dataclass
class YamlDocument:
    """Parsed YAML plus the 1-based (line, column) of every key path in it."""

    file: str
    data: Any
    positions: dict[KeyPath, Position] = field(default_factory=dict)


def parse_yaml_text(text: str, file: str) -> YamlDocument:
    """Parse `text` (the contents of `file`); malformed YAML or duplicate keys raise ConfigError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        positions: dict[KeyPath, Position] = {}
        issues: list[ConfigIssue] = []
        if node is not None:
            _walk(node, (), file, positions, issues)
        if issues:
            raise ConfigError(issues)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise _malformed(file, exc) from None
    finally:
        loader.dispose()
    return YamlDocument(file=file, data=data, positions=positions)


#: Parsed files keyed by path, validated against (mtime_ns, size) so an edited file is re-read.
_cache: dict[str, tuple[tuple[int, int], YamlDocument]] = {}


def read_yaml_file(path: Path, *, what: str = "configuration file") -> YamlDocument:
    """Read and parse one YAML file; a missing or unreadable file is a ConfigError naming it.

    A mode load touches up to a dozen small files and the live editor revalidates on every edit, so
    parsed files are cached; callers get their own copy of the data.
    """
    file = str(path)
    try:
        stat = path.stat()
        cached = _cache.get(file)
        stamp = (stat.st_mtime_ns, stat.st_size)
        if cached is not None and cached[0] == stamp:
            return _copy(cached[1])
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.single(file, DOCUMENT_KEY, f"{what} not found") from None
    except IsADirectoryError:
        raise ConfigError.single(file, DOCUMENT_KEY, f"{what} is a directory, expected a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError.single(file, DOCUMENT_KEY, f"{what} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError.single(file, DOCUMENT_KEY, f"cannot read {what}: {exc.strerror}") from None
    document = parse_yaml_text(text, file)
    _cache[file] = (stamp, document)
    return _copy(document)


def _copy(document: YamlDocument) -> YamlDocument:
    return YamlDocument(document.file, copy.deepcopy(document.data), dict(document.positions))


def dump_yaml(data: Any) -> str:
    """Block-style YAML keeping the mapping order given (the models' field order)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)


def _walk(
    node: yaml.Node, path: KeyPath, file: str, positions: dict[KeyPath, Position], issues: list[ConfigIssue]
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = str(key_node.value)
            line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            child = (*path, key)
            if key in seen:
                issues.append(
                    ConfigIssue(
                        file,
                        ".".join(child),
                        f"duplicate key (first defined at line {seen[key]}; "
                        "YAML would silently keep the last one)",
                        "error",
                        line,
                        column,
                    )
                )
                continue
            seen[key] = line
            positions[child] = (line, column)
            _walk(value_node, child, file, positions, issues)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, str(index))
            positions[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _walk(item, child, file, positions, issues)


def _malformed(file: str, exc: yaml.YAMLError) -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    detail = f"{context}: {problem}" if context else problem
    if mark is None:
        return ConfigError.single(file, DOCUMENT_KEY, f"malformed YAML: {detail}")
    line, column = mark.line + 1, mark.column + 1
    return ConfigError.single(
        file,
        DOCUMENT_KEY,
        f"malformed YAML at line {line}, column {column}: {detail}",
        line=line,
        column=column,
    )
