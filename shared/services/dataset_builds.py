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
from shared.domain.split_balance import metadata_split_warnings
from shared.errors import BadInput, InvalidBuildRequest
from shared.ports import Bucket, BuildLedger, CaseStore, ProgressBoard, Quarantine
from shared.services.bucket_objects import is_new_object, object_version_id
from shared.services.build_leases import Lease, claim_build
from shared.services.case_snapshot import build_over_snapshot, sync_snapshot
from shared.services.dataset_cards import write_card
from shared.services.datasets import read_metadata
from shared.services.outcome import Outcome
from shared.services.version_registry import read_registry, register_version
from shared.services.work_progress import ProgressNotes


def is_build_request(attributes: Mapping[str, str], settings: Settings) -> bool:
    """True for a finalized `dataset-requests/*.json` object of this deployment's bucket."""
    return is_new_object(attributes, settings, layout.REQUESTS, ".json")


def python_dataset_id(now: datetime) -> str:
    """A dataset id for a build asked from Python (no request object to derive it from)."""
    return f"finetuning_dataset_{now:%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:6]}"


def dataset_info(metadata: Mapping[str, Any], version_id: str | None) -> dict[str, Any]:
    """What a build returns: where the dataset is and what is in it (the keys prepare_dataset returns)."""
    info = {
        key: metadata.get(key)
        for key in ("dataset_id", "created_at", "gcs_path", "data_files", "total_samples", "split_sizes",
                    "error_type_distribution", "checksum")
    }
    info["quality_passed"] = bool(metadata["quality_report"]["passed"])
    # Splits empty or far from their ratio, and why (a dataset built before these were recorded: worked out now).
    info["split_warnings"] = list(metadata.get("split_warnings", metadata_split_warnings(metadata)))
    if version_id is not None:
        info["version_id"] = version_id
    return info


def build_dataset(
    request: BuildRequest, dataset_id: str, source: str, cases: CaseStore, bucket: Bucket,
    now: datetime | None = None, before_commit: Callable[[], None] = lambda: None,
    thresholds: QualityThresholds | None = None,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> dict[str, Any]:
    """Build (or finish building) one dataset and, when asked, its version; {"error": ...} with no cases.

    The cases come from the case snapshot, brought up to date first (services/case_snapshot.py).
    `before_commit` runs before any dataset file is written (a leased build checks it still holds its lease);
    `on_stage` hears each stage as it starts (for people watching).
    The quality check applies the request's `quality_thresholds` over `thresholds` (the deployment's default).
    A dataset whose check fails is built and reported but registered as a version only when the request says
    `allow_failed_quality` (the entry is then flagged `quality_failed`); `quality_gate` in the info says which.
    """
    now = now or utc_now()
    metadata = read_metadata(bucket, dataset_id)
    if metadata is None:
        if request.create_version and request.parent_version:
            _known_version(bucket, request.parent_version)
        # Every case stored before now is in the snapshot once this returns.
        on_stage("syncing the case snapshot")
        sync_snapshot(cases, bucket, now)
        on_stage("writing the dataset")
        metadata = build_over_snapshot(request, dataset_id, source, bucket, now, before_write=before_commit,
                                       thresholds=request.thresholds(thresholds))
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
    return {**dataset_info(metadata, version_id), "quality_gate": gate}


def _known_version(bucket: Bucket, version_id: str) -> None:
    if version_id not in read_registry(bucket)["versions"]:
        raise InvalidBuildRequest(f"parent_version {version_id!r} is not in {layout.REGISTRY}")


def run_build_request(
    object_name: str, generation: str | int | None, *, ledger: BuildLedger, cases: CaseStore,
    bucket: Bucket, quarantine: Quarantine, attempt: str | None = None,
    clock: Callable[[], datetime] = utc_now, sleep: Callable[[float], None] = time.sleep,
    thresholds: QualityThresholds | None = None, progress: ProgressBoard | None = None,
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
                                thresholds, notes.stage)
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
    on_stage: Callable[[str], None] = lambda stage: None,
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
                             thresholds=thresholds, on_stage=on_stage)
    except BadInput as exc:
        quarantine.quarantine(f"build_dataset-{build_id}", raw, exc.reason, "build_dataset", object=base["object"])
        return "rejected", {**base, "status": "rejected", "reason": exc.reason}
    return "finished", {**base, "status": "no eligible cases" if "error" in info else "built", **info}


def build_from_parameters(
    parameters: Mapping[str, Any], cases: CaseStore, bucket: Bucket, now: datetime,
    thresholds: QualityThresholds | None = None,
) -> dict[str, Any]:
    """Build a dataset asked for from Python or the api; its info ({"error": ...} when no case is eligible).

    The parameters go through the request's own parser, so a bad one is refused in the words an upload gets.
    """
    request = parse_build_request(orjson.dumps(dict(parameters)))
    return build_dataset(request, python_dataset_id(now), "python", cases, bucket, now, thresholds=thresholds)


# What the log line of a build keeps of its result (the whole result is in dataset_results/ and Firestore).
_LOGGED = ("object", "dataset_id", "version_id", "total_samples", "split_sizes", "quality_passed", "reason")


def serve_notification(
    attributes: Mapping[str, str], settings: Settings, ledger: BuildLedger, cases: CaseStore, bucket: Bucket,
    progress: ProgressBoard | None = None,
) -> Outcome:
    """Build from the notified object if it is a new `dataset-requests/*.json` of this bucket; else ignored."""
    if not is_build_request(attributes, settings):
        return Outcome("ignored", details={"object": attributes.get("objectId")})
    result = run_build_request(attributes["objectId"], attributes.get("objectGeneration"), ledger=ledger,
                               cases=cases, bucket=bucket, quarantine=cases,
                               thresholds=settings.quality_thresholds(), progress=progress)
    return Outcome(result["status"], details={key: result[key] for key in _LOGGED if key in result})
