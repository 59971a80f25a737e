"""The audio transforms on real speech (tests/fixtures/audio): durations, SNR and gain measured, parameters
refused with their reason, the header read before the samples."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from shared.domain import audio_clips, audio_transforms
from shared.domain.audio_transforms import Noise, Speed, parse_transforms, transform_seed
from shared.errors import BadInput, InvalidAugmentation
from tests.fixtures.audio import CLIPS, SAMPLE_RATE, clip_path


def load(name: str) -> np.ndarray:
    samples, rate = sf.read(clip_path(name), dtype="float32")
    assert rate == SAMPLE_RATE
    return samples


def roundtrip(samples: np.ndarray, fmt: str = "FLAC") -> np.ndarray:
    """Encoded as the augmentation writes it (16-bit) and decoded again."""
    data = audio_clips.encode(audio_transforms.clipped(samples)[0], SAMPLE_RATE, fmt, "PCM_16")
    return audio_clips.decode(io.BytesIO(data))[1]


def measured_snr(source: np.ndarray, noisy: np.ndarray) -> float:
    """The SNR of `noisy` against its source: the source's part by least squares, the rest is noise."""
    scale = float(np.dot(noisy, source) / np.dot(source, source))
    return audio_transforms.snr_db(scale * source, noisy - scale * source)


@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize("factor", [0.9, 1.1, 0.5, 2.0])
def test_speed_scales_the_duration_by_one_over_the_factor_at_the_same_rate(name: str, factor: float) -> None:
    source = load(name)
    out = roundtrip(audio_transforms.apply(Speed(type="speed", factor=factor), source, SAMPLE_RATE, 0))
    ratio = len(out) / len(source)
    assert ratio == pytest.approx(1 / factor, abs=2 / len(source))  # within a sample or two of the exact length
    info = sf.info(io.BytesIO(audio_clips.encode(out, SAMPLE_RATE, "FLAC", "PCM_16")))
    assert info.samplerate == SAMPLE_RATE


def test_speed_perturbation_shifts_the_pitch_by_the_factor() -> None:
    """Kaldi/ESPnet speed perturbation is resampling: a tone's frequency scales with the factor too."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = audio_transforms.speed(tone, SAMPLE_RATE, 0.9)
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * SAMPLE_RATE / len(out)
    assert peak_hz == pytest.approx(440 * 0.9, abs=1.5)


@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0, 40.0])
def test_noise_is_added_at_the_measured_snr(name: str, snr: float) -> None:
    source = load(name)
    noisy = audio_transforms.apply(Noise(type="noise", snr_db=snr), source, SAMPLE_RATE, 7)
    assert audio_transforms.snr_db(source, noisy - source) == pytest.approx(snr, abs=1e-3)
    # Written as 16-bit and read back, as a trainer reads it: quantisation barely moves it.
    assert measured_snr(source, roundtrip(noisy)) == pytest.approx(snr, abs=0.1)


def test_noise_is_seeded_per_case_and_transform() -> None:
    source = load(CLIPS[0])
    noise = Noise(type="noise", snr_db=20)
    seed = transform_seed("case-1", noise)
    first = audio_transforms.apply(noise, source, SAMPLE_RATE, seed)
    again = audio_transforms.apply(noise, source, SAMPLE_RATE, transform_seed("case-1", noise))
    other_case = audio_transforms.apply(noise, source, SAMPLE_RATE, transform_seed("case-2", noise))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other_case)
    other = Noise(type="noise", snr_db=10)
    assert transform_seed("case-1", other) != seed


def test_a_silent_clip_has_no_snr() -> None:
    with pytest.raises(ValueError, match="silent"):
        audio_transforms.add_noise(np.zeros(1000, np.float32), 20, np.random.default_rng(0))


@pytest.mark.parametrize("db", [-6.0, -20.0, 3.0])
def test_gain_scales_the_level_by_db(db: float) -> None:
    source = load(CLIPS[1])
    out = roundtrip(audio_transforms.apply(parse_transforms([{"type": "gain", "db": db}])[0], source, SAMPLE_RATE, 0))
    level = 10 * np.log10(audio_transforms.power(out) / audio_transforms.power(source))
    assert len(out) == len(source)
    assert level == pytest.approx(db, abs=0.05)


def test_a_gain_past_full_scale_is_clipped_and_counted() -> None:
    source = load(CLIPS[0])  # peaks at about 0.65
    louder, outside = audio_transforms.clipped(audio_transforms.gain(source, 12))
    assert outside > 0 and float(np.max(np.abs(louder))) <= 1.0
    assert audio_transforms.clipped(source)[1] == 0


def test_stereo_clips_keep_their_channels() -> None:
    source = load(CLIPS[0])
    stereo = np.stack([source, source * 0.5], axis=1)
    for spec in ({"type": "speed", "factor": 0.9}, {"type": "noise", "snr_db": 20}, {"type": "gain", "db": -6}):
        out = audio_transforms.apply(parse_transforms([spec])[0], stereo, SAMPLE_RATE, 1)
        assert out.ndim == 2 and out.shape[1] == 2


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ([{"type": "speed", "factor": 0}], "augmentations[0].factor: Input should be greater than or equal to 0.5"),
        ([{"type": "speed", "factor": 3}], "less than or equal to 2"),
        ([{"type": "noise", "snr_db": -500}], "augmentations[0].snr_db: Input should be greater than or equal to -10"),
        ([{"type": "noise", "snr_db": float("nan")}], "finite number"),
        ([{"type": "gain", "db": 90}], "augmentations[0].db"),
        ([{"type": "reverb", "room": 0.3}], "unknown transform 'reverb' (known: speed, noise, gain)"),
        ([{"factor": 0.9}], "unknown transform None"),
        ([{"type": "speed"}], "augmentations[0].factor: Field required"),
        ([{"type": "speed", "factor": "0.9"}], "valid number"),
        ([{"type": "speed", "factor": True}], "valid number"),
        ([{"type": "gain", "db": -6, "factor": 2}], "unknown parameter of gain (its parameters: db)"),
        ([{"type": "gain", "db": -6}, {"type": "gain", "db": -6.0}], "repeated: gain_-6"),
        ([], "non-empty list"),
        ({"type": "gain", "db": -6}, "non-empty list"),
        (["speed"], "must be an object"),
        ([{"type": "gain", "db": float(i)} for i in range(9)], "at most 8 transforms"),
    ],
)
def test_bad_transforms_are_refused_with_their_reason(given: Any, reason: str) -> None:
    with pytest.raises(InvalidAugmentation) as caught:
        parse_transforms(given)
    assert reason in caught.value.reason
    assert isinstance(caught.value, BadInput)  # answered 400, never retried


def test_transforms_have_exact_keys_and_specs() -> None:
    transforms = parse_transforms([{"type": "speed", "factor": 0.9}, {"type": "noise", "snr_db": 20},
                                   {"type": "gain", "db": -6}])
    assert [t.key for t in transforms] == ["speed_0.9", "noise_20", "gain_-6"]
    assert [t.spec() for t in transforms] == [{"type": "speed", "factor": 0.9}, {"type": "noise", "snr_db": 20.0},
                                              {"type": "gain", "db": -6.0}]
    assert audio_transforms.transforms_key(transforms) != audio_transforms.transforms_key(transforms[::-1])


# -- the clip's header and samples ---------------------------------------------------------------------------


def long_silence(seconds: int, rate: int = 1000) -> bytes:
    """A FLAC clip of `seconds` of silence, a few KB whatever its length."""
    out = io.BytesIO()
    with sf.SoundFile(out, "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as handle:
        block = np.zeros(rate * 600, dtype=np.int16)
        for _ in range(seconds // 600):
            handle.write(block)
        handle.write(np.zeros(rate * (seconds % 600), dtype=np.int16))
    return out.getvalue()


class CountingStream(io.BytesIO):
    """Counts the bytes read, so a test sees the header was read and not the samples."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readinto(self, buffer: Any) -> int:
        count = super().readinto(buffer)
        self.bytes_read += count
        return count


def test_probe_reads_the_header_of_the_fixtures() -> None:
    for name in CLIPS:
        info = audio_clips.probe(io.BytesIO(clip_path(name).read_bytes()))
        assert info.sample_rate == SAMPLE_RATE and info.channels == 1
        assert info.duration_s == pytest.approx(sf.info(clip_path(name)).duration)
    assert audio_clips.probe(io.BytesIO(clip_path("open_the_window.wav").read_bytes())).output_format() == (
        "WAV", "PCM_16", "wav", "audio/wav")
    assert audio_clips.probe(io.BytesIO(clip_path(CLIPS[0]).read_bytes())).output_format()[:3] == (
        "FLAC", "PCM_16", "flac")


def test_a_clip_over_the_cap_is_refused_from_its_header() -> None:
    data = long_silence(2 * 3600 + 1)
    stream = CountingStream(data)
    with pytest.raises(audio_clips.UnusableAudio, match=r"too long: 7201.0 s, over the cap of 7200 s"):
        audio_clips.decode(stream)
    assert stream.bytes_read < len(data) / 2  # the header and a first block, not the samples
    assert audio_clips.probe(io.BytesIO(long_silence(2 * 3600))).duration_s == 7200  # the cap itself is allowed


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty: the object has no bytes"),
        (b"this is not audio at all " * 40, "not audio: Format not recognised."),
        (clip_path(CLIPS[0]).read_bytes()[:30], "not audio"),
    ],
)
def test_unusable_clips_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(audio_clips.UnusableAudio) as caught:
        audio_clips.decode(io.BytesIO(data))
    assert str(caught.value).startswith(reason)
    assert "0x" not in str(caught.value)  # no object repr in the reason
