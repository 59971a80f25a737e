"""Dataset builds and versions through the Python API, on the emulators (Firestore cases, fake-gcs bucket)."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from google.cloud import storage

from shared import DataManager, DataVersionControl, FinetuningDatasetPipeline, IntegratedDataManagementSystem
from shared.adapters.gcs import BucketStore
from shared.config import Settings
from shared.domain.bucket_layout import dataset_prefix
from shared.domain.dataset_build import group_key
from stack.local_stack import StackInfo

ERRORS = [
    ("THIS IS ALL CAPS NUMBER {i}", "This is all caps number {i}"),
    ("the cat sat on the mat {i}", "the cat sat on the hat {i}"),
    ("i have {i} apples", "i have {i} apples and pears"),
    ("hello world number {i}", "Hello, world number {i}."),
]


def _store_cases(manager: DataManager, namespace: str, start: int, n: int) -> list[str]:
    """n corrected cases over 8 speakers and 4 error kinds; their ids."""
    ids = []
    for i in range(start, start + n):
        original, corrected = ERRORS[i % len(ERRORS)]
        ids.append(
            manager.store_failed_case(
                f"gs://stt-audio/{namespace}/{i}.wav",
                original.format(i=i),
                corrected.format(i=i),
                error_score=0.4 + (i % 6) / 10,
                speaker_id=f"spk-{i % 8}",
                model_version="whisper_base_v1",
            )
        )
    return ids


@pytest.fixture
def test_settings(stack: StackInfo, test_settings: Settings, namespace: str) -> Settings:
    """This test's collections and a bucket of its own: a build reads every case of its bucket's snapshot."""
    own = replace(test_settings, bucket=f"{namespace}-builds")
    storage.Client(project=own.project).create_bucket(own.bucket)
    return own


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    """Where this test's pipelines put their local copies."""
    return tmp_path / "data" / "finetuning"


@pytest.fixture
def built(stack: StackInfo, test_settings: Settings, namespace: str, output_dir: Path) -> dict:
    manager = DataManager(test_settings)
    _store_cases(manager, namespace, 0, 80)
    manager.store_failed_case(f"gs://stt-audio/{namespace}/raw.wav", "never corrected", error_score=0.9)
    pipeline = FinetuningDatasetPipeline(test_settings, output_dir=output_dir)
    return pipeline.prepare_dataset(
        min_error_score=0.5, balance_error_types=False, create_version=True, version_name=namespace
    )


def _rows(bucket: BucketStore, info: dict, split: str) -> list[dict]:
    data = bucket.get(f"{dataset_prefix(info['dataset_id'])}{split}.jsonl") or b""
    return [orjson.loads(line) for line in data.splitlines()]


def test_a_build_writes_checked_splits_with_metadata_last_and_a_version(
    built: dict, test_settings: Settings, namespace: str
) -> None:
    bucket = BucketStore(test_settings)
    rows = {split: _rows(bucket, built, split) for split in ("train", "val", "test")}
    everything = [row for split_rows in rows.values() for row in split_rows]
    # Eligible: corrected and error_score >= 0.5 (scores cycle 0.4 .. 0.9: 5 of every 6); never the raw case.
    assert len(everything) == built["total_samples"] == sum(1 for i in range(80) if 0.4 + (i % 6) / 10 >= 0.5)
    assert all(row["has_correction"] and row["text"] != row["original_transcript"] for row in everything)
    speakers = {split: {group_key({"speaker_id": r["speaker_id"], "audio_path": r["audio"]}) for r in rs}
                for split, rs in rows.items()}
    assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"]
                or speakers["val"] & speakers["test"])
    metadata = FinetuningDatasetPipeline(test_settings).get_dataset_info(built["dataset_id"])
    assert metadata is not None and metadata["split_sizes"] == {s: len(r) for s, r in rows.items()}
    for split in rows:
        data = bucket.get(f"{dataset_prefix(built['dataset_id'])}{split}.jsonl") or b""
        assert metadata["files"][f"{split}.jsonl"]["sha256"] == hashlib.sha256(data).hexdigest()
    version = DataVersionControl(test_settings).get_version(built["version_id"])
    assert version is not None and version["checksum"] == metadata["checksum"]
    assert version["dataset_id"] == built["dataset_id"] and namespace in built["version_id"]
    report = FinetuningDatasetPipeline(test_settings).validate_dataset(built["dataset_id"])
    assert report["is_valid"], report["issues"]


def test_hugging_face_loads_the_dataset_as_written(built: dict, test_settings: Settings, tmp_path: Path) -> None:
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HOME"] = str(tmp_path / "hf")
    import datasets

    bucket = BucketStore(test_settings)
    files = {}
    for split in ("train", "val", "test"):
        local = tmp_path / f"{split}.jsonl"
        local.write_bytes(bucket.get(f"{dataset_prefix(built['dataset_id'])}{split}.jsonl") or b"")
        if local.stat().st_size:
            files[split] = str(local)
    loaded = datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path / "cache"))
    assert {split: loaded[split].num_rows for split in files} == {
        split: built["split_sizes"][split] for split in files
    }
    first = loaded["train"][0]
    assert first["audio"].startswith("gs://") and first["text"] and isinstance(first["error_types"], list)


def test_versions_compare_lineage_and_roll_back(
    built: dict, stack: StackInfo, test_settings: Settings, namespace: str, output_dir: Path, tmp_path: Path
) -> None:
    _store_cases(DataManager(test_settings), namespace, 80, 40)
    pipeline = FinetuningDatasetPipeline(test_settings, output_dir=output_dir)
    second = pipeline.prepare_dataset(
        min_error_score=0.5, balance_error_types=False, create_version=True, version_name=namespace,
        parent_version=built["version_id"],
    )
    control = DataVersionControl(test_settings)
    lineage = [v["version_id"] for v in control.get_version_lineage(second["version_id"])]
    assert lineage == [built["version_id"], second["version_id"]]

    diff = control.compare_versions(built["version_id"], second["version_id"])
    added = second["total_samples"] - built["total_samples"]
    assert diff["checksum_match"] is False and added > 0
    assert diff["cases"]["added"] == added and diff["cases"]["removed"] == 0 and diff["cases"]["moved"] == 0

    bucket_uri = f"gs://{test_settings.bucket}/"
    for unsafe in ("dataset-requests/x", "imports/x", "data_versions/v", "restores/../imports", f"tmp/{namespace}/x"):
        with pytest.raises(ValueError, match="not allowed"):  # refused before anything is written
            control.rollback_to_version(built["version_id"], target_path=bucket_uri + unsafe)
    # A local target: the version's files, verified, in a local directory (the registry moves too).
    local = control.rollback_to_version(second["version_id"], target_path=str(tmp_path / "restored"))
    assert local["current_version"] == second["version_id"]
    original = BucketStore(test_settings).get(f"{dataset_prefix(second['dataset_id'])}train.jsonl")
    assert (tmp_path / "restored" / "train.jsonl").read_bytes() == original
    rolled = control.rollback_to_version(built["version_id"], target_path=f"{bucket_uri}restores/{namespace}/current")
    assert rolled["current_version"] == built["version_id"]
    registry = orjson.loads(BucketStore(test_settings).get("data_versions/version_registry.json") or b"{}")
    assert registry["current_version"] == built["version_id"]
    assert registry["history"][-1]["action"] == "rollback"
    copied = BucketStore(test_settings).get(f"restores/{namespace}/current/train.jsonl")
    original = BucketStore(test_settings).get(f"{dataset_prefix(built['dataset_id'])}train.jsonl")
    assert copied == original

    # A dataset changed after its build is caught: by validation, and a rollback to it is refused.
    BucketStore(test_settings).put(f"{dataset_prefix(second['dataset_id'])}test.jsonl", b'{"tampered": true}\n')
    assert not pipeline.validate_dataset(second["dataset_id"])["is_valid"]
    with pytest.raises(ValueError, match="missing or changed"):
        control.rollback_to_version(second["version_id"])


def test_concurrent_versions_are_all_kept(built: dict, test_settings: Settings, namespace: str) -> None:
    control = DataVersionControl(test_settings)
    names = [f"{namespace}-c{i}" for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(lambda name: control.create_version(built["dataset_id"], name), names))
    assert len(set(ids)) == 6 and set(ids) <= set(control.versions)
    # The same dataset and name again is the same version, not a new one.
    assert control.create_version(built["dataset_id"], names[0]) == ids[0]


def test_no_eligible_case_and_bad_parameters(stack: StackInfo, test_settings: Settings) -> None:
    pipeline = FinetuningDatasetPipeline(test_settings)
    assert pipeline.prepare_dataset(min_error_score=1.0)["error"] == "No eligible cases"
    with pytest.raises(ValueError, match="ratio"):
        pipeline.prepare_dataset(train_ratio=0.9, val_ratio=0.2, test_ratio=0.1)


def test_integrated_system_reports_on_everything(
    built: dict, test_settings: Settings, namespace: str, tmp_path: Path
) -> None:
    system = IntegratedDataManagementSystem(test_settings)
    case_id = system.record_failed_transcription(
        f"gs://stt-audio/{namespace}/int.wav", "THE END", error_score=0.7, inference_time=0.4
    )
    assert system.add_correction(case_id, "The end.", correction_method="reviewer-1")
    report = system.generate_comprehensive_report(
        output_path=f"gs://{test_settings.bucket}/reports/{namespace}/report.json")
    assert report["system_statistics"]["data_management"]["total_cases"] == 82
    assert report["system_statistics"]["available_datasets"] >= 1
    assert report["system_statistics"]["version_control"]["total_versions"] >= 1
    assert report["saved_to"].endswith(f"/reports/{namespace}/report.json")
    assert any("Fewer than 100" in advice for advice in report["recommendations"])
    local = system.generate_comprehensive_report(output_path=str(tmp_path / "reports" / f"{namespace}.json"))
    assert orjson.loads((tmp_path / "reports" / f"{namespace}.json").read_bytes())["generated_at"]
    copy = BucketStore(test_settings).get(f"reports/{namespace}.json")
    assert copy is not None and local["saved_to_bucket"].endswith(f"/reports/{namespace}.json")


def test_the_firestore_ledger_leases_renews_and_hands_over(stack: StackInfo, test_settings: Settings) -> None:
    from datetime import UTC, datetime, timedelta

    from shared.adapters.firestore_builds import FirestoreBuildLedger
    from shared.services.build_leases import LEASE, BuildInProgress

    ledger = FirestoreBuildLedger(test_settings)
    t0 = datetime.now(UTC)
    assert ledger.claim("b1", "first", t0, LEASE) is None
    with pytest.raises(BuildInProgress):
        ledger.claim("b1", "second", t0 + LEASE / 2, LEASE)
    assert ledger.renew("b1", "first", t0 + LEASE * 2)
    with pytest.raises(BuildInProgress):  # renewed: still held after the first lease would have lapsed
        ledger.claim("b1", "second", t0 + LEASE + timedelta(seconds=1), LEASE)
    assert ledger.claim("b1", "second", t0 + LEASE * 2 + timedelta(seconds=1), LEASE) is None
    assert not ledger.renew("b1", "first", t0 + LEASE * 3)  # taken over: the first attempt must stop
    ledger.finish("b1", "finished", {"status": "built"})
    done = ledger.claim("b1", "third", t0 + LEASE * 9, LEASE)
    assert done is not None and done["result"] == {"status": "built"} and done["takeovers"] == 1


def test_the_local_copies_are_verified_and_the_hugging_face_folders_load(
    built: dict, test_settings: Settings, tmp_path: Path, output_dir: Path, namespace: str
) -> None:
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HOME"] = str(tmp_path / "hf")
    import datasets

    bucket = BucketStore(test_settings)
    mirror = output_dir / built["dataset_id"]
    assert built["local_path"] == str(mirror)
    metadata = orjson.loads(bucket.get(f"{dataset_prefix(built['dataset_id'])}metadata.json") or b"{}")
    for name, entry in metadata["files"].items():
        assert hashlib.sha256((mirror / name).read_bytes()).hexdigest() == entry["sha256"]
    assert bucket.get(f"{dataset_prefix(built['dataset_id'])}README.md") == (mirror / "README.md").read_bytes()

    pipeline = FinetuningDatasetPipeline(test_settings, output_dir=output_dir)
    expected = {{"val": "validation"}.get(split, split): size for split, size in built["split_sizes"].items() if size}
    train_ids = sorted(row["case_id"] for row in _rows(bucket, built, "train"))
    for output_format in ("json", "parquet"):
        folder = pipeline.prepare_huggingface_dataset(built["dataset_id"], output_format=output_format)
        assert isinstance(folder, str) and folder.startswith(str(output_dir))
        loaded = datasets.load_dataset(folder, cache_dir=str(tmp_path / "cache" / output_format))
        assert {split: loaded[split].num_rows for split in loaded} == expected
        assert sorted(loaded["train"]["case_id"]) == train_ids
    with pytest.raises(ValueError, match="output_format"):
        pipeline.prepare_huggingface_dataset(built["dataset_id"], output_format="csv")

    control = DataVersionControl(test_settings)
    assert control.create_version(str(mirror), namespace) == built["version_id"]
    assert control.check_quality(str(mirror))["num_samples"] == built["total_samples"]
