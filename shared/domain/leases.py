"""The rule of a leased build record: who may take it, who must wait, what counts as done.

One build per upload, whatever Pub/Sub delivers: the first claim writes a lease its attempt keeps renewing;
a claim while another attempt's lease runs must wait; an expired lease is taken over. The Firestore ledger
and the tests' in-memory ledger both apply these functions inside their own read-modify-write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

DONE_STATUSES = ("finished", "rejected")

Claim = Literal["done", "busy", "take"]


def claim_decision(record: Mapping[str, Any] | None, attempt: str, now: datetime) -> Claim:
    """What a claim by `attempt` at `now` finds: the build done, busy under another lease, or free to take."""
    if record and record.get("status") in DONE_STATUSES:
        return "done"
    if record and record.get("attempt") != attempt and record["lease_until"] > now:
        return "busy"
    return "take"


def claimed_record(
    record: Mapping[str, Any] | None, build_id: str, attempt: str, now: datetime, lease: timedelta
) -> dict[str, Any]:
    """The record a taken claim writes (a takeover counts one more)."""
    return {
        "build_id": build_id,
        "status": "building",
        "attempt": attempt,
        "lease_until": now + lease,
        "started_at": now,
        "takeovers": (record or {}).get("takeovers", -1) + 1,
    }


def may_renew(record: Mapping[str, Any] | None, attempt: str) -> bool:
    """True while the build is still `attempt`'s and still building."""
    return record is not None and record.get("attempt") == attempt and record.get("status") == "building"
