"""The dataset build use case on in-memory ports: write order, checksums, redelivery, takeover, rejects, races."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.domain.dataset_build import SPLITS
from shared.domain.dataset_card import CARD_NAME
from shared.domain.dataset_request import BuildRequest
from shared.domain.versions import add_version, file_entry, manifest_checksum, new_version, parse_registry
from shared.errors import BuildInProgress, LeaseLost
from shared.services.bucket_objects import object_version_id
from shared.services.build_leases import LEASE, POLL_S, WAIT_FOR_RUNNING_S, Lease
from shared.services.dataset_builds import build_dataset, is_build_request, run_build_request
from shared.services.version_registry import read_registry
from tests.unit.fake_dataset_bucket import (
    FakeBucket,
    FakeCases,
    FakeClock,
    FakeLedger,
    FakeQuarantine,
    SimulatedCrash,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
REQUEST_NAME = "dataset-requests/weekly.json"
SPLIT_FILES = ("train.jsonl", "val.jsonl", "test.jsonl")
# In the order they land: each split's Parquet copy, then its JSONL (written side by side, closed in that order).
DATASET_FILES = tuple(name for split in SPLITS for name in (layout.parquet_copy(split), f"{split}.jsonl"))
GOOD_REQUEST: dict[str, Any] = {"version_name": "weekly", "min_error_score": 0.5}


def make_cases(count: int = 40, score: float = 0.8) -> list[dict[str, Any]]:
    """Corrected cases of two error types, one speaker each, as the case store yields them."""
    return [
        {
            "case_id": f"case-{i:03d}",
            "audio_path": f"gs://stt-audio/{i:03d}.wav",
            "original_transcript": f"HELLO {i}",
            "corrected_transcript": f"Hello {i}.",
            "corrected": True,
            "error_types": ["substitution" if i % 2 else "deletion"],
            "error_score": score,
            "speaker_id": f"spk-{i:03d}",
            "language": "en",
            "model_version": "m1",
            "duration_s": 1.5,
            "wer": 0.2,
            "cer": 0.1,
        }
        for i in range(count)
    ]


class World:
    """The ports of one deployment and the helpers to upload and serve a request."""

    def __init__(self, cases: list[dict[str, Any]] | None = None) -> None:
        self.bucket = FakeBucket()
        self.clock = FakeClock(T0)
        self.ledger = FakeLedger(clock=self.clock.now)
        self.cases = FakeCases(make_cases() if cases is None else cases)
        self.quarantine = FakeQuarantine()

    def upload(self, body: bytes | dict[str, Any], name: str = REQUEST_NAME) -> str:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        self.bucket.put(name, raw, "application/json")
        return str(self.bucket.generation(name))  # as the event's objectGeneration attribute carries it

    def serve(
        self, generation: str, name: str = REQUEST_NAME, now: datetime | None = None, attempt: str | None = None
    ) -> dict[str, Any]:
        if now is not None:
            self.clock.at = now
        return run_build_request(
            name, generation, ledger=self.ledger, cases=self.cases, bucket=self.bucket,
            quarantine=self.quarantine, attempt=attempt, clock=self.clock.now, sleep=self.clock.sleep,
        )

    def record(self, generation: str, name: str = REQUEST_NAME) -> dict[str, Any]:
        record = self.ledger.get(object_version_id(name, generation))
        assert record is not None
        return record

    def metadata(self, dataset_id: str) -> dict[str, Any]:
        data = self.bucket.get(layout.dataset_prefix(dataset_id) + layout.DATASET_METADATA)
        assert data is not None
        loaded: dict[str, Any] = orjson.loads(data)
        return loaded



def landed(bucket: FakeBucket, since: int = 0) -> list[str]:
    """The objects written from write number `since` on, but the case snapshot's (every build syncs it first)."""
    return [name for name in bucket.written(since)
            if not name.startswith((layout.SNAPSHOT_PARTS, layout.SNAPSHOT_WATERMARK))]

def dataset_names(bucket: FakeBucket) -> list[str]:
    return [name for name in landed(bucket) if name.startswith(layout.DATASETS)]


# -- a good request --------------------------------------------------------------------------------------


def test_good_request_writes_splits_then_metadata_last_then_registry_result_and_ledger() -> None:
    world = World()
    generation = world.upload(GOOD_REQUEST)
    before = len(world.bucket.writes)

    result = world.serve(generation)

    dataset_id = layout.dataset_id_for_request(REQUEST_NAME, generation)
    prefix = layout.dataset_prefix(dataset_id)
    assert result["status"] == "built"
    assert result["dataset_id"] == dataset_id == f"weekly-{generation}"
    assert result["total_samples"] == 40
    assert sum(result["split_sizes"].values()) == 40
    # Order: every split file and its Parquet copy, then metadata.json, then the registry, then the dataset card
    # (it names the version), then the result object.
    assert landed(world.bucket, before) == [
        *(prefix + name for name in DATASET_FILES),
        prefix + layout.DATASET_METADATA,
        layout.REGISTRY,
        prefix + CARD_NAME,
        f"{layout.DATASET_RESULTS}weekly.json",
    ]


def test_metadata_checksums_are_the_sha256_of_the_stored_files() -> None:
    world = World()
    generation = world.upload(GOOD_REQUEST)
    result = world.serve(generation)

    metadata = world.metadata(result["dataset_id"])
    prefix = layout.dataset_prefix(result["dataset_id"])
    total_rows = 0
    for name in SPLIT_FILES:
        data = world.bucket.get(prefix + name)
        assert data is not None
        rows = [orjson.loads(line) for line in data.splitlines()]
        total_rows += len(rows)
        assert metadata["files"][name] == {
            "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "rows": len(rows),
        }
        assert {row["split"] for row in rows} <= {name.removesuffix(".jsonl")}
        assert metadata["data_files"][name.removesuffix(".jsonl")] == world.bucket.uri(prefix + name)
    assert total_rows == metadata["total_samples"] == 40
    assert metadata["checksum"] == manifest_checksum(metadata["files"]) == result["checksum"]
    assert metadata["gcs_path"] == result["gcs_path"] == world.bucket.uri(prefix)


def test_good_request_is_registered_as_current_and_its_result_and_ledger_record_kept() -> None:
    world = World()
    generation = world.upload(GOOD_REQUEST)
    result = world.serve(generation)

    registry = read_registry(world.bucket)
    version_id = result["version_id"]
    assert version_id.startswith("v_weekly_")
    assert registry["current_version"] == version_id
    entry = registry["versions"][version_id]
    assert entry["dataset_id"] == result["dataset_id"]
    assert entry["checksum"] == result["checksum"]
    assert entry["files"] == world.metadata(result["dataset_id"])["files"]
    assert [item["version_id"] for item in registry["history"]] == [version_id]

    stored = world.bucket.get(f"{layout.DATASET_RESULTS}weekly.json")
    assert stored is not None and orjson.loads(stored) == result
    record = world.record(generation)
    assert record["status"] == "finished"
    assert record["result"] == result
    assert result["object"] == world.bucket.uri(REQUEST_NAME)
    assert result["generation"] == generation
    assert world.quarantine.calls == []


def test_a_second_upload_of_the_same_name_is_a_new_dataset_and_version_with_the_first_as_history() -> None:
    world = World()
    first = world.serve(world.upload(GOOD_REQUEST))
    world.cases.extend(make_cases(60)[40:])
    second = world.serve(world.upload({**GOOD_REQUEST, "parent_version": first["version_id"]}))

    assert second["status"] == "built"
    assert second["dataset_id"] != first["dataset_id"]
    assert second["total_samples"] == 60
    registry = read_registry(world.bucket)
    assert registry["current_version"] == second["version_id"]
    assert registry["versions"][second["version_id"]]["parent_version"] == first["version_id"]
    assert set(registry["versions"]) == {first["version_id"], second["version_id"]}
    # The first dataset is untouched.
    assert world.metadata(first["dataset_id"])["total_samples"] == 40


# -- redelivery, leases, takeovers -----------------------------------------------------------------------


def test_the_same_upload_delivered_again_is_already_finished_and_rewrites_nothing() -> None:
    world = World()
    generation = world.upload(GOOD_REQUEST)
    first = world.serve(generation)
    writes = list(world.bucket.writes)
    reads = world.cases.reads

    again = world.serve(generation, now=T0 + timedelta(hours=1))

    assert again["status"] == "already finished"
    assert {k: v for k, v in again.items() if k != "status"} == {k: v for k, v in first.items() if k != "status"}
    assert world.bucket.writes == writes
    assert world.cases.reads == reads
    assert world.record(generation)["takeovers"] == 0


def test_a_redelivery_after_a_crash_waits_out_the_lease_then_finishes_only_the_registry() -> None:
    world = World()
    generation = world.upload(GOOD_REQUEST)
    # The first attempt writes the dataset, then dies before its registry entry.
    world.bucket.crash_before_write(layout.REGISTRY)
    with pytest.raises(SimulatedCrash):
        world.serve(generation, attempt="first")
    dataset_id = layout.dataset_id_for_request(REQUEST_NAME, generation)
    assert world.bucket.get(layout.dataset_prefix(dataset_id) + layout.DATASET_METADATA) is not None
    assert world.record(generation)["status"] == "building"
    written = len(world.bucket.writes)

    # Pub/Sub redelivers after its shortest backoff: the dead attempt's lease still runs, so it waits.
    result = world.serve(generation, now=T0 + timedelta(seconds=1), attempt="redelivery")

    assert LEASE.total_seconds() - 1 <= world.clock.slept <= LEASE.total_seconds() + POLL_S
    assert result["status"] == "built"
    assert landed(world.bucket, written) == [layout.REGISTRY, layout.dataset_prefix(dataset_id) + CARD_NAME,
                                             f"{layout.DATASET_RESULTS}weekly.json"]
    assert read_registry(world.bucket)["current_version"] == result["version_id"]
    assert result["checksum"] == world.metadata(dataset_id)["checksum"]
    record = world.record(generation)
    assert (record["status"], record["attempt"], record["takeovers"]) == ("finished", "redelivery", 1)


def test_a_duplicate_delivery_waits_for_the_running_attempt_and_then_changes_nothing() -> None:
    world = World()
    generation = world.upload(GOOD_REQUEST)
    build_id = object_version_id(REQUEST_NAME, generation)
    world.ledger.claim(build_id, "running", T0, LEASE)

    def running_attempt(now: datetime) -> None:  # keeps renewing, and finishes after two minutes
        if now < T0 + timedelta(minutes=2):
            world.ledger.renew(build_id, "running", now + LEASE)
        elif world.ledger.records[build_id]["status"] == "building":
            world.ledger.finish(build_id, "finished", {"status": "built", "dataset_id": "theirs"})

    world.clock.on_sleep.append(running_attempt)
    result = world.serve(generation, attempt="duplicate")

    assert result == {"status": "already finished", "dataset_id": "theirs"}
    assert landed(world.bucket, 0) == [REQUEST_NAME]
    assert world.record(generation)["attempt"] == "running"


def test_a_duplicate_gives_up_when_the_running_attempt_outlasts_its_wait() -> None:
    world = World()
    generation = world.upload(GOOD_REQUEST)
    build_id = object_version_id(REQUEST_NAME, generation)
    world.ledger.claim(build_id, "running", T0, LEASE)
    world.clock.on_sleep.append(lambda now: world.ledger.renew(build_id, "running", now + LEASE))

    with pytest.raises(BuildInProgress):
        world.serve(generation, attempt="duplicate")

    assert world.clock.slept == pytest.approx(WAIT_FOR_RUNNING_S)
    assert landed(world.bucket, 0) == [REQUEST_NAME]


def test_an_attempt_that_lost_its_lease_writes_nothing_more() -> None:
    ledger = FakeLedger()
    ledger.claim("b1", "slow", T0, LEASE)
    ledger.claim("b1", "other", T0 + LEASE * 2, LEASE)  # the slow attempt was taken over
    lease = Lease(ledger, "b1", "slow", lambda: T0, renew_every_s=0.001)
    with lease.kept(), pytest.raises(LeaseLost):
        for _ in range(1000):
            lease.check()
            time.sleep(0.001)


def test_a_takeover_after_the_registry_entry_landed_does_not_register_it_twice() -> None:
    world = World()
    generation = world.upload(GOOD_REQUEST)
    world.bucket.crash_before_write(f"{layout.DATASET_RESULTS}weekly.json")
    with pytest.raises(SimulatedCrash):
        world.serve(generation, attempt="first")
    registry_generation = world.bucket.generation(layout.REGISTRY)
    written = len(world.bucket.writes)

    result = world.serve(generation, now=T0 + LEASE + timedelta(minutes=1), attempt="takeover")

    assert result["status"] == "built"
    assert landed(world.bucket, written) == [f"{layout.DATASET_RESULTS}weekly.json"]
    assert world.bucket.generation(layout.REGISTRY) == registry_generation
    assert len(read_registry(world.bucket)["history"]) == 1


def test_a_half_written_dataset_with_an_expired_lease_is_rebuilt() -> None:
    world = World()
    generation = world.upload(GOOD_REQUEST)
    prefix = layout.dataset_prefix(layout.dataset_id_for_request(REQUEST_NAME, generation))
    world.bucket.crash_before_write(prefix + layout.DATASET_METADATA)
    with pytest.raises(SimulatedCrash):
        world.serve(generation, attempt="first")
    assert world.bucket.names(prefix) == sorted(prefix + name for name in DATASET_FILES)
    world.bucket.put(prefix + "train.jsonl", b'{"truncated": ')  # whatever the dead attempt left
    written = len(world.bucket.writes)

    result = world.serve(generation, now=T0 + LEASE + timedelta(seconds=1), attempt="takeover")

    assert result["status"] == "built"
    assert landed(world.bucket, written) == [
        *(prefix + name for name in DATASET_FILES), prefix + layout.DATASET_METADATA, layout.REGISTRY,
        prefix + CARD_NAME, f"{layout.DATASET_RESULTS}weekly.json",
    ]
    metadata = world.metadata(result["dataset_id"])
    for name in SPLIT_FILES:
        data = world.bucket.get(prefix + name)
        assert data is not None
        assert metadata["files"][name]["sha256"] == hashlib.sha256(data).hexdigest()
    assert read_registry(world.bucket)["versions"][result["version_id"]]["checksum"] == metadata["checksum"]


def test_a_crashed_build_is_taken_over_before_its_deliveries_run_out() -> None:
    settings = Settings()
    world = World()
    generation = world.upload(GOOD_REQUEST)
    world.bucket.crash_before_write(layout.REGISTRY)
    with pytest.raises(SimulatedCrash):
        world.serve(generation, attempt="delivery-1")
    # Every later delivery at the latest Pub/Sub could send it: one of them must build.
    outcomes = []
    for attempt in range(2, settings.max_delivery_attempts + 1):
        now = T0 + timedelta(seconds=600 + (attempt - 1) * settings.max_backoff_s)
        try:
            outcomes.append(world.serve(generation, now=now, attempt=f"delivery-{attempt}")["status"])
        except BuildInProgress:
            outcomes.append("in progress")
    assert outcomes[0] == "built"


# -- rejected requests -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"not json", "not valid JSON"),
        (orjson.dumps({"max_sample": 5}), "max_sample: unknown field"),
        (orjson.dumps({"train_ratio": 0.5, "val_ratio": 0.1, "test_ratio": 0.1}), "must sum to 1"),
        (orjson.dumps({"create_version": True, "parent_version": "v_nope"}), "parent_version 'v_nope'"),
    ],
    ids=["not-json", "unknown-field", "ratios", "unknown-parent"],
)
def test_a_bad_request_is_quarantined_with_its_reason_and_nothing_is_built(body: bytes, named: str) -> None:
    world = World()
    generation = world.upload(body)
    written = len(world.bucket.writes)

    result = world.serve(generation)

    assert result["status"] == "rejected"
    assert named in result["reason"]
    build_id = object_version_id(REQUEST_NAME, generation)
    assert world.quarantine.calls == [
        {
            "quarantine_id": f"build_dataset-{build_id}", "raw": body, "reason": result["reason"],
            "source": "build_dataset", "object": world.bucket.uri(REQUEST_NAME),
        }
    ]
    assert landed(world.bucket, written) == [f"{layout.DATASET_RESULTS}weekly.json"]
    assert world.bucket.names(layout.DATASETS) == []
    assert world.bucket.get(layout.REGISTRY) is None
    record = world.record(generation)
    assert record["status"] == "rejected"
    assert record["result"]["reason"] == result["reason"]

    again = world.serve(generation)
    assert again["status"] == "already rejected"
    assert len(world.quarantine.calls) == 1


def test_an_unknown_parent_is_named_among_existing_versions() -> None:
    world = World()
    first = world.serve(world.upload(GOOD_REQUEST))
    result = world.serve(world.upload({**GOOD_REQUEST, "parent_version": "v_typo"}))
    assert result["status"] == "rejected"
    assert "'v_typo'" in result["reason"] and layout.REGISTRY in result["reason"]
    assert dataset_names(world.bucket) == [
        layout.dataset_prefix(first["dataset_id"]) + name
        for name in (*DATASET_FILES, layout.DATASET_METADATA, CARD_NAME)
    ]


def test_no_eligible_case_writes_no_dataset() -> None:
    world = World(make_cases(score=0.1))
    generation = world.upload(GOOD_REQUEST)

    result = world.serve(generation)

    assert result["status"] == "no eligible cases"
    assert result["dataset_id"] == layout.dataset_id_for_request(REQUEST_NAME, generation)
    assert world.bucket.names(layout.DATASETS) == []
    assert world.bucket.get(layout.REGISTRY) is None
    assert world.record(generation)["status"] == "finished"
    assert world.quarantine.calls == []


def test_uncorrected_cases_are_only_used_when_asked() -> None:
    cases = [{**case, "corrected": False, "corrected_transcript": None} for case in make_cases()]
    world = World(cases)
    assert world.serve(world.upload(GOOD_REQUEST))["status"] == "no eligible cases"
    result = world.serve(world.upload({**GOOD_REQUEST, "include_uncorrected": True}))
    assert result["status"] == "built"
    assert result["total_samples"] == 40


def test_an_object_gone_before_it_was_read_is_finished_as_gone() -> None:
    world = World()
    old = world.upload(GOOD_REQUEST)
    new = world.upload({**GOOD_REQUEST, "max_samples": 10})  # overwritten: the old generation no longer exists
    written = len(world.bucket.writes)

    result = world.serve(old)

    assert result["status"] == "object gone"
    assert result["generation"] == old
    assert landed(world.bucket, written) == []
    assert world.record(old)["status"] == "rejected"
    assert world.quarantine.calls == []
    # The new version brings its own notification and builds.
    assert world.serve(new)["status"] == "built"


# -- registry races --------------------------------------------------------------------------------------


def other_writer(now: datetime) -> Any:
    """Another build that registers its own version each time it wins the race."""
    count = 0

    def write(name: str, current: bytes | None) -> bytes:
        nonlocal count
        count += 1
        assert name == layout.REGISTRY
        files = {"train.jsonl": file_entry(f"other {count}".encode(), 1)}
        entry = new_version(f"v_other_{count}", f"other-{count}", f"gs://b/other-{count}/", files, {}, None,
                            None, now)
        registry, _ = add_version(parse_registry(current), entry, now)
        return orjson.dumps(registry)

    return write


def test_registry_races_keep_every_writer_and_register_the_version_once() -> None:
    world = World()
    generation = world.upload(GOOD_REQUEST)
    world.bucket.lose_next_races(3, other_writer(T0), layout.REGISTRY)

    result = world.serve(generation)

    assert result["status"] == "built"
    assert world.bucket.races_lost == 3
    registry = read_registry(world.bucket)
    assert set(registry["versions"]) == {"v_other_1", "v_other_2", "v_other_3", result["version_id"]}
    assert [item["version_id"] for item in registry["history"]] == [
        "v_other_1", "v_other_2", "v_other_3", result["version_id"],
    ]
    assert registry["history"][-1]["previous"] == "v_other_3"
    assert registry["current_version"] == result["version_id"]
    # Three writes by the other writer, one landed write of ours.
    assert landed(world.bucket).count(layout.REGISTRY) == 4


# -- build_dataset from Python ---------------------------------------------------------------------------


def test_build_dataset_twice_with_one_id_writes_once_and_answers_the_same() -> None:
    bucket, cases = FakeBucket(), FakeCases(make_cases())
    request = BuildRequest(version_name="py")
    first = build_dataset(request, "py-1", "python", cases, bucket, T0)
    writes = list(bucket.writes)
    second = build_dataset(request, "py-1", "python", cases, bucket, T0 + timedelta(days=1))

    assert second == first
    assert bucket.writes == writes
    assert first["version_id"] == read_registry(bucket)["current_version"]
    assert first["quality_passed"] in (True, False)


def test_build_dataset_without_a_version_leaves_the_registry_alone() -> None:
    bucket = FakeBucket()
    info = build_dataset(BuildRequest(create_version=False), "py-2", "python", FakeCases(make_cases()), bucket, T0)
    assert "version_id" not in info
    assert bucket.get(layout.REGISTRY) is None
    prefix = layout.dataset_prefix("py-2")
    assert landed(bucket) == [prefix + name for name in (*DATASET_FILES, layout.DATASET_METADATA, CARD_NAME)]


def test_build_dataset_without_cases_says_so_and_writes_nothing() -> None:
    bucket = FakeBucket()
    info = build_dataset(BuildRequest(), "py-3", "python", FakeCases([]), bucket, T0)
    assert info["error"] == "No eligible cases"
    assert info["split_sizes"] == {"train": 0, "val": 0, "test": 0} and info["total_samples"] == 0
    assert landed(bucket) == []  # the snapshot was brought up to date, nothing else


# -- which events, which ids -----------------------------------------------------------------------------


def event(name: str, bucket: str = "stt-project-datasets", kind: str = "OBJECT_FINALIZE") -> dict[str, str]:
    return {"eventType": kind, "bucketId": bucket, "objectId": name, "objectGeneration": "17"}


@pytest.mark.parametrize(
    ("attributes", "accepted"),
    [
        (event("dataset-requests/weekly.json"), True),
        (event("dataset-requests/team/weekly.json"), True),
        (event("dataset-requests/weekly.json", kind="OBJECT_DELETE"), False),
        (event("dataset-requests/weekly.json", kind="OBJECT_METADATA_UPDATE"), False),
        (event("dataset-requests/weekly.json", bucket="another-bucket"), False),
        (event("dataset-requests/weekly.txt"), False),
        (event("dataset-requests/weekly.json.tmp"), False),
        (event("imports/weekly.json"), False),
        (event("dataset_results/weekly.json"), False),
        ({"eventType": "OBJECT_FINALIZE", "bucketId": "stt-project-datasets"}, False),
        ({}, False),
    ],
)
def test_is_build_request_accepts_only_finalized_request_objects_of_our_bucket(
    attributes: dict[str, str], accepted: bool
) -> None:
    assert is_build_request(attributes, Settings()) is accepted


def test_is_build_request_follows_the_settings_bucket() -> None:
    settings = Settings(bucket="staging-datasets")
    assert is_build_request(event("dataset-requests/w.json", bucket="staging-datasets"), settings)
    assert not is_build_request(event("dataset-requests/w.json"), settings)


def test_dataset_id_is_readable_and_stable_per_name_and_generation() -> None:
    dataset_id_for = layout.dataset_id_for_request
    assert dataset_id_for("dataset-requests/weekly.json", "1700000000000001") == "weekly-1700000000000001"
    assert dataset_id_for("dataset-requests/weekly.json", 1700000000000001) == "weekly-1700000000000001"
    assert dataset_id_for("dataset-requests/team a/weekly.json", "5") == "team_a_weekly-5"
    assert dataset_id_for("dataset-requests/weekly.json", "5") != dataset_id_for("dataset-requests/weekly.json", "6")
    assert dataset_id_for("dataset-requests/daily.json", "5") != dataset_id_for("dataset-requests/weekly.json", "5")
    weekly = "dataset-requests/weekly.json"
    assert object_version_id(weekly, 5) == object_version_id(weekly, "5")
    assert object_version_id(weekly, "5") != object_version_id(weekly, "6")
    for name in ("dataset-requests/weekly.json", "dataset-requests/team a/weekly.json", "dataset-requests/.json"):
        dataset_id = dataset_id_for(name, "5")
        assert dataset_id == dataset_id_for(name, "5")
        assert "/" not in dataset_id and dataset_id not in (".", "..")


# -- fuzz --------------------------------------------------------------------------------------------------

_REQUEST_KEYS = [*sorted(BuildRequest.model_fields), "max_sample", "ratio", ""]
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        # json, not orjson: a request may hold integers past 64 bits, or Infinity, which the parser must refuse.
        st.dictionaries(st.sampled_from(_REQUEST_KEYS), _JSON_VALUES, max_size=6).map(lambda d: json.dumps(d).encode()),
    )
)
def test_any_uploaded_bytes_end_as_a_result_never_a_crash(body: bytes) -> None:
    world = World()
    generation = world.upload(body)

    result = world.serve(generation)

    assert result["status"] in {"built", "rejected", "no eligible cases"}
    assert world.record(generation)["status"] in {"finished", "rejected"}
    if result["status"] == "rejected":
        assert result["reason"] and not [n for n in landed(world.bucket) if n.startswith(layout.DATASETS)]


def test_a_corrupt_snapshot_part_refuses_the_build_naming_the_part_and_is_not_retried() -> None:
    world = World()
    world.bucket.put(f"{layout.SNAPSHOT_PARTS}part-20990101T000000000000Z-bad.parquet", b"not parquet at all")
    generation = world.upload({"balance_error_types": False})

    result = world.serve(generation)

    assert result["status"] == "rejected"
    assert "part-20990101T000000000000Z-bad.parquet" in result["reason"]
    assert world.record(generation)["status"] == "rejected"  # done: a redelivery acknowledges, no retry loop
    assert not [name for name in world.bucket.written() if name.startswith(layout.DATASETS)]
    [kept] = world.quarantine.kept.values()
    assert "part-20990101T000000000000Z-bad.parquet" in kept["reason"]


def test_an_oversized_request_object_is_refused_unread() -> None:
    world = World()
    generation = world.upload(b'{"version_name": "big", "pad": "' + b"x" * 100_000 + b'"}')
    get = world.bucket.get

    def get_but_not_the_request(name: str, generation: int | None = None) -> bytes | None:
        assert name != REQUEST_NAME, "the request object was downloaded"
        return get(name, generation)

    world.bucket.get = get_but_not_the_request  # type: ignore[method-assign]
    result = world.serve(generation)

    assert result["status"] == "rejected" and "over the limit of 65536 bytes" in result["reason"]
    [kept] = world.quarantine.kept.values()
    assert kept["raw"] == b"" and kept["size_bytes"] > 100_000


def test_a_max_samples_beyond_any_dataset_is_refused_before_anything_is_written() -> None:
    world = World()
    generation = world.upload(b'{"max_samples": 1e20}')
    result = world.serve(generation)
    assert result["status"] == "rejected" and "max_samples" in result["reason"]
    assert not [name for name in world.bucket.written() if name.startswith(layout.DATASETS)]


class ErringLedger(FakeLedger):
    """A ledger whose renewals raise (a 503) the first `failures` times."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.renewals = 0

    def renew(self, build_id: str, attempt: str, until: datetime) -> bool:
        self.renewals += 1
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("503 Service Unavailable")
        return super().renew(build_id, attempt, until)


def _held(ledger: ErringLedger, beats: int) -> Lease:
    ledger.claim("b1", "a1", T0, LEASE)
    lease = Lease(ledger, "b1", "a1", lambda: T0, renew_every_s=0.01)
    with lease.kept():
        deadline = time.monotonic() + 5
        while ledger.renewals < beats and time.monotonic() < deadline and not lease.lost:
            time.sleep(0.01)
    return lease


def test_a_renewal_that_errs_once_is_retried_and_the_lease_is_kept() -> None:
    ledger = ErringLedger(failures=1)
    lease = _held(ledger, beats=4)
    assert ledger.renewals >= 4 and not lease.lost
    lease.check()


def test_renewals_that_keep_failing_mark_the_lease_lost_so_the_attempt_stops() -> None:
    lease = _held(ErringLedger(failures=10**6), beats=10**6)
    assert lease.lost
    with pytest.raises(LeaseLost):
        lease.check()
