"""`make demo`: the whole local stack with a real workload pushed through it, then a report."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import orjson

from stack.local_stack import LocalStack

# Reference sentences and the ways an STT model typically gets them wrong.
SENTENCES = [
    "Please call Stella and ask her to bring these things with her from the store",
    "The meeting is moved to three thirty on Thursday",
    "Turn left at the second light and park behind the bank",
    "My account number ends in four five six",
    "Can you send the report to the whole team before noon",
]


def _failure_event(i: int, rng: random.Random) -> dict[str, object]:
    reference = rng.choice(SENTENCES)
    words = reference.split()
    flavour = i % 4
    if flavour == 0:
        hypothesis = reference.upper()
    elif flavour == 1:
        hypothesis = " ".join(words[: max(1, len(words) - 3)])
    elif flavour == 2:
        hypothesis = reference.lower().replace(",", "").rstrip(".")
    else:
        swap = rng.randrange(len(words))
        hypothesis = " ".join(w if n != swap else "um" for n, w in enumerate(words))
    return {
        "audio_path": f"gs://stt-audio/demo/utt-{i:05d}.wav",
        "original_transcript": hypothesis,
        "corrected_transcript": reference,
        "error_score": round(rng.uniform(0.2, 1.0), 2),
        "model_version": rng.choice(["whisper_base_v1", "whisper_base_v2"]),
        "inference_time": round(rng.uniform(0.1, 1.5), 3),
        "model_confidence": round(rng.uniform(0.3, 0.95), 2),
        "speaker_id": f"spk-{rng.randrange(12):02d}",
        "duration_s": round(rng.uniform(1.0, 8.0), 2),
        "language": "en",
        "occurred_at": (datetime(2026, 11, 27, 10, tzinfo=UTC) + timedelta(seconds=i)).isoformat(),
    }


def run_demo(stack: LocalStack, events: int = 200) -> int:
    """Bring the stack up, publish failure events through the real topic, report, bring it down."""
    from google.cloud import firestore, pubsub_v1

    started = time.monotonic()
    info = stack.up()
    print(f"stack up in {time.monotonic() - started:.1f}s ({stack.env_file})")
    try:
        rng = random.Random(7)  # noqa: S311 - a reproducible workload, not a secret
        publisher = pubsub_v1.PublisherClient()
        topic = publisher.topic_path(info.project, info.settings.topic_failures)
        futures = [publisher.publish(topic, orjson.dumps(_failure_event(i, rng))) for i in range(events)]
        futures.append(publisher.publish(topic, b"this is not JSON"))
        for future in futures:
            future.result(timeout=30)
        print(f"published {len(futures)} failure events (one of them malformed) to {info.settings.topic_failures}")

        db = firestore.Client(project=info.project)
        cases = db.collection(info.settings.collection("failed_cases"))
        quarantine = db.collection(info.settings.collection("quarantine"))
        deadline = time.monotonic() + 60
        stored = kept = 0
        while time.monotonic() < deadline:
            stored = cases.count().get()[0][0].value
            kept = quarantine.count().get()[0][0].value
            if stored >= events and kept >= 1:
                break
            time.sleep(0.5)
        print(f"stored cases: {stored}; quarantined: {kept}")
        for snapshot in quarantine.limit(3).stream():
            print(f"  quarantined {snapshot.id}: {snapshot.get('reason')}")
        return 0 if stored >= events and kept >= 1 else 1
    finally:
        stack.down()
        print("stack down")
