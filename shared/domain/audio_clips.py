"""Audio clips as soundfile (libsndfile) reads and writes them: the header, the samples, the encoded bytes.

Nothing here touches the network: the caller hands in a seekable stream (the bucket adapter's reader) or
bytes. ``probe`` reads the header only, so a clip past the duration cap is refused before its samples are
read; ``UnusableAudio`` says why a clip cannot be used (empty, not audio, too long, silent), never a crash.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf

MAX_AUDIO_SECONDS = 2 * 60 * 60  # a clip longer than this is refused from its header (CONTRACT: the 2 h cap)
# Formats written as they came; any other source (OGG, MP3, AIFF, ...) is written as FLAC.
KEPT_FORMATS = {"WAV": ("wav", "audio/wav"), "FLAC": ("flac", "audio/flac")}
FALLBACK_FORMAT = "FLAC"


class UnusableAudio(ValueError):
    """This clip cannot be used; the message says why (counted and named, the row skipped)."""


@dataclass(frozen=True)
class ClipInfo:
    """A clip's header: what soundfile reports before reading a sample."""

    sample_rate: int
    frames: int
    channels: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    def output_format(self) -> tuple[str, str, str, str]:
        """(format, subtype, file extension, content type) an augmented copy of this clip is written in: the
        same container and sample format where soundfile writes them, else 16-bit FLAC."""
        fmt = self.format if self.format in KEPT_FORMATS else FALLBACK_FORMAT
        subtype = self.subtype if sf.check_format(fmt, self.subtype) else "PCM_16"
        extension, content_type = KEPT_FORMATS[fmt]
        return fmt, subtype, extension, content_type


def _reason(exc: Exception) -> str:
    """libsndfile's own words, without the stream's repr soundfile puts before them."""
    return str(getattr(exc, "error_string", None) or exc)


@contextlib.contextmanager
def _memory_file(data: bytes = b"") -> Iterator[int]:
    """An in-memory file holding `data`, by its descriptor, at its start. libsndfile reads and writes a
    descriptor in C; a BytesIO it reaches through a Python callback per block, each waiting for the GIL: beside
    threads busy in Python (the bucket's I/O), an encode took 36 ms instead of 12 (shared/services/augmentation.py)."""
    fd = os.memfd_create("stt-clip") if hasattr(os, "memfd_create") else os.dup(tempfile.TemporaryFile().fileno())
    try:
        with open(fd, "wb", closefd=False) as out:
            out.write(data)
        os.lseek(fd, 0, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def _open(source: BinaryIO | bytes) -> Iterator[sf.SoundFile]:
    """The clip (a seekable stream, or its bytes) as a SoundFile; UnusableAudio when it is empty or libsndfile
    cannot read it."""
    empty = not source if isinstance(source, bytes) else not source.read(1)
    if empty:
        raise UnusableAudio("empty: the object has no bytes")
    with contextlib.ExitStack() as stack:
        if isinstance(source, bytes):
            target: BinaryIO | int = stack.enter_context(_memory_file(source))
        else:
            source.seek(0)
            target = source
        try:
            handle = sf.SoundFile(target, closefd=False)
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            raise UnusableAudio(f"not audio: {_reason(exc)}") from None
        with handle:
            yield handle


def _info(handle: sf.SoundFile, max_seconds: float) -> ClipInfo:
    info = ClipInfo(int(handle.samplerate), int(handle.frames), int(handle.channels), str(handle.format),
                    str(handle.subtype))
    if info.sample_rate <= 0 or info.frames <= 0:
        raise UnusableAudio(f"no samples: {info.frames} frames at {info.sample_rate} Hz")
    if info.duration_s > max_seconds:
        raise UnusableAudio(f"too long: {info.duration_s:.1f} s, over the cap of {max_seconds:g} s")
    return info


def probe(source: BinaryIO | bytes, max_seconds: float = MAX_AUDIO_SECONDS) -> ClipInfo:
    """The clip's header (only the header is read); UnusableAudio when empty, not audio or too long."""
    with _open(source) as handle:
        return _info(handle, max_seconds)


def decode(source: BinaryIO | bytes, max_seconds: float = MAX_AUDIO_SECONDS) -> tuple[ClipInfo, np.ndarray]:
    """The clip's header and its samples as float32 in [-1, 1] ((frames,) mono, (frames, channels) else); the
    header is checked before any sample is read."""
    with _open(source) as handle:
        info = _info(handle, max_seconds)
        try:
            samples = handle.read(dtype="float32", always_2d=False)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise UnusableAudio(f"unreadable samples: {_reason(exc)}") from None
    if len(samples) == 0:
        raise UnusableAudio("no samples could be decoded")
    return info, samples


def encode(samples: np.ndarray, sample_rate: int, fmt: str, subtype: str) -> bytes:
    """The samples (float32 in [-1, 1]) encoded as a `fmt` file of `subtype`."""
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with _memory_file() as fd:
        with sf.SoundFile(fd, "w", sample_rate, channels, subtype, format=fmt, closefd=False) as handle:
            handle.write(samples)
        os.lseek(fd, 0, os.SEEK_SET)
        with open(fd, "rb", closefd=False) as written:
            return written.read()


@dataclass(frozen=True)
class RowAudio:
    """What reading one dataset row's clip header gave: its duration and sample rate, or why it is unusable."""

    case_id: str
    audio: str
    split: str
    duration_s: float | None = None
    sample_rate: int | None = None
    reason: str | None = None

    def problem(self) -> dict[str, Any]:
        """The row as a report names it."""
        return {"case_id": self.case_id, "audio": self.audio, "split": self.split, "reason": self.reason}


def reason_kind(reason: str) -> str:
    """The kind of a reason (`missing`, `empty`, `not audio`, `too long`, ...): its words before the colon."""
    return reason.split(":", 1)[0]


def most_common_rate(rates: Counter[int]) -> int | None:
    """The sample rate most clips have (the highest on a tie), None without any."""
    return max(rates, key=lambda rate: (rates[rate], rate)) if rates else None


def audio_report(checks: Iterable[RowAudio], excluded: int, named_cap: int) -> dict[str, Any]:
    """The quality report's `audio` section: headers read, durations filled, the unusable clips counted by
    kind and named (the first `named_cap`), the rows left out, the sample rates met."""
    read = filled = 0
    kinds: Counter[str] = Counter()
    rates: Counter[int] = Counter()
    named: list[dict[str, Any]] = []
    for check in checks:
        read += 1
        if check.reason is not None:
            kinds[reason_kind(check.reason)] += 1
            if len(named) < named_cap:
                named.append(check.problem())
        else:
            filled += 1
            if check.sample_rate is not None:
                rates[check.sample_rate] += 1
    return {
        "headers_read": read,
        "durations_filled": filled,
        "unusable_count": sum(kinds.values()),
        "unusable_by_kind": dict(sorted(kinds.items())),
        "unusable": named,
        "excluded_count": excluded,
        "sample_rates": {str(rate): n for rate, n in sorted(rates.items())},
        "sampling_rate": most_common_rate(rates),
    }
