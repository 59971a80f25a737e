"""A Hugging Face folder with its audio: the clips copied next to the rows with relative paths, the card's
`audio` an Audio feature at the clips' rate, and `datasets.load_dataset(folder)` working from a copy of the folder
moved away from the bucket. Decoding needs torchcodec (not installed): the rows are read undecoded and their
paths opened with soundfile instead."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
import soundfile as sf

from shared.bootstrap import Adapters
from shared.config import Settings
from shared.errors import BadInput
from shared.finetuning_pipeline import FinetuningDatasetPipeline
from shared.services.local_copies import huggingface_folder
from tests.fixtures.audio import SAMPLE_RATE, clip_path
from tests.unit.test_audio_builds import BAD, World, bad_cases
from tests.unit.test_augmentation import T0, speech_cases

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def load_moved(folder: Path, elsewhere: Path) -> Any:
    """The folder copied to another place (the original removed), loaded by datasets from there."""
    shutil.copytree(folder, elsewhere)
    shutil.rmtree(folder)
    return datasets.load_dataset(str(elsewhere))


@pytest.mark.parametrize("output_format", ["json", "parquet"])
def test_the_audio_is_copied_next_to_the_rows_and_the_moved_folder_loads(tmp_path: Path, output_format: str) -> None:
    world = World()
    world.build(speech_cases(12) + bad_cases()[:1])  # one row's clip is missing
    folder = huggingface_folder(world.bucket, "base", output_format, tmp_path / "hf", T0, include_audio=True,
                                open_bucket=world.open_bucket)
    marker = orjson.loads((folder / ".sttdata.json").read_bytes())
    assert marker["audio_missing"] == [{"case_id": "utt-100", "audio": BAD["utt-100"][0],
                                        "reason": "missing: no such object"}]
    card = (folder / "README.md").read_text()
    assert f"    dtype:\n      audio:\n        sampling_rate: {SAMPLE_RATE}" in card

    moved = tmp_path / "elsewhere" / "hf"
    loaded = load_moved(folder, moved)
    seen = 0
    for split in loaded:
        assert loaded[split].features["audio"] == datasets.Audio(sampling_rate=SAMPLE_RATE)
        rows = loaded[split].cast_column("audio", datasets.Audio(decode=False))
        for row in rows:
            if row["case_id"] == "utt-100":
                assert row["audio"] is None
                continue
            path = row["audio"]["path"]
            assert not os.path.isabs(path) and path.startswith("audio/")
            source = world.rows("base", {"validation": "val"}.get(split, split))
            uri = next(r["audio"] for r in source if r["case_id"] == row["case_id"])
            assert (moved / path).read_bytes() == clip_path(uri.rsplit("/", 1)[1]).read_bytes()
            assert sf.info(moved / path).samplerate == SAMPLE_RATE
            seen += 1
    assert seen == 12


def test_an_augmented_dataset_takes_its_written_clips_along(tmp_path: Path) -> None:
    world = World()
    info = world.build(speech_cases(9), augment=[{"type": "gain", "db": -6}])
    augmented = info["augmented"]["dataset_id"]
    folder = huggingface_folder(world.bucket, augmented, "json", tmp_path / "hf", T0, include_audio=True,
                                open_bucket=world.open_bucket)
    rows = [orjson.loads(line) for line in (folder / "train.jsonl").read_bytes().splitlines()]
    gained = [row for row in rows if row.get("augmentation")]
    assert gained and all((folder / row["audio"]).is_file() for row in rows)
    # One local file per source clip (cases sharing a clip share its copy), each gained clip its own.
    uris = {row["audio"] for row in world.rows(augmented, "train")}
    assert len({row["audio"] for row in rows}) == len(uris) == 3 + len(gained)


def test_without_include_audio_the_rows_keep_their_uris_and_the_api_refuses_it(tmp_path: Path) -> None:
    world = World()
    world.build(speech_cases(6))
    folder = huggingface_folder(world.bucket, "base", "json", tmp_path / "hf", T0)
    rows = [orjson.loads(line) for line in (folder / "train.jsonl").read_bytes().splitlines()]
    assert rows and all(row["audio"].startswith("gs://") for row in rows)
    assert not (folder / "audio").exists() and world.audio.opened == []
    pipeline = FinetuningDatasetPipeline(adapters=Adapters(Settings(), bucket=world.bucket), local_copies=False)
    with pytest.raises(BadInput, match="include_audio"):
        pipeline.prepare_huggingface_dataset("base", include_audio=True)


@pytest.mark.parametrize(("output_format", "include_audio"), [("json", False), ("parquet", False), ("json", True)])
def test_an_augmented_rows_augmentation_loads_as_a_dict(
    tmp_path: Path, output_format: str, include_audio: bool,
) -> None:
    """The card declares `augmentation` as a struct (source_case_id, type, params): `datasets` gives each
    augmented row a dict, each original row None, in every split (val and test rows have no such key)."""
    world = World()
    info = world.build(speech_cases(12), augment=[{"type": "speed", "factor": 0.9}, {"type": "gain", "db": -6}])
    augmented = info["augmented"]["dataset_id"]
    folder = huggingface_folder(world.bucket, augmented, output_format, tmp_path / "hf", T0,
                                include_audio=include_audio, open_bucket=world.open_bucket)
    loaded = load_moved(folder, tmp_path / "elsewhere" / "hf").remove_columns("audio")  # decoding needs torchcodec
    params = {name: datasets.Value("float64") for name in ("db", "factor", "snr_db")}
    expected = {"source_case_id": datasets.Value("string"), "type": datasets.Value("string"), "params": params}
    assert set(loaded) == {"train", "validation", "test"}
    for split in loaded:
        assert loaded[split].features["augmentation"] == expected, split
    train = list(loaded["train"])
    sources = {row["case_id"] for row in world.rows(augmented, "train") if not row.get("augmentation")}
    by_case = {row["case_id"]: row["augmentation"] for row in train}
    assert {case_id for case_id, value in by_case.items() if value is None} == sources
    for source in sources:
        assert by_case[f"{source}#speed_0.9"] == {"source_case_id": source, "type": "speed",
                                                  "params": {"db": None, "factor": 0.9, "snr_db": None}}
        assert by_case[f"{source}#gain_-6"] == {"source_case_id": source, "type": "gain",
                                                "params": {"db": -6.0, "factor": None, "snr_db": None}}
    assert all(row["augmentation"] is None for split in ("validation", "test") for row in loaded[split])
