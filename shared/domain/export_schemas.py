"""Write the JSON Schemas of the Pub/Sub messages and of the build request to ``schemas/``.

Run ``python -m shared.domain.export_schemas``; a test fails when a committed schema is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from shared.domain.dataset_request import BuildRequest
from shared.domain.failure_event import Correction, FailureEvent

SCHEMAS: dict[str, type[BaseModel]] = {
    "failure_event.schema.json": FailureEvent,
    "correction.schema.json": Correction,
    "dataset_request.schema.json": BuildRequest,  # the body of an uploaded dataset-requests/<name>.json
}
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "schemas"


def render_schema(model: type[BaseModel]) -> str:
    """The model's validation JSON Schema as stable, diff-friendly text."""
    schema = model.model_json_schema(mode="validation")
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_schemas(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Write every message schema into ``directory`` and return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMAS.items():
        path = directory / name
        path.write_text(render_schema(model), encoding="utf-8")
        written.append(path)
    return written


def main() -> int:
    """Export to the directory given as the only argument, or to the repo's schemas/."""
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    for path in export_schemas(directory):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
