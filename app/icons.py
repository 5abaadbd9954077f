"""Icons from resources/icons, drawn in the active theme's text colour.

The SVGs paint with `currentColor`; each icon is rendered with that replaced by the theme's
colour (and a dimmed one for the disabled state) at the screen's device pixel ratio, so the
transport buttons stay visible on both themes and sharp on high-DPI screens. (The platform's
standard media icons were dark grey on the dark theme: hardly visible.)
"""
from __future__ import annotations

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from app import style

SIZES = (16, 20, 24, 32)


def _pixmap(svg: str, color: str, size: int, ratio: float) -> QPixmap:
    renderer = QSvgRenderer(QByteArray(svg.replace("currentColor", color).encode("utf-8")))
    pixmap = QPixmap(int(size * ratio), int(size * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        renderer.render(painter, QRectF(0, 0, size, size))
    finally:
        painter.end()
    return pixmap


def themed_icon(name: str, color: str | None = None) -> QIcon:
    """resources/icons/<name>.svg in `color` (default: the theme's text colour)."""
    path = style.ICONS / f"{name}.svg"
    if not path.is_file():
        raise FileNotFoundError(f"no icon {path}")
    svg = path.read_text(encoding="utf-8")
    screen = QGuiApplication.primaryScreen()
    ratio = screen.devicePixelRatio() if screen is not None else 1.0
    theme = style.current()
    icon = QIcon()
    for size in SIZES:
        icon.addPixmap(_pixmap(svg, color or theme.text, size, ratio), QIcon.Mode.Normal)
        icon.addPixmap(_pixmap(svg, theme.text_disabled, size, ratio), QIcon.Mode.Disabled)
    return icon


def icon_size(points: int = 20) -> QSize:
    """A square icon size that grows with the text size setting."""
    side = style.scaled_px(points)
    return QSize(side, side)
