"""Config panel: pick a mode and share class, edit it as a form or as YAML, validate as you type.

Each mode has its own draft (switching modes never loses edits). The text is the document; the form
and the YAML view are two views of it, kept in sync. Validation is the engine's, run on every change
(about 2 ms), so the Run button of the backtest panel only ever sees documents the engine accepts.
Saving writes a user file and refuses the shipped defaults; Revert goes back to the last load/save;
Reset restores the shipped default; the Diff tab compares with the shipped file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut, QSyntaxHighlighter, QTextCharFormat
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.config_draft import ModeDraft, SaveRefused, Validation
from app.config_schema import all_fields, mode_form
from app.settings import user_modes_dir
from app.widgets.config_form import ConfigForm
from app.widgets.field_editors import ChoiceEditor
from app.widgets.util import repolish
from app.widgets.yaml_editor import YamlEditor
from engine.config import MODES, ConfigError

#: Delay between the last keystroke in the YAML view and re-parsing it.
YAML_DEBOUNCE_MS = 250


@dataclass(frozen=True)
class DraftSnapshot:
    """What the backtest panel needs to run the editor's version of a mode."""

    mode: str
    text: str
    valid: bool
    label: str
    differs_from_shipped: bool
    problems: int


class DiffHighlighter(QSyntaxHighlighter):
    def highlightBlock(self, text: str) -> None:
        color = None
        if text.startswith("+") and not text.startswith("+++"):
            color = "#5fd38d"
        elif text.startswith("-") and not text.startswith("---"):
            color = "#ff6b6b"
        elif text.startswith("@@"):
            color = "#8ab4f8"
        if color:
            fmt = QTextCharFormat()
            fmt.setForeground(QColor(color))
            self.setFormat(0, len(text), fmt)


class ConfigPanel(QWidget):
    """The mode/config editor."""

    #: (mode) the draft of this mode changed and was re-validated
    draft_changed = Signal(str)
    #: (message) for the main window's status bar
    status_message = Signal(str)
    #: (mode) another mode is shown (the main window keeps the Backtest panel on it)
    mode_changed = Signal(str)

    def __init__(self, initial_mode: str = MODES[0], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.drafts: dict[str, ModeDraft] = {}
        self._shown_mode: str | None = None
        self.validations: dict[str, Validation] = {}
        self.locked = False
        self._sections = mode_form()
        self._specs = all_fields(self._sections)
        self._yaml_timer = QTimer(self)
        self._yaml_timer.setSingleShot(True)
        self._yaml_timer.setInterval(YAML_DEBOUNCE_MS)
        self._yaml_timer.timeout.connect(self._apply_yaml_text)
        self._build()
        self.set_mode(initial_mode)

    # ---- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)

        header = QHBoxLayout()
        header.setAlignment(Qt.AlignmentFlag.AlignTop)
        header.addWidget(QLabel("Mode"))
        self.mode_combo = QComboBox(self)
        for mode in MODES:
            self.mode_combo.addItem(mode, mode)
        self.mode_combo.currentIndexChanged.connect(lambda i: self.set_mode(self.mode_combo.itemData(i)))
        header.addWidget(self.mode_combo)
        header.addSpacing(12)
        header.addWidget(QLabel("Share class"))
        self.share_class_editor = ChoiceEditor(self._specs["share_class"], self)
        self.share_class_editor.edited.connect(self._on_form_edit)
        header.addWidget(self.share_class_editor, 0, Qt.AlignmentFlag.AlignTop)
        header.addStretch(1)
        self.load_button = QPushButton("Load…", self)
        self.save_button = QPushButton("Save", self)
        self.save_as_button = QPushButton("Save as…", self)
        self.revert_button = QPushButton("Revert", self)
        self.reset_button = QPushButton("Reset to shipped default", self)
        self.load_button.setToolTip("Open a mode file you saved earlier")
        self.save_button.setToolTip("Save to the file this mode was loaded from (Ctrl+S); the shipped defaults are never overwritten")
        self.revert_button.setToolTip("Discard edits since the last load or save")
        self.reset_button.setToolTip("Replace the contents with the shipped default of this mode")
        for button, slot in ((self.load_button, self.open_load_dialog), (self.save_button, self.save),
                             (self.save_as_button, self.open_save_dialog), (self.revert_button, self.revert),
                             (self.reset_button, self.reset_to_shipped)):
            button.clicked.connect(slot)
            header.addWidget(button)
        outer.addLayout(header)

        info = QHBoxLayout()
        self.file_label = QLabel(self)
        self.file_label.setObjectName("dim")
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        info.addWidget(self.file_label, 1)
        self.status_label = QLabel(self)
        info.addWidget(self.status_label)
        outer.addLayout(info)

        self.lock_banner = QLabel(self)
        self.lock_banner.setObjectName("warnBanner")
        self.lock_banner.setWordWrap(True)
        self.lock_banner.hide()
        outer.addWidget(self.lock_banner)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.form = ConfigForm(self._sections, skip=("mode", "share_class"), parent=splitter)
        self.form.value_edited.connect(self._on_form_edit)
        splitter.addWidget(self.form)

        self.tabs = QTabWidget(splitter)
        self.yaml_edit = YamlEditor(self.tabs)
        self.yaml_edit.textChanged.connect(self._yaml_timer.start)
        self.tabs.addTab(self.yaml_edit, "YAML")
        self.diff_view = QPlainTextEdit(self.tabs)
        self.diff_view.setReadOnly(True)
        self.diff_view.setFont(self.yaml_edit.font())
        self.diff_highlighter = DiffHighlighter(self.diff_view.document())
        self.tabs.addTab(self.diff_view, "Diff vs shipped")
        self.problems = QListWidget(self.tabs)
        self.problems.setWordWrap(True)
        self.problems.itemActivated.connect(self._go_to_problem)
        self.problems.itemClicked.connect(self._go_to_problem)
        self.tabs.addTab(self.problems, "Problems")
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([640, 480])
        outer.addWidget(splitter, 1)

        save = QShortcut(QKeySequence.StandardKey.Save, self, activated=self.save)
        save.setWhatsThis("Save the mode file (never over the shipped default)")

    # ---- public API ---------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.mode_combo.currentData()

    @property
    def draft(self) -> ModeDraft:
        return self.drafts[self.mode]

    @property
    def validation(self) -> Validation:
        return self.validations[self.mode]

    def set_mode(self, mode: str) -> None:
        """Show `mode` (creating its draft from the shipped default on first use)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (allowed: {', '.join(MODES)})")
        if self.mode_combo.currentData() != mode:
            self.mode_combo.blockSignals(True)
            self.mode_combo.setCurrentIndex(self.mode_combo.findData(mode))
            self.mode_combo.blockSignals(False)
        if mode not in self.drafts:
            self.drafts[mode] = ModeDraft(mode)
        self._yaml_timer.stop()
        self.yaml_edit.blockSignals(True)
        self.yaml_edit.setPlainText(self.draft.text)
        self.yaml_edit.blockSignals(False)
        switched = mode != self._shown_mode
        self._shown_mode = mode
        self._refresh()
        if switched:
            # Sections the mode switches off (enabled: false) start collapsed; the operator can open them.
            self.form.collapse_disabled_sections(self.draft)
            self.mode_changed.emit(mode)

    def draft_for(self, mode: str) -> DraftSnapshot | None:
        """The editor's version of `mode`, or None if it was never opened in the editor."""
        draft = self.drafts.get(mode)
        if draft is None:
            return None
        validation = self.validations.get(mode) or draft.validate()
        return DraftSnapshot(mode, draft.text, validation.ok, draft.file_label, draft.differs_from_shipped,
                             len(validation.errors))

    def set_field(self, key: str, value) -> None:
        """Set one key as if typed in the form (used by tests and scripted edits)."""
        self._on_form_edit(tuple(key.split(".")), value)

    def set_locked(self, locked: bool, reason: str = "A live trading session is running") -> None:
        """Lock editing (while a live session runs, its configuration must not change under it)."""
        self.locked = locked
        self.lock_banner.setText(f"{reason}: editing is locked until it stops.")
        self.lock_banner.setVisible(locked)
        self.form.set_locked(locked)
        self.share_class_editor.set_locked(locked)
        self.yaml_edit.setReadOnly(locked)
        for button in (self.load_button, self.save_button, self.save_as_button, self.revert_button,
                       self.reset_button):
            button.setEnabled(not locked)
        if not locked:
            self._refresh()

    def save(self) -> Path | None:
        if self.draft.origin is None:
            self.open_save_dialog()
            return None
        return self.save_to(self.draft.origin)

    def save_to(self, path: Path) -> Path | None:
        """Save the current mode to `path`; refuses invalid documents and the shipped files."""
        if self.locked:
            return None
        if not self.validation.ok:
            self._notify(f"Not saved: fix the {len(self.validation.errors)} problem(s) first (see Problems).", error=True)
            return None
        try:
            saved = self.draft.save(Path(path))
        except (SaveRefused, OSError) as exc:
            self._notify(f"Not saved: {exc}", error=True)
            return None
        self._refresh()
        self._notify(f"Saved {self.mode} to {saved}")
        return saved

    def load_file(self, path: Path) -> bool:
        """Open a mode file; its `mode:` key picks the mode whose draft it replaces."""
        if self.locked:
            return False
        try:
            draft = ModeDraft.from_file(Path(path))
        except ConfigError as exc:
            self._notify(f"Cannot load {path}: {exc.errors[0].message}", error=True)
            return False
        self.drafts[draft.mode] = draft
        self.set_mode(draft.mode)
        self._notify(f"Loaded {draft.mode} from {draft.origin}")
        return True

    def revert(self) -> None:
        if not self.locked:
            self.draft.revert()
            self._text_changed_by_model()

    def reset_to_shipped(self) -> None:
        if not self.locked:
            self.draft.reset_to_shipped()
            self._text_changed_by_model()

    # ---- dialogs (non-blocking: open() + signal, never exec()) ---------------------------------------
    def open_save_dialog(self) -> None:
        folder = user_modes_dir()
        folder.mkdir(parents=True, exist_ok=True)
        start = self.draft.origin or folder / f"{self.mode}.yaml"
        dialog = QFileDialog(self, f"Save {self.mode} as", str(start), "YAML files (*.yaml *.yml)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("yaml")
        dialog.fileSelected.connect(lambda name: self.save_to(Path(name)))
        dialog.open()

    def open_load_dialog(self) -> None:
        folder = user_modes_dir()
        dialog = QFileDialog(self, "Load a mode file", str(folder if folder.is_dir() else Path.home()),
                             "YAML files (*.yaml *.yml)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.fileSelected.connect(lambda name: self.load_file(Path(name)))
        dialog.open()

    # ---- edits --------------------------------------------------------------------------------
    def _on_form_edit(self, path: tuple, value) -> None:
        if self.locked or self.draft.parse_error is not None:
            return
        self.draft.set_value(tuple(path), value)
        self.yaml_edit.set_text_preserving_view(self.draft.text)
        self._refresh()

    def _apply_yaml_text(self) -> None:
        if self.locked:
            return
        text = self.yaml_edit.toPlainText()
        if text != self.draft.text:
            self.draft.set_text(text)
            self._refresh()

    def flush_yaml(self) -> None:
        """Apply pending YAML typing now (instead of after the debounce)."""
        if self._yaml_timer.isActive():
            self._yaml_timer.stop()
            self._apply_yaml_text()

    def _text_changed_by_model(self) -> None:
        self.yaml_edit.set_text_preserving_view(self.draft.text)
        self._refresh()

    # ---- refresh ------------------------------------------------------------------------------
    def _refresh(self) -> None:
        draft = self.draft
        validation = draft.validate()
        self.validations[self.mode] = validation
        parse_ok = draft.parse_error is None
        if parse_ok:
            self.form.load(draft)
            self.share_class_editor.set_value(draft.get(("share_class",)))
        self.form.set_locked(self.locked or not parse_ok)
        self.share_class_editor.set_locked(self.locked or not parse_ok)
        self.form.show_issues(validation.errors, validation.warnings, draft.file_label,
                              extra_editors={"share_class": self.share_class_editor})
        if not parse_ok:
            self.form.set_banner(f"The YAML has a syntax error; fix it in the YAML view (the form shows the last "
                                 f"valid document):\n{draft.parse_error.message}")
        self.yaml_edit.mark_lines({i.line: i.severity for i in [*validation.warnings, *validation.errors]
                                   if i.line is not None and i.file == draft.file_label})
        self.diff_view.setPlainText(draft.diff_against_shipped() or "No differences from the shipped default.")
        self._fill_problems(validation)
        self._update_labels(validation)
        self.draft_changed.emit(self.mode)

    def _fill_problems(self, validation: Validation) -> None:
        self.problems.clear()
        for severity, issues in (("error", validation.errors), ("warning", validation.warnings)):
            for issue in issues:
                where = f"line {issue.line}: " if issue.line else ""
                item = QListWidgetItem(f"{severity.upper()}  {where}{issue.key}: {issue.message}")
                item.setForeground(QColor("#ff6b6b" if severity == "error" else "#ffb454"))
                item.setData(Qt.ItemDataRole.UserRole, issue.line)
                self.problems.addItem(item)
        count = len(validation.errors) + len(validation.warnings)
        self.tabs.setTabText(2, f"Problems ({count})" if count else "Problems")

    def _update_labels(self, validation: Validation) -> None:
        draft = self.draft
        where = f"File: {draft.origin}" if draft.origin else \
            f"Shipped default configs/modes/{self.mode}.yaml (read-only; Save writes your own copy)"
        flags = []
        if draft.modified:
            flags.append("unsaved changes")
        if draft.differs_from_shipped:
            flags.append("differs from shipped")
        self.file_label.setText(where + (f"  ·  {', '.join(flags)}" if flags else ""))
        if validation.ok:
            warn = f" ({len(validation.warnings)} warning(s))" if validation.warnings else ""
            self.status_label.setText(f"✔ valid{warn}")
            self.status_label.setObjectName("okLabel")
            self.status_label.setStyleSheet("color: #5fd38d; font-weight: 600;")
        else:
            self.status_label.setText(f"✖ {len(validation.errors)} error(s): cannot be run or saved")
            self.status_label.setStyleSheet("color: #ff6b6b; font-weight: 600;")
        repolish(self.status_label)
        self.revert_button.setEnabled(not self.locked and draft.modified)
        self.save_button.setEnabled(not self.locked)

    def _go_to_problem(self, item: QListWidgetItem) -> None:
        line = item.data(Qt.ItemDataRole.UserRole)
        if line:
            self.tabs.setCurrentWidget(self.yaml_edit)
            self.yaml_edit.go_to_line(int(line))

    def _notify(self, message: str, error: bool = False) -> None:
        self.form.set_banner(message, "banner" if error else "infoBanner")
        self.status_message.emit(message)
