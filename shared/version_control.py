"""DataVersionControl: the seed's dataset versions, kept in `data_versions/version_registry.json`.

Versions are immutable manifests (per-file sha256 and a checksum over them) of dataset prefixes that are
never rewritten; the registry is replaced whole under a generation precondition, so concurrent writers
(two builds finishing together, a rollback) never lose each other's entries. A rollback moves the registry's
`current_version` back (after checking the files still match their checksums) and records it in `history`.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from shared.adapters.gcs import BucketStore
from shared.config import Settings
from shared.domain import versions
from shared.domain.dataset_quality import check_quality
from shared.errors import BadInput, NotFound
from shared.services.bulk_import import IMPORT_PREFIX
from shared.services.dataset_builds import DATASETS_PREFIX, REQUEST_PREFIX, dataset_prefix, read_metadata, read_rows
from shared.services.version_registry import REGISTRY_NAME, read_registry, register_version, update_registry


class DataVersionControl:
    """Create, list, compare, check and roll back dataset versions (emulators or GCP)."""

    def __init__(self, settings: Settings | None = None, bucket: BucketStore | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._bucket = bucket

    @property
    def bucket(self) -> BucketStore:
        if self._bucket is None:
            self._bucket = BucketStore(self.settings)
        return self._bucket

    @property
    def versions(self) -> dict[str, dict[str, Any]]:
        """Every version by id, as the registry holds them now."""
        return dict(read_registry(self.bucket)["versions"])

    def create_version(
        self,
        dataset_path: str,
        version_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        parent_version: str | None = None,
        run_quality_check: bool = True,
    ) -> str:
        """Version a finished dataset (its id or its gs:// prefix); the version id (the same one again for
        the same dataset and name). The quality report is the build's, or re-run on the files when asked."""
        dataset_id = self._dataset_id(dataset_path)
        found = read_metadata(self.bucket, dataset_id)
        if found is None:
            raise NotFound(f"no finished dataset {dataset_id!r} (metadata.json missing)")
        if run_quality_check:
            found = {**found, "quality_report": check_quality(read_rows(self.bucket, dataset_id))}
        return register_version(self.bucket, found, version_name, parent_version, datetime.now(UTC), metadata)

    def get_version(self, version_id: str) -> dict[str, Any] | None:
        """One version's entry, or None."""
        return read_registry(self.bucket)["versions"].get(version_id)

    def list_versions(
        self, parent_version: str | None = None, min_quality_score: float | None = None
    ) -> list[dict[str, Any]]:
        """Versions, newest first, optionally only the children of one or those above a quality score."""
        return versions.list_versions(read_registry(self.bucket), parent_version, min_quality_score)

    def get_version_lineage(self, version_id: str) -> list[dict[str, Any]]:
        """The version and its ancestors, oldest first."""
        return versions.get_version_lineage(read_registry(self.bucket), version_id)

    def compare_versions(self, version_id1: str, version_id2: str) -> dict[str, Any]:
        """What differs between two versions: files, sizes, error types, quality, lineage and which cases
        were added, removed or (never, by design) moved between splits."""
        registry = read_registry(self.bucket)
        maps = [self._case_splits(versions.get_version(registry, v)["dataset_id"]) for v in (version_id1, version_id2)]
        return versions.compare_versions(registry, version_id1, version_id2, maps[0], maps[1])

    def check_quality(self, dataset_path: str) -> dict[str, Any]:
        """The quality report of a dataset's rows as they are now."""
        return check_quality(read_rows(self.bucket, self._dataset_id(dataset_path)))

    def rollback_to_version(self, version_id: str, target_path: str | None = None) -> dict[str, Any]:
        """Make `version_id` the current version again, after checking its files are intact.

        With `target_path` (a prefix in the bucket, e.g. "finetuning_datasets/current/"), its files are also
        copied there, for a trainer that reads a fixed path.
        """
        target = _restore_target(target_path) if target_path else None
        entry = versions.get_version(read_registry(self.bucket), version_id)
        prefix = dataset_prefix(entry["dataset_id"])
        for name, recorded in entry["files"].items():
            data = self.bucket.get(prefix + name)
            if data is None or hashlib.sha256(data).hexdigest() != recorded["sha256"]:
                raise BadInput(f"cannot roll back to {version_id}: {prefix}{name} is missing or changed")
        now = datetime.now(UTC)
        registry = update_registry(self.bucket, lambda reg: (versions.rollback(reg, version_id, now), True))
        result: dict[str, Any] = {"version_id": version_id, "current_version": registry["current_version"],
                                  "verified_files": sorted(entry["files"]), "history": registry["history"][-1]}
        if target:
            result["restored_to"] = [self.bucket.copy(prefix + name, target + name) for name in sorted(entry["files"])]
        return result

    def generate_version_report(self) -> dict[str, Any]:
        """How many versions, by quality, the current one and the newest ten."""
        return versions.version_report(read_registry(self.bucket), datetime.now(UTC))

    # -- reading datasets -----------------------------------------------------------------------------------

    def _dataset_id(self, dataset_path: str) -> str:
        # Accept the id, the object prefix, or the gs:// URI of the prefix.
        path = dataset_path.removeprefix(f"gs://{self.settings.bucket}/").removeprefix(DATASETS_PREFIX)
        return path.strip("/")

    def _case_splits(self, dataset_id: str) -> dict[str, str]:
        return {
            str(row["case_id"]): split
            for split, rows in read_rows(self.bucket, dataset_id).items()
            for row in rows
            if "case_id" in row
        }


# Where a restore must not write: an upload there triggers a function, or it holds the system's own records.
PROTECTED_PREFIXES = (REQUEST_PREFIX, IMPORT_PREFIX, REGISTRY_NAME.rsplit("/", 1)[0] + "/")


def _restore_target(target_path: str) -> str:
    """The restore prefix, ending with "/"; BadInput for a path under a protected prefix or going up."""
    target = target_path.removeprefix("/").rstrip("/") + "/"
    if ".." in target.split("/") or target.startswith(PROTECTED_PREFIXES):
        raise BadInput(f"target_path {target_path!r} is not allowed: not under {list(PROTECTED_PREFIXES)}, no '..'")
    return target
