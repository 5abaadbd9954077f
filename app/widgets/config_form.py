"""The typed form of a mode document: one group per section, one editor per key, messages inline.

Every engine issue is shown next to the closest thing it names: the key's editor, else its section,
else a banner at the top (document-level problems and problems in other files, e.g. a venue file).

Sections fold: one the mode switches off (`enabled: false`, e.g. Hedge in pure_lending) starts folded
with "off in this mode" in its header, so the keys that matter come first; a section holding a
error always unfolds.
"""
from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.config_draft import MISSING, ModeDraft
from app.config_schema import FieldSpec, SectionSpec
from app.widgets.field_editors import FieldEditor, format_value, make_editor
from app.widgets.util import repolish
from engine.config import ConfigIssue


class CollapsibleSection(QWidget):
    """A header button that folds and unfolds the section's box of fields."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.setSpacing(2)
        self.toggle = QToolButton(self)
        self.toggle.setObjectName("sectionToggle")
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setCheckable(True)
        self.toggle.setChecked(True)
        self.toggle.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.toggle.toggled.connect(self._toggled)
        layout.addWidget(self.toggle)
        self.box = QGroupBox(self)
        self.box.setObjectName("sectionBody")
        layout.addWidget(self.box)
        self._note = ""
        self._toggled(True)

    @property
    def collapsed(self) -> bool:
        return not self.toggle.isChecked()

    def set_collapsed(self, collapsed: bool) -> None:
        self.toggle.setChecked(not collapsed)

    def set_note(self, note: str) -> None:
        self._note = note
        self._toggled(self.toggle.isChecked())

    def _toggled(self, expanded: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.toggle.setText(self.title + (f"  ({self._note})" if self._note else ""))
        self.toggle.setToolTip(("Fold" if expanded else "Unfold") + f" the {self.title} section")
        self.box.setVisible(expanded)


class ConfigForm(QScrollArea):
    """Scrollable form generated from SectionSpecs."""

    #: (key path, value)
    value_edited = Signal(tuple, object)

    def __init__(self, sections: Iterable[SectionSpec], skip: Iterable[str] = (), parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        inner = QWidget(self)
        self.setWidget(inner)
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(4, 4, 8, 4)
        self.banner = QLabel(inner)
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        layout.addWidget(self.banner)
        self.editors: dict[str, FieldEditor] = {}
        self.labels: dict[str, QLabel] = {}
        self.section_messages: dict[str, QLabel] = {}
        self.groups: dict[str, CollapsibleSection] = {}
        skipped = set(skip)
        for section in sections:
            layout.addWidget(self._build_section(section, skipped))
        layout.addStretch(1)

    def _build_section(self, section: SectionSpec, skipped: set[str]) -> CollapsibleSection:
        holder = CollapsibleSection(section.title, self.widget())
        self.groups[section.name] = holder
        box = holder.box
        grid = QGridLayout(box)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(6)
        grid.setColumnStretch(1, 1)
        grid.setColumnMinimumWidth(0, 170)      # the same label column in every section
        row = 0
        if section.help:
            help_label = QLabel(section.help, box)
            help_label.setObjectName("sectionHelp")
            help_label.setWordWrap(True)
            grid.addWidget(help_label, row, 0, 1, 2)
            row += 1
        message = QLabel(box)
        message.setObjectName("fieldError")
        message.setWordWrap(True)
        message.hide()
        grid.addWidget(message, row, 0, 1, 2)
        self.section_messages[section.name] = message
        row += 1
        for spec in section.fields:
            if spec.key in skipped:
                continue
            label = QLabel(spec.label, box)
            label.setToolTip(spec.help)
            label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            label.setContentsMargins(0, 4, 0, 0)
            editor = make_editor(spec, box)
            editor.edited.connect(self.value_edited)
            grid.addWidget(label, row, 0)
            grid.addWidget(editor, row, 1)
            self.editors[spec.key] = editor
            self.labels[spec.key] = label
            row += 1
        return holder

    def collapse_disabled_sections(self, draft: ModeDraft) -> None:
        """Fold each section whose `enabled` key is false in `draft`; unfold the others."""
        for name, section in self.groups.items():
            off = bool(name) and f"{name}.enabled" in self.editors and draft.get((name, "enabled")) is False
            section.set_note("off in this mode" if off else "")
            section.set_collapsed(off)

    # ---- state -> widgets ----------------------------------------------------------------------
    def load(self, draft: ModeDraft) -> None:
        """Show the draft's last parsed document and mark keys that differ from the shipped file."""
        for key, editor in self.editors.items():
            path = tuple(key.split("."))
            editor.set_value(draft.get(path))
            self._mark_changed(key, draft)

    def _mark_changed(self, key: str, draft: ModeDraft) -> None:
        path = tuple(key.split("."))
        label = self.labels[key]
        changed = draft.is_changed(path)
        font = QFont()               # only the weight: the size keeps following View > Text size
        font.setBold(changed)
        label.setFont(font)
        spec: FieldSpec = self.editors[key].spec
        label.setText(("● " if changed else "") + spec.label)
        shipped = draft.shipped_value(path)
        shipped_text = "(missing)" if shipped is MISSING else (format_value(shipped) or "null")
        label.setToolTip((spec.help + "\n" if spec.help else "") +
                         (f"Changed from the shipped default ({shipped_text})" if changed else "Shipped default"))

    def show_issues(self, errors: list[ConfigIssue], warnings: list[ConfigIssue], document_file: str,
                    extra_editors: dict[str, FieldEditor] | None = None) -> None:
        """Place each issue next to the key it names (errors first, then warnings)."""
        editors = {**self.editors, **(extra_editors or {})}
        per_editor: dict[str, list[tuple[str, str]]] = {}
        per_section: dict[str, list[str]] = {}
        banner: list[str] = []
        for severity, issues in (("error", errors), ("warning", warnings)):
            for issue in issues:
                text = issue.message if severity == "error" else f"warning: {issue.message}"
                if issue.file != document_file:
                    banner.append(f"{issue.file}: {issue.key}: {issue.message}")
                    continue
                target = self._editor_key(issue.key, editors)
                if target is not None:
                    sub = issue.key[len(target) + 1:]
                    per_editor.setdefault(target, []).append((severity, f"{sub}: {text}" if sub else text))
                    continue
                section = issue.key.split(".")[0]
                if section in self.section_messages and section:
                    per_section.setdefault(section, []).append(f"{issue.key}: {text}")
                else:
                    where = "" if issue.key == "(document)" else f"{issue.key}: "
                    line = f" (line {issue.line})" if issue.line and "line" not in issue.message else ""
                    banner.append(f"{where}{text}{line}")
        for key, editor in editors.items():
            found = per_editor.get(key)
            if found:
                severity = "error" if any(s == "error" for s, _ in found) else "warning"
                editor.set_issue(severity, "\n".join(text for _, text in found))
            else:
                editor.set_issue(None)
        for name, label in self.section_messages.items():
            messages = per_section.get(name)
            label.setVisible(bool(messages))
            label.setText("\n".join(messages or []))
        # A folded section never hides an error.
        flagged = {issue.key.split(".")[0] for issue in errors if issue.file == document_file}
        for name in flagged:
            if name in self.groups and self.groups[name].collapsed:
                self.groups[name].set_collapsed(False)
        self.set_banner("\n".join(banner))

    def set_banner(self, text: str, kind: str = "banner") -> None:
        self.banner.setObjectName(kind)
        repolish(self.banner)
        self.banner.setText(text)
        self.banner.setVisible(bool(text))

    @staticmethod
    def _editor_key(key: str, editors: dict[str, FieldEditor]) -> str | None:
        parts = key.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in editors:
                return candidate
        return None

    def set_locked(self, locked: bool) -> None:
        for editor in self.editors.values():
            editor.set_locked(locked)

    def editor(self, key: str) -> FieldEditor:
        return self.editors[key]
