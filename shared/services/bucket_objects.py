"""The bucket's object notifications as the functions on `bucket-events` read them: which object, which version.

One topic carries every object of the bucket and the emulator ignores subscription filters, so each function
checks the notification is a new object of its own prefix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from shared.config import Settings


def is_new_object(attributes: Mapping[str, str], settings: Settings, prefix: str, suffix: str) -> bool:
    """True for a finalized object named `<prefix>...<suffix>` in this deployment's bucket."""
    name = attributes.get("objectId", "")
    return (
        attributes.get("eventType") == "OBJECT_FINALIZE"
        and attributes.get("bucketId") == settings.bucket
        and name.startswith(prefix)
        and name.endswith(suffix)
    )


def object_version_id(object_name: str, generation: str | int | None) -> str:
    """One id per object version: a re-upload is new work, a redelivered notification is not."""
    return hashlib.sha256(f"{object_name}#{generation}".encode()).hexdigest()[:32]
