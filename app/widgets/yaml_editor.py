"""The raw YAML view of the config editor: plain text with light highlighting and error lines marked."""
from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
)
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget


def _format(color: str, bold: bool = False) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(QColor(color))
    if bold:
        fmt.setFontWeight(QFont.Weight.Bold)
    return fmt


class YamlHighlighter(QSyntaxHighlighter):
    """Keys, numbers/booleans and comments: enough to read a config at a glance."""

    _KEY = re.compile(r"^\s*(?:- )?([A-Za-z0-9_\"']+)\s*:")
    _SCALAR = re.compile(r"(?<=[:\s{,\[])(-?\d[\d_.eE+-]*|true|false|null|~)(?=\s*(?:[,}\]#]|$))")
    _COMMENT = re.compile(r"(^|\s)#.*$")

    def __init__(self, document) -> None:
        super().__init__(document)
        self.key_format = _format("#8ab4f8", bold=True)
        self.scalar_format = _format("#f5b971")
        self.comment_format = _format("#7f8794")

    def highlightBlock(self, text: str) -> None:
        match = self._KEY.match(text)
        if match:
            self.setFormat(match.start(1), match.end(1) - match.start(1), self.key_format)
        for scalar in self._SCALAR.finditer(text):
            self.setFormat(scalar.start(1), scalar.end(1) - scalar.start(1), self.scalar_format)
        comment = self._COMMENT.search(text)
        if comment:
            start = comment.start() + (1 if comment.group(1) else 0)
            self.setFormat(start, len(text) - start, self.comment_format)


class YamlEditor(QPlainTextEdit):
    """Monospace editor; `mark_lines` underlines the lines the validator complained about."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSize(max(font.pointSize(), 10))
        self.setFont(font)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setTabChangesFocus(False)
        self.highlighter = YamlHighlighter(self.document())
        self._marked: dict[int, str] = {}

    def set_text_preserving_view(self, text: str) -> None:
        """Replace the text but keep the scroll position and cursor line (form edits rewrite it)."""
        if text == self.toPlainText():
            return
        scroll = self.verticalScrollBar().value()
        line = self.textCursor().blockNumber()
        self.blockSignals(True)
        self.setPlainText(text)
        self.blockSignals(False)
        block = self.document().findBlockByNumber(min(line, self.document().blockCount() - 1))
        cursor = QTextCursor(block)
        self.setTextCursor(cursor)
        self.verticalScrollBar().setValue(scroll)
        self._apply_marks()

    def mark_lines(self, lines: dict[int, str]) -> None:
        """{1-based line: severity} -> red (error) or amber (warning) background."""
        self._marked = dict(lines)
        self._apply_marks()

    def _apply_marks(self) -> None:
        selections = []
        for line, severity in sorted(self._marked.items()):
            block = self.document().findBlockByNumber(line - 1)
            if not block.isValid():
                continue
            selection = QTextEdit.ExtraSelection()
            selection.format.setBackground(QColor("#4a2327" if severity == "error" else "#4a3a20"))
            selection.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
            selection.cursor = QTextCursor(block)
            selections.append(selection)
        self.setExtraSelections(selections)

    def go_to_line(self, line: int) -> None:
        block = self.document().findBlockByNumber(max(0, line - 1))
        if block.isValid():
            self.setTextCursor(QTextCursor(block))
            self.centerCursor()
            self.setFocus(Qt.FocusReason.OtherFocusReason)
