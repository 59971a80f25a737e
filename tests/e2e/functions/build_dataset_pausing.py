"""build_dataset as deployed, except that the first write into the split file PAUSE_IN_SPLIT (e.g. "val")
creates the file PAUSE_MARKER and then hangs, so a test can kill the process in the middle of writing the
split files (the earlier splits written whole, this one's upload open). Once the marker exists (a restarted
process, the redelivery) nothing pauses."""

import os
import time
from contextlib import contextmanager
from pathlib import Path

from shared.adapters.gcs import BucketStore

_writer = BucketStore.writer
MARKER = Path(os.environ["PAUSE_MARKER"])
SPLIT_FILE = f"/{os.environ['PAUSE_IN_SPLIT']}.jsonl"


class _Hangs:
    def __init__(self, stream):  # type: ignore[no-untyped-def]
        self.stream = stream

    def write(self, data):  # type: ignore[no-untyped-def]
        written = self.stream.write(data)
        MARKER.write_text(str(os.getpid()))
        time.sleep(3600)  # killed here
        return written


@contextmanager
def _pausing_writer(self, name, content_type="application/octet-stream"):  # type: ignore[no-untyped-def]
    with _writer(self, name, content_type) as stream:
        yield _Hangs(stream) if name.endswith(SPLIT_FILE) and not MARKER.exists() else stream


BucketStore.writer = _pausing_writer  # type: ignore[assignment, method-assign]

from functions.build_dataset.main import build_dataset  # noqa: E402

__all__ = ["build_dataset"]
