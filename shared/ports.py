"""The ports: what the use cases need from the outside world, as Protocols.

Real adapters (shared/adapters/) and the in-memory fakes of the tests subclass these same classes, and
shared/bootstrap.py is the one place that picks which implementation a process gets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, BinaryIO, Protocol

from shared.domain.cases import CounterDelta
from shared.domain.dead_letters import DeadLetter
from shared.domain.metric_history import Snapshot

# A change to one case inside its transaction: (the fields to update, the counters they move), or None.
CaseChange = Callable[[dict[str, Any]], tuple[dict[str, Any], CounterDelta] | None]


class Quarantine(Protocol):
    """Where rejected payloads are kept with their reason, once per id, and counted."""

    def quarantine(self, quarantine_id: str, raw: bytes, reason: str, source: str, **context: Any) -> bool:
        """Keep `raw` with `reason`; False when `quarantine_id` is already kept (a redelivery)."""


class CaseStore(Quarantine, Protocol):
    """Failure cases, their statistics counters, finished imports and rejected payloads.

    Quarantine ids are `<function>-<message id>`: message ids are unique per topic only.
    """

    def create_case(self, case_id: str, case: dict[str, Any], delta: CounterDelta) -> bool:
        """Create-if-absent with its counters, atomically; False when the case already exists; UnstorableRecord
        (nothing written) when the store cannot hold the case."""

    def create_cases(self, items: Sequence[tuple[str, dict[str, Any], CounterDelta]]) -> dict[str, dict[str, Any]]:
        """Create many cases in one atomic write; the ids that already existed (not written), each with where it
        came from: its `import_id` and `import_line` (absent when no import stored it). UnstorableRecord (nothing
        written) when the store cannot hold one of them."""

    def update_case(self, case_id: str, change: CaseChange) -> dict[str, Any] | None:
        """Read-modify-write one case; the case after the change, None when it does not exist."""

    def save_import(self, import_id: str, summary: dict[str, Any]) -> None:
        """Record a finished bulk import's result."""

    def import_result(self, import_id: str) -> dict[str, Any] | None:
        """A finished bulk import's result, or None (never started, or still running)."""

    def save_import_progress(self, import_id: str, progress: dict[str, Any]) -> None:
        """Record how far a running import got (a checkpoint), replacing the previous one."""

    def import_progress(self, import_id: str) -> dict[str, Any] | None:
        """A running (or interrupted) import's last checkpoint, or None."""

    def get_case(self, case_id: str) -> dict[str, Any] | None:
        """One case, or None."""

    def get_cases(self, case_ids: Sequence[str]) -> Iterator[dict[str, Any]]:
        """The stored cases of these ids, in the order given (an id with no case is skipped); a store with a
        batched read overrides this one-at-a-time default."""
        for case_id in case_ids:
            case = self.get_case(case_id)
            if case is not None:
                yield case

    def cases_with_error_type(self, error_type: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Cases whose error_types contain `error_type`, newest first."""

    def corrected_cases(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Cases that have a corrected transcript, newest first."""

    def stream_cases(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Every case (optionally created at or after `since`), streamed."""

    def cases_changed_since(self, since: datetime | None) -> Iterator[dict[str, Any]]:
        """Cases whose last single write (event, correction, Python API; not a bulk import) committed at or after
        `since` (None: every such case), each with that commit time as `tail_at`; the fields a snapshot row is
        made of at least (domain/case_snapshot.py SOURCE_FIELDS)."""


    def counter_shards(self) -> list[dict[str, Any]]:
        """The statistics counters, as shards to be summed."""

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        """Quarantined payloads with their reasons, newest first."""


class BuildLedger(Protocol):
    """One record per build request, claimed under a lease (the rule: shared/domain/leases.py)."""

    def claim(self, build_id: str, attempt: str, now: datetime, lease: timedelta) -> dict[str, Any] | None:
        """Take the build for `attempt`; its end record when already done; BuildInProgress while another
        attempt holds an unexpired lease."""

    def renew(self, build_id: str, attempt: str, until: datetime) -> bool:
        """Extend `attempt`'s lease; False when the build is no longer that attempt's."""

    def finish(self, build_id: str, status: str, result: dict[str, Any]) -> None:
        """Record the build's end (finished or rejected) with its result."""


class ProgressBoard(Protocol):
    """How far long work got (an import's lines, a build's stage), for people watching it: the CLI, the dashboard.

    Best effort and never read by the work itself (an import resumes from its checkpoint, a build from its
    ledger): a note that cannot be written is logged and the work goes on. `kind` is "import" or "build"; a
    work id is the object version's id (services/bucket_objects.py object_version_id).
    """

    def note(self, kind: str, work_id: str, fields: dict[str, Any]) -> None:
        """Merge `fields` into the work's record, stamped `updated_at` now."""

    def get(self, kind: str, work_id: str) -> dict[str, Any] | None:
        """The work's record, or None when nothing was noted."""

    def recent(self, kind: str, limit: int) -> list[dict[str, Any]]:
        """The records of `kind` most recently noted, newest first, at most `limit`."""


class MetricStore(Protocol):
    """Where metric records, rejected payloads and performance snapshots are kept."""

    def create(self, kind: str, record_id: str, document: dict[str, Any]) -> bool:
        """Store a new record; False when `record_id` already exists; UnstorableRecord when it cannot."""

    def quarantine(self, quarantine_id: str, record: dict[str, Any]) -> bool:
        """Keep a rejected payload with its reason; False when already kept."""

    def records(self, kind: str) -> Iterator[dict[str, Any]]:
        """Every stored record of `kind`, in no particular order."""

    def performance_points(self, since: datetime | None) -> list[dict[str, Any]]:
        """POINT_FIELDS of the performance records stored at or after `since` (None: all), from the history."""

    def recent_points(self, since: datetime, *, after: bool = False) -> list[dict[str, Any]]:
        """POINT_FIELDS of the performance records stored at or after `since` (after it: `after`), from a small
        store of recent points.

        Complete for any `since` from the published snapshot's watermark minus SNAPSHOT_OVERLAP on: every
        performance record is kept there in the same write, and only a published snapshot removes what it holds.
        """

    def recent_count(self, since: datetime, until: datetime) -> int:
        """How many recent points were stored from `since` to `until` (both included), without reading them."""

    def records_of_version(
        self, kind: str, version_id: str, fields: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Records of `kind` whose model_version is `version_id` (only `fields` when given)."""

    def load_snapshot(self) -> Snapshot | None:
        """The latest complete snapshot, or None."""

    def snapshot_generation(self) -> str | None:
        """The generation of the published snapshot now (a cheap read), or None."""

    def save_snapshot(self, snapshot: Snapshot) -> str:
        """Publish a snapshot so readers see the old one or the new one, never a mix, and never one with an
        earlier watermark than the published one; then drop the recent points stored before its watermark minus
        SNAPSHOT_OVERLAP. The published generation (the other one when it was newer)."""



class ObjectWriter(Protocol):
    """Whole objects in the bucket: each put is one upload, so a reader never sees half an object."""

    def put(self, name: str, data: bytes, content_type: str) -> str:
        """Write (or replace) `name`; its gs:// URI."""


class RegistryBucket(Protocol):
    """Reads and compare-and-swap writes of one object (the version registry)."""

    def get_versioned(self, name: str) -> tuple[bytes | None, int]:
        """The object's bytes and generation; (None, 0) when absent."""

    def put_if_generation(self, name: str, data: bytes, generation: int, content_type: str = ...) -> bool:
        """Replace the object only if still at `generation` (0: only if absent); False if it moved on."""


class PartStore(Protocol):
    """Where the case snapshot's parts live: the bucket, or a folder (shared/snapshot/parts.py LocalPartStore)."""

    def put(self, name: str, data: bytes) -> object:
        """Write the object whole."""

    def get(self, name: str) -> bytes | None:
        """The object's bytes, or None."""

    def names(self, prefix: str) -> list[str]:
        """The names under `prefix`."""

    def delete(self, name: str) -> object:
        """Delete the object (nothing when gone)."""


class Bucket(ObjectWriter, RegistryBucket, Protocol):
    """The deployment's bucket: whole-object writes, reads, listings, copies and streamed lines."""

    def uri(self, name: str) -> str:
        """The object's gs:// URI."""

    def put(self, name: str, data: bytes, content_type: str = ...) -> str:
        """Write (or replace) `name` in one upload; its gs:// URI."""

    def put_once(self, name: str, data: bytes, content_type: str = ...) -> bool:
        """Create `name` only if absent; False when it already exists."""

    def keep(self, name: str, data: bytes) -> str:
        """Write `data` once under `name` (a retry finds it kept); its gs:// URI."""

    def get(self, name: str, generation: int | None = None) -> bytes | None:
        """The object's bytes (of one generation, when given), or None when absent."""

    def get_upto(self, name: str, max_bytes: int) -> bytes | None:
        """The object's bytes in one request when it holds at most `max_bytes`; else its first max_bytes + 1
        (longer than max_bytes says it was cut). None when absent."""

    def generation(self, name: str) -> int:
        """The object's live generation from its metadata (0 when absent); nothing is downloaded."""

    def size(self, name: str, generation: int | None = None) -> int | None:
        """The object's size in bytes (of one generation, when given) without reading it, or None when absent."""

    def writer(self, name: str, content_type: str = ...) -> AbstractContextManager[BinaryIO]:
        """A stream that becomes the object `name` when its block ends cleanly (an error writes nothing)."""

    def delete(self, name: str) -> None:
        """Delete the object; nothing when it is already gone."""

    def names(self, prefix: str) -> list[str]:
        """The names of the objects under `prefix`."""

    def copy(self, source: str, destination: str) -> str:
        """Copy one object; the destination's gs:// URI."""

    def compose(self, sources: Sequence[str], destination: str, content_type: str = ...) -> str:
        """`destination` made of the sources' bytes in order (at most 32), without downloading them; its URI."""

    def compose_if_generation(
        self, sources: Sequence[str], destination: str, generation: int, content_type: str = ...
    ) -> int | None:
        """``compose``, only if `destination` is still at `generation` (0: only if absent); its new generation,
        None when it moved on (an append that lost a race appends nothing)."""

    def reader(self, name: str, generation: int | None = None) -> AbstractContextManager[BinaryIO]:
        """A seekable stream of the object (of one generation); ObjectGone when that version no longer exists."""

    def lines(self, name: str, generation: int | None = None) -> Iterator[bytes]:
        """The object's lines without line ends, streamed; ObjectGone when that version no longer exists."""


class Publisher(Protocol):
    """Publishes messages to a topic, batched; the message ids come back."""

    def publish(self, topic: str, payloads: Sequence[bytes], timeout_s: float) -> list[str]:
        """Publish every payload to `topic` (an id, not a path); their message ids, in order."""


class DeadLetterQueue(Protocol):
    """The dead-letter subscriptions: pull what failed, acknowledge it, republish it to its topic."""

    def pull(self, subscription: str, max_messages: int) -> list[DeadLetter]:
        """Up to `max_messages` dead letters of `subscription` (an id), leased to the caller; [] when none."""

    def ack(self, subscription: str, ack_ids: Sequence[str]) -> None:
        """Acknowledge pulled dead letters: they are gone from `subscription`."""

    def release(self, subscription: str, ack_ids: Sequence[str]) -> None:
        """Hand pulled dead letters back unacknowledged: the next pull sees them again (a look, not a take)."""

    def republish(self, topic: str, data: bytes, attributes: Mapping[str, str], timeout_s: float) -> str:
        """Publish one message to `topic` (an id) with `attributes`; its message id."""
