"""Where the Google client libraries may be imported, and what an entry point may import (DESIGN.md layers)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-local imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_adapters_import_google() -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "google")
        for path in (REPO_ROOT / "shared").rglob("*.py")
        if "adapters" not in path.relative_to(REPO_ROOT / "shared").parts
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_entry_points_get_adapters_from_the_bootstrap_only() -> None:
    mains = sorted((REPO_ROOT / "functions").glob("*/main.py"))
    assert len(mains) >= 7
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(m for m in imported_modules(path) if m.startswith("shared.adapters"))
        for path in mains
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_the_checks_see_imports() -> None:
    """A reader that found nothing would pass both checks; it does see the adapters' own google imports."""
    assert "google.cloud" in imported_modules(REPO_ROOT / "shared" / "adapters" / "clients.py")
    assert "shared.bootstrap" in imported_modules(REPO_ROOT / "functions" / "record_failure" / "main.py")
