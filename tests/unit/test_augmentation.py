"""augment_dataset on in-memory buckets: a dataset built from cases whose audio is real speech (the espeak-ng
fixtures in an audio bucket of its own), augmented train-only, measured, versioned, and its bad clips named."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from shared.bootstrap import Adapters
from shared.config import Settings
from shared.domain import audio_transforms
from shared.domain import bucket_layout as layout
from shared.domain.dataset_request import BuildRequest
from shared.errors import InvalidAugmentation, NotFound
from shared.finetuning_pipeline import FinetuningDatasetPipeline
from shared.services import augmentation
from shared.services.augmentation import augment_dataset
from shared.services.dataset_builds import build_dataset
from shared.services.datasets import validate_dataset
from shared.services.version_registry import read_registry
from tests.fixtures.audio import CLIPS, SAMPLE_RATE, clip_path
from tests.unit.fake_dataset_bucket import FakeBucket, FakeCases
from tests.unit.test_audio_transforms import long_silence, measured_snr

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
AUDIO_BUCKET = "stt-audio"
SPEED_NOISE = [{"type": "speed", "factor": 0.9}, {"type": "noise", "snr_db": 20}]


def case(i: int, audio: str, **extra: Any) -> dict[str, Any]:
    return {
        "case_id": f"utt-{i:03d}", "audio_path": audio, "original_transcript": f"TURN {i}",
        "corrected_transcript": f"Turn {i}.", "corrected": True, "error_types": ["all_caps"], "error_score": 0.8,
        "speaker_id": f"spk-{i:03d}", "language": "en", "model_version": "m1", "wer": 0.5, "cer": 0.1, **extra,
    }


class World:
    """A dataset bucket, an audio bucket holding the fixtures, and cases pointing at them."""

    def __init__(self) -> None:
        self.bucket = FakeBucket()
        self.audio = FakeBucket(AUDIO_BUCKET)
        for name in CLIPS:
            self.audio.put(f"clips/{name}", clip_path(name).read_bytes())
        self.buckets = {AUDIO_BUCKET: self.audio, self.bucket.bucket: self.bucket}

    def open_bucket(self, name: str) -> FakeBucket:
        return self.buckets[name]

    def build(self, cases: list[dict[str, Any]], dataset_id: str = "base", **request: Any) -> dict[str, Any]:
        parameters = {"min_error_score": 0.5, "balance_error_types": False, "version_name": dataset_id, **request}
        return build_dataset(BuildRequest(**parameters), dataset_id, "test", FakeCases(cases), self.bucket, T0)

    def augment(self, dataset_id: str = "base", transforms: Any = None, **options: Any) -> dict[str, Any]:
        return augment_dataset(self.bucket, self.open_bucket, dataset_id, transforms or SPEED_NOISE, T0,
                               **options)

    def rows(self, dataset_id: str, split: str) -> list[dict[str, Any]]:
        data = self.bucket.get(f"{layout.dataset_prefix(dataset_id)}{split}.jsonl") or b""
        return [orjson.loads(line) for line in data.splitlines()]

    def clip(self, uri: str) -> tuple[np.ndarray, int]:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        data = self.buckets[bucket].get(name)
        assert data is not None, uri
        samples, rate = sf.read(io.BytesIO(data), dtype="float32")
        return samples, rate


def speech_cases(count: int = 24) -> list[dict[str, Any]]:
    """Cases over the three fixtures; every third without a duration."""
    return [
        case(i, f"gs://{AUDIO_BUCKET}/clips/{CLIPS[i % 3]}",
             **({} if i % 3 == 0 else {"duration_s": round(sf.info(clip_path(CLIPS[i % 3])).duration, 3)}))
        for i in range(count)
    ]


@pytest.fixture
def world() -> World:
    world = World()
    world.build(speech_cases())
    return world


def test_each_train_row_gets_one_row_per_transform_and_val_test_are_copied(world: World) -> None:
    info = world.augment()
    new = info["dataset_id"]
    assert new.startswith("base-aug-") and info["source_dataset_id"] == "base"
    base = {split: world.rows("base", split) for split in ("train", "val", "test")}
    assert all(base.values())  # the 24 cases fall in every split
    rows = {split: world.rows(new, split) for split in ("train", "val", "test")}
    originals = [row for row in rows["train"] if "augmentation" not in row]
    augmented = [row for row in rows["train"] if "augmentation" in row]
    assert [row["case_id"] for row in originals] == [row["case_id"] for row in base["train"]]
    assert len(augmented) == 2 * len(base["train"]) == info["augmentation"]["augmented_rows"]
    for split in ("val", "test"):  # never augmented: the same rows (a duration filled where there was none)
        assert [{k: v for k, v in row.items() if k != "duration_s"} for row in rows[split]] == [
            {k: v for k, v in row.items() if k != "duration_s"} for row in base[split]]
        assert all(row["duration_s"] > 0 for row in rows[split])
    assert info["split_sizes"] == {split: len(rows[split]) for split in rows}
    by_source = {row["case_id"]: row for row in base["train"]}
    for row in augmented:
        source = by_source[row["augmentation"]["source_case_id"]]
        kind = row["augmentation"]["type"]
        assert row["case_id"] == f"{source['case_id']}#{kind}_{'0.9' if kind == 'speed' else '20'}"
        assert row["augmentation"]["params"] == ({"factor": 0.9} if kind == "speed" else {"snr_db": 20.0})
        assert row["split"] == "train" and row["text"] == source["text"] and row["speaker_id"] == source["speaker_id"]
        assert row["audio"].startswith(f"gs://stt-project-datasets/finetuning_datasets/{new}/audio/")
    # The source dataset is untouched.
    assert world.rows("base", "train") == base["train"]


def test_augmented_audio_has_the_expected_duration_ratio_snr_and_rate(world: World) -> None:
    new = world.augment()["dataset_id"]
    for row in world.rows(new, "train"):
        if "augmentation" not in row:
            continue
        source_id = row["augmentation"]["source_case_id"]
        source_row = next(r for r in world.rows("base", "train") if r["case_id"] == source_id)
        source, source_rate = world.clip(source_row["audio"])
        out, rate = world.clip(row["audio"])
        assert rate == source_rate == SAMPLE_RATE
        assert row["duration_s"] == pytest.approx(len(out) / rate)
        if row["augmentation"]["type"] == "speed":
            assert len(out) / len(source) == pytest.approx(1 / 0.9, abs=2 / len(source))
        else:
            assert len(out) == len(source)
            assert measured_snr(source, out) == pytest.approx(20, abs=0.1)
        # Same container as the source.
        assert row["audio"].rsplit(".", 1)[1] == source_row["audio"].rsplit(".", 1)[1]


def test_durations_come_from_the_header_where_a_row_had_none(world: World) -> None:
    info = world.augment()
    train = world.rows(info["dataset_id"], "train")
    originals = {row["case_id"]: row for row in train if "augmentation" not in row}
    base_rows = [row for split in ("train", "val", "test") for row in world.rows("base", split)]
    missing = [row for row in base_rows if row["duration_s"] is None]
    assert missing and info["augmentation"]["durations_filled"] == len(missing)
    for row in missing:
        clip = row["audio"].rsplit("/", 1)[1]
        if row["case_id"] in originals:
            assert originals[row["case_id"]]["duration_s"] == pytest.approx(sf.info(clip_path(clip)).duration)


def test_the_result_is_its_own_finished_dataset_with_checksums_and_parquet_copies(world: World) -> None:
    info = world.augment()
    prefix = layout.dataset_prefix(info["dataset_id"])
    metadata = orjson.loads(world.bucket.get(prefix + "metadata.json") or b"")
    # metadata.json is written last, after every audio clip and file it names.
    written = world.bucket.written()
    assert written[-1] == prefix + "metadata.json" or written.index(prefix + "metadata.json") > max(
        written.index(prefix + name) for name in metadata["files"])
    for name, entry in metadata["files"].items():
        data = world.bucket.get(prefix + name) or b""
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    manifest = [orjson.loads(line) for line in (world.bucket.get(prefix + "audio_manifest.jsonl") or b"").splitlines()]
    assert len(manifest) == info["augmentation"]["augmented_rows"]
    for line in manifest:
        assert hashlib.sha256(world.bucket.get(prefix + line["name"]) or b"").hexdigest() == line["sha256"]
    copy = pq.read_table(io.BytesIO(world.bucket.get(prefix + "parquet/train.parquet") or b""))
    assert copy.num_rows == info["split_sizes"]["train"]
    assert copy.schema.field("augmentation").type == augmentation.AUGMENTATION_TYPE
    assert metadata["features"]["augmentation"] == audio_transforms.AUGMENTATION_FEATURE
    assert metadata["augmentation"]["transforms"] == [{"type": "speed", "factor": 0.9},
                                                      {"type": "noise", "snr_db": 20.0}]
    check = validate_dataset(world.bucket, info["dataset_id"], T0)
    assert check["is_valid"], check["issues"]
    assert metadata["quality_report"]["passed"] is info["quality_passed"]


def test_the_version_is_a_child_of_the_source_version(world: World) -> None:
    info = world.augment(version_name="augmented")
    registry = read_registry(world.bucket)
    base_version = next(v for v in registry["versions"].values() if v["dataset_id"] == "base")
    entry = registry["versions"][info["version_id"]]
    assert entry["parent_version"] == base_version["version_id"] == info["parent_version"]
    assert entry["dataset_id"] == info["dataset_id"] and entry["checksum"] == info["checksum"]
    assert world.augment(create_version=False).get("version_id") is None


def test_the_same_dataset_and_transforms_give_the_same_bytes(world: World) -> None:
    first = world.augment(version_name="augmented")
    prefix = layout.dataset_prefix(first["dataset_id"])
    objects = {name: stored.data for name, stored in world.bucket.objects.items() if name.startswith(prefix)}
    writes = len(world.bucket.writes)
    again = world.augment(version_name="augmented")  # finished: nothing is written again
    assert again["dataset_id"] == first["dataset_id"] and again["version_id"] == first["version_id"]
    assert world.bucket.written(writes) == []
    other = World()  # a fresh deployment with the same cases: byte for byte the same dataset
    other.build(speech_cases())
    other.augment(version_name="augmented")
    assert {name: stored.data for name, stored in other.bucket.objects.items() if name.startswith(prefix)} == objects
    assert world.augment(transforms=SPEED_NOISE[::-1])["dataset_id"] != first["dataset_id"]  # order matters


@pytest.mark.parametrize(
    "transforms", [[{"type": "speed", "factor": 0}], [{"type": "noise", "snr_db": -500}], [{"type": "reverb"}]]
)
def test_bad_transforms_are_refused_before_anything_is_written(world: World, transforms: Any) -> None:
    writes = len(world.bucket.writes)
    with pytest.raises(InvalidAugmentation):
        world.augment(transforms=transforms)
    assert world.bucket.written(writes) == []


def test_an_unknown_dataset_or_parent_is_refused(world: World) -> None:
    with pytest.raises(NotFound):
        world.augment("nope")
    with pytest.raises(ValueError, match="parent_version 'v_nope' is not in"):
        world.augment(parent_version="v_nope")


def test_bad_clips_are_counted_named_and_skipped_never_raised() -> None:
    world = World()
    world.audio.put("bad/empty.wav", b"")
    world.audio.put("bad/text.wav", b"this is a transcript, not audio\n" * 20)
    world.audio.put("bad/long.flac", long_silence(2 * 3600 + 60))
    bad = {
        "utt-100": ("gs://stt-audio/bad/missing.wav", "missing: no such object"),
        "utt-101": ("gs://stt-audio/bad/empty.wav", "empty: the object has no bytes"),
        "utt-102": ("gs://stt-audio/bad/text.wav", "not audio: Format not recognised."),
        "utt-103": ("gs://stt-audio/bad/long.flac", "too long: 7260.0 s, over the cap of 7200 s"),
        "utt-104": ("audio/sample.wav", "not a gs:// URI: 'audio/sample.wav'"),
    }
    cases = [case(int(cid[4:]), uri) for cid, (uri, _) in bad.items()] + speech_cases(3)
    world.build(cases, train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)
    info = world.augment()
    named = {problem["case_id"]: problem for problem in info["augmentation"]["problems"]}
    assert info["augmentation"]["skipped_count"] == len(bad) == len(named)
    for case_id, (uri, reason) in bad.items():
        assert named[case_id] == {"case_id": case_id, "audio": uri, "split": "train", "reason": reason}
    train = world.rows(info["dataset_id"], "train")
    assert {row["case_id"] for row in train if "augmentation" not in row} == {*bad, "utt-000", "utt-001", "utt-002"}
    assert {row["augmentation"]["source_case_id"] for row in train if "augmentation" in row} == {
        "utt-000", "utt-001", "utt-002"}


def test_an_augmented_dataset_is_not_augmented_again_row_by_row(world: World) -> None:
    """Augmenting an augmented dataset transforms its original rows only: no compounded transforms."""
    first = world.augment()
    second = world.augment(first["dataset_id"], [{"type": "gain", "db": -6}])
    rows = world.rows(second["dataset_id"], "train")
    gained = [row for row in rows if (row.get("augmentation") or {}).get("type") == "gain"]
    sources = {row["augmentation"]["source_case_id"] for row in gained}
    assert sources == {row["case_id"] for row in world.rows("base", "train")}
    assert second["parent_version"] == first["version_id"]


def test_the_pipeline_and_the_api_reach_it_with_other_buckets_through_the_adapters(world: World) -> None:
    from shared.api import dispatch

    settings = Settings()
    adapters = Adapters(settings, bucket=world.bucket, buckets={AUDIO_BUCKET: world.audio})
    assert adapters.bucket_named(AUDIO_BUCKET) is world.audio and adapters.bucket_named(settings.bucket) is world.bucket
    pipeline = FinetuningDatasetPipeline(adapters=adapters)
    answer = dispatch({"op": "augment_dataset", "dataset_id": "base", "augmentations": SPEED_NOISE},
                      settings, {"FinetuningDatasetPipeline": pipeline})
    assert answer.status == 200, answer.body
    assert answer.body["result"]["dataset_id"] == world.augment()["dataset_id"]
    bad = [{"type": "speed", "factor": 0}]
    refused = dispatch({"op": "augment_dataset", "dataset_id": "base", "augmentations": bad},
                       settings, {"FinetuningDatasetPipeline": pipeline})
    assert refused.status == 400 and "factor" in refused.body["error"]
    missing = dispatch({"op": "augment_dataset", "dataset_id": "nope", "augmentations": SPEED_NOISE},
                       settings, {"FinetuningDatasetPipeline": pipeline})
    assert missing.status == 404


def test_a_val_or_test_row_whose_header_cannot_give_a_duration_is_named_and_kept() -> None:
    world = World()
    world.build([case(1, "gs://stt-audio/clips/gone.wav"), case(2, f"gs://stt-audio/clips/{CLIPS[0]}")],
                train_ratio=0.0, val_ratio=1.0, test_ratio=0.0)
    info = world.augment()
    assert info["augmentation"]["skipped_count"] == 0 and info["augmentation"]["augmented_rows"] == 0
    assert info["augmentation"]["unreadable_val_test_count"] == 1
    assert info["augmentation"]["problems"] == [{"case_id": "utt-001", "audio": "gs://stt-audio/clips/gone.wav",
                                                 "split": "val", "reason": "missing: no such object"}]
    val = {row["case_id"]: row for row in world.rows(info["dataset_id"], "val")}
    assert val["utt-001"]["duration_s"] is None
    assert val["utt-002"]["duration_s"] == pytest.approx(sf.info(clip_path(CLIPS[0])).duration)


def test_an_augmentation_where_no_clip_could_be_augmented_is_not_a_version() -> None:
    """Every train clip missing: the augmented dataset would only copy its source, so it is not registered and
    the current version stays the source's; the result says why, with the skipped rows counted."""
    world = World()
    missing = [case(i, f"gs://{AUDIO_BUCKET}/clips/gone-{i}.wav") for i in range(4)]
    world.build(missing, train_ratio=1.0, val_ratio=0.0, test_ratio=0.0)
    before = read_registry(world.bucket)
    info = world.augment(version_name="augmented")
    assert info.get("version_id") is None and info["parent_version"] is None
    assert info["augmentation"]["augmented_rows"] == 0 and info["augmentation"]["skipped_count"] == 4
    assert info["quality_gate"]["version"] == "not_augmented"
    assert "no clip could be augmented (4 train rows skipped" in info["quality_gate"]["message"]
    after = read_registry(world.bucket)
    assert after["current_version"] == before["current_version"] and after["versions"] == before["versions"]


def test_a_build_whose_augmentation_found_no_clip_registers_only_the_plain_version() -> None:
    world = World()
    missing = [case(i, f"gs://{AUDIO_BUCKET}/clips/gone-{i}.wav") for i in range(4)]
    info = world.build(missing, train_ratio=1.0, val_ratio=0.0, test_ratio=0.0, augment=SPEED_NOISE)
    augmented = info["augmented"]
    assert info["version_id"] is not None and augmented.get("version_id") is None
    assert augmented["skipped_count"] == 4 and augmented["quality_gate"]["version"] == "not_augmented"
    assert "no clip could be augmented" in augmented["quality_gate"]["message"]
    registry = read_registry(world.bucket)
    assert list(registry["versions"]) == [info["version_id"]] == [registry["current_version"]]
