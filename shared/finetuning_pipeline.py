"""FinetuningDatasetPipeline: build, list, validate and export fine-tuning datasets from Python.

The same use case serves an uploaded `dataset-requests/<name>.json` (functions/build_dataset) and a call from
here or the `api` function; every dataset is a prefix `finetuning_datasets/<dataset_id>/` that Hugging Face
loads as it is: `datasets.load_dataset("json", data_files=info["data_files"])`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared import bootstrap
from shared.clock import utc_now
from shared.config import Settings
from shared.errors import BadInput
from shared.facade_setup import LocalPath, QualityThresholdsSetting, deployment, legacy_settings, local_dir
from shared.services import datasets
from shared.services.dataset_builds import build_from_parameters
from shared.services.local_copies import huggingface_folder, mirror_dataset, safe_name

if TYPE_CHECKING:
    from shared.data_manager import DataManager

DEFAULT_OUTPUT_DIR = "data/finetuning"


class FinetuningDatasetPipeline(QualityThresholdsSetting):
    """Builds, lists and validates fine-tuning datasets (emulators or GCP, by the usual variables).

    The seed's constructor: `FinetuningDatasetPipeline(data_manager=DataManager(), output_dir="data/finetuning")`.
    The datasets are built into the bucket (`finetuning_datasets/<dataset_id>/`, the source of truth);
    `output_dir` is where their local copies go: each prepared dataset is mirrored to `<output_dir>/<dataset_id>/`
    and Hugging Face folders go under `<output_dir>/huggingface/`. The parameters mean what
    shared/facade_setup.py says; without a data_manager the deployment comes from the environment.
    `quality_thresholds` (the seed's dict; default the deployment's) applies to builds and validations.
    `local_copies=False` (how the `api` function makes it) writes nothing locally: a build is not mirrored and
    `prepare_huggingface_dataset` answers the bucket's files.
    """

    def __init__(
        self,
        data_manager: DataManager | Settings | None = None,
        output_dir: LocalPath | None = None,
        use_gcs: bool = True,
        gcs_bucket_name: str | None = None,
        *,
        settings: Settings | None = None,
        adapters: bootstrap.Adapters | None = None,
        quality_thresholds: Mapping[str, float] | None = None,
        local_copies: bool = True,
    ) -> None:
        manager, settings = legacy_settings(data_manager, settings)
        self.adapters = deployment("FinetuningDatasetPipeline", use_gcs=use_gcs, gcs_bucket_name=gcs_bucket_name,
                                   settings=settings, adapters=adapters, data_manager=manager)
        self.settings = self.adapters.settings
        self._data_manager = manager
        self.use_gcs = True
        self.gcs_bucket_name = self.settings.bucket
        # Where local copies of prepared datasets go, one folder per dataset id; nothing is created yet.
        self.output_dir = local_dir(output_dir, DEFAULT_OUTPUT_DIR)
        self.local_copies = bool(local_copies)
        self._init_thresholds(quality_thresholds)

    @property
    def data_manager(self) -> DataManager:
        """The DataManager whose cases the datasets are built from: the given one, else one on the same
        deployment (made on first use, so a pipeline that only reads datasets never imports pandas)."""
        if self._data_manager is None:
            from shared.data_manager import DataManager

            self._data_manager = DataManager(adapters=self.adapters)
        return self._data_manager

    def prepare_dataset(
        self, min_error_score: float = 0.5, include_uncorrected: bool = False, train_ratio: float = 0.8,
        val_ratio: float = 0.1, test_ratio: float = 0.1, max_samples: int | None = None,
        balance_error_types: bool = True, create_version: bool = False, version_name: str | None = None,
        parent_version: str | None = None, quality_thresholds: Mapping[str, float] | None = None,
        allow_failed_quality: bool = False, min_duration_s: float | None = None,
        max_duration_s: float | None = None, augment: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Build a dataset from the stored cases; its info ({"error": ...} when no case is eligible).

        The build is checked against `quality_thresholds` (a key left out: the instance's `quality_thresholds`);
        a dataset that fails the check is built but versioned only with `allow_failed_quality` (flagged), and
        `quality_gate` in the info says what happened. The finished dataset is also mirrored to
        `<output_dir>/<dataset_id>/` (`local_path` in the info), every file verified against its sha256.
        `min_duration_s` / `max_duration_s` keep the rows whose audio lasts that long, and `augment` (a list of
        transforms, as augment_dataset takes) also makes the augmented dataset of the train rows, a child version
        of this one (`augmented` in the info): docs/datasets.md.
        Raises InvalidBuildRequest (a ValueError) naming a bad parameter, as an uploaded request would be rejected.
        """
        parameters: dict[str, Any] = {
            "min_error_score": min_error_score, "include_uncorrected": include_uncorrected,
            "train_ratio": train_ratio, "val_ratio": val_ratio, "test_ratio": test_ratio, "max_samples": max_samples,
            "balance_error_types": balance_error_types, "create_version": create_version,
            "version_name": version_name, "parent_version": parent_version,
            "allow_failed_quality": allow_failed_quality,
        }
        audio = {"min_duration_s": min_duration_s, "max_duration_s": max_duration_s, "augment": augment}
        parameters |= {name: value for name, value in audio.items() if value is not None}
        if quality_thresholds is not None:
            parameters["quality_thresholds"] = dict(quality_thresholds)
        now = utc_now()
        info = build_from_parameters(parameters, self.adapters.cases, self.adapters.bucket, now, self.thresholds(),
                                     open_bucket=self.adapters.bucket_named)
        if self.local_copies and "error" not in info:
            info["local_path"] = str(mirror_dataset(self.adapters.bucket, info["dataset_id"], self.output_dir, now))
        return info

    def augment_dataset(
        self, dataset_id: str, augmentations: list[dict[str, Any]], create_version: bool = True,
        version_name: str | None = None, parent_version: str | None = None, allow_failed_quality: bool = False,
        wait: bool = False, timeout_s: float = 30.0,
    ) -> dict[str, Any]:
        """A new dataset of the dataset's rows plus, for each train row, one row per transform whose audio is the
        transformed clip (`finetuning_datasets/<new id>/audio/...`); its info, with what was augmented and which
        clips were skipped and why. Versioned (parent: `parent_version`, else the source's newest version) unless
        create_version=False, when its quality check passes against the instance's `quality_thresholds` or
        `allow_failed_quality` (flagged), as a build's dataset is (`quality_gate` in the info).

        `augmentations`: e.g. `[{"type": "speed", "factor": 0.9}, {"type": "noise", "snr_db": 20},
        {"type": "gain", "db": -6}]` (docs/datasets.md). The same dataset and transforms give the same dataset
        id and bytes: a repeated call returns the finished one. InvalidAugmentation (a ValueError) before
        anything is written for a bad transform; KeyError for an unknown dataset.

        With `local_copies=False` (how the `api` makes it) nothing is augmented here: the call uploads, once, the
        build request `dataset-requests/api-augment/<dataset>-<digest>.json` that build_dataset serves, and
        answers where that build stands (`state`, and `result` once done: `dataset_results/`); `wait` polls for
        the result for at most `timeout_s` seconds (50 at most: the api's own timeout is 60 s). From Python the
        work runs in this process and `wait` has nothing to wait for.
        """
        if not self.local_copies:
            from shared.services.augment_requests import ask_augmentation

            return ask_augmentation(
                self.adapters.bucket, self.adapters.progress, dataset_id, augmentations,
                create_version=create_version, version_name=version_name, parent_version=parent_version,
                allow_failed_quality=allow_failed_quality, wait=wait, timeout_s=timeout_s,
            )
        from shared.services.augmentation import augment_dataset

        return augment_dataset(
            self.adapters.bucket, self.adapters.bucket_named, dataset_id, augmentations, utc_now(),
            create_version=create_version, version_name=version_name, parent_version=parent_version,
            allow_failed_quality=allow_failed_quality, thresholds=self.thresholds(),
        )

    def get_dataset_info(self, dataset_id: str) -> dict[str, Any] | None:
        """A finished dataset's metadata (sizes, distributions, checksums, quality), or None."""
        return datasets.read_metadata(self.adapters.bucket, dataset_id)

    def list_datasets(self) -> list[dict[str, Any]]:
        """Finished datasets, newest first (a dataset without metadata.json is still being written)."""
        return datasets.list_datasets(self.adapters.bucket)

    def validate_dataset(self, dataset_id: str) -> dict[str, Any]:
        """Check a dataset as it is now: files present, rows well-formed, checksums as recorded, no leakage, and
        its quality at least the instance's `quality_thresholds` (`is_valid` when nothing is wrong)."""
        return datasets.validate_dataset(self.adapters.bucket, dataset_id, utc_now(), thresholds=self.thresholds())

    def prepare_huggingface_dataset(
        self, dataset_id: str, output_format: str = "json", include_audio: bool = False,
    ) -> str | dict[str, str]:
        """A local folder that `datasets.load_dataset(folder)` opens with its train/validation/test splits:
        `<output_dir>/huggingface/<dataset_id>/<output_format>/`, one verified file per split with rows (JSON
        lines or Parquet) and a dataset card (README.md), which is also written to the dataset's bucket prefix.

        `include_audio=True` also copies every row's clip into the folder's `audio/` and points the rows at it
        with paths relative to the folder (the card declares an Audio feature), so the folder works away from
        the bucket: `<output_dir>/huggingface/<dataset_id>/<output_format>-audio/`.

        With `local_copies=False` (the `api`): the bucket's files by split, for
        `datasets.load_dataset(output_format, data_files=...)`, as before (no audio is copied there)."""
        bucket = self.adapters.bucket
        if not self.local_copies:
            if include_audio:
                raise BadInput("include_audio copies the audio into a local folder: the api makes no local copies")
            return datasets.huggingface_files(bucket, dataset_id, output_format)
        name = f"{output_format}-audio" if include_audio else output_format
        folder = self.output_dir / "huggingface" / safe_name(dataset_id, "dataset id") / name
        return str(huggingface_folder(bucket, dataset_id, output_format, folder, utc_now(),
                                      include_audio=include_audio, open_bucket=self.adapters.bucket_named))
