"""Where the app keeps its own state: QSettings (window layout, theme, text size, last mode, replay
speed and panel) and the user's config folder.

Both are looked up through these functions only, so tests (and the screenshot command) can point
them at a temporary folder and never read or overwrite a real user's layout or saved modes.
"""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from PySide6.QtCore import QSettings

from app import APP_NAME

#: Overrides the folder of QSettings and saved modes (tests, screenshot runs).
STATE_DIR_ENV = "BASIS_WORKSTATION_STATE_DIR"


def _state_override() -> Path | None:
    value = os.environ.get(STATE_DIR_ENV)
    return Path(value) if value else None


def app_settings() -> QSettings:
    """The app's QSettings: an INI file in the user config dir (or the override folder)."""
    override = _state_override()
    folder = override if override is not None else Path(platformdirs.user_config_dir(APP_NAME))
    folder.mkdir(parents=True, exist_ok=True)
    return QSettings(str(folder / "workstation.ini"), QSettings.Format.IniFormat)


def user_modes_dir() -> Path:
    """Default folder for mode files the user saves from the config editor (never configs/)."""
    override = _state_override()
    base = override if override is not None else Path(platformdirs.user_config_dir(APP_NAME))
    return base / "modes"


# ---- what the window remembers between sessions (keys of app_settings()) ----------------------
#: View > Theme and View > Text size
THEME_KEY = "view/theme"
FONT_SCALE_KEY = "view/font_scale"
#: the mode shared by the Config and Backtest panels, the replay speed, the panel in front
MODE_KEY = "session/mode"
SPEED_KEY = "session/replay_speed"
PANEL_KEY = "session/panel"


def read_str(key: str, allowed: tuple[str, ...] | list[str], default: str) -> str:
    """A remembered choice, or `default` when it is missing or no longer one of `allowed` (a mode
    renamed by an upgrade must not stop the app from starting)."""
    value = app_settings().value(key)
    return value if isinstance(value, str) and value in allowed else default


def read_float(key: str, allowed: tuple[float, ...], default: float) -> float:
    value = app_settings().value(key)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return min(allowed, key=lambda a: abs(a - number)) if allowed else number


def write(key: str, value: str | float) -> None:
    settings = app_settings()
    settings.setValue(key, value)
    settings.sync()


def user_lab_dir() -> Path:
    """Where the Lab keeps its sweep stores (one folder per mode), so a sweep resumes across sessions."""
    override = _state_override()
    base = override if override is not None else Path(platformdirs.user_data_dir(APP_NAME))
    return base / "lab"
