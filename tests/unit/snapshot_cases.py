"""Random stored cases with the awkward values a build meets, for the snapshot tests (seeded, reproducible)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.dataset_request import BuildRequest

START = datetime(2026, 11, 1, tzinfo=UTC)
WORDS = [
    "turn", "left", "LIGHT", "bank", "café", "naïve", "Straße", "東京", "мир", "٣", "²", "½", "_", "42", "'quoted'",
    '"dq"', "back\\slash", "tab\tin", "nl\nin", "\x0b", "\x1f", "\x01", "\x7f", "\u2028", "😀", "e\u0301", "İ",
    "\u3000", "\xa0", "\u212a", "\u017f", ".WAV", "",
]
FLOATS = [
    0.0, 1.0, 0.5, 0.25, 0.1, 0.3, 0.9, 1e-5, 1.5e-5, 9.99e-5, 1e-6, 2.5e-7, 1e16, 1.5e17, 123456.789, -0.0,
    -1e-5, 0.30000000000000004, 5e-324, 1e300,
]
SPLIT_RATIOS = [
    (0.8, 0.1, 0.1), (0.7, 0.2, 0.1), (0.5, 0.5, 0.0), (0.0, 0.0, 1.0), (1 / 3, 1 / 3, 1 / 3), (0.0, 1.0, 0.0),
]


def text(rng: random.Random, words: int = 6) -> str:
    return " ".join(rng.choice(WORDS) if rng.random() < 0.3 else f"w{rng.randrange(50)}" for _ in range(words))


def number(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.15:
        return rng.choice([float("nan"), float("inf"), True, "0.5", 1, 0])
    if roll < 0.35:
        return rng.choice(FLOATS)
    return rng.random()


def random_case(rng: random.Random, n: int) -> dict[str, Any]:
    """One stored case, mostly plausible, sometimes odd in a way Firestore could hold."""
    original = text(rng) if rng.random() > 0.05 else rng.choice([None, "", "   "])
    roll = rng.random()
    if roll < 0.25:
        corrected: Any = None
    elif roll < 0.32:
        corrected = rng.choice(["", "  \t", "\u3000\u2003", "\x1c", 5, original])
    else:
        corrected = text(rng)
    extension = rng.choice([".wav", ".WAV", ".flac", ".mp3", ".Opus", ".m4a", ".ogg", "", ".txt", ".wav\n"])
    case = {
        "case_id": rng.choice([f"case-{n:05d}", f"cäse-{n}", f"c{n}\u00e9", f"{n}"]),
        "audio_path": rng.choice([f"gs://stt-audio/{n}{extension}", f"audio/utt-{rng.randrange(40)}.wav", None, ""]),
        "original_transcript": original,
        "corrected_transcript": corrected,
        "corrected": corrected is not None,
        "error_types": rng.choice(
            [[], None, ["substitution"], ["all_caps", "substitution"], ["deletion"], ["accent"], ["naïve \"x\""]]
        ),
        "error_score": number(rng) if rng.random() < 0.5 else rng.random(),
        "speaker_id": rng.choice([None, "", f"spk-{rng.randrange(30)}", f"spk-{rng.randrange(30)}", 7]),
        "language": rng.choice([None, "en", "fr", "ja"]),
        "model_version": rng.choice([None, "whisper_base_v1", "v2"]),
        "duration_s": number(rng),
        "wer": number(rng),
        "cer": number(rng),
        "normalized_wer": number(rng),
        "created_at": START + timedelta(seconds=n),
        "updated_at": START + timedelta(seconds=n, microseconds=rng.randrange(1000)),
    }
    if rng.random() < 0.05:
        del case["speaker_id"]
    return case


def random_cases(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    cases = [random_case(rng, n) for n in range(count)]
    seen: set[str] = set()
    unique = []
    for case in cases:  # one version per case_id: the Python build has no notion of versions
        if case["case_id"] not in seen:
            seen.add(case["case_id"])
            unique.append(case)
    return unique


def random_request(rng: random.Random) -> BuildRequest:
    train, val, test = rng.choice(SPLIT_RATIOS)
    return BuildRequest(
        min_error_score=rng.choice([0.0, 0.0, 0.3, 0.5]),
        include_uncorrected=rng.random() < 0.4,
        train_ratio=train,
        val_ratio=val,
        test_ratio=test,
        max_samples=rng.choice([None, None, 1, 3, 7, 50]),
        balance_error_types=rng.random() < 0.5,
    )


def requests(seed: int, count: int) -> Iterator[BuildRequest]:
    rng = random.Random(seed)
    for _ in range(count):
        yield random_request(rng)
