"""Where configuration files live.

The default root is the repository's `configs/` folder, found relative to this package so that the
engine works from any working directory (tests, the app, `main.py` subcommands).
"""

from __future__ import annotations

from pathlib import Path

CONFIG_ROOT: Path = Path(__file__).resolve().parents[2] / "configs"


def resolve_root(config_root: Path | str | None) -> Path:
    return CONFIG_ROOT if config_root is None else Path(config_root)


def mode_path(root: Path, mode: str) -> Path:
    return root / "modes" / f"{mode}.yaml"


def share_class_path(root: Path, name: str) -> Path:
    return root / "share_classes" / f"{name}.yaml"


def venue_path(root: Path, name: str) -> Path:
    return root / "venues" / f"{name}.yaml"


def available_share_classes(root: Path) -> list[str]:
    """Names of the share-class files present under `root` (the allowed values of `share_class`)."""
    folder = root / "share_classes"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
