"""Reading the audio a dataset's rows point at: a clip's header or samples by its ``gs://`` URI, and the
headers of many rows at once on a pool of threads.

A row's ``audio`` may sit in another bucket than the dataset's (the transcription service's audio bucket):
``open_bucket(name)`` is that bucket's adapter (``Adapters.bucket_named``; IAM decides what may be read).
A clip that cannot be used (missing, empty, not audio, over the duration cap, not a ``gs://`` URI) is an
``UnusableAudio`` whose message says why: counted and named by the caller, never a crash, never a retry.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from shared.domain import audio_clips
from shared.domain.audio_clips import MAX_AUDIO_SECONDS, ClipInfo, RowAudio, UnusableAudio
from shared.errors import ObjectGone
from shared.ports import Bucket

T = TypeVar("T")
R = TypeVar("R")

OpenBucket = Callable[[str], Bucket]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
DEFAULT_WORKERS = max(2, min(8, 2 * (os.cpu_count() or 1)))  # I/O waits overlap the other threads' work
# Clips this size or smaller are fetched whole (a 30 s 16 kHz WAV is ~1 MB; a 5 s FLAC ~100 KB).
WHOLE_CLIP_BYTES = 32 * 1024 * 1024
HEADER_FETCH_BYTES = 1024 * 1024


def case_folder(case_id: str) -> str:
    """A path-safe folder name for a case id; a digest is added when anything had to be replaced."""
    safe = _UNSAFE.sub("_", case_id).strip("._") or "case"
    if safe != case_id:
        safe = f"{safe[:80]}-{hashlib.blake2b(case_id.encode(), digest_size=4).hexdigest()}"
    return safe


def only_bucket(bucket: Bucket) -> OpenBucket:
    """An OpenBucket that reaches `bucket` alone: a clip in any other bucket is unusable ("no access")."""

    def open_bucket(name: str) -> Bucket:
        if name != bucket.uri("").removeprefix("gs://").rstrip("/"):
            raise UnusableAudio(f"no access: bucket {name!r} is not one this build may read")
        return bucket

    return open_bucket


def split_uri(uri: object) -> tuple[str, str]:
    """(bucket, object name) of a `gs://bucket/name` URI; UnusableAudio for anything else."""
    if not isinstance(uri, str) or not uri.startswith("gs://"):
        raise UnusableAudio(f"not a gs:// URI: {uri!r}")
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    if not bucket or not name:
        raise UnusableAudio(f"not a gs://bucket/object URI: {uri!r}")
    return bucket, name


def read_clip(
    open_bucket: OpenBucket, uri: object, samples: bool, max_seconds: float = MAX_AUDIO_SECONDS,
) -> tuple[ClipInfo, np.ndarray | None]:
    """The clip's header (and its samples, when asked) read through its bucket's adapter.

    A clip up to WHOLE_CLIP_BYTES (HEADER_FETCH_BYTES for a header alone) is fetched whole in one request and
    decoded in memory: libsndfile seeks, and each seek of a streamed object was another request (5 per clip,
    4x the time of one fetch). A larger one is streamed, its header checked before any sample is fetched, so a
    2-hour file is refused having read only its header."""
    bucket_name, name = split_uri(uri)
    bucket = open_bucket(bucket_name)
    limit = WHOLE_CLIP_BYTES if samples else HEADER_FETCH_BYTES
    data = bucket.get_upto(name, limit)
    if data is None:
        raise UnusableAudio("missing: no such object")
    try:
        with contextlib.nullcontext(data) if len(data) <= limit else bucket.reader(name) as source:
            if samples:
                return audio_clips.decode(source, max_seconds)
            return audio_clips.probe(source, max_seconds), None
    except ObjectGone:
        raise UnusableAudio("missing: no such object") from None


def ordered_map(pool: Executor, work: Callable[[T], R], items: Iterable[T], window: int) -> Iterator[R]:
    """`work` of each item on the pool, results in the items' order, at most `window` items in flight."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def read_headers(
    open_bucket: OpenBucket, rows: Iterable[tuple[str, str, str]], *, workers: int = DEFAULT_WORKERS,
    max_seconds: float = MAX_AUDIO_SECONDS,
) -> Iterator[RowAudio]:
    """The header of each (case_id, audio, split) row's clip, in the rows' order, `workers` reads at a time
    (a header is a few KB: the time is the round trip, which threads overlap)."""

    def one(row: tuple[str, str, str]) -> RowAudio:
        case_id, audio, split = row
        try:
            info, _ = read_clip(open_bucket, audio, samples=False, max_seconds=max_seconds)
        except UnusableAudio as exc:
            return RowAudio(case_id, audio, split, reason=str(exc))
        return RowAudio(case_id, audio, split, duration_s=info.duration_s, sample_rate=info.sample_rate)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from ordered_map(pool, one, rows, 4 * workers)
