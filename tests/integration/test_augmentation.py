"""Augmentation on the emulators: cases in Firestore whose audio is real speech in an audio bucket of its own on
fake-gcs-server, a dataset built and augmented through FinetuningDatasetPipeline, its clips measured."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pytest
import soundfile as sf
from google.cloud import storage

from shared import DataManager, DataVersionControl, FinetuningDatasetPipeline
from shared.config import Settings
from shared.domain.bucket_layout import dataset_prefix
from shared.errors import InvalidAugmentation
from stack.local_stack import StackInfo
from tests.fixtures.audio import CLIPS, clip_path
from tests.unit.test_audio_transforms import measured_snr


@pytest.fixture
def test_settings(stack: StackInfo, test_settings: Settings, namespace: str) -> Settings:
    """This test's collections, a dataset bucket and an audio bucket (holding the fixtures and a broken clip)."""
    own = replace(test_settings, bucket=f"{namespace}-datasets")
    client = storage.Client(project=own.project)
    client.create_bucket(own.bucket)
    audio = client.create_bucket(f"{namespace}-audio")
    for name in CLIPS:
        audio.blob(f"clips/{name}").upload_from_filename(str(clip_path(name)))
    audio.blob("clips/broken.wav").upload_from_string(b"RIFF but not really a wave file" * 10)
    return own


def _get(client: storage.Client, uri: str) -> bytes:
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return client.bucket(bucket).blob(name).download_as_bytes()


def _rows(client: storage.Client, bucket: str, dataset_id: str, split: str) -> list[dict]:
    data = client.bucket(bucket).blob(f"{dataset_prefix(dataset_id)}{split}.jsonl").download_as_bytes()
    return [orjson.loads(line) for line in data.splitlines()]


def test_a_built_dataset_is_augmented_from_another_bucket_train_only(
    test_settings: Settings, namespace: str, tmp_path: Path
) -> None:
    manager = DataManager(test_settings)
    audio_bucket = f"{namespace}-audio"
    for i in range(12):
        clip = "broken.wav" if i == 11 else CLIPS[i % 3]
        manager.store_failed_case(f"gs://{audio_bucket}/clips/{clip}", f"TURN IT DOWN {i}", f"Turn it down {i}.",
                                  error_score=0.8, speaker_id=f"spk-{i}")
    pipeline = FinetuningDatasetPipeline(test_settings, output_dir=tmp_path)  # its local copies go there
    base = pipeline.prepare_dataset(min_error_score=0.5, balance_error_types=False, train_ratio=0.7, val_ratio=0.15,
                                    test_ratio=0.15, create_version=True, version_name="speech")
    with pytest.raises(InvalidAugmentation, match="factor"):
        pipeline.augment_dataset(base["dataset_id"], [{"type": "speed", "factor": 0}])

    info = pipeline.augment_dataset(base["dataset_id"], [{"type": "speed", "factor": 0.9},
                                                         {"type": "noise", "snr_db": 20}], version_name="speech-aug")

    client = storage.Client(project=test_settings.project)
    source_train = _rows(client, test_settings.bucket, base["dataset_id"], "train")
    train = _rows(client, test_settings.bucket, info["dataset_id"], "train")
    augmented = [row for row in train if "augmentation" in row]
    broken = [row for row in source_train if row["audio"].endswith("broken.wav")]
    assert len(augmented) == 2 * (len(source_train) - len(broken)) == info["augmentation"]["augmented_rows"]
    assert [p["case_id"] for p in info["augmentation"]["problems"]] == [row["case_id"] for row in broken]
    for split in ("val", "test"):
        assert all("augmentation" not in row for row in _rows(client, test_settings.bucket, info["dataset_id"], split))
    by_id = {row["case_id"]: row for row in source_train}
    for row in augmented:
        source, rate = sf.read(io.BytesIO(_get(client, by_id[row["augmentation"]["source_case_id"]]["audio"])),
                               dtype="float32")
        out, out_rate = sf.read(io.BytesIO(_get(client, row["audio"])), dtype="float32")
        assert out_rate == rate
        assert row["audio"].startswith(f"gs://{test_settings.bucket}/{dataset_prefix(info['dataset_id'])}audio/")
        if row["augmentation"]["type"] == "speed":
            assert len(out) / len(source) == pytest.approx(1 / 0.9, abs=2 / len(source))
        else:
            assert measured_snr(source, out) == pytest.approx(20, abs=0.1)
        assert row["duration_s"] == pytest.approx(len(out) / out_rate)
        assert np.isfinite(out).all()

    lineage = DataVersionControl(test_settings).get_version_lineage(info["version_id"])
    assert info["parent_version"] == base["version_id"]
    assert [entry.version_id for entry in lineage] == [base["version_id"], info["version_id"]]
    assert pipeline.validate_dataset(info["dataset_id"])["is_valid"]
    again = pipeline.augment_dataset(base["dataset_id"], [{"type": "speed", "factor": 0.9},
                                                          {"type": "noise", "snr_db": 20}], version_name="speech-aug")
    assert again["version_id"] == info["version_id"] and again["checksum"] == info["checksum"]
