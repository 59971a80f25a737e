"""Use case: a build request (`dataset-requests/<name>.json`) becomes a train/val/test dataset, and a version.

Order of writes, so a reader never takes a half-written dataset for a finished one: the split files first,
then `metadata.json` (the dataset is finished once it exists: it holds every file's sha256), then the
registry entry (a compare-and-swap on the registry object's generation), then the build's ledger record.
A redelivered or taken-over build finds what an earlier attempt finished and completes only the rest.

One build per upload, whatever Pub/Sub delivers: an attempt claims the build under a short lease that a
heartbeat renews while it works. A duplicate delivery waits for the running attempt to finish (then
acknowledges) or for its lease to lapse (the attempt crashed: it takes the build over), so a crash costs
about one lease, not the request: failing fast instead would spend the subscription's few deliveries
against a lease and dead-letter a request that could have been built.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from shared.config import Settings
from shared.domain.dataset_build import SPLITS, build_splits, dataset_metadata
from shared.domain.dataset_quality import check_quality
from shared.domain.dataset_request import BuildRequest, parse_build_request
from shared.domain.failure_event import InvalidEvent
from shared.domain.versions import add_version, file_entry, manifest_checksum, new_version, parse_registry
from shared.domain.versions import version_id_for as _version_id_for

REQUEST_PREFIX = "dataset-requests/"
RESULTS_PREFIX = "dataset_results/"
DATASETS_PREFIX = "finetuning_datasets/"
REGISTRY_NAME = "data_versions/version_registry.json"
METADATA_FILE = "metadata.json"
# A running attempt renews its lease every LEASE / 4; a crashed one loses it within LEASE.
LEASE = timedelta(seconds=60)
# How long a duplicate delivery waits for the running attempt before it gives up (and is retried): below the
# function's 540 s timeout, so the wait ends with an answer, not a killed instance.
WAIT_FOR_RUNNING_S = 420.0
POLL_S = 5.0


class BuildInProgress(RuntimeError):
    """Another attempt holds the build's lease: retry later (transient)."""


class LeaseLost(RuntimeError):
    """Another attempt took the build over (this one stalled past its lease): stop before writing more."""


class RegistryConflict(RuntimeError):
    """The registry object changed between our read and our write."""


class DatasetBucket(Protocol):
    """The objects a build reads and writes (shared/adapters/gcs.py: BucketStore)."""

    def uri(self, name: str) -> str: ...

    def put(self, name: str, data: bytes, content_type: str = ...) -> str: ...

    def get(self, name: str, generation: int | None = None) -> bytes | None: ...

    def get_versioned(self, name: str) -> tuple[bytes | None, int]: ...

    def put_if_generation(self, name: str, data: bytes, generation: int, content_type: str = ...) -> bool: ...


class CaseSource(Protocol):
    """Where the cases come from (shared/adapters/firestore_cases.py)."""

    def build_candidates(self, corrected_only: bool) -> Iterable[Mapping[str, Any]]: ...


class BuildLedger(Protocol):
    """One record per build request (shared/adapters/firestore_builds.py)."""

    def claim(self, build_id: str, attempt: str, now: datetime, lease: timedelta) -> dict[str, Any] | None: ...

    def renew(self, build_id: str, attempt: str, until: datetime) -> bool: ...

    def finish(self, build_id: str, status: str, result: dict[str, Any]) -> None: ...


class Quarantine(Protocol):
    """Where a rejected request is kept with its reason."""

    def quarantine(self, quarantine_id: str, raw: bytes, reason: str, source: str, **context: Any) -> bool: ...


def is_build_request(attributes: Mapping[str, str], settings: Settings) -> bool:
    """True for a finalized `dataset-requests/*.json` object of this deployment's bucket."""
    name = attributes.get("objectId", "")
    return (
        attributes.get("eventType") == "OBJECT_FINALIZE"
        and attributes.get("bucketId") == settings.bucket
        and name.startswith(REQUEST_PREFIX)
        and name.endswith(".json")
    )


def request_stem(object_name: str) -> str:
    """`dataset-requests/weekly.json` -> `weekly` (a nested name keeps its folders)."""
    return object_name.removeprefix(REQUEST_PREFIX).removesuffix(".json")


def dataset_id_for(object_name: str, generation: str | int | None) -> str:
    """One dataset per uploaded request version, readable: `<request name>-<generation>`."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", request_stem(object_name)).strip("_") or "dataset"
    return f"{stem}-{generation}"


def build_id_for(object_name: str, generation: str | int | None) -> str:
    return hashlib.sha256(f"{object_name}#{generation}".encode()).hexdigest()[:32]


def python_dataset_id(now: datetime) -> str:
    """A dataset id for a build asked from Python (no request object to derive it from)."""
    return f"finetuning_dataset_{now:%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:6]}"


def dataset_prefix(dataset_id: str) -> str:
    return f"{DATASETS_PREFIX}{dataset_id}/"


def encode_rows(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows)


def write_dataset(
    dataset_id: str, request: BuildRequest, splits: Mapping[str, list[dict[str, Any]]], source: str,
    bucket: DatasetBucket, now: datetime,
) -> dict[str, Any]:
    """Write the split files, then metadata.json (with checksums and the quality report); the metadata."""
    prefix = dataset_prefix(dataset_id)
    files: dict[str, dict[str, Any]] = {}
    data_files: dict[str, str] = {}
    for split in SPLITS:
        data = encode_rows(splits[split])
        data_files[split] = bucket.put(f"{prefix}{split}.jsonl", data, "application/x-ndjson")
        files[f"{split}.jsonl"] = file_entry(data, len(splits[split]))
    metadata = {
        **dataset_metadata(dataset_id, request, splits, now, source),
        "gcs_path": bucket.uri(prefix),
        "data_files": data_files,
        "files": files,
        "checksum": manifest_checksum(files),
        "quality_report": check_quality(splits),
    }
    bucket.put(prefix + METADATA_FILE, orjson.dumps(metadata, option=orjson.OPT_INDENT_2), "application/json")
    return metadata


def read_metadata(bucket: DatasetBucket, dataset_id: str) -> dict[str, Any] | None:
    """A finished dataset's metadata, or None (absent or half-written)."""
    data = bucket.get(dataset_prefix(dataset_id) + METADATA_FILE)
    return orjson.loads(data) if data is not None else None


def update_registry(
    bucket: DatasetBucket, change: Callable[[dict[str, Any]], tuple[dict[str, Any], bool]]
) -> dict[str, Any]:
    """Apply `change` to the registry with a generation precondition, re-reading on a concurrent write."""

    @retry(
        retry=retry_if_exception_type(RegistryConflict),
        stop=stop_after_attempt(20),
        wait=wait_random_exponential(multiplier=0.05, max=2),
        reraise=True,
    )
    def attempt() -> dict[str, Any]:
        data, generation = bucket.get_versioned(REGISTRY_NAME)
        registry, changed = change(parse_registry(data))
        if changed and not bucket.put_if_generation(
            REGISTRY_NAME, orjson.dumps(registry, option=orjson.OPT_INDENT_2), generation
        ):
            raise RegistryConflict(f"{REGISTRY_NAME} changed while it was being updated")
        return registry

    return attempt()


def read_registry(bucket: DatasetBucket) -> dict[str, Any]:
    data, _ = bucket.get_versioned(REGISTRY_NAME)
    return parse_registry(data)


def register_version(
    bucket: DatasetBucket, metadata: Mapping[str, Any], version_name: str | None, parent_version: str | None,
    now: datetime, extra: Mapping[str, Any] | None = None,
) -> str:
    """Add the dataset's version to the registry (idempotent for the same dataset); its version id."""
    dataset_id = str(metadata["dataset_id"])
    version_id = _version_id_for(version_name, dataset_id)
    summary = {key: metadata.get(key) for key in ("total_samples", "split_sizes", "error_type_distribution",
                                                   "error_score_stats", "corrections_included", "request", "source")}
    entry = new_version(
        version_id, dataset_id, str(metadata["gcs_path"]), metadata["files"], {**summary, **(extra or {})},
        metadata["quality_report"], parent_version, now,
    )
    update_registry(bucket, lambda registry: add_version(registry, entry, now))
    return version_id


def dataset_info(metadata: Mapping[str, Any], version_id: str | None) -> dict[str, Any]:
    """What a build returns: where the dataset is and what is in it (the seed's prepare_dataset keys)."""
    info = {
        key: metadata.get(key)
        for key in ("dataset_id", "created_at", "gcs_path", "data_files", "total_samples", "split_sizes",
                    "error_type_distribution", "checksum")
    }
    info["quality_passed"] = bool(metadata["quality_report"]["passed"])
    if version_id is not None:
        info["version_id"] = version_id
    return info


def build_dataset(
    request: BuildRequest, dataset_id: str, source: str, cases: CaseSource, bucket: DatasetBucket,
    now: datetime | None = None, before_commit: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Build (or finish building) one dataset and, when asked, its version; {"error": ...} with no cases.

    `before_commit` runs before anything is written (a leased build checks it still holds its lease).
    """
    now = now or datetime.now(UTC)
    metadata = read_metadata(bucket, dataset_id)
    if metadata is None:
        if request.create_version and request.parent_version:
            _known_version(bucket, request.parent_version)
        splits = build_splits(cases.build_candidates(corrected_only=not request.include_uncorrected), request)
        if not any(splits[split] for split in SPLITS):
            return {"error": "No eligible cases", "dataset_id": dataset_id, "request": request.model_dump()}
        before_commit()
        metadata = write_dataset(dataset_id, request, splits, source, bucket, now)
    version_id = None
    if request.create_version:
        version_id = register_version(bucket, metadata, request.version_name, request.parent_version, now)
    return dataset_info(metadata, version_id)


def _known_version(bucket: DatasetBucket, version_id: str) -> None:
    if version_id not in read_registry(bucket)["versions"]:
        raise InvalidEvent(f"parent_version {version_id!r} is not in {REGISTRY_NAME}")


def utc_now() -> datetime:
    return datetime.now(UTC)


def claim_build(
    ledger: BuildLedger, build_id: str, attempt: str, clock: Callable[[], datetime],
    sleep: Callable[[float], None], wait_s: float = WAIT_FOR_RUNNING_S,
) -> dict[str, Any] | None:
    """Claim the build, waiting while another attempt holds it; its end record when it is already done.

    Raises BuildInProgress when the other attempt still runs after `wait_s` (Pub/Sub then retries).
    """
    for _ in range(int(wait_s / POLL_S)):
        try:
            return ledger.claim(build_id, attempt, clock(), LEASE)
        except BuildInProgress:
            sleep(POLL_S)
    return ledger.claim(build_id, attempt, clock(), LEASE)


class Lease:
    """The claim of a running attempt, renewed in the background until the attempt ends."""

    def __init__(
        self, ledger: BuildLedger, build_id: str, attempt: str, clock: Callable[[], datetime],
        renew_every_s: float = LEASE.total_seconds() / 4,
    ) -> None:
        self.ledger, self.build_id, self.attempt, self.clock = ledger, build_id, attempt, clock
        self.renew_every_s = renew_every_s
        self.lost = False
        self._stop = threading.Event()

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.renew_every_s):
            if not self.ledger.renew(self.build_id, self.attempt, self.clock() + LEASE):
                self.lost = True
                return

    def check(self) -> None:
        """Raise LeaseLost when another attempt has taken the build over."""
        if self.lost:
            raise LeaseLost(f"build {self.build_id}: attempt {self.attempt} lost its lease")

    @contextmanager
    def kept(self) -> Iterator[Lease]:
        worker = threading.Thread(target=self._renew_until_stopped, name=f"lease-{self.build_id}", daemon=True)
        worker.start()
        try:
            yield self
        finally:
            self._stop.set()
            worker.join()


def run_build_request(
    object_name: str, generation: str | int | None, *, ledger: BuildLedger, cases: CaseSource,
    bucket: DatasetBucket, quarantine: Quarantine, attempt: str | None = None,
    clock: Callable[[], datetime] = utc_now, sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Serve one uploaded build request version, once; the result is also kept in `dataset_results/`."""
    build_id = build_id_for(object_name, generation)
    attempt = attempt or uuid.uuid4().hex
    done = claim_build(ledger, build_id, attempt, clock, sleep)
    if done is not None:
        return {**done.get("result", {}), "status": f"already {done['status']}"}
    with Lease(ledger, build_id, attempt, clock).kept() as lease:
        status, result = _serve(object_name, generation, build_id, cases, bucket, quarantine, clock(), lease)
        lease.check()
        if status != "gone":
            bucket.put(f"{RESULTS_PREFIX}{request_stem(object_name)}.json",
                       orjson.dumps(result, option=orjson.OPT_INDENT_2), "application/json")
        ledger.finish(build_id, "rejected" if status == "gone" else status, result)
    return result


def _serve(
    object_name: str, generation: str | int | None, build_id: str, cases: CaseSource, bucket: DatasetBucket,
    quarantine: Quarantine, now: datetime, lease: Lease,
) -> tuple[str, dict[str, Any]]:
    base = {"object": bucket.uri(object_name), "generation": str(generation), "build_id": build_id}
    raw = bucket.get(object_name, int(generation) if generation else None)
    if raw is None:
        # Deleted or overwritten before we read it: a newer version brings its own notification.
        return "gone", {**base, "status": "object gone"}
    try:
        request = parse_build_request(raw)
        info = build_dataset(request, dataset_id_for(object_name, generation), base["object"], cases, bucket, now,
                             before_commit=lease.check)
    except InvalidEvent as exc:
        quarantine.quarantine(f"build_dataset-{build_id}", raw, exc.reason, "build_dataset", object=base["object"])
        return "rejected", {**base, "status": "rejected", "reason": exc.reason}
    return "finished", {**base, "status": "no eligible cases" if "error" in info else "built", **info}
