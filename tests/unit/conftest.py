"""Fixtures of the unit tests."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.config import CONFIG_ROOT


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """configs/ copied under the test's tmp dir."""
    target = tmp_path / "configs"
    shutil.copytree(CONFIG_ROOT, target)
    return target
