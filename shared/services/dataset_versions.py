"""Use cases of dataset versions: create, compare, check, roll back, report.

Versions are immutable manifests (per-file sha256 and a checksum over them) of dataset prefixes that are never
rewritten; the registry object is replaced whole under a generation precondition (version_registry.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from shared.domain import bucket_layout as layout
from shared.domain import versions
from shared.domain.dataset_quality import QualityThresholds, quality_gate
from shared.errors import BadInput, QualityGateFailed, TargetChanged
from shared.ports import Bucket
from shared.services.datasets import changed_files, dataset_quality, finished_metadata, object_sha256, read_rows
from shared.services.version_registry import read_registry, register_version, update_registry
from shared.snapshot.dataset_files import compare_case_files, read_datasets
from shared.snapshot.engine import EngineSettings


def create_version(
    bucket: Bucket, dataset_id: str, version_name: str | None, metadata: Mapping[str, Any] | None,
    parent_version: str | None, run_quality_check: bool, now: datetime,
    thresholds: QualityThresholds | None = None, allow_failed_quality: bool = False,
) -> str:
    """Version a finished dataset; the version id (the same one again for the same dataset and name).

    The quality report is the build's, or re-run on the files as they are now with `thresholds` when asked.
    A dataset whose report failed is refused (QualityGateFailed, saying why) unless `allow_failed_quality`;
    its entry is then flagged `quality_failed`.
    """
    found = finished_metadata(bucket, dataset_id)
    if run_quality_check:
        found = {**found, "quality_report": dataset_quality(bucket, dataset_id, thresholds=thresholds)}
    gate = quality_gate(found["quality_report"], True, allow_failed_quality)
    if gate["version"] == "refused":
        raise QualityGateFailed(f"{dataset_id}: {gate['message']}")
    flags = {"quality_failed": True} if gate["version"] == "registered_flagged" else None
    return register_version(bucket, found, version_name, parent_version, now, metadata, flags=flags)


def case_splits(bucket: Bucket, dataset_id: str) -> dict[str, str]:
    """Each case id of a dataset with the split it is in, as dicts of every row (the reference compare_versions'
    DuckDB join is tested and benchmarked against; nothing on a request path calls it)."""
    return {
        str(row["case_id"]): split
        for split, rows in read_rows(bucket, dataset_id).items()
        for row in rows
        if "case_id" in row
    }


def compare_versions(
    bucket: Bucket, version_id1: str, version_id2: str, settings: EngineSettings | None = None
) -> dict[str, Any]:
    """What differs between two versions: files, sizes, error types, quality, lineage and which cases were
    added, removed or (never, by design) moved between splits.

    The cases are versions.compare_cases of the two datasets' case_splits, joined on DuckDB over local copies
    of their Parquet copies, or of their split files when the copies are missing or either changed since the
    version was made (shared/snapshot/dataset_files.py), instead of two dicts of every case."""
    registry = read_registry(bucket)
    entries = [versions.get_version(registry, v) for v in (version_id1, version_id2)]
    comparison = versions.compare_versions(registry, version_id1, version_id2)
    engine = settings or EngineSettings.from_env()
    with tempfile.TemporaryDirectory(prefix="stt-compare-") as tmp:
        comparison["cases"] = read_datasets(
            bucket, [(entry["dataset_id"], entry.get("files", {})) for entry in entries], Path(tmp),
            lambda rows: compare_case_files(rows[0], rows[1], engine),
        )
    return comparison


def rollback(bucket: Bucket, version_id: str, target_path: str | None, now: datetime) -> dict[str, Any]:
    """Make `version_id` the current version again once its files are verified; with `target_path` (a bucket
    prefix, never a trigger or registry prefix) also copy its files there for a trainer that reads a fixed path.

    The registry's pointer moves last: with a target, only after the files are copied and checked there and the
    target's manifest names the version (restore_to). A crash or a refusal before that leaves it where it was.
    """
    target = layout.restore_prefix(target_path) if target_path else None
    entry = versions.get_version(read_registry(bucket), version_id)
    changed = changed_files(bucket, entry["dataset_id"], entry["files"])
    if changed:
        prefix = layout.dataset_prefix(entry["dataset_id"])
        raise BadInput(f"cannot roll back to {version_id}: {', '.join(prefix + n for n in changed)} missing or changed")
    restored = restore_to(bucket, version_id, entry, target, now) if target else None
    registry = update_registry(bucket, lambda reg: (versions.rollback(reg, version_id, now), True))
    result: dict[str, Any] = {"version_id": version_id, "current_version": registry["current_version"],
                              "verified_files": sorted(entry["files"]), "history": registry["history"][-1]}
    if target:
        result["restored_to"] = restored
        result["restore_manifest"] = bucket.uri(layout.restore_manifest_name(target))
    return result


def restore_to(bucket: Bucket, version_id: str, entry: Mapping[str, Any], target: str, now: datetime) -> list[str]:
    """Copy a verified version's files to `target`, check the copies, then write the target's manifest (the
    version and each file's sha256) last; the copies' URIs.

    The manifest is replaced only if it is still the generation found before the copies: a concurrent restore to
    the same target that wrote its manifest meanwhile makes this one fail (TargetChanged, retried) rather than
    claim files it may have overwritten, and a copy overwritten by a restore still running fails the check. So a
    manifest names files that held its version when it was written, and `restored_version` checks they still do.
    """
    manifest_name = layout.restore_manifest_name(target)
    _, generation = bucket.get_versioned(manifest_name)
    prefix = layout.dataset_prefix(entry["dataset_id"])
    files = {name: {"sha256": str(info["sha256"])} for name, info in sorted(entry["files"].items())}
    copied = [bucket.copy(prefix + name, target + name) for name in files]
    differing = [target + name for name, info in files.items()
                 if object_sha256(bucket, target + name) != info["sha256"]]
    if differing:
        raise TargetChanged(f"restoring {version_id} to {target}: {', '.join(differing)} changed during the copy "
                            "(another restore to the same target?); retry")
    manifest = {"version_id": version_id, "dataset_id": entry["dataset_id"], "checksum": entry.get("checksum"),
                "restored_at": now.isoformat(), "files": files}
    if not bucket.put_if_generation(manifest_name, orjson.dumps(manifest, option=orjson.OPT_INDENT_2), generation):
        raise TargetChanged(f"restoring {version_id} to {target}: another restore wrote {manifest_name} meanwhile; "
                            "retry")
    return copied


def restored_version(bucket: Bucket, target_path: str) -> dict[str, Any]:
    """What a restore target holds: its manifest, once every file it names is checked to hold its sha256.

    BadInput when the target has no manifest or its files are not the version the manifest names (a restore
    that crashed midway, or two at once): a reader never takes a mix of versions for one.
    """
    target = layout.restore_prefix(target_path)
    data = bucket.get(layout.restore_manifest_name(target))
    if data is None:
        raise BadInput(f"{target} holds no restored version (no {layout.RESTORE_MANIFEST}): restore one first")
    manifest: dict[str, Any] = orjson.loads(data)
    differing = [target + name for name, info in sorted(manifest["files"].items())
                 if object_sha256(bucket, target + name) != info["sha256"]]
    if differing:
        raise BadInput(f"{target} does not hold version {manifest['version_id']} as its manifest says: "
                       f"{', '.join(differing)} missing or changed (a restore midway?); restore it again")
    return manifest
