"""Input widgets for one config key each, chosen from the key's FieldSpec (see app.config_schema).

Editors never clamp or coerce what the operator types: a number field accepts any text, and text
that is not a number goes into the document as text, so the engine's validator reports it next to
the field ("expected a number, got text 'abc'") exactly as it would for a file.
"""
from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.config_draft import MISSING
from app.config_schema import FieldSpec
from app.widgets.util import repolish

NONE_LABEL = "(none)"


def format_value(value: Any) -> str:
    """How a document value is shown in a line edit (exact, so nothing changes on a round trip)."""
    if value is MISSING or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def parse_number(text: str, kind: str) -> Any:
    """Text -> int/float; anything else is kept as text (the validator will name the problem)."""
    stripped = text.strip()
    if not stripped:
        return None
    try:
        if kind == "int":
            return int(stripped)
        return float(stripped)
    except ValueError:
        if kind == "int":
            try:
                as_float = float(stripped)
            except ValueError:
                return stripped
            return as_float   # 2.5 in an int field: keep the number, the validator says "whole number"
        return stripped


class FieldEditor(QWidget):
    """Base: an input plus an inline message line underneath it."""

    #: (key path, new value)
    edited = Signal(tuple, object)

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self._updating = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        self.body = QWidget(self)
        outer.addWidget(self.body)
        self.message = QLabel(self)
        self.message.setObjectName("fieldError")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        outer.addWidget(self.message)
        tip = spec.help + ("\n" if spec.help else "") + f"Allowed: {spec.allowed_text()}"
        self.setToolTip(tip)

    # to implement: set_value(value), input_widgets()
    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def input_widgets(self) -> list[QWidget]:
        raise NotImplementedError

    def set_issue(self, severity: str | None, text: str = "") -> None:
        """Show an error/warning under the input (None clears it)."""
        if severity is None:
            self.message.hide()
            self.message.clear()
        else:
            self.message.setObjectName("fieldError" if severity == "error" else "fieldWarning")
            repolish(self.message)
            self.message.setText(text)
            self.message.show()
        for widget in self.input_widgets():
            widget.setProperty("invalid", severity == "error")
            repolish(widget)

    @property
    def issue_text(self) -> str:
        return self.message.text() if self.message.isVisible() or self.message.text() else ""

    def set_locked(self, locked: bool) -> None:
        for widget in self.input_widgets():
            widget.setEnabled(not locked)

    def _emit(self, value: Any) -> None:
        if not self._updating:
            self.edited.emit(self.spec.path, value)


class BoolEditor(FieldEditor):
    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        layout = QHBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        self.box = QCheckBox(self.body)
        self.box.toggled.connect(lambda on: self._emit(bool(on)))
        layout.addWidget(self.box)
        layout.addStretch(1)

    def set_value(self, value: Any) -> None:
        self._updating = True
        self.box.setChecked(value is True)
        self._updating = False

    def input_widgets(self) -> list[QWidget]:
        return [self.box]


class ChoiceEditor(FieldEditor):
    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        layout = QHBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox(self.body)
        self.combo.setMinimumWidth(140)
        self._fill(None)
        self.combo.currentIndexChanged.connect(self._on_index)
        layout.addWidget(self.combo)
        layout.addStretch(1)

    def _fill(self, extra: Any) -> None:
        self.combo.clear()
        if self.spec.optional:
            self.combo.addItem(NONE_LABEL, None)
        for choice in self.spec.choices:
            self.combo.addItem(choice, choice)
        if extra is not None:
            self.combo.addItem(f"{extra} (not allowed)", extra)

    def _on_index(self, index: int) -> None:
        if index >= 0:
            self._emit(self.combo.itemData(index))

    def set_value(self, value: Any) -> None:
        self._updating = True
        if value is MISSING:
            value = None
        known = value is None and self.spec.optional or value in self.spec.choices
        self._fill(None if known or value is None else value)
        index = self.combo.findData(value) if value is not None else (0 if self.spec.optional else -1)
        self.combo.setCurrentIndex(index)
        self._updating = False

    def input_widgets(self) -> list[QWidget]:
        return [self.combo]


class LineEditor(FieldEditor):
    """Numbers and free text."""

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        layout = QHBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        self.line = QLineEdit(self.body)
        if spec.kind in ("int", "float"):
            self.line.setMaximumWidth(180)
            self.line.setAlignment(Qt.AlignmentFlag.AlignRight)
            self.line.setPlaceholderText("null" if spec.optional else spec.bounds.describe())
        self.line.textEdited.connect(lambda text: self._emit(self._parse(text)))
        layout.addWidget(self.line, 1 if spec.kind == "text" else 0)
        if spec.kind in ("int", "float"):
            hint = QLabel(spec.bounds.describe() + (", empty = null" if spec.optional else ""), self.body)
            hint.setObjectName("dim")
            layout.addWidget(hint)
            layout.addStretch(1)

    def _parse(self, text: str) -> Any:
        if self.spec.kind in ("int", "float"):
            return parse_number(text, self.spec.kind)
        return text

    def set_value(self, value: Any) -> None:
        if self._parse(self.line.text()) == value and value is not MISSING:
            return    # the text already means this value ("0.90" vs 0.9): leave the typing alone
        self._updating = True
        self.line.setText(format_value(value))
        self._updating = False

    def input_widgets(self) -> list[QWidget]:
        return [self.line]


class FixedEditor(FieldEditor):
    """A key the editor does not let you change here (the mode name, set by the mode picker)."""

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        layout = QHBoxLayout(self.body)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(self.body)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label)
        layout.addStretch(1)

    def set_value(self, value: Any) -> None:
        self.label.setText(format_value(value) or "(missing)")

    def input_widgets(self) -> list[QWidget]:
        return []


class MappingEditor(FieldEditor):
    """Weights per allowed key (hedge allocation): a checkbox to include a key and its number."""

    def __init__(self, spec: FieldSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.grid = QGridLayout(self.body)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(8)
        self.rows: dict[str, tuple[QCheckBox, QLineEdit]] = {}
        for key in spec.mapping_keys:
            self._add_row(key)
        self.total = QLabel(self.body)
        self.total.setObjectName("dim")
        self.grid.addWidget(self.total, len(self.rows), 0, 1, 2)
        self.grid.setColumnStretch(2, 1)

    def _add_row(self, key: str) -> None:
        row = len(self.rows)
        box = QCheckBox(key if key in self.spec.mapping_keys else f"{key} (unknown)", self.body)
        line = QLineEdit(self.body)
        line.setMaximumWidth(120)
        line.setAlignment(Qt.AlignmentFlag.AlignRight)
        box.toggled.connect(lambda on, k=key: self._changed())
        line.textEdited.connect(lambda text, k=key: self._changed())
        self.grid.addWidget(box, row, 0)
        self.grid.addWidget(line, row, 1)
        self.rows[key] = (box, line)

    def current(self) -> dict[str, Any]:
        kind = self.spec.mapping_value.kind if self.spec.mapping_value else "float"
        return {key: parse_number(line.text(), kind) for key, (box, line) in self.rows.items() if box.isChecked()}

    def _changed(self) -> None:
        for box, line in self.rows.values():
            line.setEnabled(box.isChecked() and box.isEnabled())
        self._update_total()
        self._emit(self.current())

    def _update_total(self) -> None:
        values = [v for v in self.current().values() if isinstance(v, (int, float))]
        self.total.setText(f"sum of weights: {sum(values):.4g} (must be 1)")

    def set_value(self, value: Any) -> None:
        self._updating = True
        mapping = value if isinstance(value, dict) else {}
        for key in mapping:
            if key not in self.rows:
                self.grid.removeWidget(self.total)
                self._add_row(str(key))
                self.grid.addWidget(self.total, len(self.rows), 0, 1, 2)
        for key, (box, line) in self.rows.items():
            present = key in mapping
            box.setChecked(present)
            if present and parse_number(line.text(), "float") != mapping[key]:
                line.setText(format_value(mapping[key]))
            line.setEnabled(present and box.isEnabled())
        self._update_total()
        self._updating = False

    def input_widgets(self) -> list[QWidget]:
        return [w for pair in self.rows.values() for w in pair]

    def set_locked(self, locked: bool) -> None:
        for box, line in self.rows.values():
            box.setEnabled(not locked)
            line.setEnabled(not locked and box.isChecked())


def make_editor(spec: FieldSpec, parent: QWidget | None = None) -> FieldEditor:
    return {
        "bool": BoolEditor,
        "choice": ChoiceEditor,
        "float": LineEditor,
        "int": LineEditor,
        "text": LineEditor,
        "fixed": FixedEditor,
        "mapping": MappingEditor,
    }[spec.kind](spec, parent)
