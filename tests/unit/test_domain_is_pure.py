"""shared/domain imports neither google.* nor functions_framework (DESIGN.md, convention 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOMAIN_DIR = REPO_ROOT / "shared" / "domain"
FORBIDDEN = ("google", "functions_framework")

# A stub ``shared`` package, so only shared/domain is executed: shared/__init__.py may
# legitimately re-export services that use adapters, and must not hide or cause a failure here.
PROBE = """
import importlib, json, sys, types
shared = types.ModuleType("shared")
shared.__path__ = [{shared_dir!r}]
sys.modules["shared"] = shared
before = set(sys.modules)
for name in {modules!r}:
    importlib.import_module(name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def domain_modules() -> list[str]:
    """Every module under shared/domain, as an importable name."""
    modules = ["shared.domain"]
    for path in sorted(DOMAIN_DIR.rglob("*.py")):
        relative = path.relative_to(REPO_ROOT).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        modules.append(".".join(parts))
    return sorted(set(modules))


def test_domain_modules_are_found() -> None:
    modules = domain_modules()
    assert "shared.domain.failure_event" in modules
    assert "shared.domain.error_taxonomy" in modules
    assert "shared.domain.transcript_metrics" in modules


def test_domain_imports_no_cloud_or_framework_module() -> None:
    probe = PROBE.format(shared_dir=str(REPO_ROOT / "shared"), modules=domain_modules())
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(domain_modules()) <= set(imported)
    offenders = [name for name in imported if name.startswith(FORBIDDEN)]
    assert offenders == []
