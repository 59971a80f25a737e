"""The one shape of a quarantined payload, whatever rejected it (failures, corrections, metrics, imports)."""

from __future__ import annotations

import hashlib
from typing import Any

# Firestore documents hold at most 1 MiB: a larger payload is kept whole in the bucket, an excerpt inline.
MAX_INLINE_PAYLOAD = 256 * 1024


def quarantine_record(
    raw: bytes, reason: str, source: str, raw_uri: str | None = None, **context: Any
) -> dict[str, Any]:
    """The document that keeps `raw` with its reason: size, sha256, the bytes (or an excerpt and where the
    whole payload is), the source that rejected it, and any context (message id, topic, case id)."""
    raw = bytes(raw)
    record: dict[str, Any] = {
        "reason": reason,
        "source": source,
        "size_bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "raw": raw[:MAX_INLINE_PAYLOAD],
        "raw_truncated": len(raw) > MAX_INLINE_PAYLOAD,
        **context,
    }
    if raw_uri is not None:
        record["raw_uri"] = raw_uri
    return record


def needs_whole_copy(raw: bytes) -> bool:
    """True when the inline excerpt would not hold the whole payload."""
    return len(raw) > MAX_INLINE_PAYLOAD
