"""Small Qt helpers shared by the widgets."""
from __future__ import annotations

from PySide6.QtWidgets import QWidget


def repolish(widget: QWidget) -> None:
    """Re-apply the style sheet after an objectName/property change (Qt does not do it by itself)."""
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()
