"""What one delivery did, in the one shape every push handler returns and logs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_IDS = ("reason", "case_id", "kind", "record_id", "model_version")


@dataclass(frozen=True)
class Outcome:
    """A status (stored, duplicate, corrected, quarantined, built, imported, ignored, ...), the reason when the
    input was refused, the ids it touched, and any other figures worth a log line."""

    status: str
    reason: str | None = None
    case_id: str | None = None
    kind: str | None = None
    record_id: str | None = None
    model_version: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def log_fields(self) -> dict[str, Any]:
        """Everything but the status that is set, for the log line."""
        ids = {name: value for name in _IDS if (value := getattr(self, name)) is not None}
        return {**ids, **self.details}
