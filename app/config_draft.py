"""The config editor's document: one mode's YAML being edited, with its origin and baseline (no Qt).

The YAML text is the source of truth (it is what gets saved and what the engine validates); the form
edits it through `set_value`, which rewrites only the edited value's span so the file's comments and
layout survive, and falls back to a clean re-dump when the value is not a one-line scalar. Validation
is the engine's own (`validate_yaml_text`), so the editor can never accept what the engine would
reject. The shipped defaults under configs/ are never written: saving there is refused.
"""
from __future__ import annotations

import copy
import difflib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.config import CONFIG_ROOT, MODES, ConfigError, ConfigIssue, ResolvedConfig, validate_yaml_text
from engine.config.errors import DOCUMENT_KEY
from engine.config.paths import mode_path
from engine.config.yaml_io import YamlDocument, dump_yaml, parse_yaml_text, read_yaml_file

_MISSING = object()


class SaveRefused(ValueError):
    """The chosen file is one of the shipped defaults (or another unwritable target)."""


@dataclass
class Validation:
    """Outcome of validating the draft: the engine's errors and warnings, and the config when valid."""

    errors: list[ConfigIssue] = field(default_factory=list)
    warnings: list[ConfigIssue] = field(default_factory=list)
    resolved: ResolvedConfig | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and self.resolved is not None


class ModeDraft:
    """One mode's document in the editor."""

    def __init__(self, mode: str, config_root: Path | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (allowed: {', '.join(MODES)})")
        self.mode = mode
        self.config_root = CONFIG_ROOT if config_root is None else Path(config_root)
        self.shipped_path = mode_path(self.config_root, mode)
        shipped = read_yaml_file(self.shipped_path, what=f"mode file for {mode!r}")
        self.shipped_data: Any = shipped.data
        self.shipped_text = self.shipped_path.read_text(encoding="utf-8")
        #: The user file this draft was loaded from / saved to; None = still the shipped default.
        self.origin: Path | None = None
        #: What "Revert" goes back to: the text last loaded or saved.
        self.baseline_text = self.shipped_text
        self.text = ""
        self.data: Any = None
        self.positions: dict[tuple[str, ...], tuple[int, int]] = {}
        self.parse_error: ConfigIssue | None = None
        self.set_text(self.shipped_text)

    # ---- identity ------------------------------------------------------------------------------
    @property
    def file_label(self) -> str:
        """Name used in messages: the user file, or the shipped file marked as an unsaved copy."""
        return str(self.origin) if self.origin is not None else f"{self.shipped_path.name} (unsaved edit of the shipped default)"

    @property
    def modified(self) -> bool:
        """True when the text differs from what was last loaded or saved."""
        return self.text != self.baseline_text

    @property
    def differs_from_shipped(self) -> bool:
        return self.parse_error is not None or self.data != self.shipped_data

    # ---- reading ------------------------------------------------------------------------------
    def get(self, path: tuple[str, ...]) -> Any:
        """Value at `path` in the last parsed document, or `MISSING`."""
        return _get(self.data, path)

    def shipped_value(self, path: tuple[str, ...]) -> Any:
        return _get(self.shipped_data, path)

    def is_changed(self, path: tuple[str, ...]) -> bool:
        """Does this key differ from the shipped default?"""
        return _get(self.data, path) != _get(self.shipped_data, path)

    # ---- editing ------------------------------------------------------------------------------
    def set_text(self, text: str) -> None:
        """Replace the whole text (the YAML view). A syntax error keeps the last parsed document."""
        self.text = text
        try:
            document = parse_yaml_text(text, self.file_label)
        except ConfigError as exc:
            self.parse_error = exc.errors[0]
            return
        self.parse_error = None
        self._adopt(document)

    def set_value(self, path: tuple[str, ...], value: Any) -> None:
        """Set one key (the form). Raises RuntimeError while the YAML text does not parse."""
        if self.parse_error is not None:
            raise RuntimeError("the YAML text has a syntax error; fix it before editing the form")
        if not isinstance(self.data, dict):
            self.data = {}
        expected = copy.deepcopy(self.data)
        _set(expected, path, value)
        if expected == self.data:
            return
        patched = patch_value(self.text, self.positions, path, value, expected)
        self.set_text(patched if patched is not None else dump_yaml(expected))

    def revert(self) -> None:
        """Back to the text last loaded or saved."""
        self.set_text(self.baseline_text)

    def reset_to_shipped(self) -> None:
        """Contents back to the shipped default (the file it will be saved to is unchanged)."""
        self.set_text(self.shipped_text)

    # ---- checking -----------------------------------------------------------------------------
    def validate(self) -> Validation:
        if self.parse_error is not None:
            return Validation(errors=[self.parse_error])
        try:
            resolved = validate_yaml_text(self.mode, self.text, file=self.file_label, config_root=self.config_root)
        except ConfigError as exc:
            return Validation(errors=list(exc.errors), warnings=list(exc.warnings))
        return Validation(warnings=list(resolved.warnings), resolved=resolved)

    def diff_against_shipped(self) -> str:
        """Unified diff of the normalised shipped document against this draft ('' when equal).

        Both sides are re-dumped, so comments and formatting never show up as differences.
        """
        before = dump_yaml(self.shipped_data).splitlines(keepends=True)
        after_text = self.text if self.parse_error is not None else dump_yaml(self.data)
        after = after_text.splitlines(keepends=True)
        return "".join(difflib.unified_diff(before, after, fromfile=f"shipped: configs/modes/{self.shipped_path.name}",
                                            tofile=f"edited: {self.file_label}", n=2))

    # ---- files --------------------------------------------------------------------------------
    def save(self, path: Path | None = None) -> Path:
        """Write the text to `path` (default: the file it came from). Never into configs/."""
        target = path if path is not None else self.origin
        if target is None:
            raise SaveRefused("this draft has no file yet: choose where to save it (Save As)")
        target = Path(target).expanduser()
        check_writable_target(target, self.config_root)
        text = self.text if self.text.endswith("\n") else self.text + "\n"
        atomic_write(target, text)
        self.origin = target.resolve()
        self.text = text
        self.baseline_text = text
        if self.parse_error is None:
            self.set_text(text)
        return self.origin

    @classmethod
    def from_file(cls, path: Path, config_root: Path | None = None) -> ModeDraft:
        """Load a mode file the user picked; its `mode:` key decides which mode it edits."""
        path = Path(path).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError.single(str(path), DOCUMENT_KEY, "file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError.single(str(path), DOCUMENT_KEY, f"cannot read the file: {exc}") from None
        document = parse_yaml_text(text, str(path))
        mode = document.data.get("mode") if isinstance(document.data, dict) else None
        if mode not in MODES:
            raise ConfigError.single(str(path), "mode", f"cannot tell which mode this file configures: "
                                                        f"mode is {mode!r} (allowed: {', '.join(MODES)})")
        draft = cls(mode, config_root)
        draft.origin = path.resolve()
        draft.baseline_text = text
        draft.set_text(text)
        return draft

    def _adopt(self, document: YamlDocument) -> None:
        self.data = document.data
        self.positions = document.positions


MISSING = _MISSING


def check_writable_target(target: Path, config_root: Path) -> None:
    """Refuse to write into the shipped configuration folders."""
    resolved = target.resolve()
    for root in {CONFIG_ROOT.resolve(), Path(config_root).resolve()}:
        if resolved.is_relative_to(root):
            raise SaveRefused(f"{target} is inside the shipped configuration folder {root}; the defaults are "
                              "read-only here. Save to your own file (e.g. in your user config folder).")
    if resolved.is_dir():
        raise SaveRefused(f"{target} is a folder; choose a file name ending in .yaml")


def atomic_write(target: Path, text: str) -> None:
    """Write through a temporary file and rename, so a crash never leaves half a config."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------ text patching
_PLAIN_END = re.compile(r"\s+#|\s*$")


def patch_value(text: str, positions: dict[tuple[str, ...], tuple[int, int]], path: tuple[str, ...],
                value: Any, expected: Any) -> str | None:
    """`text` with the value at `path` replaced in place (comments kept), or None if that is unsafe.

    Only one-line values are patched (plain, quoted or flow collections); the result is re-parsed and
    must equal `expected`, otherwise the caller re-dumps the whole document.
    """
    pos = positions.get(path)
    if pos is None:
        return None
    lines = text.splitlines(keepends=True)
    line_no, column = pos
    if line_no - 1 >= len(lines):
        return None
    line = lines[line_no - 1]
    key_match = re.compile(r"(?:\"[^\"]*\"|'[^']*'|[^:#\s][^:#]*?)\s*:(?=\s|$)").match(line, column - 1)
    if key_match is None:
        return None
    span = _value_span(line, key_match.end())
    if span is None:
        return None
    start, end = span
    rendered = render_inline(value)
    new_line = line[:start] + rendered + line[end:]
    if not line[start - 1:start].isspace():
        new_line = line[:start] + " " + rendered + line[end:]
    lines[line_no - 1] = new_line
    candidate = "".join(lines)
    try:
        parsed = parse_yaml_text(candidate, "<patch>")
    except ConfigError:
        return None
    return candidate if parsed.data == expected else None


def _value_span(line: str, after_colon: int) -> tuple[int, int] | None:
    body = line.rstrip("\r\n")
    start = after_colon
    while start < len(body) and body[start] in " \t":
        start += 1
    if start >= len(body) or body[start] in "#|>&*!":
        return None                       # block value, anchor, alias or tag: not a one-line scalar
    first = body[start]
    if first in "\"'":
        end = _closing_quote(body, start)
    elif first in "[{":
        end = _closing_bracket(body, start)
    else:
        match = _PLAIN_END.search(body, start)
        end = match.start() if match else len(body)
    return None if end is None else (start, end)


def _closing_quote(body: str, start: int) -> int | None:
    quote = body[start]
    i = start + 1
    while i < len(body):
        if body[i] == quote:
            if quote == "'" and body[i + 1:i + 2] == "'":
                i += 2
                continue
            return i + 1
        if body[i] == "\\" and quote == '"':
            i += 2
            continue
        i += 1
    return None


def _closing_bracket(body: str, start: int) -> int | None:
    depth = 0
    i = start
    while i < len(body):
        ch = body[i]
        if ch in "\"'":
            end = _closing_quote(body, i)
            if end is None:
                return None
            i = end
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def render_inline(value: Any) -> str:
    """A value as one line of YAML (flow style for mappings and lists)."""
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 30).strip()
    dumped = yaml.safe_dump(value, default_flow_style=True, width=1 << 30)
    return dumped.split("\n", 1)[0].strip()


def _get(data: Any, path: tuple[str, ...]) -> Any:
    node = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _set(data: dict, path: tuple[str, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value
