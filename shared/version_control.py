"""DataVersionControl: dataset versions, kept in `data_versions/version_registry.json`.

A version is an immutable manifest (per-file sha256 and a checksum over them) of a dataset prefix that is never
rewritten; a rollback moves the registry's `current_version` back once the files still match their checksums,
and records it in `history`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared import bootstrap
from shared.clock import utc_now
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.domain import versions
from shared.domain.versions import VersionEntry
from shared.errors import BadInput
from shared.facade_setup import LocalPath, deployment, legacy_settings, local_dir
from shared.services import dataset_versions
from shared.services.datasets import dataset_quality
from shared.services.version_registry import read_registry

if TYPE_CHECKING:
    from shared.data_manager import DataManager


DEFAULT_LOCAL_DIR = "data/versions"


class DataVersionControl:
    """Create, list, compare, check and roll back dataset versions (emulators or GCP).

    The seed's constructor: `DataVersionControl(local_storage_dir="data/versions", use_gcs=True)`, or
    `DataVersionControl(data_manager=dm, base_dir="data/versions")` to share a DataManager's deployment.
    The registry (`data_versions/version_registry.json`) and the versioned files stay in the bucket;
    `local_storage_dir` (`base_dir` is the same directory under the integrated system's name for it) is where
    local copies go. The parameters mean what shared/facade_setup.py says.
    """

    def __init__(
        self,
        local_storage_dir: LocalPath | Settings | None = None,
        use_gcs: bool = True,
        gcs_bucket_name: str | None = None,
        *,
        data_manager: DataManager | None = None,
        base_dir: LocalPath | None = None,
        settings: Settings | None = None,
        adapters: bootstrap.Adapters | None = None,
    ) -> None:
        local, settings = legacy_settings(local_storage_dir, settings)
        if local is not None and base_dir is not None and local_dir(local, "") != local_dir(base_dir, ""):
            raise BadInput(f"DataVersionControl: local_storage_dir {os.fspath(local)!r} and base_dir "
                           f"{os.fspath(base_dir)!r} differ, and both name the one local directory; give one of them")
        self.adapters = deployment("DataVersionControl", use_gcs=use_gcs, gcs_bucket_name=gcs_bucket_name,
                                   settings=settings, adapters=adapters, data_manager=data_manager)
        self.settings = self.adapters.settings
        self.data_manager = data_manager
        self.use_gcs = True
        self.gcs_bucket_name = self.settings.bucket
        # Where local copies (restores, dataset files pulled for a check) go; nothing is created yet.
        self.local_storage_dir = local_dir(local if local is not None else base_dir, DEFAULT_LOCAL_DIR)

    @property
    def base_dir(self) -> Path:
        """The local directory, under the name the integrated system gives it (the same as local_storage_dir)."""
        return self.local_storage_dir

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
