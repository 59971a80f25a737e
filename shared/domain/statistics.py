"""Statistics over all cases, summed from counter shards (no single hot document).

The keys of `DataManager.get_statistics()` (the seed's names first; every stored case is a failed transcription):

- ``total_failed_cases``: stored cases (the seed's name); ``total_cases`` is the same number, kept for callers
  written against it. Quarantined events are not cases and are counted apart, in ``quarantined_events``.
- ``corrected_cases``: cases that have a corrected transcript (however many corrections each one had).
- ``correction_rate``: ``corrected_cases / total_failed_cases`` in [0, 1], 0.0 when there is no case.
- ``error_type_distribution``: cases per error type (a case with two types counts in both), only non-zero ones.
- ``average_error_score``: mean ``error_score`` of the cases that have one, None when none has; rounded to 9
  decimals, since the sum behind it is a float the counter shards add up in any order.
- ``cases_by_model_version``: cases per model version (``(unknown)`` for a case without one).

A store gives the shards as mappings to be added up: the counter shards, and the per-model counter documents as
``{"model_versions": {name: n}}`` each (shared/adapters/firestore_counters.py keeps each model version's count in
documents of its own, so no shard grows a key per model version; shards written before that hold the map).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def summarize(shards: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """DataManager.get_statistics() from the counter shards' documents."""
    total = corrected = score_count = quarantined = 0
    score_sum = 0.0
    error_types: dict[str, int] = {}
    model_versions: dict[str, int] = {}
    for shard in shards:
        total += int(shard.get("total_cases", 0))
        corrected += int(shard.get("corrected_cases", 0))
        score_sum += float(shard.get("error_score_sum", 0.0))
        score_count += int(shard.get("error_score_count", 0))
        quarantined += int(shard.get("quarantined", 0))
        for name, n in (shard.get("error_types") or {}).items():
            error_types[name] = error_types.get(name, 0) + int(n)
        for name, n in (shard.get("model_versions") or {}).items():
            model_versions[name] = model_versions.get(name, 0) + int(n)
    return {
        "total_failed_cases": total,
        "total_cases": total,
        "corrected_cases": corrected,
        "correction_rate": corrected / total if total else 0.0,
        "error_type_distribution": dict(sorted((k, v) for k, v in error_types.items() if v)),
        "average_error_score": round(score_sum / score_count, 9) if score_count else None,
        "cases_by_model_version": dict(sorted((k, v) for k, v in model_versions.items() if v)),
        "quarantined_events": quarantined,
    }
