"""DataVersionControl: dataset versions, kept in `data_versions/version_registry.json`.

A version is an immutable manifest (per-file sha256 and a checksum over them) of a dataset prefix that is never
rewritten; a rollback moves the registry's `current_version` back once the files still match their checksums,
and records it in `history`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared import bootstrap
from shared.clock import utc_now
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.domain import versions
from shared.domain.split_balance import metadata_split_warnings, with_split_warnings
from shared.domain.versions import VersionEntry
from shared.errors import BadInput
from shared.facade_setup import (
    LocalPath,
    QualityThresholdsSetting,
    bucket_object,
    deployment,
    is_bucket_uri,
    legacy_settings,
    local_dir,
)
from shared.services import dataset_versions, datasets, local_copies
from shared.services.datasets import dataset_quality
from shared.services.version_registry import read_registry
from shared.snapshot.dataset_files import quality_of_files
from shared.snapshot.engine import EngineSettings

if TYPE_CHECKING:
    from shared.data_manager import DataManager


DEFAULT_LOCAL_DIR = "data/versions"


class DataVersionControl(QualityThresholdsSetting):
    """Create, list, compare, check and roll back dataset versions (emulators or GCP).

    The seed's constructor: `DataVersionControl(local_storage_dir="data/versions", use_gcs=True)`, or
    `DataVersionControl(data_manager=dm, base_dir="data/versions")` to share a DataManager's deployment.
    The registry (`data_versions/version_registry.json`) and the versioned files stay in the bucket;
    `local_storage_dir` (`base_dir` is the same directory under the integrated system's name for it) is where
    local copies go. The parameters mean what shared/facade_setup.py says.

    Paths: `create_version` and `check_quality` take a dataset id, its `gs://` prefix, or a local copy
    (`<output_dir>/<dataset_id>` as FinetuningDatasetPipeline.prepare_dataset mirrors it); `rollback_to_version`'s
    `target_path` is a local directory, or a `gs://` prefix under `restores/`. `quality_thresholds` (the seed's
    dict; default the deployment's) applies to checks and versions. `local_copies=False` (how the `api` function
    makes it) takes every path as a bucket path, as before.
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
        quality_thresholds: Mapping[str, float] | None = None,
        local_copies: bool = True,
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
        self.local_copies = bool(local_copies)
        self._init_thresholds(quality_thresholds)

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
        allow_failed_quality: bool = False,
    ) -> str:
        """Version a finished dataset (its id, its gs:// prefix, or its local copy `<output_dir>/<dataset_id>`,
        which must still hold the bucket's bytes); the version id (the same one again for the same dataset and
        name). The quality report is the build's, or re-run on the bucket's files with the instance's
        `quality_thresholds` when asked. A dataset whose report failed is refused (QualityGateFailed, a
        ValueError saying why) unless `allow_failed_quality`, which registers it flagged `quality_failed`."""
        dataset_id, folder = self._dataset(dataset_path)
        if folder is not None:
            recorded = datasets.finished_metadata(self.adapters.bucket, dataset_id).get("files", {})
            changed = local_copies.changed_local_files(folder, recorded)
            if changed:
                raise BadInput(f"{folder} differs from the bucket's dataset {dataset_id} ({', '.join(changed)} "
                               "missing or changed): a version is of the bucket's files, so a changed local copy "
                               "is not versioned; build a new dataset instead")
        return dataset_versions.create_version(
            self.adapters.bucket, dataset_id, version_name, metadata, parent_version, run_quality_check, utc_now(),
            thresholds=self.thresholds(), allow_failed_quality=allow_failed_quality,
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
        """The quality report of a dataset's rows as they are now, against the instance's `quality_thresholds`:
        of the bucket's files for an id or gs:// prefix, of the local split files for a local copy."""
        dataset_id, folder = self._dataset(dataset_path)
        if folder is None:
            return dataset_quality(self.adapters.bucket, dataset_id, thresholds=self.thresholds())
        report = quality_of_files(local_copies.local_split_files(folder), EngineSettings.from_env(),
                                  self.thresholds())
        # The build's uneven splits explained, as for the bucket's files (a restored copy has no metadata.json).
        report = with_split_warnings(report, metadata_split_warnings(local_copies.local_dataset(folder)[1]))
        return {**report, "dataset_id": dataset_id, "dataset_path": str(folder)}

    def rollback_to_version(self, version_id: str, target_path: str | None = None) -> dict[str, Any]:
        """Make `version_id` the current version again, after checking its files are intact.

        With a local `target_path` (e.g. "data/restored"), its files are first downloaded there, each verified
        against its sha256, into a temporary sibling renamed into place (a crash leaves no mixed directory; an
        existing directory is replaced only if empty or an earlier local copy); the registry moves last. With a
        `gs://<bucket>/restores/...` target, the files are copied there in the bucket (only under `restores/`).
        """
        bucket, now = self.adapters.bucket, utc_now()
        if target_path is not None and is_bucket_uri(target_path):  # the bucket, from Python and the api alike
            return dataset_versions.rollback(bucket, version_id, self._restore_object(target_path), now)
        if target_path is None or not self.local_copies:
            return dataset_versions.rollback(bucket, version_id, target_path, now)
        entry = versions.get_version(read_registry(bucket), version_id)
        target = local_dir(target_path, "")
        restored = local_copies.restore_version(bucket, entry, target, now)
        result = dataset_versions.rollback(bucket, version_id, None, now)
        return {**result, "restored_to": restored, "restored_dir": str(target)}

    def generate_version_report(self) -> dict[str, Any]:
        """How many versions, by quality, the current one and the newest ten."""
        return versions.version_report(read_registry(self.adapters.bucket), utc_now())

    def _restore_object(self, uri: str) -> str:
        """The bucket prefix of a `gs://` restore target: literally under `restores/` (a bare name is not
        moved there, as a bucket path through the `api` is)."""
        name = bucket_object(uri, self.settings.bucket)
        if not name.startswith(layout.RESTORES):
            raise BadInput(f"target_path {uri!r} is not allowed: a gs:// target must be under "
                           f"gs://{self.settings.bucket}/{layout.RESTORES}")
        return name

    def _dataset(self, dataset_path: str | os.PathLike[str]) -> tuple[str, Path | None]:
        """(dataset id, its local copy or None) of a dataset id, `gs://` prefix, object prefix or local copy.

        A local path that does not exist names the dataset of its last part when the bucket has it finished
        (`data/finetuning/<dataset_id>` on a machine without the copy)."""
        given = os.fspath(dataset_path)
        if is_bucket_uri(given):
            return layout.dataset_id_of(bucket_object(given, self.settings.bucket), self.settings.bucket), None
        if given.startswith(layout.DATASETS) or not self.local_copies:
            return layout.dataset_id_of(given, self.settings.bucket), None
        folder = local_dir(given, "")
        if folder.is_dir() and local_copies.read_marker(folder) is not None:
            return local_copies.local_dataset(folder)[0], folder
        if len(folder.parts) > 1:
            name = local_copies.safe_name(folder.name, "dataset id")
            if datasets.read_metadata(self.adapters.bucket, name) is None:
                raise BadInput(f"dataset_path {given!r}: no local copy there and no finished dataset {name!r} in "
                               f"gs://{self.settings.bucket}/{layout.DATASETS}")
            return name, None
        return layout.dataset_id_of(given, self.settings.bucket), None
