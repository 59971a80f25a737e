"""The .tf files of a Terraform module as python-hcl2 data: blocks by kind and name, expressions as HCL text."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

from shared.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
FUNCTION_MODULE = Path("modules") / "function"
TFVARS_NAME = "topology.auto.tfvars.json"

# A string literal keeps its quotes ('"imports/"'), an expression is wrapped ('${var.topic}'), a template is both.
_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False)


@dataclass(frozen=True)
class TfModule:
    """The top-level blocks of one module directory's .tf files, by kind, in file order."""

    directory: Path
    blocks: dict[str, list[dict[str, Any]]]

    @classmethod
    def load(cls, directory: Path) -> TfModule:
        blocks: dict[str, list[dict[str, Any]]] = {}
        for path in sorted(directory.glob("*.tf")):
            for kind, entries in load_file(path).items():
                blocks.setdefault(kind, []).extend(entries)
        return cls(directory, blocks)

    def locals(self) -> dict[str, Any]:
        return {k: v for block in self.blocks.get("locals", []) for k, v in block.items()}

    def variables(self) -> dict[str, dict[str, Any]]:
        return {unquote(name): body for block in self.blocks.get("variable", []) for name, body in block.items()}

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for block in self.blocks.get("resource", []) + self.blocks.get("data", []):
            for name, body in block.get(f'"{kind}"', {}).items():
                found[unquote(name)] = body
        return found

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        resources = self.resources(kind)
        assert name in resources, f"{self.directory.name}/ declares no {kind}.{name} (it has {sorted(resources)})"
        return resources[name]

    def module(self, name: str) -> dict[str, Any]:
        for block in self.blocks.get("module", []):
            if f'"{name}"' in block:
                return dict(block[f'"{name}"'])
        raise AssertionError(f"{self.directory.name}/ declares no module {name!r}")


@dataclass(frozen=True)
class Infra:
    """infra/ as Terraform reads it: the root module, the function module and the generated inputs."""

    root: TfModule
    function: TfModule
    inputs: dict[str, Any]
    settings: Settings = field(default_factory=Settings)  # the Settings it is compared with

    @classmethod
    def load(cls, infra_dir: Path = INFRA_DIR, settings: Settings | None = None) -> Infra:
        return cls(
            root=TfModule.load(infra_dir),
            function=TfModule.load(infra_dir / FUNCTION_MODULE),
            inputs=json.loads((infra_dir / TFVARS_NAME).read_text()),
            settings=settings or Settings(),
        )


def load_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    """One .tf file's blocks, without its comments."""
    with path.open() as fh:
        return hcl2.load(fh, serialization_options=_OPTIONS)


def strings(data: Any, skip: frozenset[str] = frozenset({"description"})) -> list[str]:
    """Every string (literal or expression) and key in parsed HCL, but the values of the `skip` attributes."""
    if isinstance(data, dict):
        return [s for k, v in data.items() if k not in skip for s in (k, *strings(v, skip))]
    if isinstance(data, list):
        return [s for v in data for s in strings(v, skip)]
    return [data] if isinstance(data, str) else []


def unquote(text: str) -> str:
    """The value of a quoted HCL string literal or block label."""
    assert len(text) >= 2 and text[0] == text[-1] == '"', f"not a quoted string: {text!r}"
    return text[1:-1]


def literal(value: Any) -> Any:
    """A literal's Python value: '"x"' is "x", numbers stay numbers; an expression or a template fails."""
    if isinstance(value, str):
        assert "${" not in value, f"an expression where a literal was expected: {value}"
        return unquote(value)
    return value


def render(template: str, values: dict[str, str]) -> str:
    """A quoted HCL template with its ${reference}s replaced; one it does not know fails (it names them)."""
    text = unquote(template)
    for reference, value in values.items():
        text = text.replace("${" + reference + "}", value)
    assert "${" not in text, f"{template} uses more than {sorted(values)}"
    return text
