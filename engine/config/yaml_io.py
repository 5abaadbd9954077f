"""YAML reading with positions, and writing.

PyYAML's `safe_load` forgets where each key was and silently keeps the last of two duplicate keys.
The editor needs line numbers for every error, and a duplicated key is almost always a mistake that
would otherwise change a risk parameter without anyone noticing, so this module composes the node
tree itself: it records the line/column of every key path and reports duplicates as errors.

A configuration file also arrives from the command line (`--config`, `--set`), so parsing is
bounded before any tree is built: document size, nesting depth and the number of values after
alias expansion are checked on libyaml's event stream (flat, no recursion, linear time), which
rejects an alias bomb (a few hundred bytes expanding to billions of values), an anchor that
contains its own alias and thousands of nested brackets with one clear error naming the file and
line, instead of exhausting memory or ending in a RecursionError.
"""

from __future__ import annotations

import copy
import os
import stat as statmod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import DOCUMENT_KEY, ConfigError, ConfigIssue

#: A configuration document is a few KB (the largest shipped file is under 4 KB).
MAX_DOCUMENT_BYTES = 1 << 20
#: Nesting levels after alias expansion (the shipped files nest at most 4 deep).
MAX_DEPTH = 32
#: Values (scalars, mappings, sequences) after alias expansion (a shipped mode file has ~150).
MAX_VALUES = 100_000

#: libyaml's parser is ~10x faster than the pure-Python one and reports the same marks.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader, with an impossible date (2024-13-45) reported as a located YAML error."""


def _construct_timestamp(loader: Any, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError) as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} looks like a date but is not one ({exc})", node.start_mark
        ) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)

KeyPath = tuple[str, ...]
Position = tuple[int, int]  # 1-based line, column


@dataclass
class YamlDocument:
    """Parsed YAML plus the 1-based (line, column) of every key path in it."""

    file: str
    data: Any
    positions: dict[KeyPath, Position] = field(default_factory=dict)


def parse_yaml_text(text: str, file: str) -> YamlDocument:
    """Parse `text` (the contents of `file`); malformed, oversized or duplicate-key YAML raises ConfigError."""
    size = len(text) if len(text) > MAX_DOCUMENT_BYTES else len(text.encode("utf-8"))
    if size > MAX_DOCUMENT_BYTES:
        raise ConfigError.single(
            file, DOCUMENT_KEY, f"document is {size:,} bytes; a configuration document is at most "
            f"{MAX_DOCUMENT_BYTES:,} bytes"
        )
    check_bounds(text, file)
    positions: dict[KeyPath, Position] = {}
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        issues: list[ConfigIssue] = []
        if node is not None:
            _walk(node, (), file, positions, issues)
        if issues:
            raise ConfigError(issues)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise _malformed(file, exc, positions) from None
    except RecursionError:  # a backstop: check_bounds keeps documents far below Python's limit
        raise ConfigError.single(file, DOCUMENT_KEY, f"document nests too deeply (at most {MAX_DEPTH} levels)") from None
    finally:
        loader.dispose()
    return YamlDocument(file=file, data=data, positions=positions)


def check_bounds(text: str, file: str) -> None:
    """Reject a document whose nesting or alias expansion exceeds the limits, before composing it.

    Works on libyaml's flat event stream: each collection's expanded size and depth is computed
    when it closes and remembered under its anchor, so an alias costs what its anchor cost, once;
    an alias to an anchor whose collection is still open is a self-reference (an infinite value).
    """
    loader = _Loader(text)
    stack: list[list[Any]] = []          # per open collection: [anchor, values, depth of children]
    open_anchors: set[str] = set()
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (values, depth)
    total = 0
    try:
        while True:
            event = loader.get_event()
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                if len(stack) >= MAX_DEPTH:
                    raise _bound_error(file, event, f"values nest deeper than {MAX_DEPTH} levels")
                stack.append([event.anchor, 0, 0])
                if event.anchor:
                    open_anchors.add(event.anchor)
                continue
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                anchor, values, depth = stack.pop()
                size = (values + 1, depth + 1)
                if anchor:
                    open_anchors.discard(anchor)
                    sizes[anchor] = size
            elif isinstance(event, yaml.ScalarEvent):
                size = (1, 0)
                if event.anchor:
                    sizes[event.anchor] = size
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor in open_anchors:
                    raise _bound_error(
                        file, event, f"alias *{event.anchor} refers to its own anchor &{event.anchor} "
                        "(a value cannot contain itself)"
                    )
                size = sizes.get(event.anchor or "", (1, 0))   # an unknown alias is reported by the composer
            elif isinstance(event, yaml.StreamEndEvent):
                return
            else:
                continue
            total += size[0]
            if total > MAX_VALUES:
                raise _bound_error(
                    file, event, f"the document expands to more than {MAX_VALUES:,} values "
                    "(aliases repeat what their anchor holds; is this an alias bomb?)"
                )
            if stack:
                parent = stack[-1]
                parent[1] += size[0]
                parent[2] = max(parent[2], size[1])
                if len(stack) + size[1] > MAX_DEPTH:
                    raise _bound_error(file, event, f"values nest deeper than {MAX_DEPTH} levels (through aliases)")
    except yaml.YAMLError as exc:
        raise _malformed(file, exc) from None
    finally:
        loader.dispose()


def _bound_error(file: str, event: Any, problem: str) -> ConfigError:
    mark = event.start_mark
    line, column = mark.line + 1, mark.column + 1
    return ConfigError.single(file, DOCUMENT_KEY, f"{problem}, at line {line}, column {column}", line=line, column=column)


def parse_yaml_value(text: str, source: str, key: str) -> Any:
    """One YAML value given for `key` (a `--set key=value`), parsed with the same limits as a file.

    Problems are reported against `key` in `source`, never as a line of some file."""
    try:
        return parse_yaml_text(text, source).data
    except ConfigError as exc:
        message = exc.errors[0].message
        if message.startswith("malformed YAML"):
            message = f"value {_clip(text)} is not valid YAML ({message.partition(': ')[2]})"
        elif repr(text) not in message:
            message = f"value {_clip(text)}: {message.replace('the document', 'the value')}"
        message = message.replace(" (line 1, column 1)", "")
        raise ConfigError.single(source, key, message) from None


def _clip(text: str, limit: int = 40) -> str:
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text):,} characters)"


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
        if stat_is_dir(stat):
            raise IsADirectoryError(file)
        if not stat_is_regular(stat):
            raise ConfigError.single(file, DOCUMENT_KEY, f"{what} is not a regular file (a device, pipe or socket)")
        if stat.st_size > MAX_DOCUMENT_BYTES:
            raise ConfigError.single(
                file, DOCUMENT_KEY, f"{what} is {stat.st_size:,} bytes; a configuration file is at most "
                f"{MAX_DOCUMENT_BYTES:,} bytes"
            )
        cached = _cache.get(file)
        stamp = (stat.st_mtime_ns, stat.st_size)
        if cached is not None and cached[0] == stamp:
            return _copy(cached[1])
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.single(file, DOCUMENT_KEY, f"{what} not found") from None
    except IsADirectoryError:
        raise ConfigError.single(file, DOCUMENT_KEY, f"{what} is a folder, expected a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError.single(file, DOCUMENT_KEY, f"{what} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError.single(file, DOCUMENT_KEY, f"cannot read {what}: {exc.strerror}") from None
    document = parse_yaml_text(text, file)
    _cache[file] = (stamp, document)
    return _copy(document)


def stat_is_dir(stat: os.stat_result) -> bool:
    return statmod.S_ISDIR(stat.st_mode)


def stat_is_regular(stat: os.stat_result) -> bool:
    return statmod.S_ISREG(stat.st_mode)


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


def _malformed(file: str, exc: yaml.YAMLError, positions: dict[KeyPath, Position] | None = None) -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    detail = f"{context}: {problem}" if context else problem
    if mark is None:
        return ConfigError.single(file, DOCUMENT_KEY, f"malformed YAML: {detail}")
    line, column = mark.line + 1, mark.column + 1
    if isinstance(exc, yaml.constructor.ConstructorError):
        # The document parsed; one value could not be built (e.g. an impossible date): name its key.
        key = _key_at(positions or {}, (line, column)) or DOCUMENT_KEY
        return ConfigError.single(file, key, f"{detail} (line {line}, column {column})", line=line, column=column)
    return ConfigError.single(
        file,
        DOCUMENT_KEY,
        f"malformed YAML at line {line}, column {column}: {detail}",
        line=line,
        column=column,
    )


def _key_at(positions: dict[KeyPath, Position], mark: Position) -> str | None:
    """The dotted key whose entry holds `mark`: the last key that starts at or before it."""
    before = [(position, path) for path, position in positions.items() if position <= mark]
    return ".".join(max(before)[1]) if before else None
