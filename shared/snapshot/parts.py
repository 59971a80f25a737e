"""Snapshot parts: writing them, checking them before a read, and compacting many into one.

A part is ``learning_data/cases/part-<UTC watermark>-<token>.parquet``: the watermark (when it was written,
to the microsecond) makes names sort in writing order, the token keeps two writers of the same microsecond
apart. Parts are immutable; a case changed later is written again in a later part and the latest
``updated_at`` wins when reading, so a duplicate (a re-exported case, a compacted part beside the parts it
replaces) is harmless.

Backfill (every case stored so far into the snapshot): stream the cases (CaseStore.stream_cases, or a full
export) into ``write_cases``; it writes a part per ``rows_per_part`` cases. bench/snapshot_build.py
seeds its million cases this way.

The bucket is reached through ``shared.ports.PartStore`` (put, get, names, delete); ``LocalPartStore`` is a folder
with the same behaviour.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shared.domain import bucket_layout as layout
from shared.domain.case_snapshot import SNAPSHOT_SCHEMA, cases_to_table, schema_problems
from shared.errors import SnapshotPartError
from shared.ports import PartStore

PART_SUFFIX = ".parquet"
DEFAULT_COMPRESSION = "zstd"  # see bench/snapshot_build.py: smaller than snappy at a small cost in time
ROWS_PER_PART = 250_000




class LocalPartStore:
    """A folder as a PartStore: object names are paths under ``root``; a put lands whole or not at all."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        """The file that holds the object ``name``."""
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"object name {name!r} leaves the store's folder")
        return path

    def put(self, name: str, data: bytes) -> None:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".put-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)

    def get(self, name: str) -> bytes | None:
        path = self.path(name)
        return path.read_bytes() if path.is_file() else None

    def names(self, prefix: str) -> list[str]:
        base = self.root.resolve()
        found = (p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
        return sorted(name for name in found if name.startswith(prefix) and not Path(name).name.startswith("."))

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)


def part_name(now: datetime, prefix: str = layout.SNAPSHOT_PARTS) -> str:
    """A new part's object name: ``<prefix>part-<UTC watermark>-<token>.parquet``."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{prefix}part-{stamp}-{uuid.uuid4().hex[:8]}{PART_SUFFIX}"


def part_names(store: PartStore, prefix: str = layout.SNAPSHOT_PARTS) -> list[str]:
    """The parts under ``prefix``, oldest first (names sort by their watermark)."""
    return sorted(name for name in store.names(prefix) if name.endswith(PART_SUFFIX))


def table_bytes(table: pa.Table, compression: str = DEFAULT_COMPRESSION) -> bytes:
    """A table as the bytes of a Parquet file."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=compression)
    return sink.getvalue()


def write_part(
    store: PartStore, table: pa.Table, now: datetime | None = None, compression: str = DEFAULT_COMPRESSION,
    prefix: str = layout.SNAPSHOT_PARTS,
) -> str:
    """Write one part (a table of SNAPSHOT_SCHEMA) and return its name."""
    if not table.schema.equals(SNAPSHOT_SCHEMA):
        table = table.cast(SNAPSHOT_SCHEMA)
    name = part_name(now or datetime.now(UTC), prefix)
    store.put(name, table_bytes(table, compression))
    return name


def write_cases(
    store: PartStore, cases: Iterable[Mapping[str, Any]], rows_per_part: int = ROWS_PER_PART,
    now: datetime | None = None, compression: str = DEFAULT_COMPRESSION, prefix: str = layout.SNAPSHOT_PARTS,
) -> list[str]:
    """Stored cases into parts of at most ``rows_per_part`` rows (the backfill and the tail); their names."""
    names = []
    iterator = iter(cases)
    while chunk := list(islice(iterator, rows_per_part)):
        names.append(write_part(store, cases_to_table(chunk), now, compression, prefix))
    return names


@dataclass(frozen=True)
class PartsInfo:
    """Local part files checked readable, and how many of them have each column."""

    paths: tuple[Path, ...]
    present: Mapping[str, int]


def check_parts(paths: Sequence[Path], names: Sequence[str] | None = None) -> PartsInfo:
    """Read each part's footer: SnapshotPartError naming the first that is corrupt or of incompatible columns."""
    present: dict[str, int] = {}
    for index, path in enumerate(paths):
        shown = names[index] if names is not None else str(path)
        try:
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowException) as exc:
            raise SnapshotPartError(shown, f"not a readable Parquet file ({exc})") from exc
        problems = schema_problems(schema)
        if problems:
            raise SnapshotPartError(shown, "; ".join(problems))
        for column in SNAPSHOT_SCHEMA.names:
            if column in schema.names:
                present[column] = present.get(column, 0) + 1
    return PartsInfo(tuple(paths), present)


def fetch_parts(
    store: PartStore, folder: Path, prefix: str = layout.SNAPSHOT_PARTS, attempts: int = 3
) -> tuple[list[Path], list[str]]:
    """Every part under ``prefix`` as a local file (a LocalPartStore's own files, else copies in ``folder``),
    and the parts' names, in the same order.

    One part at a time is held in memory. In a Cloud Function, ``folder`` is /tmp, which is memory too: the
    parts' compressed size counts against the instance's memory beside the engine's limit. A part that is gone
    by the time it is read was compacted away after the listing, and its rows are in a part written after the
    listing: the listing is taken again.
    """
    for _ in range(attempts):
        names = part_names(store, prefix)
        if isinstance(store, LocalPartStore):
            paths = [store.path(name) for name in names]
            if all(path.is_file() for path in paths):
                return paths, names
            continue
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index, name in enumerate(names):
            data = store.get(name)
            if data is None:
                break
            # The index keeps the copies in the names' order, which the latest-row tie-break reads.
            path = folder / f"{index:06d}-{Path(name).name}"
            path.write_bytes(data)
            paths.append(path)
        else:
            return paths, names
        for path in paths:
            path.unlink(missing_ok=True)
    raise SnapshotPartError(prefix, f"parts kept vanishing while read ({attempts} listings): a compaction loop?")
