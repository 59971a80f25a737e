"""Waiting for an object a function writes when it is done (its result), as a bench measures the whole path."""

from __future__ import annotations

import time
from typing import Any

import orjson


def wait_for_json(bucket: Any, name: str, poll_s: float = 0.2) -> dict[str, Any]:
    """The JSON object `name` in `bucket` (a google.cloud.storage Bucket), once it exists."""
    while True:
        blob = bucket.blob(name)  # a fresh handle each time: a used one pins the generation it last saw
        if blob.exists():
            return dict(orjson.loads(blob.download_as_bytes()))
        time.sleep(poll_s)
