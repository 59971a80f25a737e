"""Use case: a build request (`dataset-requests/<name>.json`) becomes a train/val/test dataset, and a version.

Order of writes, so a reader never takes a half-written dataset for a finished one: the split files first,
then `metadata.json` (the dataset is finished once it exists: it holds every file's sha256), then the
registry entry (a compare-and-swap on the registry object's generation; only when the quality check passed or
the request allows a failed one), then the dataset card `README.md`, then the build's ledger record.
A redelivered or taken-over build finds what an earlier attempt finished and completes only the rest.

One build per upload, whatever Pub/Sub delivers: an attempt holds a lease (build_leases.py). Versions go
through the registry object (version_registry.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from shared.clock import utc_now
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.domain.dataset_build import SPLITS
from shared.domain.dataset_quality import QualityThresholds, quality_gate
from shared.domain.dataset_request import MAX_REQUEST_BYTES, BuildRequest, parse_build_request
from shared.errors import BadInput, InvalidBuildRequest
from shared.ports import Bucket, BuildLedger, CaseStore, ProgressBoard, Quarantine
from shared.services.audio_reads import OpenBucket, only_bucket
from shared.services.bucket_objects import is_new_object, object_version_id
from shared.services.build_leases import Lease, claim_build
from shared.services.case_snapshot import build_over_snapshot, sync_snapshot
from shared.services.dataset_cards import write_card
from shared.services.datasets import dataset_info, read_metadata
from shared.services.outcome import Outcome
from shared.services.version_registry import read_registry, register_version
from shared.services.work_progress import ProgressNotes


def is_build_request(attributes: Mapping[str, str], settings: Settings) -> bool:
    """True for a finalized `dataset-requests/*.json` object of this deployment's bucket."""
    return is_new_object(attributes, settings, layout.REQUESTS, ".json")


def python_dataset_id(now: datetime) -> str:
    """A dataset id for a build asked from Python (no request object to derive it from)."""
    return f"finetuning_dataset_{now:%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:6]}"


def build_dataset(
    request: BuildRequest, dataset_id: str, source: str, cases: CaseStore, bucket: Bucket,
    now: datetime | None = None, before_commit: Callable[[], None] = lambda: None,
    thresholds: QualityThresholds | None = None,
    on_stage: Callable[[str], None] = lambda stage: None,
    open_bucket: OpenBucket | None = None,
) -> dict[str, Any]:
    """Build (or finish building) one dataset and, when asked, its version; {"error": ...} with no cases.

    The cases come from the case snapshot, brought up to date first (services/case_snapshot.py).
    `before_commit` runs before any dataset file is written (a leased build checks it still holds its lease);
    `on_stage` hears each stage as it starts (for people watching).
    The quality check applies the request's `quality_thresholds` over `thresholds` (the deployment's default).
    A dataset whose check fails is built and reported but registered as a version only when the request says
    `allow_failed_quality` (the entry is then flagged `quality_failed`); `quality_gate` in the info says which.

    The rows' audio is read (through `open_bucket`: the audio buckets; default this bucket only) only when the
    request filters by duration or augments. With `augment`, the finished dataset is then augmented into a
    dataset of its own (`augmented` in the info, augment_build below). A request with `augment_dataset_id`
    selects nothing: it augments that finished dataset (augment_finished_dataset below), and `dataset_id` is
    unused (the augmented dataset's id derives from its source and transforms).
    """
    now = now or utc_now()
    if request.augment_dataset_id is not None:
        on_stage("augmenting the train audio")
        return augment_finished_dataset(request, bucket, now, open_bucket or only_bucket(bucket),
                                        thresholds=request.thresholds(thresholds), before_write=before_commit)
    metadata = read_metadata(bucket, dataset_id)
    if metadata is None:
        if request.create_version and request.parent_version:
            _known_version(bucket, request.parent_version)
        # Every case stored before now is in the snapshot once this returns.
        on_stage("syncing the case snapshot")
        sync_snapshot(cases, bucket, now)
        on_stage("writing the dataset")
        metadata = build_over_snapshot(request, dataset_id, source, bucket, now, before_write=before_commit,
                                       thresholds=request.thresholds(thresholds), open_bucket=open_bucket)
        if metadata is None:
            # The keys a built dataset's info has too, at zero, so a caller reading split_sizes never KeyErrors.
            return {"error": "No eligible cases", "dataset_id": dataset_id, "total_samples": 0,
                    "split_sizes": dict.fromkeys(SPLITS, 0), "request": request.model_dump()}
    # The report in metadata.json is the one the build made, with the thresholds it applied (a redelivery
    # decides as the first attempt did).
    gate = quality_gate(metadata["quality_report"], request.create_version, request.allow_failed_quality)
    version_id = None
    if gate["version"] in ("registered", "registered_flagged"):
        on_stage("registering the version")
        flags = {"quality_failed": True} if gate["version"] == "registered_flagged" else None
        version_id = register_version(bucket, metadata, request.version_name, request.parent_version, now,
                                      flags=flags)
    # The dataset card (README.md) last: derived from metadata.json and the registry, so it names the version.
    write_card(bucket, dataset_id, metadata)
    info = {**dataset_info(metadata, version_id), "quality_gate": gate}
    if request.augment:
        on_stage("augmenting the train audio")
        info["augmented"] = augment_build(request, dataset_id, version_id, bucket, now, open_bucket or
                                          only_bucket(bucket), before_write=before_commit, thresholds=thresholds)
    return info


def augment_build(
    request: BuildRequest, dataset_id: str, parent_version: str | None, bucket: Bucket, now: datetime,
    open_bucket: OpenBucket, before_write: Callable[[], None] = lambda: None,
    thresholds: QualityThresholds | None = None,
) -> dict[str, Any]:
    """The augmented dataset of a build request with `augment`: the plain dataset's train rows each augmented by
    every transform (shared/services/augmentation.py), its own dataset `<id>-aug-<digest>`, checked by the same
    quality gate and, when the plain dataset got a version, registered as that version's child (the seed's
    v_initial -> v_augmented; named `<version_name>-augmented` when the request names its version). Augmented
    clips outside the request's duration range are not written. What the build result says of it."""
    from shared.services.augmentation import augmented_metadata, version_augmented  # numpy/soxr for such builds

    metadata = augmented_metadata(bucket, open_bucket, dataset_id, request.transforms, now,
                                  duration_range=(request.min_duration_s, request.max_duration_s),
                                  before_write=before_write, thresholds=request.thresholds(thresholds))
    # Versioned only below a registered plain version: an augmented version's parent is always its source.
    info = version_augmented(
        bucket, metadata, now, create_version=request.create_version and parent_version is not None,
        version_name=f"{request.version_name}-augmented" if request.version_name else None,
        parent_version=parent_version, allow_failed_quality=request.allow_failed_quality)
    summary = metadata["augmentation"]
    return {**info, **{key: summary.get(key) for key in ("transforms", "augmented_rows", "skipped_count",
                                                         "unreadable_val_test_count", "outside_duration_count")}}


def augment_finished_dataset(
    request: BuildRequest, bucket: Bucket, now: datetime, open_bucket: OpenBucket,
    thresholds: QualityThresholds | None = None, before_write: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """A request with `augment_dataset_id` (what the api's augment_dataset op uploads): that finished dataset
    augmented by the request's transforms into a dataset and version of its own, as augment_dataset from
    Python makes it (parent: `parent_version`, else the source's newest version). A source that is not a
    finished dataset, or changed since its build, rejects the request."""
    from shared.services.augmentation import augment_dataset

    source = str(request.augment_dataset_id)
    if read_metadata(bucket, source) is None:
        raise InvalidBuildRequest(f"augment_dataset_id {source!r} is not a finished dataset "
                                  f"({layout.dataset_prefix(source)}{layout.DATASET_METADATA} missing)")
    return augment_dataset(bucket, open_bucket, source, request.augment, now,
                           create_version=request.create_version, version_name=request.version_name,
                           parent_version=request.parent_version, allow_failed_quality=request.allow_failed_quality,
                           thresholds=thresholds, before_write=before_write)


def _known_version(bucket: Bucket, version_id: str) -> None:
    if version_id not in read_registry(bucket)["versions"]:
        raise InvalidBuildRequest(f"parent_version {version_id!r} is not in {layout.REGISTRY}")


def run_build_request(
    object_name: str, generation: str | int | None, *, ledger: BuildLedger, cases: CaseStore,
    bucket: Bucket, quarantine: Quarantine, attempt: str | None = None,
    clock: Callable[[], datetime] = utc_now, sleep: Callable[[float], None] = time.sleep,
    thresholds: QualityThresholds | None = None, progress: ProgressBoard | None = None,
    open_bucket: OpenBucket | None = None,
) -> dict[str, Any]:
    """Serve one uploaded build request version, once; the result is also kept in `dataset_results/`. Its
    stage is noted on `progress` as it goes.

    `thresholds`: the deployment's default quality thresholds (Settings.quality_thresholds)."""
    build_id = object_version_id(object_name, generation)
    attempt = attempt or uuid.uuid4().hex
    done = claim_build(ledger, build_id, attempt, clock, sleep)
    if done is not None:
        return {**done.get("result", {}), "status": f"already {done['status']}"}
    notes = ProgressNotes(progress, "build", build_id)
    notes.note(state="running", stage="reading the request", name=object_name, object=bucket.uri(object_name),
               generation=str(generation))
    with Lease(ledger, build_id, attempt, clock).kept() as lease:
        status, result = _serve(object_name, generation, build_id, cases, bucket, quarantine, clock(), lease,
                                thresholds, notes.stage, open_bucket)
        lease.check()
        if status != "gone":
            bucket.put(layout.build_result_name(object_name),
                       orjson.dumps(result, option=orjson.OPT_INDENT_2), "application/json")
        ledger.finish(build_id, "rejected" if status == "gone" else status, result)
    notes.note(state=result["status"], stage="done",
               **{key: result[key] for key in ("dataset_id", "version_id", "total_samples", "reason") if key in result})
    return result


def _serve(
    object_name: str, generation: str | int | None, build_id: str, cases: CaseStore, bucket: Bucket,
    quarantine: Quarantine, now: datetime, lease: Lease, thresholds: QualityThresholds | None,
    on_stage: Callable[[str], None] = lambda stage: None, open_bucket: OpenBucket | None = None,
) -> tuple[str, dict[str, Any]]:
    base = {"object": bucket.uri(object_name), "generation": str(generation), "build_id": build_id}
    gen = int(generation) if generation else None
    size = bucket.size(object_name, gen)
    if size is not None and size > MAX_REQUEST_BYTES:  # refused unread: an upload of any size lands here
        reason = f"build request is {size} bytes, over the limit of {MAX_REQUEST_BYTES} bytes"
        quarantine.quarantine(f"build_dataset-{build_id}", b"", reason, "build_dataset", object=base["object"],
                              size_bytes=size)
        return "rejected", {**base, "status": "rejected", "reason": reason}
    raw = bucket.get(object_name, gen) if size is not None else None
    if raw is None:
        # Deleted or overwritten before we read it: a newer version brings its own notification.
        return "gone", {**base, "status": "object gone"}
    try:
        request = parse_build_request(raw)
        dataset_id = layout.dataset_id_for_request(object_name, generation)
        info = build_dataset(request, dataset_id, base["object"], cases, bucket, now, before_commit=lease.check,
                             thresholds=thresholds, on_stage=on_stage, open_bucket=open_bucket)
    except BadInput as exc:
        quarantine.quarantine(f"build_dataset-{build_id}", raw, exc.reason, "build_dataset", object=base["object"])
        return "rejected", {**base, "status": "rejected", "reason": exc.reason}
    return "finished", {**base, "status": "no eligible cases" if "error" in info else "built", **info}


def build_from_parameters(
    parameters: Mapping[str, Any], cases: CaseStore, bucket: Bucket, now: datetime,
    thresholds: QualityThresholds | None = None, open_bucket: OpenBucket | None = None,
) -> dict[str, Any]:
    """Build a dataset asked for from Python or the api; its info ({"error": ...} when no case is eligible).

    The parameters go through the request's own parser, so a bad one is refused in the words an upload gets.
    """
    request = parse_build_request(orjson.dumps(dict(parameters)))
    return build_dataset(request, python_dataset_id(now), "python", cases, bucket, now, thresholds=thresholds,
                         open_bucket=open_bucket)


# What the log line of a build keeps of its result (the whole result is in dataset_results/ and Firestore).
_LOGGED = ("object", "dataset_id", "version_id", "total_samples", "split_sizes", "quality_passed", "reason",
           "augmented", "source_dataset_id", "parent_version")


def serve_notification(
    attributes: Mapping[str, str], settings: Settings, ledger: BuildLedger, cases: CaseStore, bucket: Bucket,
    progress: ProgressBoard | None = None, open_bucket: OpenBucket | None = None,
) -> Outcome:
    """Build from the notified object if it is a new `dataset-requests/*.json` of this bucket; else ignored."""
    if not is_build_request(attributes, settings):
        return Outcome("ignored", details={"object": attributes.get("objectId")})
    result = run_build_request(attributes["objectId"], attributes.get("objectGeneration"), ledger=ledger,
                               cases=cases, bucket=bucket, quarantine=cases,
                               thresholds=settings.quality_thresholds(), progress=progress,
                               open_bucket=open_bucket)
    return Outcome(result["status"], details={key: result[key] for key in _LOGGED if key in result})
