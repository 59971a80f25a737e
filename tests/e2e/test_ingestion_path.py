"""Failure ingestion end to end: real STT failures, corrections, quarantine, a transient outage, bulk imports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jiwer
import orjson
import pytest
from google.cloud import pubsub_v1, storage

from shared import DataManager
from shared.config import Settings
from shared.publisher import FailurePublisher
from stack.local_stack import StackInfo
from stack.wiring import WiredFunction, start_wired_function
from tests.e2e.flaky_proxy import FlakyProxy
from tests.e2e.waiting import wait_for
from tests.fixtures.stt import clip_path, load_failures

pytestmark = pytest.mark.emulators


@pytest.fixture
def wired(
    stack: StackInfo, test_settings: Settings, namespace: str, log_dir: Path, repo_root: Path
) -> Iterator[dict[str, WiredFunction]]:
    """record_failure and record_correction on topics and a collection prefix of this test's own."""
    functions = {
        name: start_wired_function(
            stack, repo_root / f"functions/{name}/main.py", name, test_settings, f"{namespace}-{name}", log_dir
        )
        for name in ("record_failure", "record_correction")
    }
    yield functions
    for fn in functions.values():
        fn.stop()


def _publish(fn: WiredFunction, payloads: list[bytes]) -> list[str]:
    publisher = pubsub_v1.PublisherClient()
    return [f.result(timeout=10) for f in [publisher.publish(fn.topic_path(), p) for p in payloads]]


def test_real_stt_failures_each_delivered_three_times(
    stack: StackInfo, test_settings: Settings, wired: dict[str, WiredFunction], namespace: str
) -> None:
    bucket = storage.Client(project=stack.project).bucket(stack.settings.bucket)
    failures = load_failures()
    events = []
    for row in failures:
        blob = bucket.blob(f"audio/{namespace}/{row['clip']}")
        blob.upload_from_filename(str(clip_path(row["clip"])), content_type="audio/wav")
        events.append(
            {
                "audio_path": f"gs://{stack.settings.bucket}/{blob.name}",
                "original_transcript": row["hypothesis"],
                "corrected_transcript": row["reference"],
                "model_version": row["model_version"],
                "speaker_id": row["speaker_id"],
                "duration_s": row["duration_s"],
                "language": "en",
                "error_score": 0.5,
            }
        )
    payloads = [orjson.dumps(e) for e in events]
    _publish(wired["record_failure"], payloads * 3)  # every event delivered three times

    manager = DataManager(test_settings)
    stats = wait_for(lambda: (s := manager.get_statistics())["total_cases"] == len(events) and s)
    time.sleep(1.0)  # let the repeats land; they must change nothing
    assert manager.get_statistics() == stats
    assert stats["corrected_cases"] == len(events)
    assert stats["cases_by_model_version"] == {failures[0]["model_version"]: len(events)}
    frame = manager.export_to_dataframe().set_index("audio_path")
    for event in events:
        row = frame.loc[event["audio_path"]]
        assert row["wer"] == pytest.approx(jiwer.wer(event["corrected_transcript"], event["original_transcript"]))
        assert row["cer"] == pytest.approx(jiwer.cer(event["corrected_transcript"], event["original_transcript"]))
        assert row["error_types"], f"no error type derived for {event['original_transcript']!r}"
    derived = set(stats["error_type_distribution"])
    assert {"substitution", "punctuation", "casing"} <= derived


def test_corrections_keep_history_and_repeat_deliveries_change_nothing(
    test_settings: Settings, wired: dict[str, WiredFunction]
) -> None:
    manager = DataManager(test_settings)
    case_id = manager.store_failed_case("gs://stt-audio/c.wav", "meet me at three thirty", error_score=0.3)
    body = orjson.dumps({"case_id": case_id, "corrected_transcript": "Meet me at 3:30.", "corrected_by": "ana"})
    _publish(wired["record_correction"], [body])
    case = wait_for(lambda: (c := manager.get_failed_case(case_id)) and c["corrections"] and c)
    assert case["corrected_transcript"] == "Meet me at 3:30."
    assert case["corrections"][0]["corrected_by"] == "ana"
    assert case["wer"] == pytest.approx(jiwer.wer("Meet me at 3:30.", "meet me at three thirty"))
    assert manager.get_statistics()["corrected_cases"] == 1


BAD_INPUTS = {
    "not JSON": (b"{'audio_path': nope", "not valid JSON"),
    "not UTF-8": (b'{"audio_path": "gs://stt-audio/\xff.wav"}', "not UTF-8"),
    "missing field": (b'{"audio_path": "gs://stt-audio/a.wav"}', "missing required field 'original_transcript'"),
    "wrong type": (b'{"audio_path": "gs://stt-audio/a.wav", "original_transcript": 42}', "original_transcript"),
    "score out of range": (
        b'{"audio_path": "gs://stt-audio/a.wav", "original_transcript": "x", "error_score": 1.5}',
        "error_score",
    ),
    "oversize": (
        b'{"audio_path": "gs://stt-audio/a.wav", "original_transcript": "' + b"x" * 1_100_000 + b'"}',
        "over the limit",
    ),
    "not gs://": (b'{"audio_path": "/etc/passwd", "original_transcript": "x"}', "without a scheme must be relative"),
    "dot-dot": (b'{"audio_path": "gs://stt-audio/../x.wav", "original_transcript": "x"}', "'..'"),
    "schema version": (
        b'{"schema_version": 9, "audio_path": "gs://stt-audio/a.wav", "original_transcript": "x"}',
        "schema",
    ),
}


def test_bad_input_is_quarantined_with_its_reason_and_acknowledged(
    test_settings: Settings, wired: dict[str, WiredFunction]
) -> None:
    message_ids = _publish(wired["record_failure"], [raw for raw, _ in BAD_INPUTS.values()])
    manager = DataManager(test_settings)
    wait_for(lambda: manager.get_statistics()["quarantined_events"] == len(BAD_INPUTS))
    kept = {q["message_id"]: q for q in manager.store.quarantined()}
    for message_id, (name, (raw, reason)) in zip(message_ids, BAD_INPUTS.items(), strict=True):
        assert reason in kept[message_id]["reason"], f"{name}: {kept[message_id]['reason']}"
        assert kept[message_id]["size_bytes"] == len(raw)
        if len(raw) < 200_000:
            assert kept[message_id]["raw"] == raw
    time.sleep(1.5)  # acknowledged: nothing is redelivered, nothing is dead-lettered
    assert manager.get_statistics()["quarantined_events"] == len(BAD_INPUTS)
    assert manager.get_statistics()["total_cases"] == 0
    sink = pubsub_v1.SubscriberClient().pull(
        request={"subscription": wired["record_failure"].sink_path(), "max_messages": 10}, timeout=5
    )
    assert list(sink.received_messages) == []


def test_transient_firestore_outage_is_retried_and_stored_once(
    stack: StackInfo, test_settings: Settings, namespace: str, log_dir: Path, repo_root: Path
) -> None:
    with FlakyProxy(stack.env["FIRESTORE_EMULATOR_HOST"], drop=3) as proxy:
        fn = start_wired_function(
            stack,
            repo_root / "functions/record_failure/main.py",
            "record_failure",
            test_settings,
            f"{namespace}-flaky",
            log_dir,
            extra_env={"FIRESTORE_EMULATOR_HOST": proxy.address},
        )
        try:
            _publish(
                fn,
                [
                    orjson.dumps(
                        {"audio_path": "gs://stt-audio/t.wav", "original_transcript": "x", "case_id": "flaky-1"}
                    )
                ],
            )
            manager = DataManager(test_settings)
            wait_for(lambda: manager.get_failed_case("flaky-1"), timeout_s=60)
            time.sleep(1.0)
            assert proxy.dropped == 3  # the outage really happened
            assert manager.get_statistics()["total_cases"] == 1
        finally:
            fn.stop()


def test_bulk_import_records_per_file_results(stack: StackInfo, namespace: str) -> None:
    """Through the stack's own ingest_import (bucket notifications go to the stack's bucket-events topic)."""
    good = [
        {"audio_path": f"gs://stt-audio/{namespace}/{i}.wav", "original_transcript": f"case {i}"} for i in range(1200)
    ]
    lines = [orjson.dumps(e) for e in good]
    lines.insert(10, b"{oops")
    lines.insert(500, orjson.dumps({"audio_path": "gs://stt-audio/x.wav"}))
    lines.append(lines[0])  # the same event twice in one file
    bucket = storage.Client(project=stack.project).bucket(stack.settings.bucket)
    bucket.blob(f"imports/{namespace}.jsonl").upload_from_string(b"\n".join(lines) + b"\n")

    result_name = f"import_results/{namespace}.json"

    def read_result() -> bytes | None:
        blob = bucket.blob(result_name)  # a fresh handle: a used one pins the generation it last saw
        return blob.download_as_bytes() if blob.exists() else None

    result = orjson.loads(wait_for(read_result, timeout_s=90))
    assert (result["lines"], result["accepted"], result["duplicates"], result["rejected"]) == (1203, 1200, 1, 2)
    assert [r["line"] for r in result["rejects"]] == [11, 501]
    rejected = [
        orjson.loads(x)
        for x in bucket.blob(f"import_results/{namespace}.rejected.jsonl").download_as_bytes().splitlines()
    ]
    assert rejected[0]["raw"] == "{oops" and "not valid JSON" in rejected[0]["reason"]
    manager = DataManager(stack.settings)
    case = manager.get_failed_case(_case_id_of(good[7]))
    assert case is not None and case["original_transcript"] == "case 7"

    # Uploading the same file again is a new import whose every event is already a case.
    bucket.blob(result_name).delete()
    bucket.blob(f"imports/{namespace}.jsonl").upload_from_string(b"\n".join(lines) + b"\n")
    again = orjson.loads(wait_for(read_result, timeout_s=90))
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 1201, 2)


def _case_id_of(event: dict[str, str]) -> str:
    from shared.domain.failure_event import FailureEvent, derive_case_id

    return derive_case_id(FailureEvent.model_validate(event))


def test_publisher_helper_validates_then_batches(stack: StackInfo, namespace: str) -> None:
    publisher = FailurePublisher(stack.settings)
    ids = publisher.publish_failures(
        [{"audio_path": f"gs://stt-audio/{namespace}/p{i}.wav", "original_transcript": "x"} for i in range(3)]
    )
    assert len(set(ids)) == 3
    with pytest.raises(ValueError, match=r"event 1: .*error_score"):
        publisher.publish_failures(
            [
                {"audio_path": "gs://stt-audio/a.wav", "original_transcript": "x"},
                {"audio_path": "gs://stt-audio/a.wav", "original_transcript": "x", "error_score": 2},
            ]
        )
