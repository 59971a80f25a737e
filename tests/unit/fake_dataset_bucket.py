"""In-memory ports of a dataset build, with the same semantics as the real adapters.

FakeBucket is BucketStore (shared/adapters/gcs.py): every write bumps the object's generation, a read of a
generation that is no longer live finds nothing, put_if_generation is a compare-and-swap (0: only if absent).
It also logs every landed write in order, can let another writer win the next put_if_generation races, and
can crash (SimulatedCrash) before a given object is written, as a process dying mid-build would.
FakeLedger is FirestoreBuildLedger (shared/adapters/firestore_builds.py): the same claim/lease rules.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.clock import utc_now
from shared.domain.leases import claim_decision, claimed_record, may_renew
from shared.errors import BuildInProgress, ObjectGone
from shared.ports import Bucket, BuildLedger, CaseStore, Quarantine
from tests.unit.fake_case_store import TAIL_EPOCH

# GCS generations are microsecond timestamps: large, increasing, never reused.
FIRST_GENERATION = 1_700_000_000_000_000


class SimulatedCrash(RuntimeError):
    """The process died before a write landed."""


@dataclass
class StoredObject:
    data: bytes
    generation: int
    content_type: str


@dataclass
class _Race:
    """Another writer that lands a write just before ours: `write(name, current bytes)` -> its bytes."""

    remaining: int
    write: Callable[[str, bytes | None], bytes]
    name: str | None = None  # only writes of this object race (None: every object)


class FakeBucket(Bucket):
    """Objects of one bucket, with generations, in a dict."""

    def __init__(self, bucket: str = "stt-project-datasets") -> None:
        self.bucket = bucket
        self.objects: dict[str, StoredObject] = {}
        self.writes: list[tuple[str, int]] = []  # (name, generation) of every landed write, in order
        self._generation = FIRST_GENERATION
        self._race: _Race | None = None
        self._crash_before: set[str] = set()
        self.races_lost = 0

    # -- test hooks -------------------------------------------------------------------------------------

    def lose_next_races(
        self, count: int, other_writer: Callable[[str, bytes | None], bytes], name: str | None = None
    ) -> None:
        """The next `count` put_if_generation calls (of `name`, when given) find that `other_writer` wrote the
        object first."""
        self._race = _Race(count, other_writer, name)

    def crash_before_write(self, name: str) -> None:
        """The next write of `name` (put or put_if_generation) raises SimulatedCrash and lands nothing."""
        self._crash_before.add(name)

    def written(self, since: int = 0) -> list[str]:
        """The names written, in order, from write number `since` on."""
        return [name for name, _ in self.writes[since:]]

    def delete(self, name: str) -> None:
        self.objects.pop(name, None)

    # -- BucketStore ------------------------------------------------------------------------------------

    def _land(self, name: str, data: bytes, content_type: str) -> int:
        self._generation += 1
        self.objects[name] = StoredObject(bytes(data), self._generation, content_type)
        self.writes.append((name, self._generation))
        return self._generation

    def _maybe_crash(self, name: str) -> None:
        if name in self._crash_before:
            self._crash_before.discard(name)
            raise SimulatedCrash(f"crashed before writing {name}")

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket}/{name}"

    def put(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self._maybe_crash(name)
        self._land(name, data, content_type)
        return self.uri(name)

    def get(self, name: str, generation: int | None = None) -> bytes | None:
        stored = self.objects.get(name)
        if stored is None or (generation is not None and stored.generation != generation):
            return None
        return stored.data

    def get_versioned(self, name: str) -> tuple[bytes | None, int]:
        stored = self.objects.get(name)
        return (None, 0) if stored is None else (stored.data, stored.generation)

    def generation(self, name: str) -> int:
        """The live generation of `name` (0 when absent)."""
        return self.get_versioned(name)[1]

    def put_if_generation(
        self, name: str, data: bytes, generation: int, content_type: str = "application/json"
    ) -> bool:
        self._maybe_crash(name)
        if self._race is not None and self._race.remaining > 0 and self._race.name in (None, name):
            self._race.remaining -= 1
            self.races_lost += 1
            self._land(name, self._race.write(name, self.get(name)), "application/json")
        if self.generation(name) != generation:
            return False
        self._land(name, data, content_type)
        return True

    def names(self, prefix: str) -> list[str]:
        return sorted(name for name in self.objects if name.startswith(prefix))

    def copy(self, source: str, destination: str) -> str:
        stored = self.objects.get(source)
        if stored is None:
            raise KeyError(f"{self.uri(source)} does not exist")
        self._maybe_crash(destination)
        self._land(destination, stored.data, stored.content_type)
        return self.uri(destination)

    def put_once(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        if name in self.objects:
            return False
        self.put(name, data, content_type)
        return True

    def keep(self, name: str, data: bytes) -> str:
        self.put_once(name, data)
        return self.uri(name)

    def size(self, name: str, generation: int | None = None) -> int | None:
        stored = self.objects.get(name)  # the object's metadata: its bytes are not read
        if stored is None or (generation is not None and stored.generation != generation):
            return None
        return len(stored.data)

    def compose(self, sources: Sequence[str], destination: str, content_type: str = "application/octet-stream") -> str:
        assert len(sources) <= 32, "GCS composes at most 32 objects at once"
        parts = [self.get(name) for name in sources]
        assert all(part is not None for part in parts), f"a source of {destination} is missing"
        return self.put(destination, b"".join(part or b"" for part in parts), content_type)

    def compose_if_generation(
        self, sources: Sequence[str], destination: str, generation: int,
        content_type: str = "application/octet-stream",
    ) -> int | None:
        if self.generation(destination) != generation:
            return None
        self.compose(sources, destination, content_type)
        return self.generation(destination)

    @contextmanager
    def writer(self, name: str, content_type: str = "application/octet-stream") -> Iterator[io.BytesIO]:
        """As BucketStore.writer: the object lands when the block ends cleanly, an error writes nothing."""
        stream = io.BytesIO()
        yield stream
        self.put(name, stream.getvalue(), content_type)

    def get_upto(self, name: str, max_bytes: int) -> bytes | None:
        data = self.get(name)
        return None if data is None else data[:max_bytes + 1]

    @contextmanager
    def reader(self, name: str, generation: int | None = None) -> Iterator[io.BytesIO]:
        data = self.get(name, generation)
        if data is None:
            raise ObjectGone(f"{self.uri(name)} generation {generation} no longer exists")
        yield io.BytesIO(data)

    def lines(self, name: str, generation: int | None = None) -> Iterator[bytes]:
        data = self.get(name, generation)
        if data is None:
            raise ObjectGone(f"{self.uri(name)} generation {generation} no longer exists")
        for line in io.BytesIO(data):  # split as BucketStore's buffered reader splits: on b"\n" only
            yield line.rstrip(b"\r\n")



class FakeClock:
    """Time that passes only when the code under test sleeps; `on_sleep` hooks act as the rest of the world."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.slept = 0.0
        self.on_sleep: list[Callable[[datetime], None]] = []

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        self.slept += seconds
        for hook in self.on_sleep:
            hook(self.at)


class FakeLedger(BuildLedger):
    """Build records in a dict, claimed under a lease exactly as FirestoreBuildLedger claims them."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock
        self.records: dict[str, dict[str, Any]] = {}

    def claim(self, build_id: str, attempt: str, now: datetime, lease: timedelta) -> dict[str, Any] | None:
        record = self.records.get(build_id)
        decision = claim_decision(record, attempt, now)
        if decision == "done":
            return copy.deepcopy(record)
        if decision == "busy":
            raise BuildInProgress(f"build {build_id} is running (attempt {record['attempt']})")  # type: ignore[index]
        self.records[build_id] = claimed_record(record, build_id, attempt, now, lease)
        return None

    def renew(self, build_id: str, attempt: str, until: datetime) -> bool:
        record = self.records.get(build_id)
        if not may_renew(record, attempt):
            return False
        record["lease_until"] = until  # type: ignore[index]
        return True

    def finish(self, build_id: str, status: str, result: dict[str, Any]) -> None:
        record = self.records.setdefault(build_id, {})  # set(..., merge=True) creates a missing document
        record.update({"status": status, "result": copy.deepcopy(result), "finished_at": self.clock()})

    def get(self, build_id: str) -> dict[str, Any] | None:
        record = self.records.get(build_id)
        return copy.deepcopy(record) if record is not None else None


@dataclass
class FakeCases(CaseStore):
    """Cases as FirestoreCaseStore keeps them for the snapshot: each with the commit time of its write as
    `tail_at`, read whole (the first sync) or by the tail (changed since a moment)."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    reads: int = 0
    commits: int = 0

    def __post_init__(self) -> None:
        self.cases = [self._committed(case) for case in self.cases]

    def _committed(self, case: dict[str, Any]) -> dict[str, Any]:
        self.commits += 1
        return {**case, "tail_at": TAIL_EPOCH + timedelta(microseconds=self.commits)}

    def stream_cases(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        self.reads += 1
        for case in self.cases:
            yield copy.deepcopy(case)

    def cases_changed_since(self, since: datetime | None) -> Iterator[dict[str, Any]]:
        self.reads += 1
        for case in self.cases:
            if since is None or case["tail_at"] >= since:
                yield copy.deepcopy(case)

    def extend(self, cases: Iterable[dict[str, Any]]) -> None:
        self.cases.extend(self._committed(case) for case in cases)


class FakeQuarantine(Quarantine):
    """Quarantined payloads, kept once per id, and every call in order."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.kept: dict[str, dict[str, Any]] = {}

    def quarantine(self, quarantine_id: str, raw: bytes, reason: str, source: str, **context: Any) -> bool:
        record = {"quarantine_id": quarantine_id, "raw": raw, "reason": reason, "source": source, **context}
        self.calls.append(record)
        if quarantine_id in self.kept:
            return False
        self.kept[quarantine_id] = record
        return True


class WriteRecordingBucket(FakeBucket):
    """A FakeBucket that notes each write and delete, with whether it replaced (or removed) an object: what a
    test checks against the writes a role may make (create only, or replace and delete too)."""

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[tuple[str, bool]] = []

    def _land(self, name: str, data: bytes, content_type: str) -> int:
        self.changes.append((name, name in self.objects))
        return super()._land(name, data, content_type)

    def delete(self, name: str) -> None:
        self.changes.append((name, True))
        super().delete(name)
