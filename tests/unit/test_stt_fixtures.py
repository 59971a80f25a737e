"""The committed speech-to-text failure fixtures agree with their own audio and are real failures."""

from __future__ import annotations

import re
import wave

import jiwer
import pytest

from tests.fixtures.stt import CLIPS_DIR, clip_path, load_failures

ROWS = load_failures()
FIELDS = {"clip", "reference", "hypothesis", "duration_s", "speaker_id", "model_version", "sample_rate"}


def strip(text: str) -> str:
    """Lowercase and drop punctuation, as generate.py does to tell a failure."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).replace("'", "").split())


def genuine(row: dict) -> bool:
    return strip(row["hypothesis"]) != strip(row["reference"])


def test_rows_are_complete_and_unique() -> None:
    assert len(ROWS) >= 8
    for row in ROWS:
        assert FIELDS <= row.keys(), row
        assert row["reference"].strip()
        assert isinstance(row["hypothesis"], str)
        assert row["speaker_id"].startswith("espeak-")
        assert row["model_version"].startswith("pocketsphinx-")
    assert len({r["clip"] for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r["clip"] for r in ROWS])
def test_clip_is_a_wav_matching_its_row(row: dict) -> None:
    path = clip_path(row["clip"])
    assert path.is_file(), path
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == row["sample_rate"] == 16000
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        duration = w.getnframes() / w.getframerate()
    assert duration == pytest.approx(row["duration_s"], abs=0.05)


def test_no_stray_clips_and_small_enough_to_upload() -> None:
    on_disk = {p.name for p in CLIPS_DIR.glob("*.wav")}
    assert on_disk == {r["clip"] for r in ROWS}
    assert sum(p.stat().st_size for p in CLIPS_DIR.glob("*.wav")) < 1_500_000


def test_mostly_genuine_failures_with_positive_wer() -> None:
    failures = [r for r in ROWS if genuine(r)]
    assert len(failures) >= 8
    for row in ROWS:
        assert row.get("is_failure", True) == genuine(row), row["clip"]
    for row in failures:
        assert jiwer.wer(strip(row["reference"]), row["hypothesis"]) > 0, row["clip"]


def test_clip_path_rejects_paths() -> None:
    for bad in ("", "../failures.jsonl", "clips/x.wav"):
        with pytest.raises(ValueError):
            clip_path(bad)
