"""Build requests that read audio: `augment` (an augmented dataset of its own, a child version of the plain build),
`min_duration_s` / `max_duration_s`, durations read from headers, and bad clips counted and named in the quality
report, never a crash. The audio is the espeak-ng fixtures in an audio bucket of its own."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import soundfile as sf

from shared.domain import bucket_layout as layout
from shared.domain.dataset_request import BuildRequest
from shared.services.dataset_builds import build_dataset, run_build_request
from shared.services.version_registry import read_registry
from tests.fixtures.audio import CLIPS, SAMPLE_RATE, clip_path
from tests.unit.fake_dataset_bucket import FakeBucket, FakeCases, FakeClock, FakeLedger
from tests.unit.test_audio_transforms import long_silence, measured_snr
from tests.unit.test_augmentation import AUDIO_BUCKET, SPEED_NOISE, T0, case, speech_cases
from tests.unit.test_augmentation import World as AugmentWorld
from tests.unit.test_dataset_build_service import FakeQuarantine

DURATIONS = {name: sf.info(clip_path(name)).duration for name in CLIPS}


class CountingBucket(FakeBucket):
    """An audio bucket that counts the objects read (a build that needs no audio reads none; a clip's header or
    samples are read with one get_upto, streamed only when it is larger than that fetches)."""

    def __init__(self, bucket: str) -> None:
        super().__init__(bucket)
        self.opened: list[str] = []

    def get_upto(self, name: str, max_bytes: int) -> bytes | None:
        self.opened.append(name)
        return super().get_upto(name, max_bytes)

    def reader(self, name: str, generation: int | None = None) -> Any:
        self.opened.append(name)
        return super().reader(name, generation)


class World(AugmentWorld):
    def __init__(self) -> None:
        super().__init__()
        self.audio = CountingBucket(AUDIO_BUCKET)
        for name in CLIPS:
            self.audio.put(f"clips/{name}", clip_path(name).read_bytes())
        self.audio.put("bad/empty.wav", b"")
        self.audio.put("bad/text.wav", b"this is a transcript, not audio\n" * 20)
        self.audio.put("bad/long.flac", long_silence(2 * 3600 + 60))
        self.buckets = {AUDIO_BUCKET: self.audio, self.bucket.bucket: self.bucket}

    def build(self, cases: list[dict[str, Any]], dataset_id: str = "base", **request: Any) -> dict[str, Any]:
        parameters = {"min_error_score": 0.5, "balance_error_types": False, "version_name": dataset_id, **request}
        return build_dataset(BuildRequest(**parameters), dataset_id, "test", FakeCases(cases), self.bucket, T0,
                             open_bucket=self.open_bucket)

    def metadata(self, dataset_id: str) -> dict[str, Any]:
        data = self.bucket.get(layout.dataset_prefix(dataset_id) + layout.DATASET_METADATA)
        assert data is not None, dataset_id
        loaded: dict[str, Any] = orjson.loads(data)
        return loaded


BAD = {
    "utt-100": ("gs://stt-audio/bad/missing.wav", "missing", "missing: no such object"),
    "utt-101": ("gs://stt-audio/bad/empty.wav", "empty", "empty: the object has no bytes"),
    "utt-102": ("gs://stt-audio/bad/text.wav", "not audio", "not audio: Format not recognised."),
    "utt-103": ("gs://stt-audio/bad/long.flac", "too long", "too long: 7260.0 s, over the cap of 7200 s"),
}


def bad_cases() -> list[dict[str, Any]]:
    return [case(int(case_id[4:]), uri) for case_id, (uri, _, _) in BAD.items()]


def test_a_build_without_audio_fields_reads_no_audio_and_reports_no_audio_section() -> None:
    world = World()
    info = world.build(speech_cases(12) + bad_cases())
    assert world.audio.opened == []
    metadata = world.metadata(info["dataset_id"])
    assert "audio" not in metadata["quality_report"] and "audio" not in metadata
    assert "augmented" not in info
    assert not {"augment", "min_duration_s", "max_duration_s"} & set(metadata["request"])


def test_augment_in_a_build_request_makes_a_train_only_child_dataset_and_version() -> None:
    world = World()
    info = world.build(speech_cases(), augment=SPEED_NOISE)
    augmented = info["augmented"]
    assert augmented["dataset_id"].startswith("base-aug-") and augmented["augmented_rows"] > 0
    registry = read_registry(world.bucket)
    entry = registry["versions"][augmented["version_id"]]
    assert entry["parent_version"] == info["version_id"] == augmented["parent_version"]
    assert augmented["version_id"].startswith("v_base-augmented_")
    assert entry["dataset_id"] == augmented["dataset_id"]
    base_train = {row["case_id"]: row for row in world.rows("base", "train")}
    rows = {split: world.rows(augmented["dataset_id"], split) for split in ("train", "val", "test")}
    for split in ("val", "test"):  # never augmented
        assert not any("augmentation" in row for row in rows[split])
        assert [row["case_id"] for row in rows[split]] == [row["case_id"] for row in world.rows("base", split)]
    added = [row for row in rows["train"] if "augmentation" in row]
    assert len(added) == 2 * len(base_train) == augmented["augmented_rows"]
    for row in added:
        source_row = base_train[row["augmentation"]["source_case_id"]]
        source, _ = world.clip(source_row["audio"])
        out, _ = world.clip(row["audio"])
        if row["augmentation"]["type"] == "speed":
            assert len(out) / len(source) == pytest.approx(1 / 0.9, abs=2 / len(source))
        else:
            assert measured_snr(source, out) == pytest.approx(20, abs=0.1)
    # The augmented dataset has its card and declares its audio's rate.
    card = world.bucket.get(layout.dataset_prefix(augmented["dataset_id"]) + "README.md") or b""
    assert f"sampling_rate: {SAMPLE_RATE}".encode() in card


def test_a_redelivered_augmented_build_rewrites_nothing() -> None:
    world = World()
    first = world.build(speech_cases(9), augment=[{"type": "gain", "db": -6}])
    writes = len(world.bucket.writes)
    again = world.build(speech_cases(9), augment=[{"type": "gain", "db": -6}])
    assert again["augmented"]["version_id"] == first["augmented"]["version_id"]
    assert [name for name in world.bucket.written(writes) if not name.startswith(layout.SNAPSHOT_PARTS)
            and name != layout.SNAPSHOT_WATERMARK] == []


@pytest.mark.parametrize(
    ("augment", "named"),
    [([{"type": "speed", "factor": 0}], "augment[0].factor"),
     ([{"type": "noise", "snr_db": -500}], "augment[0].snr_db"),
     ([{"type": "reverb", "room": 0.3}], "unknown transform 'reverb'")],
    ids=["factor-0", "snr-minus-500", "unknown-type"],
)
def test_an_uploaded_request_with_a_bad_transform_is_rejected_with_its_reason_and_nothing_written(
    augment: Any, named: str
) -> None:
    bucket = FakeBucket()
    name = f"{layout.REQUESTS}aug.json"
    bucket.put(name, orjson.dumps({"augment": augment}), "application/json")
    writes = len(bucket.writes)
    clock = FakeClock(T0)
    result = run_build_request(name, str(bucket.generation(name)), ledger=FakeLedger(clock=clock.now),
                               cases=FakeCases(speech_cases(6)), bucket=bucket, quarantine=FakeQuarantine(),
                               clock=clock.now, sleep=clock.sleep)
    assert result["status"] == "rejected" and named in result["reason"]
    assert bucket.written(writes) == [layout.build_result_name(name)]


def test_durations_filter_known_and_header_read_rows_and_bad_clips_are_named_and_left_out() -> None:
    world = World()
    cases = speech_cases(24) + bad_cases()  # every third speech case has no duration
    low, high = sorted(DURATIONS.values())[0:2]
    info = world.build(cases, min_duration_s=low + 0.01, max_duration_s=high + 0.01,
                       train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)
    kept = world.rows("base", "train")
    assert kept and all(low + 0.01 <= row["duration_s"] <= high + 0.01 for row in kept)
    expected = {c["case_id"] for c in speech_cases(24) if low + 0.01 <= DURATIONS[c["audio_path"].rsplit("/", 1)[1]]
                <= high + 0.01}
    assert {row["case_id"] for row in kept} == expected
    audio = world.metadata(info["dataset_id"])["quality_report"]["audio"]
    # Only the rows without a duration were read: 8 speech cases and the 4 bad ones.
    assert audio["headers_read"] == 8 + len(BAD) and len(world.audio.opened) == 8 + len(BAD)
    assert audio["unusable_count"] == len(BAD)
    assert audio["unusable_by_kind"] == {"empty": 1, "missing": 1, "not audio": 1, "too long": 1}
    assert {p["case_id"]: p["reason"] for p in audio["unusable"]} == {cid: r for cid, (_, _, r) in BAD.items()}
    assert audio["excluded_count"] == len(BAD) + sum(
        1 for c in speech_cases(24) if "duration_s" not in c and c["case_id"] not in expected)


def test_bad_clips_in_an_augmented_build_are_named_kept_unaugmented_and_never_raise() -> None:
    world = World()
    info = world.build(bad_cases() + speech_cases(3), augment=[{"type": "gain", "db": -6}],
                       train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)
    plain = world.metadata(info["dataset_id"])["quality_report"]["audio"]
    assert {p["case_id"] for p in plain["unusable"]} == set(BAD)  # the bad rows lack durations: headers read
    assert {row["case_id"] for row in world.rows("base", "train")} >= set(BAD)  # no filter: the rows stay
    augmented = info["augmented"]
    assert augmented["skipped_count"] == len(BAD)
    report = world.metadata(augmented["dataset_id"])["quality_report"]["audio"]
    assert {p["case_id"]: p["reason"] for p in report["unusable"]} == {cid: r for cid, (_, _, r) in BAD.items()}
    sources = {row["augmentation"]["source_case_id"] for row in world.rows(augmented["dataset_id"], "train")
               if "augmentation" in row}
    assert sources == {"utt-000", "utt-001", "utt-002"}


def test_augmented_clips_past_the_duration_cap_are_not_written() -> None:
    world = World()
    longest = max(DURATIONS.values())
    cases = [case(i, f"gs://{AUDIO_BUCKET}/clips/{name}", duration_s=DURATIONS[name])
             for i, name in enumerate(CLIPS)]
    info = world.build(cases, max_duration_s=longest, augment=[{"type": "speed", "factor": 0.9}],
                       train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)
    augmented = info["augmented"]
    added = [row for row in world.rows(augmented["dataset_id"], "train") if "augmentation" in row]
    assert all(row["duration_s"] <= longest for row in added)
    assert augmented["outside_duration_count"] >= 1  # the longest clip slowed down is past the cap
    assert len(added) + augmented["outside_duration_count"] == len(CLIPS)
