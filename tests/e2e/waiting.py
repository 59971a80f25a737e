"""Polling until the event path has done its work (it is asynchronous by design)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], timeout_s: float = 30.0, interval_s: float = 0.2) -> T:
    """The first truthy value of `predicate`; AssertionError when none comes within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s")
