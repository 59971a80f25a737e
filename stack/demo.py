"""`make demo`: the whole local stack with a real workload pushed through it, then a report.

The workload: failure events published to `transcription-failures` (one malformed, one published twice),
corrections to some of them on `transcription-corrections`, a bulk import uploaded to `imports/`, a training
run's metrics on `training-metrics`, the `aggregate` function called over HTTP, then a build request uploaded
to `dataset-requests/` (and one with a mistake in it) that build_dataset turns into a versioned dataset, and
one with `augment` over real speech (the espeak-ng clips of tests/fixtures/audio, uploaded to an audio bucket of
their own): the plain speech dataset and its augmented child, train rows only, versioned parent -> child.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import requests

from stack.local_stack import LocalStack, StackInfo, emulator_env

# Reference sentences and the ways an STT model typically gets them wrong.
SENTENCES = [
    "Please call Stella and ask her to bring these things with her from the store.",
    "The meeting is moved to 3:30 on Thursday.",
    "Turn left at the second light and park behind the bank.",
    "My account number ends in 456.",
    "Can you send the report to the whole team before noon?",
]
# The workload happened over the last day (a future timestamp is rejected as a clock error).
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


def _hypothesis(reference: str, flavour: int, rng: random.Random) -> str:
    words = reference.split()
    if flavour == 0:
        return reference.upper()
    if flavour == 1:
        return " ".join(words[: max(1, len(words) - 3)])
    if flavour == 2:
        return reference.lower().replace(",", "").rstrip(".?")
    swap = rng.randrange(len(words))
    return " ".join(w if n != swap else "um" for n, w in enumerate(words))


def failure_event(i: int, rng: random.Random, corrected: bool) -> dict[str, Any]:
    """One failure event as the transcription service would publish it."""
    reference = rng.choice(SENTENCES)
    event: dict[str, Any] = {
        "audio_path": f"gs://stt-audio/demo/utt-{i:05d}.wav",
        "original_transcript": _hypothesis(reference, i % 4, rng),
        "error_score": min(round(rng.uniform(0.2, 1.0), 2), 0.99),  # 1.0 is the speech cases' (SPEECH_SCORE)
        "model_version": rng.choice(["whisper_base_v1", "whisper_base_v2"]),
        "inference_time": round(rng.uniform(0.1, 1.5), 3),
        "model_confidence": round(rng.uniform(0.3, 0.95), 2),
        "speaker_id": f"spk-{rng.randrange(12):02d}",
        "duration_s": round(rng.uniform(1.0, 8.0), 2),
        "language": "en",
        "occurred_at": (START + timedelta(seconds=i)).isoformat(),
    }
    if corrected:
        event["corrected_transcript"] = reference
    return event


AUDIO_BUCKET = "stt-audio"
# The committed espeak-ng clips and what they say (tests/fixtures/audio/README.md).
SPEECH = {"turn_volume_down.flac": "Turn the volume down.", "call_me_at_nine.flac": "Call me at nine.",
          "open_the_window.wav": "Open the window."}
SPEECH_SCORE = 1.0  # the speech build selects these cases by score: the workload's scores stay below 1.0
AUGMENT = [{"type": "speed", "factor": 0.9}, {"type": "noise", "snr_db": 20}]


def upload_speech(client: Any) -> list[dict[str, Any]]:
    """The fixture clips uploaded to the audio bucket, one recording per clip and speaker, and its failure event
    (a quarter without duration_s, so the build reads it from the clip's header)."""
    import soundfile

    from tests.fixtures.audio import clip_path

    bucket = client.bucket(AUDIO_BUCKET)
    if not bucket.exists():
        bucket = client.create_bucket(AUDIO_BUCKET)
    events = []
    for name, text in SPEECH.items():
        for speaker in range(4):
            bucket.blob(f"speech/spk-{speaker}/{name}").upload_from_filename(str(clip_path(name)))
            event: dict[str, Any] = {
                "audio_path": f"gs://{AUDIO_BUCKET}/speech/spk-{speaker}/{name}",
                "case_id": f"speech-{name.split('.')[0]}-{speaker}",
                "original_transcript": text.upper(), "corrected_transcript": text, "error_score": SPEECH_SCORE,
                "model_version": "whisper_base_v2", "speaker_id": f"speech-spk-{speaker}", "language": "en",
                "occurred_at": START.isoformat(),
            }
            if speaker != 0:
                event["duration_s"] = round(soundfile.info(str(clip_path(name))).duration, 3)
            events.append(event)
    return events


def _wait(what: str, check: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: {what} did not happen within {timeout_s:.0f}s")
        time.sleep(0.3)


def run_workload(info: StackInfo, events: int = 200, imported: int = 1000) -> dict[str, Any]:
    """Push the workload through the running stack; returns what the report prints."""
    from google.cloud import pubsub_v1, storage

    from shared import DataManager

    rng = random.Random(7)  # noqa: S311 - a reproducible workload, not a secret
    settings = info.settings
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(info.project, settings.topic_failures)
    batch = [failure_event(i, rng, corrected=i % 3 != 0) for i in range(events)]
    speech = upload_speech(storage.Client(project=info.project))
    print(f"uploaded {len(speech)} speech recordings to gs://{AUDIO_BUCKET}/speech/")
    payloads = [orjson.dumps(e) for e in batch + speech] + [orjson.dumps(batch[0]), b"this is not JSON"]
    for future in [publisher.publish(topic, p) for p in payloads]:
        future.result(timeout=30)
    print(f"published {len(payloads)} failure events to {settings.topic_failures} (one repeated, one malformed)")

    manager = DataManager(settings)
    _wait("storing the failure events", lambda: manager.get_statistics()["total_cases"] >= events + len(speech))
    uncorrected = [c["case_id"] for c in manager.export_to_dataframe().query("not corrected").to_dict("records")]
    corrections_topic = publisher.topic_path(info.project, settings.topic_corrections)
    for case_id in uncorrected[:20]:
        body = {"case_id": case_id, "corrected_transcript": rng.choice(SENTENCES), "corrected_by": "reviewer-ana"}
        publisher.publish(corrections_topic, orjson.dumps(body)).result(timeout=30)
    print(f"published {min(20, len(uncorrected))} corrections to {settings.topic_corrections}")

    bucket = storage.Client(project=info.project).bucket(settings.bucket)
    lines = [orjson.dumps(failure_event(events + i, rng, corrected=True)) for i in range(imported)]
    lines.insert(3, b'{"audio_path": "gs://stt-audio/demo/bad.wav", "error_score": 7}')
    bucket.blob("imports/demo-backlog.jsonl").upload_from_string(b"\n".join(lines) + b"\n")
    print(f"uploaded imports/demo-backlog.jsonl ({len(lines)} lines, one invalid)")

    metrics_topic = publisher.topic_path(info.project, settings.topic_metrics)
    records: list[dict[str, Any]] = [
        {"kind": "model_version", "version_id": "whisper_base_v2", "model_name": "whisper-base",
         "training_data_size": events, "training_metadata": {"epochs": 3}, "performance_metrics": {"wer": 0.21},
         "dataset_version_id": "v-demo-1"},
    ]
    for step in range(12):
        wer = 0.32 - 0.01 * step + (0.12 if step == 10 else 0.0)  # one regression for the report to flag
        records.append({"kind": "performance", "wer": round(wer, 3), "cer": round(wer / 2, 3),
                        "error_rate": round(wer, 3), "correction_rate": 0.4, "inference_time": 0.3,
                        "model_version": "whisper_base_v2" if step >= 6 else "whisper_base_v1",
                        "recorded_at": (START + timedelta(hours=step)).isoformat()})
    for future in [publisher.publish(metrics_topic, orjson.dumps(r)) for r in records]:
        future.result(timeout=30)
    print(f"published {len(records)} training metrics to {settings.topic_metrics}")

    def corrections_done() -> bool:
        return manager.get_statistics()["corrected_cases"] >= events - len(uncorrected) + min(20, len(uncorrected))

    _wait("applying the corrections", corrections_done)
    result_blob = "import_results/demo-backlog.json"
    _wait("the bulk import", lambda: bucket.blob(result_blob).exists())
    import_result = orjson.loads(bucket.blob(result_blob).download_as_bytes())

    from shared import MetadataTracker

    tracker = MetadataTracker(settings)
    _wait("storing the metrics", lambda: len(tracker.performance_points()) >= len(records) - 1)
    answer = requests.post(info.function_urls["aggregate"], json={}, timeout=60)
    answer.raise_for_status()
    build, rejected, augmented = _request_builds(bucket)
    return {"statistics": manager.get_statistics(), "import": import_result, "aggregate": answer.json(),
            "report": tracker.generate_performance_report(), "quarantine": manager.store.quarantined(5),
            "build": build, "rejected_build": rejected, "augmented_build": augmented}


def _request_builds(bucket: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Upload a build request, a mistaken one and an augmented one over the speech cases; wait for the
    results (dataset_results/<name>.json)."""
    requests_ = {
        "demo-weekly": {"min_error_score": 0.3, "balance_error_types": False, "version_name": "demo-weekly"},
        "demo-typo": {"min_error_score": 0.3, "train_ratio": 0.9},  # the ratios no longer sum to 1
        "demo-speech": {"min_error_score": SPEECH_SCORE, "balance_error_types": False, "version_name": "demo-speech",
                        "train_ratio": 0.5, "val_ratio": 0.25, "test_ratio": 0.25, "max_duration_s": 30,
                        "augment": AUGMENT},
    }
    for name, body in requests_.items():
        bucket.blob(f"dataset-requests/{name}.json").upload_from_string(orjson.dumps(body))
        print(f"uploaded dataset-requests/{name}.json {body}")
    results = []
    for name in requests_:
        blob = bucket.blob(f"dataset_results/{name}.json")
        _wait(f"the dataset build {name}", blob.exists, timeout_s=180)
        results.append(orjson.loads(blob.download_as_bytes()))
    return results[0], results[1], results[2]


def run_demo(stack: LocalStack, keep: bool = False) -> int:
    """Bring the stack up, run the workload, print the report and the dashboard's URL; bring the stack down
    unless `keep` (`make demo KEEP=1`: `make down` stops it later)."""
    started = time.monotonic()
    info = stack.up()
    print(f"stack up in {time.monotonic() - started:.1f}s; clients: source {stack.env_file}")
    try:
        with emulator_env(info.env):  # the workload's clients find this stack's emulators
            outcome = run_workload(info)
    except BaseException:
        stack.down()
        raise
    if not keep:
        stack.down()
        print("stack down")
    _print_report(info, outcome)
    dashboard = info.function_urls["api"]
    if keep:
        print(f"\nThe stack stays up. Dashboard: {dashboard} (open it in a browser); `sttdata status` reads it too; "
              "`make down` stops it.")
    else:
        on_disk = stack.config.state_dir / "gcs" / info.settings.bucket
        print(f"\nThe dashboard was {dashboard}: `make demo KEEP=1` keeps the stack up to open it.")
        print(f"The bucket's objects stay on disk under {on_disk} until the next `make up`.")
    return 0


def _print_report(info: StackInfo, outcome: dict[str, Any]) -> None:
    stats, imported, report = outcome["statistics"], outcome["import"], outcome["report"]
    print("\n== failure cases (Firestore: failed_cases, counters in stats_shards)")
    print(f"  total {stats['total_cases']}, corrected {stats['corrected_cases']} "
          f"(rate {stats['correction_rate']:.0%}), average error score {stats['average_error_score']:.2f}, "
          f"quarantined {stats['quarantined_events']}")
    print(f"  by model version: {stats['cases_by_model_version']}")
    print(f"  error types: {stats['error_type_distribution']}")
    for kept in outcome["quarantine"]:
        print(f"  quarantined ({kept['source']}): {kept['reason']}")
    print(f"\n== bulk import {imported['object']}")
    print(f"  lines {imported['lines']}: accepted {imported['accepted']}, duplicates {imported['duplicates']}, "
          f"rejected {imported['rejected']} {[(r['line'], r['reason']) for r in imported['rejects']]}")
    print("\n== exports (the aggregate function wrote these objects)")
    for name in sorted(outcome["aggregate"].get("objects", {})):
        print(f"  gs://{info.settings.bucket}/{name}")
    best = report.get("best_model") or {}
    print(f"  best model: {best.get('model_version')} (mean WER {best.get('mean_wer')})")
    for r in report.get("regressions", []):
        print(f"  regression: {r['metric']} {r['value']} at {r['recorded_at']} ({r['model_version']}) against a "
              f"window mean of {r['window_mean']:.3f}: {r['relative_change_percent']:+.0f}% (threshold "
              f"{r['threshold']:.0%})")
    build, rejected = outcome["build"], outcome["rejected_build"]
    print(f"\n== dataset build {build['object']}: {build['status']}")
    if build["status"] == "built":
        print(f"  dataset {build['gcs_path']} ({build['total_samples']} rows: {build['split_sizes']}), "
              f"quality {'passed' if build['quality_passed'] else 'FAILED'}")
        for split, uri in build["data_files"].items():
            print(f"  {split}: {uri}")
        print(f"  version {build['version_id']} (checksum {build['checksum'][:16]}...) in "
              f"gs://{info.settings.bucket}/data_versions/version_registry.json")
    print(f"  {rejected['object']}: {rejected['status']}: {rejected.get('reason')}")
    _print_augmented(outcome["augmented_build"])


def _print_augmented(build: dict[str, Any]) -> None:
    print(f"\n== augmented speech build {build['object']}: {build['status']}")
    if build["status"] != "built":
        print(f"  {build.get('reason') or build.get('error')}")
        return
    print(f"  plain dataset {build['gcs_path']} ({build['split_sizes']}), version {build.get('version_id')}")
    augmented = build.get("augmented") or {}
    print(f"  augmented dataset {augmented.get('gcs_path')} ({augmented.get('split_sizes')}): "
          f"{augmented.get('augmented_rows')} train rows added by {augmented.get('transforms')}, "
          f"{augmented.get('skipped_count')} clips skipped")
    print(f"  lineage: {augmented.get('parent_version')} -> {augmented.get('version_id')}")
