"""What the comprehensive report advises, from the case statistics and the number of dataset versions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Below these, the report recommends collecting or correcting more before fine-tuning.
MIN_CORRECTION_RATE = 0.5
GOOD_CORRECTION_RATE = 0.7
MIN_CASES = 100
ENOUGH_CASES = 500
MIN_ERROR_TYPES = 3


def assess_quality(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The overall data quality verdict from the case statistics."""
    return {
        "total_failed_cases": stats["total_cases"],
        "correction_rate": stats["correction_rate"],
        "quality_status": "good" if stats["correction_rate"] > GOOD_CORRECTION_RATE else "needs_improvement",
        "error_type_diversity": len(stats["error_type_distribution"]),
    }


def recommendations(stats: Mapping[str, Any], total_versions: int) -> list[str]:
    """What to do next, from the case statistics and the number of dataset versions."""
    advice = []
    if stats["correction_rate"] < MIN_CORRECTION_RATE:
        advice.append("Low correction rate: add corrections before fine-tuning; only corrected cases are learned.")
    if stats["total_cases"] < MIN_CASES:
        advice.append(f"Fewer than {MIN_CASES} failed cases: keep collecting before fine-tuning.")
    elif stats["total_cases"] >= ENOUGH_CASES:
        advice.append("Enough failed cases collected: consider preparing a fine-tuning dataset.")
    if len(stats["error_type_distribution"]) < MIN_ERROR_TYPES:
        advice.append("Few error types: the model may benefit from more varied failures.")
    if total_versions == 0:
        advice.append("No dataset version yet: version prepared datasets to compare and roll back.")
    return advice
