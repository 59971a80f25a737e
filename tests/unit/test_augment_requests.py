"""The api's augment_dataset op goes through a build request: it uploads, once, a create-only
`dataset-requests/api-augment/<dataset>-<digest>.json` naming the finished dataset, and build_dataset writes the
augmented dataset and its version. In-memory buckets; the espeak-ng fixtures as the audio."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.api import dispatch
from shared.bootstrap import Adapters
from shared.config import Settings
from shared.domain import audio_transforms
from shared.domain import bucket_layout as layout
from shared.domain.dataset_request import parse_build_request
from shared.errors import InvalidAugmentation
from shared.finetuning_pipeline import FinetuningDatasetPipeline
from shared.services.augment_requests import MAX_WAIT_S, POLL_S, ask_augmentation
from shared.services.dataset_builds import run_build_request
from shared.services.version_registry import read_registry
from tests.unit.fake_dataset_bucket import FakeCases, FakeLedger, FakeQuarantine, WriteRecordingBucket
from tests.unit.fake_progress import InMemoryProgressBoard
from tests.unit.test_augmentation import AUDIO_BUCKET, SPEED_NOISE, World, speech_cases


class Deployment(World):
    """World's buckets with "base" built and versioned (as build_dataset writes it), a progress board, and the
    api's pipeline (local_copies=False, as shared/api.py makes it) over them."""

    def __init__(self) -> None:
        super().__init__()
        self.bucket = WriteRecordingBucket()
        self.buckets[self.bucket.bucket] = self.bucket
        self.build(speech_cases(12))
        self.bucket.changes.clear()
        self.board = InMemoryProgressBoard()
        self.ledger = FakeLedger()
        self.quarantine = FakeQuarantine()
        self.settings = Settings()
        adapters = Adapters(self.settings, bucket=self.bucket, buckets={AUDIO_BUCKET: self.audio},
                            progress=self.board)
        self.instances = {"FinetuningDatasetPipeline": FinetuningDatasetPipeline(adapters=adapters,
                                                                                  local_copies=False)}

    def call(self, **arguments: Any) -> tuple[int, dict[str, Any]]:
        answer = dispatch({"op": "augment_dataset", **arguments}, self.settings, self.instances)
        return answer.status, orjson.loads(answer.json())

    def serve(self, name: str) -> dict[str, Any]:
        """What build_dataset does on the request's notification."""
        return run_build_request(name, self.bucket.generation(name), ledger=self.ledger, cases=FakeCases([]),
                                 bucket=self.bucket, quarantine=self.quarantine, progress=self.board,
                                 open_bucket=self.open_bucket)


@pytest.fixture
def deployment() -> Deployment:
    return Deployment()


def test_the_op_uploads_one_create_only_request_and_writes_nothing_else(deployment: Deployment) -> None:
    status, body = deployment.call(dataset_id="base", augmentations=SPEED_NOISE, version_name="base-aug")
    assert status == 200, body
    answer = body["result"]
    name = answer["request"]
    assert name.startswith(f"{layout.API_AUGMENT_REQUESTS}base-") and name.endswith(".json")
    assert answer["created"] is True and answer["state"] == "queued" and "result" not in answer
    assert answer["result_object"] == layout.build_result_name(name)
    transforms = audio_transforms.parse_transforms(SPEED_NOISE)
    assert answer["dataset_id"] == audio_transforms.augmented_dataset_id("base", transforms)
    assert deployment.bucket.changes == [(name, False)]  # one object created, nothing replaced, no dataset
    request = parse_build_request(deployment.bucket.get(name) or b"")
    assert request.augment_dataset_id == "base" and request.augment == [t.spec() for t in transforms]
    assert request.version_name == "base-aug" and request.create_version is True

    # The same dataset and transforms name the same request: a repeat writes nothing.
    _, again = deployment.call(dataset_id="base", augmentations=[{"type": "speed", "factor": 0.90},
                                                                 {"type": "noise", "snr_db": 20}],
                               version_name="base-aug")
    assert again["result"]["request"] == name and again["result"]["created"] is False
    assert deployment.bucket.changes == [(name, False)]
    _, other = deployment.call(dataset_id="base", augmentations=[{"type": "gain", "db": -6}])
    assert other["result"]["request"] != name
    assert all(written.startswith(layout.API_AUGMENT_REQUESTS) and not replaced
               for written, replaced in deployment.bucket.changes)


def test_the_build_function_writes_the_augmented_dataset_and_its_version(deployment: Deployment) -> None:
    _, body = deployment.call(dataset_id="base", augmentations=SPEED_NOISE, version_name="base-aug")
    name = body["result"]["request"]
    result = deployment.serve(name)

    assert result["status"] == "built" and result["source_dataset_id"] == "base"
    assert result["dataset_id"] == body["result"]["dataset_id"]
    registry = read_registry(deployment.bucket)
    base_version = next(v for v in registry["versions"].values() if v["dataset_id"] == "base")
    assert result["parent_version"] == base_version["version_id"]
    assert registry["versions"][result["version_id"]]["parent_version"] == base_version["version_id"]
    assert result["quality_gate"]["version"] == "registered"
    train = [orjson.loads(line) for line in
             (deployment.bucket.get(layout.dataset_prefix(result["dataset_id"]) + "train.jsonl") or b"").splitlines()]
    augmented = [row for row in train if row.get("augmentation")]
    assert augmented and len(augmented) == result["augmentation"]["augmented_rows"] == 2 * (len(train) // 3)
    assert orjson.loads(deployment.bucket.get(layout.build_result_name(name)) or b"") == result

    # The op asked again answers the build's result, and writes nothing.
    deployment.bucket.changes.clear()
    _, again = deployment.call(dataset_id="base", augmentations=SPEED_NOISE, version_name="base-aug")
    assert again["result"]["state"] == "built" and again["result"]["result"] == result
    assert deployment.bucket.changes == []
    # Python's augment_dataset makes the same dataset, byte for byte, and finds it finished.
    python = deployment.augment("base", SPEED_NOISE, version_name="base-aug")
    assert (python["dataset_id"], python["checksum"], python["version_id"]) == (
        result["dataset_id"], result["checksum"], result["version_id"])
    assert deployment.bucket.changes == []


def test_wait_polls_for_the_result_until_its_timeout(deployment: Deployment) -> None:
    now = [0.0]
    served: list[str] = []

    def clock() -> float:
        return now[0]

    def never_served(seconds: float) -> None:
        now[0] += seconds

    queued = ask_augmentation(deployment.bucket, deployment.board, "base", SPEED_NOISE, wait=True, timeout_s=5,
                              clock=clock, sleep=never_served)
    assert queued["state"] == "queued" and now[0] == pytest.approx(5, abs=POLL_S)

    def build_meanwhile(seconds: float) -> None:
        now[0] += seconds
        if not served:
            served.append(queued["request"])
            deployment.serve(queued["request"])

    done = ask_augmentation(deployment.bucket, deployment.board, "base", SPEED_NOISE, wait=True, timeout_s=30,
                            clock=clock, sleep=build_meanwhile)
    assert served == [queued["request"]] and done["request"] == queued["request"]
    assert done["state"] == "built" and done["result"]["dataset_id"] == queued["dataset_id"]


def test_bad_arguments_are_refused_before_anything_is_written(deployment: Deployment) -> None:
    cases = [
        ({"augmentations": [{"type": "speed", "factor": 0}]}, 400, "factor"),
        ({"augmentations": [{"type": "reverse"}]}, 400, "reverse"),
        ({"augmentations": SPEED_NOISE, "version_name": "../x"}, 400, "version_name"),
        ({"augmentations": SPEED_NOISE, "parent_version": "v_nowhere"}, 200, ""),  # the build rejects it
        ({"augmentations": SPEED_NOISE, "wait": True, "timeout_s": MAX_WAIT_S + 1}, 400, "timeout_s"),
        ({"dataset_id": "nope", "augmentations": SPEED_NOISE}, 404, "nope"),
        ({"dataset_id": "a/b", "augmentations": SPEED_NOISE}, 400, "augment_dataset_id"),
    ]
    for arguments, status, message in cases:
        deployment.bucket.changes.clear()
        answer_status, body = deployment.call(**{"dataset_id": "base", **arguments})
        assert answer_status == status, (arguments, body)
        if status != 200:
            assert message in body["error"] and deployment.bucket.changes == [], arguments
    with pytest.raises(InvalidAugmentation):
        ask_augmentation(deployment.bucket, deployment.board, "base", [])


def test_a_request_the_build_cannot_serve_is_rejected_with_its_reason(deployment: Deployment) -> None:
    _, body = deployment.call(dataset_id="base", augmentations=SPEED_NOISE, parent_version="v_nowhere")
    result = deployment.serve(body["result"]["request"])
    assert result["status"] == "rejected" and "v_nowhere" in result["reason"]
    missing = f"{layout.API_AUGMENT_REQUESTS}gone.json"
    deployment.bucket.put(missing, orjson.dumps({"augment_dataset_id": "gone", "augment": SPEED_NOISE}))
    result = deployment.serve(missing)
    assert result["status"] == "rejected" and "'gone' is not a finished dataset" in result["reason"]
    assert not any(name.startswith(layout.DATASETS) for name, _ in deployment.bucket.changes)
    assert [call["source"] for call in deployment.quarantine.calls] == ["build_dataset", "build_dataset"]
