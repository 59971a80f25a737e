"""`python -m stack.tfvars [--check]`: writes infra/topology.auto.tfvars.json, Terraform's copy of the topology."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

from shared.config import Settings
from shared.topology import terraform_inputs

REPO_ROOT = Path(__file__).resolve().parents[1]
TFVARS = REPO_ROOT / "infra" / "topology.auto.tfvars.json"
COMMAND = "python -m stack.tfvars"


def runtime_dependencies(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """[project].dependencies of pyproject.toml: the requirements.txt of every function zip."""
    with pyproject.open("rb") as fh:
        return list(tomllib.load(fh)["project"]["dependencies"])


def render() -> str:
    """The file's text: the inputs for the default Settings (they hold no deployment's names), sorted, stable."""
    inputs = {**terraform_inputs(Settings()), "function_requirements": runtime_dependencies()}
    return json.dumps(inputs, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    """Write the file, or with --check exit 1 when the committed one differs from what would be written."""
    text = render()
    if argv == ["--check"]:
        if TFVARS.exists() and TFVARS.read_text() == text:
            return 0
        print(f"{TFVARS.relative_to(REPO_ROOT)} is stale: run `{COMMAND}` and commit it", file=sys.stderr)
        return 1
    if argv:
        print(f"usage: {COMMAND} [--check]", file=sys.stderr)
        return 2
    TFVARS.write_text(text)
    print(f"wrote {TFVARS.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
