"""Use case: augment a finished dataset's audio into a new dataset (and version) of its own.

``augment_dataset(bucket, open_bucket, dataset_id, transforms)`` reads the source dataset's split files a line
at a time. Each train row stays, and each transform of it gives one new train row whose audio is the source
clip transformed (shared/domain/audio_transforms.py), written under the new dataset's prefix
(``finetuning_datasets/<new id>/audio/<case>/<transform>.<ext>``, the source's sample rate and container) and
whose ``augmentation`` is ``{source_case_id, type, params}``. Val and test rows are copied as they are, never
augmented. A row without ``duration_s`` gets it from its clip's header (train rows' clips are read anyway; a
val/test row's clip is read only as far as its header).

The source audio is read by its ``gs://`` URI through ``open_bucket(name)``, the bucket adapter of that bucket
(the audio bucket may be another than the dataset bucket). A clip that is missing, empty, not audio or over the
duration cap (2 hours, from its header before any sample is read) is counted and named in the result and in
metadata.json, and its row is not augmented: never a crash, never a retry.

The new dataset id is ``<source id>-aug-<digest of the transforms>``: the same dataset and transforms give the
same id, rows and audio bytes (noise is seeded per case and transform), so a repeated call finds the finished
dataset and only registers what is missing. Order of writes as a build's: audio, split files, Parquet copies and
the audio manifest (``audio_manifest.jsonl``: each clip's sha256, itself in metadata.json's ``files``), then
metadata.json (once, if absent), then the version (when the quality gate lets it: version_augmented), then
the dataset card.

Memory: clips are worked on by a pool of threads (libsndfile, soxr and numpy release the GIL, so both cores
are used; a clip is fetched in one request, audio_reads.read_clip, not streamed through libsndfile's seeks),
a bounded window of rows in flight: at most ``2 x workers`` clips with their outputs at once, whatever the
dataset's size; rows go to local files as they come.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from shared.domain import audio_clips, audio_transforms
from shared.domain import bucket_layout as layout
from shared.domain.audio_clips import MAX_AUDIO_SECONDS, UnusableAudio
from shared.domain.audio_transforms import DurationRange, Transform
from shared.domain.audio_transforms import augmented_dataset_id as augmented_dataset_id
from shared.domain.dataset_build import SPLITS, group_key
from shared.domain.dataset_facts import dataset_metadata_from_figures
from shared.domain.dataset_quality import QualityThresholds, quality_gate
from shared.domain.dataset_request import BuildRequest
from shared.domain.versions import manifest_checksum
from shared.errors import BadInput
from shared.ports import Bucket
from shared.services.audio_reads import DEFAULT_WORKERS, read_clip
from shared.services.audio_reads import case_folder as case_folder
from shared.services.audio_reads import ordered_map as ordered_map
from shared.services.audio_reads import split_uri as split_uri
from shared.services.dataset_cards import write_card
from shared.services.datasets import changed_files, dataset_info, finished_metadata, read_metadata
from shared.services.version_registry import read_registry, register_version
from shared.snapshot.dataset_files import quality_of_files
from shared.snapshot.engine import ROW_SCHEMA, EngineSettings

AUDIO_PREFIX = "audio/"
AUDIO_MANIFEST = "audio_manifest.jsonl"
NAMED_CAP = 100  # problem clips named in the result and metadata.json (all are counted)
PARQUET_BATCH = 5_000  # rows per Parquet write
COPY_CHUNK = 8 * 1024 * 1024

_PARAMS = pa.struct([(name, pa.float64()) for name in audio_transforms.PARAM_NAMES])
AUGMENTATION_TYPE = pa.struct([("source_case_id", pa.string()), ("type", pa.string()), ("params", _PARAMS)])
AUGMENTED_ROW_SCHEMA = ROW_SCHEMA.append(pa.field("augmentation", AUGMENTATION_TYPE))


# -- names ---------------------------------------------------------------------------------------------------


def augmented_case_id(case_id: str, transform: Transform) -> str:
    """The case id of an augmented row: its source's and the transform (`utt-1#speed_0.9`)."""
    return f"{case_id}#{transform.key}"


# -- one row's work (in a worker thread) ---------------------------------------------------------------------


@dataclass
class RowOutcome:
    """What one source row becomes: the rows to write (itself first), the audio written, and its problem."""

    rows: list[dict[str, Any]]
    audio: list[dict[str, Any]] = field(default_factory=list)  # manifest lines of the clips written
    problem: dict[str, Any] | None = None
    duration_filled: bool = False
    seconds_in: float = 0.0
    seconds_out: float = 0.0
    sample_rate: int | None = None
    outside_duration: int = 0  # augmented clips not written: their duration is outside the request's range


@dataclass(frozen=True)
class AugmentJob:
    """Everything a worker needs besides the row."""

    transforms: tuple[Transform, ...]
    open_bucket: Callable[[str], Bucket]
    out_bucket: Bucket
    prefix: str  # the new dataset's prefix
    max_seconds: float
    duration_range: DurationRange = (None, None)  # (min, max) seconds an augmented clip must fit, either optional

    def fits(self, seconds: float) -> bool:
        low, high = self.duration_range
        return (low is None or seconds >= low) and (high is None or seconds <= high)


def _problem(row: Mapping[str, Any], split: str, reason: str) -> dict[str, Any]:
    return {"case_id": row.get("case_id"), "audio": row.get("audio"), "split": split, "reason": reason}


def _needs_duration(row: Mapping[str, Any]) -> bool:
    value = row.get("duration_s")
    return isinstance(value, bool) or not isinstance(value, int | float) or not value > 0


def process_row(job: AugmentJob, split: str, row: dict[str, Any]) -> RowOutcome:
    """One source row: kept (its duration filled from the header when it has none) and, for an original train
    row, one new row per transform with its clip written to the bucket."""
    augment = split == "train" and row.get("augmentation") is None
    outcome = RowOutcome([row])
    if not augment and not _needs_duration(row):
        return outcome
    try:
        info, samples = read_clip(job.open_bucket, row.get("audio"), samples=augment, max_seconds=job.max_seconds)
    except UnusableAudio as exc:
        outcome.problem = _problem(row, split, str(exc))
        return outcome
    outcome.sample_rate = info.sample_rate
    if _needs_duration(row):
        row = outcome.rows[0] = {**row, "duration_s": info.duration_s}
        outcome.duration_filled = True
    if samples is None:
        return outcome
    outcome.seconds_in = info.duration_s
    case_id = str(row.get("case_id"))
    fmt, subtype, extension, content_type = info.output_format()
    folder = f"{job.prefix}{AUDIO_PREFIX}{case_folder(case_id)}/"
    if audio_transforms.power(samples) == 0.0 and any(t.type == "noise" for t in job.transforms):
        outcome.problem = _problem(row, split, "silent: no signal-to-noise ratio exists")
        return outcome
    for transform in job.transforms:
        changed = audio_transforms.apply(transform, samples, info.sample_rate,
                                         audio_transforms.transform_seed(case_id, transform))
        if not job.fits(len(changed) / info.sample_rate):  # a 29 s clip slowed to 0.9 is past a 30 s cap
            outcome.outside_duration += 1
            continue
        changed, clipped = audio_transforms.clipped(changed)
        data = audio_clips.encode(changed, info.sample_rate, fmt, subtype)
        name = f"{folder}{transform.key}.{extension}"
        uri = job.out_bucket.put(name, data, content_type)
        duration = len(changed) / info.sample_rate
        outcome.seconds_out += duration
        outcome.audio.append({"name": name.removeprefix(job.prefix), "sha256": hashlib.sha256(data).hexdigest(),
                              "bytes": len(data), "clipped_samples": clipped})
        outcome.rows.append({
            **row,
            "audio": uri,
            "case_id": augmented_case_id(case_id, transform),
            "duration_s": duration,
            "split": "train",
            "augmentation": {"source_case_id": case_id, "type": transform.type, "params": transform.params},
        })
    return outcome


# -- the new dataset's files (in the calling thread) ---------------------------------------------------------


class _SplitOut:
    """One split's rows going to a local JSONL file and its Parquet copy, with the metadata's figures."""

    def __init__(self, split: str, folder: Path) -> None:
        self.split = split
        self.jsonl_path = folder / layout.split_file(split)
        self.parquet_path = folder / f"{split}.parquet"
        self._jsonl = self.jsonl_path.open("wb")
        self._parquet = pq.ParquetWriter(self.parquet_path, AUGMENTED_ROW_SCHEMA, compression="zstd")
        self._batch: list[dict[str, Any]] = []
        self.rows = 0

    def write(self, row: dict[str, Any], figures: _Figures) -> None:
        self._jsonl.write(orjson.dumps(row) + b"\n")
        self._batch.append(row)
        if len(self._batch) >= PARQUET_BATCH:
            self._flush()
        self.rows += 1
        figures.add(self.split, row)

    def _flush(self) -> None:
        if self._batch:
            self._parquet.write_table(pa.Table.from_pylist(self._batch, AUGMENTED_ROW_SCHEMA),
                                      row_group_size=PARQUET_BATCH)
            self._batch = []

    def close(self) -> None:
        self._flush()
        self._parquet.close()
        self._jsonl.close()


@dataclass
class _Figures:
    """The counts dataset_metadata_from_figures takes, gathered row by row."""

    corrections: int = 0
    groups: dict[str, set[str]] = field(default_factory=lambda: {split: set() for split in SPLITS})
    types: Counter[str] = field(default_factory=Counter)
    scores: list[float] = field(default_factory=list)

    def add(self, split: str, row: Mapping[str, Any]) -> None:
        self.corrections += row.get("has_correction") is True
        self.groups[split].add(group_key({"speaker_id": row.get("speaker_id"), "audio_path": row.get("audio")}))
        self.types.update(str(t) for t in row.get("error_types") or [])
        score = row.get("error_score")
        if isinstance(score, int | float) and not isinstance(score, bool):
            self.scores.append(float(score))


def _upload(bucket: Bucket, path: Path, name: str, content_type: str, rows: int) -> dict[str, Any]:
    """Stream a local file to `name`, hashed on the way; its manifest entry."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as source, bucket.writer(name, content_type) as out:
        while chunk := source.read(COPY_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "bytes": size, "rows": rows}


def _source_rows(bucket: Bucket, name: str) -> Iterator[dict[str, Any]]:
    """A split file's rows, a line at a time (blank lines skipped)."""
    for number, line in enumerate(bucket.lines(name), 1):
        if line.strip():
            row = orjson.loads(line)
            if not isinstance(row, dict):
                raise BadInput(f"{name} line {number} is not a JSON object")
            yield row


def _source_request(metadata: Mapping[str, Any]) -> BuildRequest:
    try:
        return BuildRequest.model_validate(metadata.get("request") or {})
    except ValidationError:
        return BuildRequest()


def source_parent(bucket: Bucket, dataset_id: str, parent_version: str | None) -> str | None:
    """The parent of the new version: the one given (it must exist), else the source dataset's newest version."""
    versions = read_registry(bucket)["versions"]
    if parent_version is not None:
        if parent_version not in versions:
            raise BadInput(f"parent_version {parent_version!r} is not in {layout.REGISTRY}")
        return parent_version
    own = [entry for entry in versions.values() if entry.get("dataset_id") == dataset_id]
    return max(own, key=lambda entry: str(entry.get("created_at")))["version_id"] if own else None


def nothing_augmented_message(summary: Mapping[str, Any]) -> str:
    """Why an augmented dataset without augmented rows is not a version, with what was skipped."""
    return (f"not registered as a version: no clip could be augmented ({summary.get('skipped_count', 0)} train "
            f"rows skipped as unusable audio, {summary.get('outside_duration_count', 0)} augmented clips outside "
            f"the duration range; see augmentation.problems)")


def version_augmented(
    bucket: Bucket, metadata: Mapping[str, Any], now: datetime, *, create_version: bool, version_name: str | None,
    parent_version: str | None, allow_failed_quality: bool,
) -> dict[str, Any]:
    """An augmented dataset through the quality gate (versioned when it passes or a failure is allowed, flagged
    then) and its card written; its info with `version_id`, `parent_version` and `quality_gate`. A build's
    augmented dataset and a finished dataset augmented on request go the same way. One without a single
    augmented row (every clip missing or unusable) is never versioned: it would only copy its source and
    become the current version."""
    gate = quality_gate(metadata["quality_report"], create_version, allow_failed_quality)
    summary = metadata.get("augmentation") or {}
    if create_version and summary.get("augmented_rows") == 0:
        gate = {**gate, "version": "not_augmented", "message": nothing_augmented_message(summary)}
    version_id = None
    if gate["version"] in ("registered", "registered_flagged"):
        flags = {"quality_failed": True} if gate["version"] == "registered_flagged" else None
        version_id = register_version(bucket, metadata, version_name, parent_version, now, flags=flags)
    write_card(bucket, str(metadata["dataset_id"]), metadata)
    return {**dataset_info(metadata, version_id), "parent_version": parent_version if version_id else None,
            "quality_gate": gate}


def augment_dataset(
    bucket: Bucket, open_bucket: Callable[[str], Bucket], dataset_id: str, augmentations: Any, now: datetime, *,
    create_version: bool = True, version_name: str | None = None, parent_version: str | None = None,
    allow_failed_quality: bool = False, thresholds: QualityThresholds | None = None,
    workers: int = DEFAULT_WORKERS, max_seconds: float = MAX_AUDIO_SECONDS,
    engine: EngineSettings | None = None, before_write: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """The augmented dataset's info (dataset_info's keys, the quality gate, plus what was augmented and
    skipped), made once. Versioned as a build's dataset is: when its quality check passes against `thresholds`
    (default: the seed's) or `allow_failed_quality` (flagged); the parent is `parent_version` or the source's
    newest version. From Python, and from the build function for a request with `augment_dataset_id`."""
    transforms = audio_transforms.parse_transforms(augmentations)
    finished_metadata(bucket, dataset_id)  # NotFound before the registry is read
    parent = source_parent(bucket, dataset_id, parent_version) if create_version else None
    metadata = augmented_metadata(bucket, open_bucket, dataset_id, transforms, now, workers=workers,
                                  max_seconds=max_seconds, engine=engine, thresholds=thresholds,
                                  before_write=before_write)
    info = version_augmented(bucket, metadata, now, create_version=create_version, version_name=version_name,
                             parent_version=parent, allow_failed_quality=allow_failed_quality)
    return {**info, "source_dataset_id": dataset_id, "augmentation": metadata["augmentation"]}


def augmented_metadata(
    bucket: Bucket, open_bucket: Callable[[str], Bucket], dataset_id: str, transforms: tuple[Transform, ...],
    now: datetime, *, workers: int = DEFAULT_WORKERS, max_seconds: float = MAX_AUDIO_SECONDS,
    engine: EngineSettings | None = None, duration_range: DurationRange = (None, None),
    before_write: Callable[[], None] = lambda: None, thresholds: QualityThresholds | None = None,
) -> dict[str, Any]:
    """The metadata.json of the dataset's augmented copy by `transforms`, written now unless it is finished
    (a repeated call, a redelivered build). Augmented clips outside `duration_range` are not written (a build
    request's min/max_duration_s); `before_write` runs before the first write (a build's lease check); its
    quality report is checked against `thresholds` (default: the seed's)."""
    source = finished_metadata(bucket, dataset_id)
    new_id = augmented_dataset_id(dataset_id, transforms, duration_range)
    metadata = read_metadata(bucket, new_id)
    if metadata is not None:
        return metadata
    changed = changed_files(bucket, dataset_id, {name: entry for name, entry in source.get("files", {}).items()
                                                 if name in {layout.split_file(s) for s in SPLITS}})
    if changed:
        raise BadInput(f"dataset {dataset_id!r} changed since its build ({', '.join(changed)}): "
                       "augment a finished, unchanged dataset")
    before_write()
    job = AugmentJob(transforms, open_bucket, bucket, layout.dataset_prefix(new_id), max_seconds, duration_range)
    return _write_dataset(bucket, job, source, new_id, now, workers, engine or EngineSettings.from_env(), thresholds)


def _write_dataset(
    bucket: Bucket, job: AugmentJob, source: Mapping[str, Any], new_id: str, now: datetime, workers: int,
    engine: EngineSettings, thresholds: QualityThresholds | None = None,
) -> dict[str, Any]:
    source_id = str(source["dataset_id"])
    prefix, transforms = job.prefix, job.transforms
    problems: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    rates: Counter[int] = Counter()
    figures = _Figures()
    seconds = {"in": 0.0, "out": 0.0}
    with tempfile.TemporaryDirectory(prefix="stt-augment-") as tmp:
        folder = Path(tmp)
        outs = {split: _SplitOut(split, folder) for split in SPLITS}
        manifest_path = folder / AUDIO_MANIFEST
        with manifest_path.open("wb") as manifest, ThreadPoolExecutor(max_workers=workers) as pool:
            for split in SPLITS:
                rows = _source_rows(bucket, layout.dataset_prefix(source_id) + layout.split_file(split))
                work = functools.partial(process_row, job, split)
                for outcome in ordered_map(pool, work, rows, 2 * workers):
                    for row in outcome.rows:
                        outs[split].write(row, figures)
                    for line in outcome.audio:
                        manifest.write(orjson.dumps(line) + b"\n")
                    counts["clips_written"] += len(outcome.audio)
                    counts["augmented_rows"] += len(outcome.rows) - 1
                    counts["durations_filled"] += outcome.duration_filled
                    counts["clipped_samples"] += sum(line["clipped_samples"] for line in outcome.audio)
                    seconds["in"] += outcome.seconds_in
                    seconds["out"] += outcome.seconds_out
                    counts["outside_duration"] += outcome.outside_duration
                    if outcome.sample_rate is not None:
                        rates[outcome.sample_rate] += 1
                    if outcome.problem is not None:
                        kinds[audio_clips.reason_kind(str(outcome.problem["reason"]))] += 1
                        counts["skipped" if split == "train" else "unreadable_elsewhere"] += 1
                        if len(problems) < NAMED_CAP:
                            problems.append(outcome.problem)
        for out in outs.values():
            out.close()
        files = {layout.split_file(s): _upload(bucket, outs[s].jsonl_path, prefix + layout.split_file(s),
                                               "application/x-ndjson", outs[s].rows) for s in SPLITS}
        files |= {layout.parquet_copy(s): _upload(bucket, outs[s].parquet_path, prefix + layout.parquet_copy(s),
                                                  "application/vnd.apache.parquet", outs[s].rows) for s in SPLITS}
        files[AUDIO_MANIFEST] = _upload(bucket, manifest_path, prefix + AUDIO_MANIFEST, "application/x-ndjson",
                                        counts["clips_written"])
        quality = quality_of_files({s: outs[s].jsonl_path for s in SPLITS}, engine, thresholds)
    sizes = {split: outs[split].rows for split in SPLITS}
    metadata = dataset_metadata_from_figures(
        new_id, _source_request(source), now, f"augment:{source_id}", split_sizes=sizes,
        corrections=figures.corrections, groups_per_split={s: len(g) for s, g in figures.groups.items()},
        type_counts=dict(figures.types), scores=np.asarray(figures.scores, dtype=np.float64),
    )
    metadata["features"] = {**metadata["features"], "augmentation": audio_transforms.AUGMENTATION_FEATURE}
    rate = audio_clips.most_common_rate(rates)
    sample_rates = {str(r): n for r, n in sorted(rates.items())}
    # The build's quality report counts and names the clips it could not use, as a build that read headers does.
    quality["audio"] = {
        "headers_read": sum(rates.values()) + sum(kinds.values()), "durations_filled": counts["durations_filled"],
        "unusable_count": sum(kinds.values()), "unusable_by_kind": dict(sorted(kinds.items())),
        "unusable": problems, "excluded_count": 0, "sample_rates": sample_rates, "sampling_rate": rate,
    }
    metadata |= {
        "gcs_path": bucket.uri(prefix),
        "data_files": {split: bucket.uri(prefix + layout.split_file(split)) for split in SPLITS},
        "files": files,
        "checksum": manifest_checksum(files),
        "quality_report": quality,
        "augmentation": {
            "source_dataset_id": source_id,
            "source_checksum": source.get("checksum"),
            "transforms": [t.spec() for t in transforms],
            "source_train_rows": int((source.get("split_sizes") or {}).get("train", 0)),
            "augmented_rows": counts["augmented_rows"],
            "durations_filled": counts["durations_filled"],
            "clipped_samples": counts["clipped_samples"],
            "duration_range": list(job.duration_range),
            "outside_duration_count": counts["outside_duration"],
            "audio_seconds_in": round(seconds["in"], 3),
            "audio_seconds_out": round(seconds["out"], 3),
            # Train rows not augmented, and val/test rows whose header could not give a duration: each named
            # (the first NAMED_CAP) with its split and the reason.
            "skipped_count": counts["skipped"],
            "unreadable_val_test_count": counts["unreadable_elsewhere"],
            "problems": problems,
        },
        "audio": {"sampling_rate": rate, "sample_rates": sample_rates},
    }
    body = orjson.dumps(metadata, option=orjson.OPT_INDENT_2)
    if not bucket.put_once(prefix + layout.DATASET_METADATA, body, "application/json"):
        return finished_metadata(bucket, new_id)  # another attempt finished first: its metadata stands
    return metadata
