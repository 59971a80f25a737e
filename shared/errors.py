"""Every error sttdata raises on purpose, grouped by what the caller must do about it.

- `BadInput`: the input can never be served as given. A push handler keeps it (quarantine) and acknowledges;
  an HTTP caller gets 400 with the reason. Never retried.
- `NotFound`: the case, dataset, version or object named does not exist (404). A `KeyError`, as the Python API
  has always raised for an unknown id.
- `Transient`: the work may succeed later (a lease held by another attempt, a lost race). A push answers 500
  so Pub/Sub redelivers with backoff; an HTTP caller gets 503.

Anything else is a bug or an outage of a backing service: 500, and a push is retried, then dead-lettered.
`http_status` is the one mapping from these to HTTP answers; shared/push.py acknowledges a push unless its
handler raised.
"""

from __future__ import annotations


class SttdataError(Exception):
    """Base of every error raised on purpose; `reason` is the message for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class BadInput(SttdataError, ValueError):
    """The input can never be accepted as given: kept with its reason (or answered 400), never retried."""


class QualityGateFailed(BadInput):
    """A dataset whose quality check failed was not registered as a version (nothing was written)."""


class NotFound(SttdataError, KeyError):
    """What the request names does not exist (404)."""


class Transient(SttdataError, RuntimeError):
    """The work may succeed later: retried (500 to Pub/Sub, 503 to an HTTP caller)."""


# -- bad input ----------------------------------------------------------------------------------------------


class InvalidEvent(BadInput):
    """A failure event or correction that cannot be accepted."""


class InvalidBuildRequest(BadInput):
    """A dataset build request that cannot be served (a bad parameter, an unknown parent version)."""


class InvalidMetricRecord(BadInput):
    """A training-metrics record that cannot be accepted."""


class InvalidAugmentation(BadInput):
    """Augmentation transforms that cannot be applied (an unknown type, a parameter out of its range)."""


class UnstorableRecord(BadInput):
    """A valid record the store cannot hold (e.g. arrays inside arrays in Firestore)."""


class BadRequest(BadInput):
    """An api request that cannot be served as asked (unknown op, wrong arguments)."""


class MalformedPush(BadInput):
    """The push body is not a Pub/Sub message envelope."""


class SnapshotPartError(BadInput):
    """A case snapshot part that cannot be read as one (corrupt, or a column of an incompatible type): what a
    build reads is bad, so it is refused with the part named, never retried; replace or delete the part."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(f"snapshot part {part}: {reason}")
        self.part = part


# -- not found ----------------------------------------------------------------------------------------------


class ObjectGone(NotFound):
    """The notified object version no longer exists (deleted or overwritten before it was read)."""


class NeverExported(NotFound):
    """A restore's export does not exist: `sync_all_to_gcs` (or the export step) never wrote it."""


# -- transient ----------------------------------------------------------------------------------------------


class RegistryConflict(Transient):
    """The registry object changed between our read and our write."""


class BuildInProgress(Transient):
    """Another attempt holds the build's lease."""


class TargetChanged(Transient):
    """Another restore wrote the same restore target during this one: retried, this one restores it whole."""


class LeaseLost(Transient):
    """Another attempt took the build over (this one stalled past its lease): stop before writing more."""


def http_status(error: BaseException) -> int:
    """The HTTP status that answers `error`."""
    if isinstance(error, BadInput):
        return 400
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Transient):
        return 503
    return 500
