"""How a clip is read from its bucket (shared/services/audio_reads.py): a small clip in one whole fetch, a
larger one streamed with its header checked before its samples."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from shared.domain.audio_clips import UnusableAudio
from shared.services import audio_reads
from shared.services.audio_reads import read_clip
from tests.fixtures.audio import CLIPS, clip_path
from tests.unit.fake_dataset_bucket import FakeBucket
from tests.unit.test_audio_transforms import long_silence


class ReadLog(FakeBucket):
    """Records each whole fetch and the bytes each stream hands out."""

    def __init__(self) -> None:
        super().__init__("stt-audio")
        self.fetches: list[str] = []
        self.streamed: dict[str, int] = {}

    def get_upto(self, name: str, max_bytes: int) -> bytes | None:
        self.fetches.append(name)
        return super().get_upto(name, max_bytes)

    @contextmanager
    def reader(self, name: str, generation: int | None = None) -> Iterator[io.BytesIO]:
        with super().reader(name, generation) as stream:
            read, readinto = stream.read, stream.readinto

            def count(n: int) -> int:
                self.streamed[name] = self.streamed.get(name, 0) + n
                return n

            stream.read = lambda size=-1: (chunk := read(size), count(len(chunk)))[0]  # type: ignore[method-assign]
            stream.readinto = lambda buffer: count(readinto(buffer))  # type: ignore[method-assign]
            yield stream


@pytest.fixture
def bucket() -> ReadLog:
    bucket = ReadLog()
    bucket.put("clip.flac", clip_path(CLIPS[0]).read_bytes())
    bucket.put("long.flac", long_silence(2 * 3600 + 60))
    return bucket


def test_a_small_clip_is_one_fetch_and_never_streamed(bucket: ReadLog) -> None:
    info, samples = read_clip(lambda _: bucket, "gs://stt-audio/clip.flac", samples=True)
    assert bucket.fetches == ["clip.flac"] and bucket.streamed == {}
    assert samples is not None and len(samples) == info.frames > 0
    header, none = read_clip(lambda _: bucket, "gs://stt-audio/clip.flac", samples=False)
    assert header == info and none is None and bucket.streamed == {}


def test_a_clip_larger_than_a_fetch_is_streamed_with_the_same_result(
    bucket: ReadLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole_info, whole = read_clip(lambda _: bucket, "gs://stt-audio/clip.flac", samples=True)
    monkeypatch.setattr(audio_reads, "WHOLE_CLIP_BYTES", 2048)
    info, samples = read_clip(lambda _: bucket, "gs://stt-audio/clip.flac", samples=True)
    assert bucket.streamed["clip.flac"] > 2048
    assert info == whole_info and samples is not None and whole is not None and np.array_equal(samples, whole)


def test_a_long_clip_past_a_fetch_is_refused_from_its_header(bucket: ReadLog, monkeypatch: pytest.MonkeyPatch) -> None:
    size = len(bucket.get("long.flac") or b"")
    monkeypatch.setattr(audio_reads, "WHOLE_CLIP_BYTES", 4096)
    with pytest.raises(UnusableAudio, match=r"too long: 7260\.0 s"):
        read_clip(lambda _: bucket, "gs://stt-audio/long.flac", samples=True)
    assert 0 < bucket.streamed["long.flac"] < size / 2  # libsndfile's first buffer (8 KB), not the samples


def test_a_missing_clip_is_unusable_not_an_error(bucket: ReadLog) -> None:
    with pytest.raises(UnusableAudio, match="missing: no such object"):
        read_clip(lambda _: bucket, "gs://stt-audio/nope.flac", samples=True)


def test_a_clip_decodes_alike_from_its_bytes_and_from_a_stream_and_encodes_back() -> None:
    from shared.domain import audio_clips

    data = clip_path(CLIPS[0]).read_bytes()
    info, samples = audio_clips.decode(data)
    stream_info, from_stream = audio_clips.decode(io.BytesIO(data))
    assert info == stream_info and np.array_equal(samples, from_stream)
    assert audio_clips.probe(data) == info
    for fmt in ("FLAC", "WAV"):
        encoded = audio_clips.encode(samples, info.sample_rate, fmt, "PCM_16")
        again_info, again = audio_clips.decode(encoded)
        assert again_info.format == fmt and again_info.frames == info.frames
        assert np.array_equal(again, samples)  # PCM_16 in, PCM_16 out: the same values
    with pytest.raises(UnusableAudio, match="empty"):
        audio_clips.decode(b"")
    with pytest.raises(UnusableAudio, match="not audio"):
        audio_clips.probe(b"not a clip at all" * 10)
