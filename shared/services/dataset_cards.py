"""The dataset card in the bucket: `finetuning_datasets/<dataset_id>/README.md` (shared/domain/dataset_card.py).

Written when a build finishes (after its version, so the card names it) and again whenever a Hugging Face
folder is asked for and the card would say something new (a version registered since). The card is derived
from metadata.json and the registry, so it is not in the dataset's checksummed `files`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.domain import bucket_layout as layout
from shared.domain.dataset_build import SPLITS
from shared.domain.dataset_card import CARD_NAME, card_text
from shared.ports import Bucket
from shared.services.datasets import finished_metadata
from shared.services.version_registry import read_registry


def versions_of(bucket: Bucket, dataset_id: str) -> list[dict[str, Any]]:
    """The registry's entries of one dataset, oldest first."""
    entries = [e for e in read_registry(bucket)["versions"].values() if e.get("dataset_id") == dataset_id]
    return sorted(entries, key=lambda entry: str(entry.get("created_at")))


def bucket_card(bucket: Bucket, dataset_id: str, metadata: Mapping[str, Any] | None = None) -> str:
    """The card of a finished dataset as it sits in its bucket prefix (its split files beside it)."""
    found = metadata if metadata is not None else finished_metadata(bucket, dataset_id)
    return card_text(found, {split: layout.split_file(split) for split in SPLITS}, versions_of(bucket, dataset_id))


def write_card(bucket: Bucket, dataset_id: str, metadata: Mapping[str, Any] | None = None) -> str:
    """Write the dataset's card to its prefix unless it is already there as it would be; its gs:// URI."""
    name = layout.dataset_prefix(dataset_id) + CARD_NAME
    data = bucket_card(bucket, dataset_id, metadata).encode()
    if bucket.get(name) != data:
        return bucket.put(name, data, "text/markdown; charset=utf-8")
    return bucket.uri(name)
