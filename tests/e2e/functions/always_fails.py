"""A function that notes each delivery in a file, then fails: drives the retry and dead-letter test."""

import os
from typing import Any

import functions_framework


@functions_framework.cloud_event
def always_fails(cloud_event: Any) -> None:
    """Append the message id to DELIVERY_LOG, then raise so functions-framework answers 500."""
    with open(os.environ["DELIVERY_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{cloud_event['id']}\n")
    raise RuntimeError("this function always fails")
