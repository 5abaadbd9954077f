"""Where the app keeps its own state: QSettings (window layout) and the user's config folder.

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


def user_lab_dir() -> Path:
    """Where the Lab keeps its sweep stores (one folder per mode), so a sweep resumes across sessions."""
    override = _state_override()
    base = override if override is not None else Path(platformdirs.user_data_dir(APP_NAME))
    return base / "lab"
