"""Firestore adapter for dataset builds: one document per build request, claimed under a lease.

Each claim and renewal applies the lease rule of shared/domain/leases.py inside a Firestore transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from google.cloud import firestore

from shared.adapters.clients import firestore_client
from shared.config import Settings
from shared.domain.leases import claim_decision, claimed_record, may_renew
from shared.errors import BuildInProgress
from shared.ports import BuildLedger


class FirestoreBuildLedger(BuildLedger):
    """Builds in `<prefix>dataset_builds/<build_id>`: status building | finished | rejected."""

    def __init__(self, settings: Settings, client: firestore.Client | None = None) -> None:
        self.client = client or firestore_client(settings.project, settings.firestore_database)
        self.builds = self.client.collection(settings.collection("dataset_builds"))

    def claim(self, build_id: str, attempt: str, now: datetime, lease: timedelta) -> dict[str, Any] | None:
        """Take the build for `attempt`; the finished (or rejected) record when there is nothing to do.

        Raises BuildInProgress when another attempt holds an unexpired lease.
        """
        ref = self.builds.document(build_id)
        outcome: dict[str, Any] = {}

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> None:
            outcome.clear()
            snapshot = ref.get(transaction=transaction)
            record = snapshot.to_dict() if snapshot.exists else None
            decision = claim_decision(record, attempt, now)
            if decision == "take":
                transaction.set(ref, claimed_record(record, build_id, attempt, now, lease))
            else:
                outcome[decision] = record

        run(self.client.transaction())
        if "busy" in outcome:
            raise BuildInProgress(f"build {build_id} is running (attempt {outcome['busy']['attempt']})")
        return outcome.get("done")

    def renew(self, build_id: str, attempt: str, until: datetime) -> bool:
        """Extend `attempt`'s lease to `until`; False when the build is no longer that attempt's."""
        ref = self.builds.document(build_id)
        held: list[bool] = []

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> None:
            held.clear()
            held.append(may_renew(ref.get(transaction=transaction).to_dict(), attempt))
            if held[0]:
                transaction.update(ref, {"lease_until": until})

        run(self.client.transaction())
        return held[0]

    def finish(self, build_id: str, status: str, result: dict[str, Any]) -> None:
        """Record the build's end (finished or rejected) with its result."""
        self.builds.document(build_id).set(
            {"status": status, "result": result, "finished_at": firestore.SERVER_TIMESTAMP}, merge=True
        )

    def get(self, build_id: str) -> dict[str, Any] | None:
        """One build's record, or None."""
        snapshot = self.builds.document(build_id).get()
        return snapshot.to_dict() if snapshot.exists else None
