"""What the seed's constructor parameters mean here, in one place for the five Python API classes.

- ``use_gcs``: always True. The bucket (with Firestore and Pub/Sub) is this system's source of truth: cases,
  metrics, datasets and the version registry live there and nowhere else, so there is no local-only mode to
  switch to. ``use_gcs=False`` is refused with the reason and the way to work without Google Cloud: the local
  stack (``make up``, then ``source .local/stack.env``) runs the same calls against the emulators.
- ``gcs_bucket_name``: the bucket to use (``"stt-project-datasets"`` or ``"gs://stt-project-datasets"``),
  overriding the settings' bucket (``STT_BUCKET``); the project and Firestore stay the settings'.
- ``local_storage_dir`` / ``output_dir`` / ``base_dir``: local directories where local copies go (prepared
  datasets under ``<output_dir>/<dataset_id>/``, Hugging Face folders, reports, restores), kept on the instance
  as ``Path`` objects, relative to the working directory as given. Nothing is read from them: they never hold
  the only copy of anything. Nothing is created in them when the object is built.
- ``data_manager``: share that DataManager's deployment (its settings and adapters, so its clients too).
- ``settings`` / ``adapters`` (keywords): the deployment as a ``Settings`` (default: from the environment) or as
  ready adapters (tests hand in fakes). A ``Settings`` given as the first positional argument is taken as
  ``settings=`` (how callers wrote it before the seed's parameters came first).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from shared import bootstrap
from shared.config import Settings
from shared.domain.dataset_quality import QualityThresholds, quality_thresholds
from shared.errors import BadInput

LocalPath = str | os.PathLike[str]
T = TypeVar("T")
# Cloud Storage bucket names: 3-222 characters of lowercase letters, digits, "-", "_" and "."; letter or digit
# at both ends (the 63-character limit per dot-separated part is left to the service).
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")


def refuse_local_only(use_gcs: object, owner: str) -> None:
    """BadInput for use_gcs=False (or any false value), saying why and what to do instead."""
    if use_gcs:
        return
    raise BadInput(
        f"{owner}(use_gcs=False) is not supported: the bucket (with Firestore and Pub/Sub) is this system's "
        "source of truth, and there is no local-only store to fall back to. To work without Google Cloud, "
        "start the local stack (`make up`, then `source .local/stack.env`) and keep use_gcs=True: the same calls "
        "then go to the emulators. The local directories (local_storage_dir, output_dir, base_dir) only "
        "receive local copies."
    )


def bucket_name(given: str) -> str:
    """A bucket name from `given` ("name" or "gs://name", a trailing "/" allowed); BadInput when it is none."""
    name = given.strip().removeprefix("gs://").rstrip("/") if isinstance(given, str) else given
    if not isinstance(name, str) or not _BUCKET_NAME.match(name):
        raise BadInput(
            f"gcs_bucket_name {given!r} is not a bucket name: 3-222 lowercase letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (a 'gs://' prefix is allowed, an object path is not)"
        )
    return name


def legacy_settings(first: T | Settings, settings: Settings | None) -> tuple[T | None, Settings | None]:
    """(first, settings), or (None, first) when `first` is a Settings given positionally (the old signature)."""
    if not isinstance(first, Settings):
        return first, settings
    if settings is not None:
        raise BadInput("settings given twice: positionally and as settings=")
    return None, first


def deployment(
    owner: str,
    *,
    use_gcs: object = True,
    gcs_bucket_name: str | None = None,
    settings: Settings | None = None,
    adapters: bootstrap.Adapters | None = None,
    data_manager: Any = None,
) -> bootstrap.Adapters:
    """The adapters an instance of `owner` uses, after the checks the module docstring describes."""
    refuse_local_only(use_gcs, owner)
    if data_manager is not None:
        if settings is not None or adapters is not None:
            raise BadInput(f"{owner}: give data_manager or settings/adapters, not both (data_manager brings its "
                           "deployment)")
        adapters = getattr(data_manager, "adapters", None)
        if not isinstance(adapters, bootstrap.Adapters):
            raise BadInput(f"{owner}: data_manager must be a DataManager, not {type(data_manager).__name__}")
    if adapters is not None and settings is not None and adapters.settings != settings:
        raise BadInput(f"{owner}: settings and adapters name different deployments; give one of them")
    wanted = bucket_name(gcs_bucket_name) if gcs_bucket_name is not None else None
    if adapters is not None:
        if wanted is not None and wanted != adapters.settings.bucket:
            source = "data_manager" if data_manager is not None else "adapters"
            raise BadInput(f"{owner}: gcs_bucket_name {wanted!r} differs from the bucket of the given {source} "
                           f"({adapters.settings.bucket!r}); leave gcs_bucket_name out to share it")
        return adapters
    settings = settings or Settings.from_env()
    if wanted is not None and wanted != settings.bucket:
        settings = replace(settings, bucket=wanted)
    return bootstrap.adapters(settings)


def local_dir(given: LocalPath | None, default: LocalPath) -> Path:
    """A local directory as a Path (`~` expanded, relative paths kept relative); nothing is created."""
    return Path(os.fspath(default if given is None else given)).expanduser()


def is_bucket_uri(path: str | os.PathLike[str]) -> bool:
    """True for a `gs://` URI (the bucket); anything else given as a path means the local disk."""
    return isinstance(path, str) and path.startswith("gs://")


def bucket_object(uri: str, bucket: str) -> str:
    """The object name (or prefix) of `gs://<bucket>/<name>`; BadInput for another bucket."""
    head = f"gs://{bucket}/"
    if not uri.startswith(head):
        raise BadInput(f"{uri!r} is not in this deployment's bucket: give gs://{bucket}/... or a local path")
    return uri.removeprefix(head)


class QualityThresholdsSetting:
    """The seed's `quality_thresholds` on an instance: a dict of the four minimums (`min_completeness`,
    `min_consistency`, `min_validity`, `min_overall_score`), by default the deployment's (Settings), that the
    instance's builds, checks, validations and versions apply. Assigning a dict (a key left out keeps the
    deployment's value) or changing one of its keys takes effect on the next call; a bad key or a value outside
    [0, 1] is refused when assigned and again when used. Instances that share one setting (the integrated
    system's pipeline and version control) read and assign the same dict."""

    settings: Settings
    _thresholds: Any
    _thresholds_owner: QualityThresholdsSetting | None = None

    def _init_thresholds(self, given: Any) -> None:
        self._thresholds = self.settings.quality_thresholds().as_dict()
        if given is not None:
            self.quality_thresholds = given

    @property
    def quality_thresholds(self) -> Any:
        if self._thresholds_owner is not None:
            return self._thresholds_owner.quality_thresholds
        return self._thresholds

    @quality_thresholds.setter
    def quality_thresholds(self, value: Any) -> None:
        if self._thresholds_owner is not None:
            self._thresholds_owner.quality_thresholds = value
            return
        checked = quality_thresholds(value, self.settings.quality_thresholds())
        self._thresholds = value if isinstance(value, dict) else checked.as_dict()

    def share_thresholds_of(self, owner: QualityThresholdsSetting) -> None:
        """Read and assign `owner`'s thresholds from now on."""
        self._thresholds_owner = owner

    def thresholds(self) -> QualityThresholds:
        """The thresholds to apply now."""
        return quality_thresholds(self.quality_thresholds, self.settings.quality_thresholds())
