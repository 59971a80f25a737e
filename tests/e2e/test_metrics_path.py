"""training-metrics on the emulators: publish -> push -> record_metrics -> Firestore, bad input quarantined and
acknowledged; and the aggregate HTTP function writing the exports to fake-gcs-server."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core.exceptions import DeadlineExceeded
from google.cloud import firestore, pubsub_v1, storage

from shared.config import Settings
from stack import components
from stack.local_stack import StackInfo, function_env
from stack.processes import free_port, launch, stop_group, wait_until_answers
from stack.wiring import WiredFunction, start_wired_function
from tests.e2e.test_push_path import _wait_for

pytestmark = pytest.mark.emulators

NOW = datetime.now(UTC)
PERF = {
    "kind": "performance",
    "model_version": "v1",
    "wer": 0.21,
    "cer": 0.09,
    "error_rate": 0.1,
    "correction_rate": 0.4,
    "inference_time": 0.35,
}


@pytest.fixture
def metrics_fn(
    stack: StackInfo, test_settings: Settings, namespace: str, log_dir: Path, repo_root: Path
) -> Iterator[WiredFunction]:
    fn = start_wired_function(
        stack,
        repo_root / "functions/record_metrics/main.py",
        "record_metrics",
        test_settings,
        topic=f"{namespace}-metrics",
        log_dir=log_dir,
    )
    yield fn
    fn.stop()


def collection(settings: Settings, name: str) -> firestore.CollectionReference:
    return firestore.Client(project=settings.project).collection(settings.collection(name))


def publish(fn: WiredFunction, record: Any) -> str:
    body = record if isinstance(record, bytes) else json.dumps(record).encode()
    return str(pubsub_v1.PublisherClient().publish(fn.topic_path(), body).result(timeout=10))


def dead_letters(fn: WiredFunction) -> list[Any]:
    try:
        response = pubsub_v1.SubscriberClient().pull(
            request={"subscription": fn.sink_path(), "max_messages": 10}, timeout=3
        )
    except DeadlineExceeded:
        return []
    return list(response.received_messages)


def test_each_kind_is_stored_from_the_topic(metrics_fn: WiredFunction, test_settings: Settings) -> None:
    at = (NOW - timedelta(hours=1)).isoformat()
    publish(metrics_fn, {**PERF, "recorded_at": at})
    publish(
        metrics_fn,
        {
            "kind": "model_version",
            "version_id": "v1",
            "model_name": "whisper-base",
            "training_data_size": 900,
            "dataset_version_id": "ds-7",
            "recorded_at": at,
        },
    )
    publish(metrics_fn, {"kind": "learning_progress", "stage": "finetune", "model_version": "v1", "loss": 0.4})
    publish(metrics_fn, {"kind": "inference_stats", "model_version": "v1", "requests": 42, "p50_ms": 120})
    for name in ("performance_history", "model_versions", "learning_progress", "inference_stats"):
        [doc] = _wait_for(lambda n=name: [d.to_dict() for d in collection(test_settings, n).stream()])
        assert doc["model_version"] == "v1" and doc["message_id"]
    [version] = [d.to_dict() for d in collection(test_settings, "model_versions").stream()]
    assert version["dataset_version_id"] == "ds-7"
    [progress] = [d.to_dict() for d in collection(test_settings, "learning_progress").stream()]
    assert progress["recorded_at_source"] == "received"  # undated: the publish time stands in


def test_a_redelivered_record_is_counted_once(metrics_fn: WiredFunction, test_settings: Settings) -> None:
    record = {**PERF, "recorded_at": (NOW - timedelta(minutes=5)).isoformat()}
    first = publish(metrics_fn, record)
    docs = collection(test_settings, "performance_history")
    _wait_for(lambda: list(docs.stream()))
    publish(metrics_fn, record)  # the producer sends it again
    # A redelivery of the very same message, as Pub/Sub push would post it.
    push = {
        "message": {
            "data": base64.b64encode(json.dumps(record).encode()).decode(),
            "messageId": first,
            "publishTime": NOW.isoformat(),
        },
        "subscription": "projects/p/subscriptions/s",
    }
    assert requests.post(metrics_fn.url, json=push, timeout=10).status_code == 200
    time.sleep(1.5)
    [doc] = [d.to_dict() for d in docs.stream()]
    assert doc["message_id"] == first


BAD = {
    "unknown kind": ({"kind": "gpu_temperature", "model_version": "v1"}, "unknown kind"),
    "NaN WER": (
        b'{"kind": "performance", "model_version": "v1", "wer": NaN, "cer": 0.1, "error_rate": 0.1, '
        b'"correction_rate": 0.4, "inference_time": 0.3}',
        "NaN",
    ),
    "infinite WER": (
        b'{"kind": "performance", "model_version": "v1", "wer": Infinity, "cer": 0.1, '
        b'"error_rate": 0.1, "correction_rate": 0.4, "inference_time": 0.3}',
        "infinite",
    ),
    "negative WER": ({**PERF, "wer": -0.1}, "wer"),
    "WER above the cap": ({**PERF, "wer": 25}, "cap"),
    "missing model version": ({k: v for k, v in PERF.items() if k != "model_version"}, "model_version"),
    "future timestamp": ({**PERF, "recorded_at": (NOW + timedelta(days=1)).isoformat()}, "after now"),
    "not JSON": (b"wer=0.2", "not valid JSON"),
}


def test_each_bad_input_is_quarantined_with_its_reason_and_acknowledged(
    metrics_fn: WiredFunction, test_settings: Settings
) -> None:
    sent = {publish(metrics_fn, body): (case, words) for case, (body, words) in BAD.items()}
    quarantine = collection(test_settings, "quarantine")

    def all_kept() -> dict[str, Any] | None:
        kept = {d.get("message_id"): d.to_dict() for d in quarantine.stream()}
        return kept if len(kept) == len(sent) else None

    kept = _wait_for(all_kept)
    for message_id, (case, words) in sent.items():
        doc = kept[message_id]
        assert doc["source"] == "record_metrics", case
        assert words in doc["reason"], (case, doc["reason"])
        assert doc["raw"] and doc["raw_truncated"] is False, case
    ok = publish(metrics_fn, PERF)  # a good record after the bad ones still goes through
    _wait_for(lambda: list(collection(test_settings, "performance_history").stream()))
    assert ok not in kept
    # Acknowledged: nothing retried to the dead-letter topic (it would arrive within ~2 s of backoff).
    time.sleep(2)
    assert dead_letters(metrics_fn) == []
    assert len(list(quarantine.stream())) == len(sent)


@pytest.fixture
def aggregate_url(
    stack: StackInfo, test_settings: Settings, namespace: str, log_dir: Path, repo_root: Path
) -> Iterator[tuple[str, Settings]]:
    """The aggregate function served over HTTP with this test's collections and bucket."""
    settings = replace(test_settings, bucket=f"{namespace}-agg")
    storage.Client(project=settings.project).create_bucket(settings.bucket)
    port = free_port()
    part = components.function_part(
        f"{namespace}-aggregate",
        repo_root / "functions/aggregate/main.py",
        "http",
        port,
        function_env(stack.env, settings),
        target="aggregate",
    )
    process = launch(part.name, part.argv, part.env, log_dir)
    try:
        wait_until_answers(process, part.ready_url, part.timeout_s, part.fix)
        yield f"http://127.0.0.1:{port}", settings
    finally:
        stop_group(process.pid)


def test_aggregate_writes_the_exports_and_answers_a_summary(
    aggregate_url: tuple[str, Settings], stack: StackInfo, repo_root: Path, log_dir: Path
) -> None:
    url, settings = aggregate_url
    fn = start_wired_function(
        stack,
        repo_root / "functions/record_metrics/main.py",
        "record_metrics",
        settings,
        topic=f"{settings.bucket}-topic",
        log_dir=log_dir,
    )
    try:
        for hours, wer in [(6, 0.20), (5, 0.21), (4, 0.19), (3, 0.20), (2, 0.30)]:
            publish(fn, {**PERF, "wer": wer, "recorded_at": (NOW - timedelta(hours=hours)).isoformat()})
        publish(fn, {"kind": "model_version", "version_id": "v1", "model_name": "m", "dataset_version_id": "ds-1"})
        _wait_for(lambda: len(list(collection(settings, "performance_history").stream())) == 5)
        _wait_for(lambda: list(collection(settings, "model_versions").stream()))
    finally:
        fn.stop()
    assert requests.get(url, timeout=10).status_code == 405
    bad = requests.post(url, json={"windw": 3}, timeout=10)
    assert bad.status_code == 400 and "windw" in bad.json()["error"]
    bad = requests.post(url, json={"plot_metric": "bleu"}, timeout=10)
    assert bad.status_code == 400 and "unknown metric" in bad.json()["error"]

    answer = requests.post(url, json={}, timeout=60)
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert summary["regressions"] == 1
    assert summary["objects"]["metadata/performance_history.jsonl"]["records"] == 5
    bucket = storage.Client(project=settings.project).bucket(settings.bucket)
    names = {blob.name for blob in bucket.list_blobs(prefix="metadata/")}
    assert names == {
        "metadata/performance_history.jsonl",
        "metadata/model_versions.json",
        "metadata/learning_progress.jsonl",
        "metadata/inference_stats.jsonl",
        "metadata/performance_report.json",
        "metadata/wer_trend.png",
    }
    rows = bucket.blob("metadata/performance_history.jsonl").download_as_bytes().splitlines()
    assert [json.loads(row)["wer"] for row in rows] == [0.20, 0.21, 0.19, 0.20, 0.30]
    report = json.loads(bucket.blob("metadata/performance_report.json").download_as_bytes())
    assert report["regressions"][0]["value"] == 0.30
    assert report["lineage"]["v1"]["dataset_version_id"] == "ds-1"
    assert bucket.blob("metadata/learning_progress.jsonl").download_as_bytes() == b""
    learning = {blob.name for blob in bucket.list_blobs(prefix="learning_data/")}
    # The case snapshot is brought up to date too: with no case stored, that is its watermark and no part.
    assert learning == {"learning_data/failed_cases.jsonl", "learning_data/corrections.jsonl",
                        "learning_data/metadata.json", "learning_data/cases_watermark.json"}
    # This test stored no case: the first export writes empty files.
    assert summary["learning_data"] == {"cases": 0, "corrections": 0, "mode": "rewrite", "lines": 0}
    assert summary["snapshot"]["first"] and summary["snapshot"]["parts"] == []
