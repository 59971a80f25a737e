"""Each function as deployed, through functions-framework's own test client, on in-memory fakes (issue #9).

A raw Pub/Sub push body is posted to `/projects/<project>/topics/<topic>`, as the push subscriptions do, so
functions-framework makes the same CloudEvent of it as in the cloud. What each answer means to Pub/Sub:
2xx acknowledges (stored, a duplicate, or bad input kept in the quarantine), 500 makes it redeliver (an outage
or a Transient error). The fakes go in through `bootstrap.use`, keyed by the Settings the function computes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import functions_framework
import orjson
import pytest
from flask.testing import FlaskClient
from google.api_core.exceptions import ServiceUnavailable

from shared import bootstrap
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.domain.cases import CounterDelta
from shared.domain.failure_event import derive_case_id, parse_failure_event
from shared.errors import Transient, UnstorableRecord
from shared.services.bucket_objects import object_version_id
from shared.services.ingestion import record_failure
from shared.services.version_registry import read_registry
from tests.unit.fake_case_store import FullCaseStore
from tests.unit.fake_dataset_bucket import FakeBucket, FakeLedger
from tests.unit.fake_progress import InMemoryProgressBoard
from tests.unit.test_metrics_service import PERF, FakeStore

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
PUBLISH_TIME = "2026-11-30T10:00:00.250Z"
EVENT: dict[str, Any] = {
    "audio_path": "gs://stt-audio/calls/001.wav",
    "original_transcript": "the cat sat on the mat",
    "error_types": ["substitution"],
    "error_score": 0.7,
    "model_version": "m1",
    "speaker_id": "spk-1",
    "occurred_at": "2026-11-30T09:00:00Z",
}
# An outage of a backing service (what the Firestore client raises) and a Transient error: both are retried.
OUTAGES = [
    pytest.param(ServiceUnavailable("firestore is down"), id="outage"),
    pytest.param(Transient("lost a race"), id="transient"),
]


def encoded(payload: bytes | dict[str, Any]) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def case_id_of(event: dict[str, Any]) -> str:
    return derive_case_id(parse_failure_event(encoded(event)))


# -- the fakes and how they are installed ------------------------------------------------------------------


class FlakyCases(FullCaseStore):
    """FullCaseStore whose writes and build reads raise `outage` while it is set (Firestore down)."""

    def __init__(self) -> None:
        super().__init__()
        self.outage: Exception | None = None

    def _check(self) -> None:
        if self.outage is not None:
            raise self.outage

    def create_case(self, case_id: str, case: dict[str, Any], delta: CounterDelta) -> bool:
        self._check()
        return super().create_case(case_id, case, delta)

    def create_cases(self, items: Any) -> set[str]:
        self._check()
        return super().create_cases(items)

    def update_case(self, case_id: str, change: Any) -> dict[str, Any] | None:
        self._check()
        return super().update_case(case_id, change)

    def stream_cases(self, since: Any = None) -> Iterator[Any]:
        self._check()
        return super().stream_cases(since)

    def cases_changed_since(self, since: Any) -> Iterator[Any]:
        self._check()
        return super().cases_changed_since(since)


class FlakyMetrics(FakeStore):
    """The metrics FakeStore whose creates raise `outage` while it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.outage: Exception | None = None

    def create(self, kind: str, record_id: str, document: dict[str, Any]) -> bool:
        if self.outage is not None:
            raise self.outage
        return super().create(kind, record_id, document)


@dataclass
class World:
    """The adapters every function of one deployment gets, all fakes."""

    settings: Settings
    cases: FlakyCases
    bucket: FakeBucket
    metrics: FlakyMetrics
    builds: FakeLedger

    def upload(self, name: str, data: bytes) -> dict[str, str]:
        """Put an object in the bucket; the attributes of its OBJECT_FINALIZE notification."""
        self.bucket.put(name, data)
        return notification(self.settings, name, self.bucket.generation(name))


@pytest.fixture
def world() -> Iterator[World]:
    settings = Settings.from_env()  # what the function computes: `bootstrap.adapters()` finds these fakes
    fakes = World(settings, FlakyCases(), FakeBucket(settings.bucket), FlakyMetrics(), FakeLedger())
    installed = bootstrap.Adapters(
        settings, cases=fakes.cases, bucket=fakes.bucket, metrics=fakes.metrics, builds=fakes.builds,
        progress=InMemoryProgressBoard(),
    )
    with bootstrap.use(installed):
        yield fakes


# -- functions-framework's test clients --------------------------------------------------------------------


def client_of(target: str, signature_type: str) -> FlaskClient:
    source = FUNCTIONS / target / "main.py"
    return functions_framework.create_app(target, str(source), signature_type).test_client()


@pytest.fixture
def record_failure_client() -> FlaskClient:
    return client_of("record_failure", "cloudevent")


@pytest.fixture
def record_correction_client() -> FlaskClient:
    return client_of("record_correction", "cloudevent")


@pytest.fixture
def record_metrics_client() -> FlaskClient:
    return client_of("record_metrics", "cloudevent")


@pytest.fixture
def ingest_import_client() -> FlaskClient:
    return client_of("ingest_import", "cloudevent")


@pytest.fixture
def build_dataset_client() -> FlaskClient:
    return client_of("build_dataset", "cloudevent")


@pytest.fixture
def aggregate_client() -> FlaskClient:
    return client_of("aggregate", "http")


@pytest.fixture
def api_client() -> FlaskClient:
    return client_of("api", "http")


def push_body(data: bytes, message_id: str, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    """A raw Pub/Sub push body, as a push subscription posts it."""
    message: dict[str, Any] = {
        "data": base64.b64encode(data).decode(),
        "messageId": message_id,
        "publishTime": PUBLISH_TIME,
    }
    if attributes is not None:
        message["attributes"] = attributes
    return {"message": message, "subscription": "projects/p/subscriptions/s"}


def push(
    client: FlaskClient, world: World, topic: str, payload: bytes | dict[str, Any], message_id: str = "m-1",
    attributes: dict[str, str] | None = None,
) -> Any:
    """POST one push to the topic's path, so the CloudEvent's source names the topic."""
    path = f"/projects/{world.settings.project}/topics/{topic}"
    return client.post(path, json=push_body(encoded(payload), message_id, attributes))


def notification(settings: Settings, name: str, generation: int | str, **changes: str) -> dict[str, str]:
    """The attributes of a GCS notification of `name` (OBJECT_FINALIZE in the deployment's bucket)."""
    return {
        "eventType": "OBJECT_FINALIZE", "bucketId": settings.bucket, "objectId": name,
        "objectGeneration": str(generation), "payloadFormat": "JSON_API_V1", **changes,
    }


def assert_acked(response: Any) -> None:
    assert 200 <= response.status_code < 300, response.get_data(as_text=True)


def assert_redelivered(response: Any) -> None:
    assert response.status_code == 500
    assert response.headers.get("X-Google-Status") == "crash"


# -- record_failure ----------------------------------------------------------------------------------------


def test_record_failure_stores_a_valid_event_with_its_counters(
    world: World, record_failure_client: FlaskClient
) -> None:
    response = push(record_failure_client, world, world.settings.topic_failures, EVENT, "m-1")

    assert_acked(response)
    case = world.cases.cases[case_id_of(EVENT)]
    assert case["audio_path"] == EVENT["audio_path"]
    assert case["original_transcript"] == EVENT["original_transcript"]
    assert case["error_types"] == ["substitution"] and case["error_types_source"] == "given"
    assert case["corrected"] is False and case["corrections"] == []
    assert case["message_id"] == "m-1"
    assert case["occurred_at"] == datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert world.cases.counters == CounterDelta(
        total_cases=1, error_score_sum=0.7, error_score_count=1, error_types={"substitution": 1},
        model_versions={"m1": 1},
    )
    assert world.cases.rejects == {}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(b"{not json", "payload is not valid JSON", id="invalid-json"),
        pytest.param({"audio_path": "gs://stt-audio/1.wav"}, "missing required field 'original_transcript'",
                     id="missing-field"),
        pytest.param({**EVENT, "error_score": "0.7"}, "field 'error_score'", id="wrong-type"),
        pytest.param({**EVENT, "metadata": {"n": 2**63}}, "Firestore cannot store this event", id="int-beyond-64-bits"),
        pytest.param({**EVENT, "model_version": "v" * 2000}, "1500-byte indexed value limit", id="long-model-version"),
    ],
)
def test_record_failure_acks_bad_input_and_keeps_it_with_its_reason(
    world: World, record_failure_client: FlaskClient, payload: bytes | dict[str, Any], reason: str
) -> None:
    response = push(record_failure_client, world, world.settings.topic_failures, payload, "m-bad")

    assert_acked(response)
    assert world.cases.cases == {}
    kept = world.cases.rejects["record_failure-m-bad"]
    assert reason in kept["reason"]
    assert kept["raw"] == encoded(payload)
    assert (kept["source"], kept["message_id"]) == ("record_failure", "m-bad")
    assert world.cases.counters == CounterDelta(quarantined=1)


def test_record_failure_stores_a_redelivered_or_republished_event_once(
    world: World, record_failure_client: FlaskClient
) -> None:
    topic = world.settings.topic_failures
    for message_id in ("m-1", "m-1", "m-2"):  # a redelivery, then the producer publishing it again
        assert_acked(push(record_failure_client, world, topic, EVENT, message_id))

    assert list(world.cases.cases) == [case_id_of(EVENT)]
    assert world.cases.cases[case_id_of(EVENT)]["message_id"] == "m-1"
    assert world.cases.counters.total_cases == 1
    assert world.cases.counters.error_types == {"substitution": 1}


@pytest.mark.parametrize("outage", OUTAGES)
def test_record_failure_answers_500_while_the_store_fails_and_stores_the_redelivery(
    world: World, record_failure_client: FlaskClient, outage: Exception
) -> None:
    topic = world.settings.topic_failures
    world.cases.outage = outage

    assert_redelivered(push(record_failure_client, world, topic, EVENT, "m-1"))
    assert world.cases.cases == {} and world.cases.rejects == {}

    world.cases.outage = None  # Pub/Sub redelivers the same message once the store is back
    assert_acked(push(record_failure_client, world, topic, EVENT, "m-1"))
    assert world.cases.cases[case_id_of(EVENT)]["message_id"] == "m-1"
    assert world.cases.counters.total_cases == 1


def test_record_failure_acks_an_event_firestore_refuses_and_keeps_it(
    world: World, record_failure_client: FlaskClient
) -> None:
    world.cases.outage = UnstorableRecord("Firestore cannot store this case: 400 an array value in an array value")

    assert_acked(push(record_failure_client, world, world.settings.topic_failures, EVENT, "m-1"))  # not retried

    assert world.cases.cases == {}
    assert world.cases.rejects["record_failure-m-1"]["reason"].endswith("an array value in an array value")
    assert world.cases.counters == CounterDelta(quarantined=1)


def test_record_failure_acks_a_push_whose_data_is_not_base64(world: World, record_failure_client: FlaskClient) -> None:
    body = push_body(b"", "m-1")
    body["message"]["data"] = "***not base64***"
    response = record_failure_client.post(
        f"/projects/{world.settings.project}/topics/{world.settings.topic_failures}", json=body
    )

    assert_acked(response)  # a retry could not fix it: logged and acknowledged
    assert world.cases.cases == {} and world.cases.counters == CounterDelta()


# -- record_correction -------------------------------------------------------------------------------------


def stored_case(world: World) -> str:
    assert record_failure(encoded(EVENT), "m-0", world.cases).status == "stored"
    return case_id_of(EVENT)


def test_record_correction_applies_a_correction_to_a_stored_case_once(
    world: World, record_correction_client: FlaskClient
) -> None:
    case_id = stored_case(world)
    correction = {"case_id": case_id, "corrected_transcript": "the cat sat on a mat", "corrected_by": "rev-1"}
    topic = world.settings.topic_corrections

    assert_acked(push(record_correction_client, world, topic, correction, "c-1"))
    assert_acked(push(record_correction_client, world, topic, correction, "c-1"))  # a redelivery

    case = world.cases.cases[case_id]
    assert case["corrected_transcript"] == "the cat sat on a mat" and case["corrected"] is True
    assert case["wer"] == pytest.approx(1 / 6)
    [entry] = case["corrections"]
    assert (entry["corrected_by"], entry["message_id"], entry["previous_transcript"]) == ("rev-1", "c-1", None)
    assert world.cases.counters.corrected_cases == 1
    assert world.cases.counters.error_types == {"substitution": 1}  # the given types stay
    assert world.cases.rejects == {}


def test_record_correction_of_an_unknown_case_is_acked_and_kept(
    world: World, record_correction_client: FlaskClient
) -> None:
    stored_case(world)
    correction = {"case_id": "no-such-case", "corrected_transcript": "hello"}

    assert_acked(push(record_correction_client, world, world.settings.topic_corrections, correction, "c-9"))

    kept = world.cases.rejects["record_correction-c-9"]
    assert kept["reason"].startswith("no case with case_id 'no-such-case'")
    assert (kept["case_id"], kept["raw"], kept["source"]) == ("no-such-case", encoded(correction), "record_correction")
    assert all(case["corrections"] == [] for case in world.cases.cases.values())
    assert world.cases.counters.quarantined == 1 and world.cases.counters.corrected_cases == 0


def test_record_correction_without_a_transcript_is_acked_and_kept(
    world: World, record_correction_client: FlaskClient
) -> None:
    case_id = stored_case(world)

    assert_acked(push(record_correction_client, world, world.settings.topic_corrections, {"case_id": case_id}, "c-2"))

    assert world.cases.rejects["record_correction-c-2"]["reason"] == "missing required field 'corrected_transcript'"
    assert world.cases.cases[case_id]["corrected"] is False


@pytest.mark.parametrize("outage", OUTAGES)
def test_record_correction_answers_500_while_the_store_fails(
    world: World, record_correction_client: FlaskClient, outage: Exception
) -> None:
    case_id = stored_case(world)
    world.cases.outage = outage
    correction = {"case_id": case_id, "corrected_transcript": "the cat sat on a mat"}

    assert_redelivered(push(record_correction_client, world, world.settings.topic_corrections, correction, "c-1"))
    assert world.cases.cases[case_id]["corrections"] == [] and world.cases.rejects == {}


# -- record_metrics ----------------------------------------------------------------------------------------


def test_record_metrics_stores_a_performance_record(world: World, record_metrics_client: FlaskClient) -> None:
    assert_acked(push(record_metrics_client, world, world.settings.topic_metrics, PERF, "p-1"))

    [document] = world.metrics.docs["performance"].values()
    assert (document["model_version"], document["wer"], document["cer"]) == ("v1", 0.2, 0.1)
    assert document["message_id"] == "p-1"
    # Undated: the publish time of the push, not the time it was received.
    assert document["recorded_at"] == datetime(2026, 11, 30, 10, 0, 0, 250000, tzinfo=UTC)
    assert document["recorded_at_source"] == "received"
    assert world.metrics.quarantined == {}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(b"[1, 2", "JSON", id="invalid-json"),
        pytest.param({**PERF, "kind": "speed"}, "kind", id="unknown-kind"),
        pytest.param({**PERF, "wer": -1}, "wer", id="out-of-range"),
    ],
)
def test_record_metrics_acks_a_bad_record_and_keeps_it(
    world: World, record_metrics_client: FlaskClient, payload: bytes | dict[str, Any], reason: str
) -> None:
    assert_acked(push(record_metrics_client, world, world.settings.topic_metrics, payload, "p-bad"))

    assert world.metrics.docs == {}
    kept = world.metrics.quarantined["record_metrics-p-bad"]
    assert reason in kept["reason"]
    assert kept["raw"] == encoded(payload) and kept["message_id"] == "p-bad"
    assert kept["topic"] == world.settings.topic_metrics  # read from the push path, as the CloudEvent source


@pytest.mark.parametrize("outage", OUTAGES)
def test_record_metrics_answers_500_while_the_store_fails(
    world: World, record_metrics_client: FlaskClient, outage: Exception
) -> None:
    world.metrics.outage = outage

    assert_redelivered(push(record_metrics_client, world, world.settings.topic_metrics, PERF, "p-1"))
    assert world.metrics.docs == {} and world.metrics.quarantined == {}


# -- ingest_import -----------------------------------------------------------------------------------------

IMPORT_NAME = "imports/x.jsonl"
SECOND = {**EVENT, "audio_path": "gs://stt-audio/calls/002.wav", "speaker_id": "spk-2"}


def import_file() -> bytes:
    lines = [json.dumps(EVENT).encode(), b'{"audio_path": "gs://stt-audio/3.wav"}', b"", json.dumps(SECOND).encode()]
    return b"\n".join(lines) + b"\n"


def test_ingest_import_stores_the_good_lines_and_keeps_the_bad_ones(
    world: World, ingest_import_client: FlaskClient
) -> None:
    attributes = world.upload(IMPORT_NAME, import_file())
    topic = world.settings.topic_bucket_events

    assert_acked(push(ingest_import_client, world, topic, b"{}", "n-1", attributes))

    import_id = object_version_id(IMPORT_NAME, attributes["objectGeneration"])
    assert sorted(world.cases.cases) == sorted([case_id_of(EVENT), case_id_of(SECOND)])
    assert {case["import_line"] for case in world.cases.cases.values()} == {1, 4}
    assert {case["import_id"] for case in world.cases.cases.values()} == {import_id}
    assert world.cases.counters.total_cases == 2
    [rejected] = world.bucket.get("import_results/x.rejected.jsonl").splitlines()  # type: ignore[union-attr]
    assert orjson.loads(rejected) == {"line": 2, "reason": "missing required field 'original_transcript'",
                                      "raw": '{"audio_path": "gs://stt-audio/3.wav"}'}
    summary = orjson.loads(world.bucket.get("import_results/x.json") or b"null")
    assert (summary["lines"], summary["accepted"], summary["rejected"], summary["duplicates"]) == (4, 2, 1, 0)
    assert summary["rejected_lines_uri"] == world.bucket.uri("import_results/x.rejected.jsonl")
    assert world.cases.imports[import_id]["accepted"] == 2

    writes = len(world.bucket.writes)
    assert_acked(push(ingest_import_client, world, topic, b"{}", "n-1", attributes))  # a redelivery
    assert len(world.bucket.writes) == writes and world.cases.counters.total_cases == 2


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"objectId": "exports/x.jsonl"}, id="another-prefix"),
        pytest.param({"objectId": "imports/x.json"}, id="not-jsonl"),
        pytest.param({"bucketId": "another-bucket"}, id="another-bucket"),
        pytest.param({"eventType": "OBJECT_DELETE"}, id="a-delete"),
    ],
)
def test_ingest_import_ignores_other_notifications(
    world: World, ingest_import_client: FlaskClient, changes: dict[str, str]
) -> None:
    attributes = world.upload(IMPORT_NAME, import_file())
    world.bucket.put("exports/x.jsonl", import_file())
    world.bucket.put("imports/x.json", import_file())
    writes = len(world.bucket.writes)

    assert_acked(push(ingest_import_client, world, world.settings.topic_bucket_events, b"{}", "n-1",
                      {**attributes, **changes}))

    assert len(world.bucket.writes) == writes
    assert world.cases.cases == {} and world.cases.imports == {} and world.cases.rejects == {}


def test_ingest_import_of_an_overwritten_version_is_acked_and_imports_nothing(
    world: World, ingest_import_client: FlaskClient
) -> None:
    attributes = world.upload(IMPORT_NAME, import_file())
    world.bucket.put(IMPORT_NAME, import_file())  # overwritten before the first notification is served

    assert_acked(push(ingest_import_client, world, world.settings.topic_bucket_events, b"{}", "n-1", attributes))

    assert world.cases.cases == {} and world.cases.imports == {}
    assert world.bucket.names(layout.IMPORT_RESULTS) == []


@pytest.mark.parametrize("outage", OUTAGES)
def test_ingest_import_answers_500_while_the_store_fails_and_records_no_result(
    world: World, ingest_import_client: FlaskClient, outage: Exception
) -> None:
    attributes = world.upload(IMPORT_NAME, import_file())
    world.cases.outage = outage

    assert_redelivered(push(ingest_import_client, world, world.settings.topic_bucket_events, b"{}", "n-1",
                            attributes))
    assert world.cases.imports == {}  # so the redelivery imports the file again
    assert world.bucket.names(layout.IMPORT_RESULTS) == []


# -- build_dataset -----------------------------------------------------------------------------------------

REQUEST_NAME = "dataset-requests/w.json"


def store_build_cases(world: World, corrected: int = 12, uncorrected: int = 3) -> None:
    """Cases as the ingestion stores them: `corrected` eligible ones, and uncorrected ones a build skips."""
    for i in range(corrected + uncorrected):
        event = {**EVENT, "audio_path": f"gs://stt-audio/{i:03d}.wav", "speaker_id": f"spk-{i:03d}",
                 "error_score": 0.8}
        if i < corrected:
            event["corrected_transcript"] = f"the cat sat on mat {i}"
        assert record_failure(encoded(event), f"m-{i}", world.cases).status == "stored"


def test_build_dataset_builds_the_requested_dataset(world: World, build_dataset_client: FlaskClient) -> None:
    store_build_cases(world)
    attributes = world.upload(REQUEST_NAME, encoded({"version_name": "weekly", "min_error_score": 0.5}))
    generation = attributes["objectGeneration"]

    assert_acked(push(build_dataset_client, world, world.settings.topic_bucket_events, b"{}", "n-1", attributes))

    dataset_id = f"w-{generation}"
    metadata = orjson.loads(world.bucket.get(f"finetuning_datasets/{dataset_id}/metadata.json") or b"null")
    assert metadata["dataset_id"] == dataset_id
    assert metadata["total_samples"] == 12  # the corrected cases only
    assert sum(metadata["split_sizes"].values()) == 12
    result = orjson.loads(world.bucket.get("dataset_results/w.json") or b"null")
    assert result["status"] == "built" and result["dataset_id"] == dataset_id
    assert result["version_id"] in read_registry(world.bucket)["versions"]
    record = world.builds.get(object_version_id(REQUEST_NAME, generation))
    assert record is not None and record["status"] == "finished"
    assert world.cases.rejects == {}


@pytest.mark.parametrize(
    ("request_body", "reason"),
    [
        pytest.param(encoded({"max_sample": 3}), "max_sample", id="unknown-field"),
        pytest.param(b"{not json", "JSON", id="invalid-json"),
        pytest.param(encoded({"train_ratio": "0.8"}), "train_ratio", id="wrong-type"),
    ],
)
def test_build_dataset_acks_a_bad_request_and_keeps_it(
    world: World, build_dataset_client: FlaskClient, request_body: bytes, reason: str
) -> None:
    store_build_cases(world)
    attributes = world.upload(REQUEST_NAME, request_body)
    build_id = object_version_id(REQUEST_NAME, attributes["objectGeneration"])

    assert_acked(push(build_dataset_client, world, world.settings.topic_bucket_events, b"{}", "n-1", attributes))

    kept = world.cases.rejects[f"build_dataset-{build_id}"]
    assert reason in kept["reason"]
    assert (kept["raw"], kept["source"]) == (request_body, "build_dataset")
    assert world.bucket.names(layout.DATASETS) == []
    result = orjson.loads(world.bucket.get("dataset_results/w.json") or b"null")
    assert result["status"] == "rejected" and reason in result["reason"]
    record = world.builds.get(build_id)
    assert record is not None and record["status"] == "rejected"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"objectId": "imports/w.json"}, id="another-prefix"),
        pytest.param({"objectId": "dataset-requests/w.txt"}, id="not-json"),
        pytest.param({"bucketId": "another-bucket"}, id="another-bucket"),
    ],
)
def test_build_dataset_ignores_other_objects(
    world: World, build_dataset_client: FlaskClient, changes: dict[str, str]
) -> None:
    store_build_cases(world)
    attributes = world.upload(REQUEST_NAME, encoded({}))
    writes = len(world.bucket.writes)

    assert_acked(push(build_dataset_client, world, world.settings.topic_bucket_events, b"{}", "n-1",
                      {**attributes, **changes}))

    assert len(world.bucket.writes) == writes
    assert world.builds.records == {} and world.cases.rejects == {}


@pytest.mark.parametrize("outage", OUTAGES)
def test_build_dataset_answers_500_while_the_case_store_fails(
    world: World, build_dataset_client: FlaskClient, outage: Exception
) -> None:
    store_build_cases(world)
    attributes = world.upload(REQUEST_NAME, encoded({}))
    world.cases.outage = outage

    assert_redelivered(push(build_dataset_client, world, world.settings.topic_bucket_events, b"{}", "n-1",
                            attributes))
    assert world.bucket.names(layout.DATASETS) == [] and world.bucket.get("dataset_results/w.json") is None
    assert world.cases.rejects == {}


# -- aggregate (HTTP) --------------------------------------------------------------------------------------


def test_aggregate_refuses_get(world: World, aggregate_client: FlaskClient) -> None:
    response = aggregate_client.get("/")
    assert response.status_code == 405 and "use POST" in response.get_json()["error"]
    assert world.bucket.writes == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"windw": 3}, "unknown fields ['windw']"),
        ({"window": "5"}, "window must be an integer"),
        ([1], "the body must be a JSON object"),
    ],
)
def test_aggregate_answers_400_with_the_reason_for_bad_options(
    world: World, aggregate_client: FlaskClient, body: Any, reason: str
) -> None:
    response = aggregate_client.post("/", json=body)
    assert response.status_code == 400
    assert reason in response.get_json()["error"]
    assert world.bucket.writes == []


def test_aggregate_answers_400_for_a_body_that_is_not_json(world: World, aggregate_client: FlaskClient) -> None:
    response = aggregate_client.post("/", data=b'{"window": 5', content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.get_json()["error"]
    # The content type does not decide whether the options are read: a bad option is refused either way.
    typed_as_text = aggregate_client.post("/", data=b'{"window": "x"}', content_type="text/plain")
    assert (typed_as_text.status_code, typed_as_text.get_json()["error"]) == (400, "window must be an integer")
    assert world.bucket.writes == []


def test_aggregate_writes_the_exports(world: World, aggregate_client: FlaskClient) -> None:
    stored_case(world)
    world.metrics.create("performance", "r1", {**PERF, "record_id": "r1", "recorded_at": world.metrics.clock})

    response = aggregate_client.post("/", json={})

    assert response.status_code == 200, response.get_data(as_text=True)
    summary = response.get_json()
    assert summary["learning_data"] == {"cases": 1, "corrections": 0, "mode": "rewrite", "lines": 1}
    assert summary["objects"][layout.PERFORMANCE_HISTORY]["records"] == 1
    [line] = (world.bucket.get(layout.PERFORMANCE_HISTORY) or b"").splitlines()
    assert orjson.loads(line)["wer"] == 0.2
    [case_line] = (world.bucket.get(layout.FAILED_CASES) or b"").splitlines()
    assert orjson.loads(case_line)["case_id"] == case_id_of(EVENT)
    assert world.bucket.get(layout.PERFORMANCE_REPORT) is not None
    assert world.metrics.snapshot is not None  # the trend snapshot is refreshed too


# -- api (HTTP) --------------------------------------------------------------------------------------------


def test_api_get_statistics_answers_the_figures(world: World, api_client: FlaskClient) -> None:
    stored_case(world)
    corrected = {**SECOND, "corrected_transcript": "the cat sat on the mat"}
    assert record_failure(encoded(corrected), "m-2", world.cases).status == "stored"
    record_failure(b"{not json", "m-3", world.cases)

    response = api_client.post("/", json={"op": "get_statistics"})

    assert response.status_code == 200
    body = response.get_json()
    assert body["op"] == "get_statistics"
    assert body["result"] == {
        "total_failed_cases": 2, "total_cases": 2, "corrected_cases": 1, "correction_rate": 0.5,
        "error_type_distribution": {"substitution": 2}, "average_error_score": pytest.approx(0.7),
        "cases_by_model_version": {"m1": 2}, "quarantined_events": 1,
    }


def test_api_get_failed_case_answers_the_case_or_404(world: World, api_client: FlaskClient) -> None:
    case_id = stored_case(world)

    found = api_client.post("/", json={"op": "get_failed_case", "case_id": case_id})
    assert found.status_code == 200
    case = found.get_json()["result"]
    assert (case["case_id"], case["audio_path"]) == (case_id, EVENT["audio_path"])
    assert case["occurred_at"] == "2026-11-30T09:00:00+00:00"

    missing = api_client.post("/", json={"op": "get_failed_case", "case_id": "no-such-case"})
    assert missing.status_code == 404 and "no-such-case" in missing.get_json()["error"]


def test_api_store_correction_of_an_unknown_case_is_404(world: World, api_client: FlaskClient) -> None:
    response = api_client.post(
        "/", json={"op": "store_correction", "case_id": "no-such-case", "corrected_transcript": "hi"}
    )
    assert response.status_code == 404
    assert response.get_json() == {"error": "no case with case_id 'no-such-case'"}


@pytest.mark.parametrize(
    ("request_kwargs", "reason"),
    [
        ({"json": {"op": "drop_everything"}}, "unknown op 'drop_everything'"),
        ({"json": {"op": "get_failed_case", "case": "x"}}, "get_failed_case"),
        ({"data": b"{not json", "content_type": "application/json"}, "the body is not valid JSON"),
        ({"data": b"[" * 100_000 + b"]" * 100_000, "content_type": "application/json"}, "nested too deeply"),
        ({"data": b'{"op": "get_statistics", "pad": "' + b"x" * 1_000_001 + b'"}'}, "over the limit"),
        ({"json": {"op": "get_failed_case", "case_id": 123}}, "case_id must be str, got number 123"),
        ({"json": {"op": "get_corrected_cases", "limit": 0}}, "limit must be an integer from 1 to 1000"),
        ({"json": {"op": "get_corrected_cases", "limit": "5"}}, "limit must be int"),
        ({"json": ["get_statistics"]}, "the body must be a JSON object"),
    ],
)
def test_api_answers_400_for_a_bad_call(
    world: World, api_client: FlaskClient, request_kwargs: dict[str, Any], reason: str
) -> None:
    response = api_client.post("/", **request_kwargs)
    assert response.status_code == 400
    assert reason in response.get_json()["error"]


def test_api_refuses_get(world: World, api_client: FlaskClient) -> None:
    response = api_client.get("/")
    assert response.status_code == 405 and "use POST" in response.get_json()["error"]


def test_ingest_import_acknowledges_a_corrupt_parquet_file_with_its_reason(
    world: World, ingest_import_client: FlaskClient
) -> None:
    attributes = world.upload("imports/broken.parquet", b"not parquet at all")
    response = push(ingest_import_client, world, world.settings.topic_bucket_events, b"{}", "n-p", attributes)
    assert response.status_code in (200, 204)
    result = orjson.loads(world.bucket.get("import_results/broken.json") or b"{}")
    assert result["status"] == "rejected" and "Parquet" in result["reason"]
