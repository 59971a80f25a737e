"""DataVersionControl: dataset versions, kept in `data_versions/version_registry.json`.

A version is an immutable manifest (per-file sha256 and a checksum over them) of a dataset prefix that is never
rewritten; a rollback moves the registry's `current_version` back once the files still match their checksums,
and records it in `history`.
"""

from __future__ import annotations

from typing import Any

from shared import bootstrap
from shared.clock import utc_now
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.domain import versions
from shared.domain.versions import VersionEntry
from shared.services import dataset_versions
from shared.services.datasets import dataset_quality
from shared.services.version_registry import read_registry


class DataVersionControl:
    """Create, list, compare, check and roll back dataset versions (emulators or GCP)."""

    def __init__(self, settings: Settings | None = None, *, adapters: bootstrap.Adapters | None = None) -> None:
        self.adapters = adapters or bootstrap.adapters(settings)
        self.settings = self.adapters.settings

    @property
    def versions(self) -> dict[str, dict[str, Any]]:
        """Every version by id, as the registry holds them now."""
        return dict(read_registry(self.adapters.bucket)["versions"])

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
        return dataset_versions.create_version(
            self.adapters.bucket, self._dataset_id(dataset_path), version_name, metadata, parent_version,
            run_quality_check, utc_now(),
        )

    def get_version(self, version_id: str) -> VersionEntry | None:
        """One version's entry (keys also read as attributes: `.checksum`), or None."""
        found = read_registry(self.adapters.bucket)["versions"].get(version_id)
        return versions.as_entry(found) if found is not None else None

    def list_versions(
        self, parent_version: str | None = None, min_quality_score: float | None = None
    ) -> list[VersionEntry]:
        """Versions, newest first, optionally only the children of one or those above a quality score.

        Each is the registry's entry as a dict whose keys also read as attributes (`v.version_id`, `v.checksum`,
        `v.quality_report`, ...), so the seed's loop and JSON encoders both take it as it is."""
        return versions.list_versions(read_registry(self.adapters.bucket), parent_version, min_quality_score)

    def get_version_lineage(self, version_id: str) -> list[VersionEntry]:
        """The version and its ancestors, oldest first."""
        return versions.get_version_lineage(read_registry(self.adapters.bucket), version_id)

    def compare_versions(self, version_id1: str, version_id2: str) -> dict[str, Any]:
        """What differs between two versions: files, sizes, error types, quality, lineage and which cases
        were added, removed or (never, by design) moved between splits."""
        return dataset_versions.compare_versions(self.adapters.bucket, version_id1, version_id2)

    def check_quality(self, dataset_path: str) -> dict[str, Any]:
        """The quality report of a dataset's rows as they are now."""
        return dataset_quality(self.adapters.bucket, self._dataset_id(dataset_path))

    def rollback_to_version(self, version_id: str, target_path: str | None = None) -> dict[str, Any]:
        """Make `version_id` the current version again, after checking its files are intact.

        With `target_path` (a prefix under `restores/`, e.g. "restores/current/" or just "current"), its files
        are also copied there, for a trainer that reads a fixed path.
        """
        return dataset_versions.rollback(self.adapters.bucket, version_id, target_path, utc_now())

    def generate_version_report(self) -> dict[str, Any]:
        """How many versions, by quality, the current one and the newest ten."""
        return versions.version_report(read_registry(self.adapters.bucket), utc_now())

    def _dataset_id(self, dataset_path: str) -> str:
        return layout.dataset_id_of(dataset_path, self.settings.bucket)
