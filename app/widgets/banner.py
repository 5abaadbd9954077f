"""Banner labels whose kind (info / warning / error) changes at run time."""
from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QLabel

from app.widgets.util import repolish

#: objectNames styled in resources/style.qss
KINDS = ("infoBanner", "warnBanner", "banner")


def show_banner(label: QLabel, text: str, kind: str) -> None:
    """Show `text` in the style of `kind` (empty text hides the label).

    Re-polishing alone recolours a label but keeps its old contents margins, so a banner whose kind
    changed would lose its padding; the StyleChange event makes the style sheet re-apply them."""
    if kind not in KINDS:
        raise ValueError(f"unknown banner kind {kind!r}; allowed: {', '.join(KINDS)}")
    if label.objectName() != kind:
        label.setObjectName(kind)
        repolish(label)
        QCoreApplication.sendEvent(label, QEvent(QEvent.Type.StyleChange))
    label.setText(text)
    label.setVisible(bool(text))
