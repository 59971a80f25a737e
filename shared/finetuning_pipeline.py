"""FinetuningDatasetPipeline: the seed's dataset builder, over the cases in Firestore and datasets in GCS.

The same use case serves an uploaded `dataset-requests/<name>.json` (functions/build_dataset) and a call
from Python or the `api` function; every dataset is a prefix `finetuning_datasets/<dataset_id>/` that
Hugging Face loads as it is: `datasets.load_dataset("json", data_files=info["data_files"])`.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.adapters.gcs import BucketStore
from shared.bootstrap import case_store
from shared.config import Settings
from shared.domain.dataset_quality import check_quality, validate_lines
from shared.domain.dataset_request import parse_build_request
from shared.errors import BadInput, NotFound
from shared.ports import CaseStore
from shared.services.dataset_builds import (
    DATASETS_PREFIX,
    METADATA_FILE,
    build_dataset,
    dataset_prefix,
    python_dataset_id,
    read_metadata,
    read_split_files,
)


class FinetuningDatasetPipeline:
    """Builds, lists and validates fine-tuning datasets (emulators or GCP, by the usual variables)."""

    def __init__(
        self, settings: Settings | None = None, cases: CaseStore | None = None, bucket: BucketStore | None = None
    ) -> None:
        self.settings = settings or Settings.from_env()
        self._cases = cases
        self._bucket = bucket

    @property
    def cases(self) -> CaseStore:
        if self._cases is None:
            self._cases = case_store(self.settings)
        return self._cases

    @property
    def bucket(self) -> BucketStore:
        if self._bucket is None:
            self._bucket = BucketStore(self.settings)
        return self._bucket

    def prepare_dataset(
        self,
        min_error_score: float = 0.5,
        include_uncorrected: bool = False,
        train_ratio: float = 0.8,
        val_ratio: float = 0.1,
        test_ratio: float = 0.1,
        max_samples: int | None = None,
        balance_error_types: bool = True,
        create_version: bool = False,
        version_name: str | None = None,
        parent_version: str | None = None,
    ) -> dict[str, Any]:
        """Build a dataset from the stored cases; its info ({"error": ...} when no case is eligible).

        Raises InvalidBuildRequest (a ValueError) naming a bad parameter, as an uploaded request would be rejected.
        """
        params = {
            "min_error_score": min_error_score, "include_uncorrected": include_uncorrected,
            "train_ratio": train_ratio, "val_ratio": val_ratio, "test_ratio": test_ratio, "max_samples": max_samples,
            "balance_error_types": balance_error_types, "create_version": create_version,
            "version_name": version_name, "parent_version": parent_version,
        }
        # Through the request's own parser, so a bad argument is refused in the words an upload would get.
        request = parse_build_request(orjson.dumps(params))
        now = datetime.now(UTC)
        return build_dataset(request, python_dataset_id(now), "python", self.cases, self.bucket, now)

    def get_dataset_info(self, dataset_id: str) -> dict[str, Any] | None:
        """A finished dataset's metadata (sizes, distributions, checksums, quality), or None."""
        return read_metadata(self.bucket, dataset_id)

    def list_datasets(self) -> list[dict[str, Any]]:
        """Finished datasets, newest first (a dataset without metadata.json is still being written)."""
        infos = []
        for name in self.bucket.names(DATASETS_PREFIX):
            if name.endswith("/" + METADATA_FILE) and name.count("/") == 2:
                data = self.bucket.get(name)
                if data is not None:
                    infos.append(orjson.loads(data))
        return sorted(infos, key=lambda info: str(info.get("created_at")), reverse=True)

    def validate_dataset(self, dataset_id: str) -> dict[str, Any]:
        """Check a dataset as it is now: files present, rows well-formed, checksums as recorded, no leakage."""
        metadata = read_metadata(self.bucket, dataset_id)
        issues: list[str] = [] if metadata else [f"missing required file: {METADATA_FILE}"]
        recorded = (metadata or {}).get("files", {})
        splits: dict[str, list[dict[str, Any]]] = {}
        for split, data in read_split_files(self.bucket, dataset_id).items():
            name = f"{split}.jsonl"
            if data is None:
                issues.append(f"missing required file: {name}")
                splits[split] = []
                continue
            if name in recorded and hashlib.sha256(data).hexdigest() != recorded[name]["sha256"]:
                issues.append(f"{name}: sha256 differs from metadata.json (changed after the build)")
            splits[split], line_issues = validate_lines(split, data.splitlines())
            issues.extend(line_issues)
        quality = check_quality(splits)
        issues.extend(i["message"] for i in quality["quality_metrics"]["issues"] if i["severity"] == "critical")
        return {
            "dataset_id": dataset_id,
            "validated_at": datetime.now(UTC).isoformat(),
            "is_valid": not issues,
            "issues": issues,
            "warnings": quality["quality_metrics"]["warnings"],
            "statistics": {split: {"num_samples": len(rows)} for split, rows in splits.items()},
            "quality": quality,
        }

    def prepare_huggingface_dataset(self, dataset_id: str, output_format: str = "json") -> dict[str, str]:
        """The dataset's files for `datasets.load_dataset(output_format, data_files=...)`.

        The JSONL rows already are Hugging Face's format (audio, text, ...); "parquet" writes a Parquet copy
        of each split beside them (`parquet/<split>.parquet`) and returns those.
        """
        metadata = read_metadata(self.bucket, dataset_id)
        if metadata is None:
            raise NotFound(f"no finished dataset {dataset_id!r}")
        if output_format == "json":
            return dict(metadata["data_files"])
        if output_format != "parquet":
            raise BadInput(f"output_format must be 'json' or 'parquet', not {output_format!r}")
        import io

        import pyarrow.json as pa_json
        import pyarrow.parquet as pq

        files = {}
        for split, data in read_split_files(self.bucket, dataset_id).items():
            if not data:  # an empty split has no rows to infer a schema from: Hugging Face skips it too
                continue
            sink = io.BytesIO()
            pq.write_table(pa_json.read_json(io.BytesIO(data)), sink)
            files[split] = self.bucket.put(f"{dataset_prefix(dataset_id)}parquet/{split}.parquet", sink.getvalue())
        return files
