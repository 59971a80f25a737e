"""The api's augment_dataset op -> a create-only build request -> bucket notification -> build_dataset ->
the augmented dataset and its version, through the stack's own functions on the emulators."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import soundfile as sf
from google.cloud import storage

from shared import DataManager, DataVersionControl, FinetuningDatasetPipeline
from shared.config import Settings
from shared.domain import bucket_layout as layout
from stack.local_stack import StackInfo
from tests.e2e.waiting import wait_for
from tests.fixtures.audio import CLIPS, clip_path

pytestmark = pytest.mark.emulators

SPEED_NOISE = [{"type": "speed", "factor": 0.9}, {"type": "noise", "snr_db": 20}]
DONE = ("built", "rejected", "no eligible cases", "object gone")


def test_the_api_op_asks_build_dataset_to_augment_a_finished_dataset(
    stack: StackInfo, test_settings: Settings, namespace: str, tmp_path: Path
) -> None:
    client = storage.Client(project=stack.project)
    audio = client.create_bucket(f"{namespace}-audio")
    for name in CLIPS:
        audio.blob(f"clips/{name}").upload_from_filename(str(clip_path(name)))
    # This test's own cases (its collections), built into the stack's bucket, where the stack's functions look.
    own = replace(test_settings, bucket=stack.settings.bucket)
    manager = DataManager(own)
    for i in range(12):
        manager.store_failed_case(f"gs://{audio.name}/clips/{CLIPS[i % 3]}", f"TURN IT DOWN {i}",
                                  f"Turn it down {i}.", error_score=0.8, speaker_id=f"{namespace}-{i}")
    base = FinetuningDatasetPipeline(own, output_dir=tmp_path).prepare_dataset(
        min_error_score=0.5, balance_error_types=False, create_version=True, version_name=namespace)
    url = stack.env["STT_API_URL"]

    def call(**arguments: Any) -> dict[str, Any]:
        answer = requests.post(url, json={"op": "augment_dataset", "dataset_id": base["dataset_id"],
                                          "augmentations": SPEED_NOISE, **arguments}, timeout=90)
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["result"])

    asked = call(wait=True, timeout_s=50)
    request = client.bucket(stack.settings.bucket).get_blob(asked["request"])
    assert request is not None and asked["request"].startswith(layout.API_AUGMENT_REQUESTS)
    assert asked["created"] is True

    def finished() -> dict[str, Any] | None:
        again = call()  # a repeat names the same request and uploads nothing: polling by asking again is safe
        assert again["request"] == asked["request"] and again["created"] is False
        return again if again["state"] in DONE else None

    done = finished() or wait_for(finished, timeout_s=180, interval_s=1)  # a loaded machine may outlast the wait
    again = client.bucket(stack.settings.bucket).get_blob(asked["request"])
    assert again is not None and again.generation == request.generation

    result = done["result"]
    assert result["status"] == "built", result
    assert result["dataset_id"] == asked["dataset_id"] and result["source_dataset_id"] == base["dataset_id"]
    assert result["parent_version"] == base["version_id"]
    lineage = DataVersionControl(own).get_version_lineage(result["version_id"])
    assert [entry.version_id for entry in lineage] == [base["version_id"], result["version_id"]]
    stored = client.bucket(stack.settings.bucket).blob(layout.build_result_name(asked["request"]))
    assert orjson.loads(stored.download_as_bytes()) == result

    prefix = layout.dataset_prefix(result["dataset_id"])
    train = [orjson.loads(line) for line in
             client.bucket(stack.settings.bucket).blob(prefix + "train.jsonl").download_as_bytes().splitlines()]
    augmented = [row for row in train if row.get("augmentation")]
    # The stack's bucket holds other tests' cases too (one snapshot per bucket): each train row whose clip reads
    # gets one row per transform, this test's rows among them.
    sources = Counter(row["augmentation"]["source_case_id"] for row in augmented)
    own = {row["case_id"] for row in train if not row.get("augmentation") and row["audio"].startswith(f"gs://{audio.name}/")}
    assert own and own <= set(sources) and set(sources.values()) == {len(SPEED_NOISE)}
    assert len(augmented) == result["augmentation"]["augmented_rows"]
    for row in augmented:  # written by build_dataset under the new dataset's prefix, read back as audio
        assert row["audio"].startswith(f"gs://{stack.settings.bucket}/{prefix}audio/")
        name = row["audio"].removeprefix(f"gs://{stack.settings.bucket}/")
        samples, rate = sf.read(io.BytesIO(client.bucket(stack.settings.bucket).blob(name).download_as_bytes()))
        assert row["duration_s"] == pytest.approx(len(samples) / rate)
