"""The app's inner layering (docs/ARCHITECTURE.md), enforced like the engine's dependency rule:

- widgets are leaves: they import no venue code, no bootstrap, no panel and no controller;
- panels import no venue code and no bootstrap (they reach venues through controllers);
- controllers import no bootstrap, no panel and no widget;
- nothing under app/ imports bootstrap: only bootstrap.py and main.py wire implementations.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"

RULES: dict[str, tuple[str, ...]] = {
    "app/widgets": ("venues", "bootstrap", "app.panels", "app.controllers"),
    "app/panels": ("venues", "bootstrap"),
    "app/controllers": ("bootstrap", "app.panels", "app.widgets"),
    "app": ("bootstrap",),
}


def imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute module a file imports, with its line (imports under TYPE_CHECKING too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _forbidden(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_each_app_layer_imports_only_what_it_may():
    offenders = []
    for path in APP.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        layer = next(prefix for prefix in RULES if rel.startswith(prefix + "/"))
        for line, module in imports(path):
            if _forbidden(module, RULES[layer]):
                offenders.append(f"{rel}:{line} imports {module} ({layer} may not)")
    assert offenders == []


def test_only_main_imports_bootstrap_outside_the_tests():
    importers = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("*.py")
                       for _, module in imports(p) if module == "bootstrap")
    nested = [p.relative_to(ROOT).as_posix() for folder in ("app", "engine", "venues")
              for p in (ROOT / folder).rglob("*.py") for _, m in imports(p) if m.split(".")[0] == "bootstrap"]
    assert set(importers) <= {"main.py"} and nested == []


def test_the_rule_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "w.py"
    sample.write_text("from venues.checks import Status\nimport app.controllers.live\nfrom app import style\n")
    found = [m for _, m in imports(sample) if _forbidden(m, RULES["app/widgets"])]
    assert found == ["venues.checks", "app.controllers.live"]
