"""The composition root: the one place that builds the adapters a process uses.

Entry points (functions/*/main.py) and the Python API's classes ask `adapters()` for what they need. Each
adapter is built on first use and kept for the process, so clients are never created at import time and a
warm function instance reuses its connections. Tests hand fakes (subclasses of the same ports) to `Adapters`
and, to reach code that calls `adapters()` itself (a function under functions-framework's test client),
install them with `use(...)`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property

from shared.config import Settings
from shared.ports import Bucket, BuildLedger, CaseStore, DeadLetterQueue, MetricStore, ProgressBoard, Publisher


class Adapters:
    """Every adapter of one deployment; each one given (a fake) or built on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        cases: CaseStore | None = None,
        bucket: Bucket | None = None,
        metrics: MetricStore | None = None,
        builds: BuildLedger | None = None,
        publisher: Publisher | None = None,
        buckets: Mapping[str, Bucket] | None = None,
        progress: ProgressBoard | None = None,
        dead_letters: DeadLetterQueue | None = None,
    ) -> None:
        self.settings = settings
        self._buckets: dict[str, Bucket] = dict(buckets or {})
        self._buckets_lock = threading.Lock()
        given = {"cases": cases, "bucket": bucket, "metrics": metrics, "builds": builds, "publisher": publisher,
                 "progress": progress, "dead_letters": dead_letters}
        # A given adapter takes the place of the cached_property's value, so it is never built.
        self.__dict__.update({name: adapter for name, adapter in given.items() if adapter is not None})

    @cached_property
    def bucket(self) -> Bucket:
        """The deployment's bucket."""
        from shared.adapters.gcs import BucketStore

        return BucketStore(self.settings)

    def bucket_named(self, name: str) -> Bucket:
        """Another bucket of the same project, read through the same adapter (the audio buckets a dataset's rows
        point into); the deployment's own bucket for its own name. Built once per name; what the function may
        read there is IAM's to say."""
        if name == self.settings.bucket:
            return self.bucket
        with self._buckets_lock:
            found = self._buckets.get(name)
            if found is None:
                from dataclasses import replace

                from shared.adapters.gcs import BucketStore

                found = self._buckets[name] = BucketStore(replace(self.settings, bucket=name))
            return found

    @cached_property
    def cases(self) -> CaseStore:
        """Cases, counters and quarantine in Firestore; oversize rejects kept whole in the bucket."""
        from shared.adapters.firestore_cases import FirestoreCaseStore

        return FirestoreCaseStore(self.settings, overflow=self.bucket)

    @cached_property
    def metrics(self) -> MetricStore:
        """Training-metric records and trend snapshots in Firestore."""
        from shared.adapters.firestore_metrics import FirestoreMetricStore

        return FirestoreMetricStore(self.settings)

    @cached_property
    def builds(self) -> BuildLedger:
        """The leased ledger of dataset builds in Firestore."""
        from shared.adapters.firestore_builds import FirestoreBuildLedger

        return FirestoreBuildLedger(self.settings)

    @cached_property
    def progress(self) -> ProgressBoard:
        """How far imports and builds got, in Firestore (for the CLI and the dashboard)."""
        from shared.adapters.firestore_progress import FirestoreProgressBoard

        return FirestoreProgressBoard(self.settings)

    @cached_property
    def publisher(self) -> Publisher:
        """Pub/Sub publishing, batched."""
        from shared.adapters.pubsub_publisher import PubSubPublisher

        return PubSubPublisher(self.settings.project)

    @cached_property
    def dead_letters(self) -> DeadLetterQueue:
        """The dead-letter subscriptions in Pub/Sub (pull, ack, republish)."""
        from shared.adapters.pubsub_dead_letters import PubSubDeadLetters

        return PubSubDeadLetters(self.settings.project)


_lock = threading.Lock()
_by_settings: dict[Settings, Adapters] = {}


def adapters(settings: Settings | None = None) -> Adapters:
    """The process's adapters for `settings` (default: from the environment), built once."""
    settings = settings or Settings.from_env()
    with _lock:
        found = _by_settings.get(settings)
        if found is None:
            found = _by_settings[settings] = Adapters(settings)
        return found


@contextmanager
def use(replacement: Adapters) -> Iterator[Adapters]:
    """Within the block, `adapters(replacement.settings)` answers `replacement` (tests install fakes so)."""
    with _lock:
        previous = _by_settings.get(replacement.settings)
        _by_settings[replacement.settings] = replacement
    try:
        yield replacement
    finally:
        with _lock:
            if previous is None:
                _by_settings.pop(replacement.settings, None)
            else:
                _by_settings[replacement.settings] = previous
