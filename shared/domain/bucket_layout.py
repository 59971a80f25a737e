"""Every object name and prefix of the bucket (CONTRACT.md's layout), and the names derived from them.

Uploads under a trigger prefix start work (a build, an import); the system's own records are never written
through the api; a restore may write only where restores belong.
"""

from __future__ import annotations

import re

from shared.errors import BadInput

# Uploads that start work.
REQUESTS = "dataset-requests/"
IMPORTS = "imports/"
IMPORT_SUFFIXES = (".jsonl", ".parquet")

# What that work writes.
DATASET_RESULTS = "dataset_results/"
IMPORT_RESULTS = "import_results/"
# An import's reject segments, kept until its result is recorded (joined into import_results/<name>.rejected.jsonl).
IMPORT_SEGMENTS = "import_segments/"
DATASETS = "finetuning_datasets/"
DATASET_METADATA = "metadata.json"
REGISTRY = "data_versions/version_registry.json"
QUARANTINE = "quarantine/"

# Exports of the cases (DataManager.sync_to_gcs, the scheduled aggregate).
LEARNING_DATA = "learning_data/"
FAILED_CASES = f"{LEARNING_DATA}failed_cases.jsonl"
CORRECTIONS = f"{LEARNING_DATA}corrections.jsonl"
LEARNING_METADATA = f"{LEARNING_DATA}metadata.json"
# Where an export stages what it appends to those files (composed onto them, then deleted).
EXPORT_SEGMENTS = f"{LEARNING_DATA}appending/"

# The case snapshot: Parquet parts (the latest updated_at of a case wins), and how far its tail has read.
SNAPSHOT_PARTS = f"{LEARNING_DATA}cases/"
SNAPSHOT_WATERMARK = f"{LEARNING_DATA}cases_watermark.json"

# Exports of the training metrics.
METADATA = "metadata/"
PERFORMANCE_HISTORY = f"{METADATA}performance_history.jsonl"
MODEL_VERSIONS = f"{METADATA}model_versions.json"
LEARNING_PROGRESS = f"{METADATA}learning_progress.jsonl"
INFERENCE_STATS = f"{METADATA}inference_stats.jsonl"
PERFORMANCE_REPORT = f"{METADATA}performance_report.json"

# The only prefixes written on request (the api's reports and restores): everything else is written by its own
# use case, so no caller can overwrite a dataset, the registry or an upload that starts work.
REPORTS = "reports/"
RESTORES = "restores/"
# ... and the one upload the api makes: the build request of its augment_dataset op, created once (never
# replacing an object), named by a digest of its content, so build_dataset writes the augmented dataset.
API_AUGMENT_REQUESTS = f"{REQUESTS}api-augment/"  # a folder: IAM conditions grant the api this prefix alone


def dataset_prefix(dataset_id: str) -> str:
    """`finetuning_datasets/<dataset_id>/`."""
    return f"{DATASETS}{dataset_id}/"


def split_file(split: str) -> str:
    """A split's JSONL file, relative to its dataset's prefix: `train.jsonl`."""
    return f"{split}.jsonl"


def parquet_copy(split: str) -> str:
    """A split's Parquet copy (the same rows, written by the build beside the JSONL), relative to its dataset's
    prefix: `parquet/train.parquet`."""
    return f"parquet/{split}.parquet"


def dataset_id_of(path: str, bucket: str) -> str:
    """The dataset id of its id, its object prefix or its gs:// URI."""
    return path.removeprefix(f"gs://{bucket}/").removeprefix(DATASETS).strip("/")


def is_dataset_metadata(name: str) -> bool:
    """True for `finetuning_datasets/<id>/metadata.json` (a finished dataset), not a file deeper down."""
    return name.startswith(DATASETS) and name.endswith("/" + DATASET_METADATA) and name.count("/") == 2


def request_stem(object_name: str) -> str:
    """`dataset-requests/weekly.json` -> `weekly` (a nested name keeps its folders)."""
    return object_name.removeprefix(REQUESTS).removesuffix(".json")


def dataset_id_for_request(object_name: str, generation: str | int | None) -> str:
    """One dataset per uploaded request version, readable: `<request name>-<generation>`."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", request_stem(object_name)).strip("_") or "dataset"
    return f"{stem}-{generation}"


def build_result_name(object_name: str) -> str:
    """`dataset-requests/weekly.json` -> `dataset_results/weekly.json`."""
    return f"{DATASET_RESULTS}{request_stem(object_name)}.json"


def import_result_base(object_name: str) -> str:
    """`imports/day1.jsonl` (or `.parquet`) -> `import_results/day1` (+ `.json`, `.rejected.jsonl`)."""
    stem = object_name.removeprefix(IMPORTS)
    for suffix in IMPORT_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return IMPORT_RESULTS + stem


def reject_segments_prefix(rejects_name: str) -> str:
    """Where an import stages the segments of its rejected lines until it joins them into `rejects_name`:
    `import_results/day1.rejected.jsonl` -> `import_segments/day1.rejected.jsonl/`. A prefix of their own, so
    the bucket's lifecycle can delete what a dead import left (a rule matches a prefix, never a middle part)."""
    return f"{IMPORT_SEGMENTS}{rejects_name.removeprefix(IMPORT_RESULTS)}/"


def import_object_name(name: str) -> str:
    """The import an operator names: `day1.jsonl` or `imports/day1.jsonl` -> `imports/day1.jsonl`; BadInput for a
    name that is no import (outside `imports/`, or neither .jsonl nor .parquet)."""
    object_name = _under(IMPORTS, name, "import")
    if not object_name.endswith(IMPORT_SUFFIXES):
        raise BadInput(f"import {name!r} is not allowed: an import's name ends with {' or '.join(IMPORT_SUFFIXES)}")
    return object_name


def request_object_name(name: str) -> str:
    """The build request an operator names: `weekly`, `weekly.json` or `dataset-requests/weekly.json` ->
    `dataset-requests/weekly.json`; BadInput for a name outside `dataset-requests/`."""
    stem = name.removesuffix(".json")
    return _under(REQUESTS, stem, "build request") + ".json"


def quarantine_copy_name(source: str, quarantine_id: str) -> str:
    """Where an oversize rejected payload is kept whole."""
    return f"{QUARANTINE}{source}/{quarantine_id}.bin"


def metric_plot_name(metric: str) -> str:
    """A metric's trend plot."""
    return f"{METADATA}{metric}_trend.png"


def _under(prefix: str, path: str, what: str) -> str:
    """`path` as an object name under `prefix` (a bare name means one there); BadInput for anywhere else."""
    name = path.removeprefix("/")
    if not name.startswith(prefix) and "/" not in name:
        name = prefix + name
    if not name.startswith(prefix) or ".." in name.split("/") or "//" in name or name == prefix:
        raise BadInput(f"{what} {path!r} is not allowed: only a name under {prefix} (no '..', no empty parts)")
    return name


def restore_prefix(target_path: str) -> str:
    """A restore's target, a prefix under `restores/` ending with "/" (`current` means `restores/current/`)."""
    return _under(RESTORES, target_path.rstrip("/"), "target_path") + "/"


# Written last into a restore's target: the version its files are, each with its sha256.
RESTORE_MANIFEST = "_restore_manifest.json"


def restore_manifest_name(target: str) -> str:
    """The manifest object of a restore target (a prefix ending with "/")."""
    return target + RESTORE_MANIFEST


def report_name(output_path: str) -> str:
    """Where a report asked for goes: an object under `reports/` (`weekly.json` means `reports/weekly.json`)."""
    return _under(REPORTS, output_path, "output_path")
