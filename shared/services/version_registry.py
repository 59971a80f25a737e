"""The version registry object, `data_versions/version_registry.json`: read, and replaced under a precondition.

Replaced whole with `if_generation_match` and re-read on a conflict, so concurrent writers (two builds
finishing together, a rollback) never lose each other's entries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from shared.domain import bucket_layout as layout
from shared.domain.versions import add_version, new_version, parse_registry, version_id_for
from shared.errors import RegistryConflict
from shared.ports import RegistryBucket


def update_registry(
    bucket: RegistryBucket, change: Callable[[dict[str, Any]], tuple[dict[str, Any], bool]]
) -> dict[str, Any]:
    """Apply `change` to the registry with a generation precondition, re-reading on a concurrent write."""

    @retry(
        retry=retry_if_exception_type(RegistryConflict),
        stop=stop_after_attempt(20),
        wait=wait_random_exponential(multiplier=0.05, max=2),
        reraise=True,
    )
    def attempt() -> dict[str, Any]:
        data, generation = bucket.get_versioned(layout.REGISTRY)
        registry, changed = change(parse_registry(data))
        if changed and not bucket.put_if_generation(
            layout.REGISTRY, orjson.dumps(registry, option=orjson.OPT_INDENT_2), generation
        ):
            raise RegistryConflict(f"{layout.REGISTRY} changed while it was being updated")
        return registry

    return attempt()


def read_registry(bucket: RegistryBucket) -> dict[str, Any]:
    data, _ = bucket.get_versioned(layout.REGISTRY)
    return parse_registry(data)


def register_version(
    bucket: RegistryBucket, metadata: Mapping[str, Any], version_name: str | None, parent_version: str | None,
    now: datetime, extra: Mapping[str, Any] | None = None, flags: Mapping[str, Any] | None = None,
) -> str:
    """Add the dataset's version to the registry (idempotent for the same dataset); its version id.

    `extra` goes into the entry's metadata; `flags` are top-level keys of the entry (`quality_failed`)."""
    dataset_id = str(metadata["dataset_id"])
    version_id = version_id_for(version_name, dataset_id)
    summary = {key: metadata.get(key) for key in ("total_samples", "split_sizes", "error_type_distribution",
                                                   "error_score_stats", "corrections_included", "request", "source")}
    entry = new_version(
        version_id, dataset_id, str(metadata["gcs_path"]), metadata["files"], {**summary, **(extra or {})},
        metadata["quality_report"], parent_version, now,
    ) | dict(flags or {})
    update_registry(bucket, lambda registry: add_version(registry, entry, now))
    return version_id
