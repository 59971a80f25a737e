"""terraform fmt, checkov and bandit pass; a missing tool fails the test (run `make tools`), never skips it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
CHECKOV = REPO_ROOT / ".venv-tools" / "bin" / "checkov"


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env, check=False)


def test_terraform_fmt(tmp_path: Path) -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.fail("terraform is not on PATH: install terraform >= 1.5, then `make tools` for checkov")
    # An empty CLI config keeps terraform from reading (or warning about) a user's ~/.terraformrc.
    config = tmp_path / "terraformrc"
    config.write_text("")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(config)}
    result = _run([terraform, "fmt", "-check", "-recursive", "-diff", str(INFRA_DIR)], env=env)
    assert result.returncode == 0, f"terraform fmt -recursive infra would change:\n{result.stdout}{result.stderr}"


def test_checkov_finds_nothing() -> None:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV.relative_to(REPO_ROOT)} is missing: run `make tools`")
    cmd = [str(CHECKOV), "-d", str(INFRA_DIR), "--framework", "terraform", "--skip-download", "--quiet"]
    result = _run([*cmd, "--output", "json"])
    assert result.stdout.strip(), f"checkov printed nothing:\n{result.stderr}"
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert summary["failed"] == 0, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0, "checkov could not parse part of infra/"
    assert summary["passed"] > 0, "checkov checked nothing"
    # Skips come only from inline comments: no config file may skip checks wholesale.
    for config in (".checkov.yaml", ".checkov.yml", "infra/.checkov.yaml", "infra/.checkov.yml"):
        assert not (REPO_ROOT / config).exists(), f"{config} may not skip checks: skip inline with a reason"
    assert result.returncode == 0, result.stderr


def test_every_checkov_skip_is_inline_and_justified() -> None:
    """`# checkov:skip=CKV_X: why` inside the resource, one line; never a bare skip."""
    pattern = re.compile(r"^\s*#\s*checkov:skip=CKV2?_[A-Z]+_\d+:\s*\S.{10,}$")
    for path in sorted(INFRA_DIR.rglob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" in line:
                assert pattern.match(line), f"{path}:{number}: a skip needs `# checkov:skip=CKV_..: <justification>`"


def test_bandit_finds_nothing() -> None:
    probe = _run([sys.executable, "-m", "bandit", "--version"])
    if probe.returncode != 0:
        pytest.fail("bandit is not installed in this venv: run `make venv` (the dev extras) and `make tools`")
    result = _run([sys.executable, "-m", "bandit", "-r", "shared", "functions", "-q"])
    assert result.returncode == 0, f"bandit -r shared functions:\n{result.stdout}{result.stderr}"
