"""Issue and error types shared by every part of the configuration layer.

Every problem found in a configuration is one `ConfigIssue` naming the file, the dotted key and what
is wrong (with the allowed values). Problems are collected rather than raised one at a time so the
operator (CLI or live editor) sees all of them in one pass; `ConfigError` carries the whole list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]

#: Key used for problems that concern a whole document rather than one key in it.
DOCUMENT_KEY = "(document)"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem (error) or auto-correction/advice (warning) found in a configuration file.

    `line`/`column` are 1-based positions in `file` when known, so an editor can jump to them.
    """

    file: str
    key: str
    message: str
    severity: Severity = "error"
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        text = f"{self.file}: {self.key}: {self.message}"
        if self.line is not None and "line" not in self.message:
            text += f" [line {self.line}]"
        return text


class ConfigError(ValueError):
    """Raised when a configuration cannot be used; `.errors` lists every problem found.

    `.warnings` carries the auto-corrections and advice found in the same pass, so an editor can
    show them next to the errors.
    """

    def __init__(self, errors: Iterable[ConfigIssue], warnings: Iterable[ConfigIssue] = ()):
        self.errors: list[ConfigIssue] = [e for e in errors]
        self.warnings: list[ConfigIssue] = [w for w in warnings]
        if not self.errors:
            raise ValueError("ConfigError needs at least one issue")
        count = len(self.errors)
        header = f"{count} configuration error{'s' if count != 1 else ''}:"
        super().__init__("\n".join([header, *(f"  {issue}" for issue in self.errors)]))

    def describe(self) -> str:
        """The problems for a one-line (one error) or one-header (several) report after an `error:`
        prefix: "invalid configuration: FILE: KEY: MESSAGE", or a count followed by one issue a line."""
        if len(self.errors) == 1:
            return f"invalid configuration: {self.errors[0]}"
        return "\n".join([f"invalid configuration ({len(self.errors)} errors):", *(f"  {i}" for i in self.errors)])

    @classmethod
    def single(
        cls, file: str, key: str, message: str, *, line: int | None = None, column: int | None = None
    ) -> ConfigError:
        """Convenience for the many places that fail on one problem (missing file, unknown mode)."""
        return cls([ConfigIssue(file, key, message, "error", line, column)])
