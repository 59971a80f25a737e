"""Write the JSON Schema of `training-metrics` records: python -m shared.domain.export_metric_schemas."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.domain.metric_records import MAX_RECORD_BYTES, METRIC_RECORD_ADAPTER

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "schemas" / "metric_record.schema.json"


def metric_record_schema() -> dict[str, Any]:
    """The schema of one message on `training-metrics`, discriminated on `kind`."""
    schema = METRIC_RECORD_ADAPTER.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "MetricRecord",
        "description": (
            "One UTF-8 JSON message on the training-metrics topic, at most "
            f"{MAX_RECORD_BYTES} bytes. Rules a schema cannot express (no NaN/Infinity, "
            "recorded_at at most 5 minutes in the future) are in shared/domain/metric_records.py."
        ),
        **schema,
    }


def render_schema() -> str:
    """The schema file's exact text, stable across runs so a diff means a real change."""
    return json.dumps(metric_record_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the schema file, or with `--check` fail when the committed one is stale."""
    args = sys.argv[1:] if argv is None else argv
    text = render_schema()
    if "--check" in args:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != text:
            sys.stderr.write(f"{SCHEMA_PATH} is stale; run python -m shared.domain.export_metric_schemas\n")
            return 1
        return 0
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {SCHEMA_PATH}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
