"""One frozen Settings object, read from the environment (Terraform variables set the same names)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from shared.domain.dataset_quality import QualityThresholds


@dataclass(frozen=True)
class Settings:
    """Every name the outside world relies on, with the defaults of CONTRACT.md."""

    project: str = "demo-sttdata"
    bucket: str = "stt-project-datasets"
    topic_failures: str = "transcription-failures"
    topic_corrections: str = "transcription-corrections"
    topic_metrics: str = "training-metrics"
    topic_bucket_events: str = "bucket-events"
    # The Firestore database (Terraform creates it under this name); "(default)" is the project's default one.
    firestore_database: str = "(default)"
    # Prefix of every Firestore collection: lets tests (and staging) share one database.
    collection_prefix: str = ""
    # Delivery policy of every push subscription.
    max_delivery_attempts: int = 5
    ack_deadline_s: int = 60
    min_backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    # The deployment's default quality thresholds of a build, a check and a validation (the seed's four; a build
    # request's `quality_thresholds` and an instance's `quality_thresholds` override them).
    min_completeness: float = 0.95
    min_consistency: float = 0.90
    min_validity: float = 0.95
    min_overall_score: float = 0.90
    # Where an event's audio_path without a scheme (the seed's `audio/sample.wav`) points: a gs:// prefix; empty
    # means the deployment's own bucket (`gs://<bucket>/`).
    audio_root: str = ""
    # Days a quarantined payload is kept (its Firestore record by TTL on expire_at, its whole copy under
    # quarantine/ by the bucket's lifecycle); 0 keeps them for ever.
    quarantine_retention_days: int = 30

    def __post_init__(self) -> None:
        self.quality_thresholds()  # BadInput (a ValueError) naming a threshold outside [0, 1]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `env` (default: os.environ), falling back to the defaults."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = env.get(ENV_NAMES[field.name])
            if raw is None or raw == "":
                continue
            kind = type(getattr(_DEFAULTS, field.name))
            values[field.name] = kind(raw)
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings in another process."""
        return {ENV_NAMES[f.name]: str(getattr(self, f.name)) for f in fields(self)}

    def quality_thresholds(self) -> QualityThresholds:
        """The deployment's default quality thresholds."""
        return QualityThresholds(self.min_completeness, self.min_consistency, self.min_validity,
                                 self.min_overall_score)

    def resolved_audio_root(self) -> str:
        """The gs:// prefix relative audio paths are resolved against."""
        return self.audio_root or f"gs://{self.bucket}/"

    def collection(self, name: str) -> str:
        """The Firestore collection id for `name` under this deployment's prefix."""
        return f"{self.collection_prefix}{name}"

    def dead_letter_topic(self, topic: str) -> str:
        """The dead-letter topic that belongs to `topic` (CONTRACT.md: `<topic>-dead-letter`)."""
        return f"{topic}-dead-letter"


ENV_NAMES: dict[str, str] = {
    "project": "GOOGLE_CLOUD_PROJECT",
    "bucket": "STT_BUCKET",
    "topic_failures": "STT_TOPIC_FAILURES",
    "topic_corrections": "STT_TOPIC_CORRECTIONS",
    "topic_metrics": "STT_TOPIC_METRICS",
    "topic_bucket_events": "STT_TOPIC_BUCKET_EVENTS",
    "firestore_database": "STT_FIRESTORE_DATABASE",
    "collection_prefix": "STT_COLLECTION_PREFIX",
    "audio_root": "STT_AUDIO_ROOT",
    "max_delivery_attempts": "STT_MAX_DELIVERY_ATTEMPTS",
    "ack_deadline_s": "STT_ACK_DEADLINE_S",
    "min_backoff_s": "STT_MIN_BACKOFF_S",
    "max_backoff_s": "STT_MAX_BACKOFF_S",
    "min_completeness": "STT_MIN_COMPLETENESS",
    "min_consistency": "STT_MIN_CONSISTENCY",
    "min_validity": "STT_MIN_VALIDITY",
    "min_overall_score": "STT_MIN_OVERALL_SCORE",
    "quarantine_retention_days": "STT_QUARANTINE_RETENTION_DAYS",
}

_DEFAULTS = Settings()
