"""A function that does the least possible: the floor the real functions are measured against."""

import os
import time
from typing import Any

import functions_framework


@functions_framework.cloud_event
def noop(cloud_event: Any) -> None:
    """Note the message id and the time it arrived (a local file: the cheapest visible effect)."""
    with open(os.environ["NOOP_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{cloud_event['id']} {time.time():.6f}\n")
