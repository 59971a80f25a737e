"""Local copies of what the bucket holds: a finished dataset mirrored to `<output_dir>/<dataset_id>/`, its
Hugging Face folder, a version restored into a local directory, a report written to a local file.

The bucket stays the source of truth; a local copy is made from it and never read back as the truth. Every
file is streamed from the bucket a chunk at a time and its sha256 checked against the recorded one while it is
written (never a whole file in memory); a wrong one stops the copy and names the object. A folder is assembled
under a hidden sibling name (`.<name>.<random>.partial`) and renamed into place only once every file is there
and verified, so a crash leaves the previous folder (or none) and a partial sibling, never a mixed folder.

A folder this module writes carries `.sttdata.json` (what it holds, from which dataset or version, the files'
sha256). An existing folder is replaced only when it is empty or carries that file, so a mistyped path never
wipes a directory of someone else's files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from shared.domain import audio_clips
from shared.domain import bucket_layout as layout
from shared.domain.audio_clips import UnusableAudio, most_common_rate
from shared.domain.dataset_build import SPLITS
from shared.domain.dataset_card import CARD_NAME, HF_SPLITS, card_text, splits_with_rows
from shared.errors import BadInput, NotFound, ObjectGone
from shared.ports import Bucket
from shared.services.audio_reads import OpenBucket, case_folder, only_bucket, split_uri
from shared.services.dataset_cards import bucket_card, versions_of, write_card
from shared.services.datasets import finished_metadata

CHUNK = 8 * 1024 * 1024  # bytes per read while copying an object to a local file
MARKER = ".sttdata.json"
FORMATS = {"json": ".jsonl", "parquet": ".parquet"}
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")


def safe_name(name: str, what: str) -> str:
    """`name` as one path component (letters, digits, '.', '_', '-'; not '.' or '..'); BadInput otherwise."""
    if not _SAFE_NAME.fullmatch(name) or name in (".", ".."):
        raise BadInput(f"{what} {name!r} cannot name a local folder: only letters, digits, '.', '_' and '-'")
    return name


def download_verified(bucket: Bucket, name: str, path: Path, sha256: str | None) -> str:
    """Stream object `name` to `path`, hashing it on the way; its sha256. With `sha256` given, a different
    digest removes the file and raises BadInput naming the object (it changed since it was recorded); a
    missing object raises NotFound."""
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with bucket.reader(name) as stream, path.open("wb") as out:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except ObjectGone:
        path.unlink(missing_ok=True)
        raise NotFound(f"{bucket.uri(name)} is missing: it was recorded with sha256 {sha256}") from None
    found = digest.hexdigest()
    if sha256 is not None and found != sha256:
        path.unlink(missing_ok=True)
        raise BadInput(f"{bucket.uri(name)} has sha256 {found}, not the recorded {sha256}: it changed since it "
                       "was recorded, so no local copy is made")
    return found


def file_sha256(path: Path) -> str:
    """A local file's sha256, read a chunk at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _replaceable(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise BadInput(f"{target} exists and is not a directory; give a directory path")
    if target.is_dir() and any(target.iterdir()) and not (target / MARKER).is_file():
        raise BadInput(f"{target} is a directory that sttdata did not write (no {MARKER}) and is not empty: it "
                       "is never replaced; give a new or empty directory")


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """A hidden sibling folder that replaces `target` when the block ends cleanly (removed when it raises)."""
    _replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _replaceable(target)  # again: something may have appeared there meanwhile
    if target.exists():
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)


def _marker(folder: Path, **content: Any) -> None:
    (folder / MARKER).write_bytes(orjson.dumps(content, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def read_marker(folder: Path) -> dict[str, Any] | None:
    """What `.sttdata.json` in `folder` says, None when there is none."""
    try:
        found: dict[str, Any] = orjson.loads((folder / MARKER).read_bytes())
    except (FileNotFoundError, NotADirectoryError, orjson.JSONDecodeError):
        return None
    return found


def mirror_dataset(bucket: Bucket, dataset_id: str, output_dir: Path, now: datetime) -> Path:
    """`<output_dir>/<dataset_id>/`: every file metadata.json records (split files, Parquet copies) verified
    against its sha256, metadata.json itself and the dataset card (so `datasets.load_dataset(folder)` opens
    it); the folder."""
    target = output_dir / safe_name(dataset_id, "dataset id")
    metadata = finished_metadata(bucket, dataset_id)
    prefix = layout.dataset_prefix(dataset_id)
    with staged_folder(target) as staging:
        for name, entry in sorted(metadata.get("files", {}).items()):
            download_verified(bucket, prefix + name, staging / name, entry.get("sha256"))
        (staging / layout.DATASET_METADATA).write_bytes(orjson.dumps(metadata, option=orjson.OPT_INDENT_2))
        (staging / CARD_NAME).write_text(bucket_card(bucket, dataset_id, metadata), encoding="utf-8")
        _marker(staging, kind="dataset", dataset_id=dataset_id, source=bucket.uri(prefix),
                checksum=metadata.get("checksum"), copied_at=now.isoformat(), files=metadata.get("files", {}))
    return target


def huggingface_folder(
    bucket: Bucket, dataset_id: str, output_format: str, folder: Path, now: datetime, *,
    include_audio: bool = False, open_bucket: OpenBucket | None = None,
) -> Path:
    """A folder `datasets.load_dataset(folder)` opens: one file per split with rows (`train`, `validation`,
    `test`, as JSON lines or Parquet), each verified against the build's sha256, and a card (README.md) whose
    YAML names exactly those files. The same card is written to the dataset's bucket prefix.

    With `include_audio`, every row's clip is copied (through `open_bucket`, the audio's buckets) to
    `audio/<case>/<file>` in the folder and the row's `audio` becomes that path, relative to the folder, so the
    folder works away from the bucket; the card declares `audio` as an Audio feature at the rate most clips
    have. A clip that cannot be copied or read leaves its row's `audio` null, named in `.sttdata.json`."""
    if output_format not in FORMATS:
        raise BadInput(f"output_format must be 'json' or 'parquet', not {output_format!r}")
    metadata = finished_metadata(bucket, dataset_id)
    recorded = metadata.get("files", {})
    prefix = layout.dataset_prefix(dataset_id)
    write_card(bucket, dataset_id, metadata)
    files: dict[str, str] = {}
    audio = _AudioCopies(open_bucket or only_bucket(bucket)) if include_audio else None
    with staged_folder(folder) as staging:
        for split in splits_with_rows(metadata):
            local = HF_SPLITS[split] + FORMATS[output_format]
            source = layout.split_file(split) if output_format == "json" else layout.parquet_copy(split)
            if source in recorded:
                download_verified(bucket, prefix + source, staging / local, recorded[source].get("sha256"))
            else:  # a dataset built before its Parquet copies: made here from its verified split file
                _parquet_from_split(bucket, prefix + layout.split_file(split),
                                    recorded.get(layout.split_file(split), {}).get("sha256"), staging / local)
            if audio is not None:
                audio.localize(staging, staging / local, output_format)
            files[split] = local
        shown = metadata
        extra: dict[str, Any] = {}
        if audio is not None:
            shown = {**metadata, "audio": {"sampling_rate": most_common_rate(audio.rates),
                                           "sample_rates": {str(r): n for r, n in sorted(audio.rates.items())}}}
            extra = {"audio_files": audio.copied, "audio_missing": audio.missing[:AUDIO_NAMED_CAP],
                     "audio_missing_count": len(audio.missing)}
        card = card_text(shown, files, versions_of(bucket, dataset_id))
        (staging / CARD_NAME).write_text(card, encoding="utf-8")
        _marker(staging, kind="huggingface", dataset_id=dataset_id, format=output_format,
                checksum=metadata.get("checksum"), copied_at=now.isoformat(), files=files, **extra)
    return folder


AUDIO_FOLDER = "audio"
AUDIO_NAMED_CAP = 100


class _AudioCopies:
    """The clips of a Hugging Face folder's rows, each copied once into `audio/` and its header read."""

    def __init__(self, open_bucket: OpenBucket) -> None:
        self.open_bucket = open_bucket
        self.local: dict[str, str | None] = {}  # source URI -> its path relative to the folder (None: unusable)
        self.rates: Counter[int] = Counter()
        self.missing: list[dict[str, Any]] = []
        self.copied = 0

    def path_of(self, folder: Path, row: Mapping[str, Any]) -> str | None:
        """The folder-relative path of the row's clip, copied on first sight; None when it cannot be used."""
        uri = row.get("audio")
        if str(uri) not in self.local:
            try:
                self.local[str(uri)] = self._copy(folder, uri, str(row.get("case_id")))
                self.copied += 1
            except UnusableAudio as exc:
                self.local[str(uri)] = None
                self.missing.append({"case_id": row.get("case_id"), "audio": uri, "reason": str(exc)})
        return self.local[str(uri)]

    def _copy(self, folder: Path, uri: object, case_id: str) -> str:
        bucket_name, name = split_uri(uri)
        relative = f"{AUDIO_FOLDER}/{case_folder(case_id)}/{safe_file_name(name)}"
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.open_bucket(bucket_name).reader(name) as stream, target.open("wb") as out:
                shutil.copyfileobj(stream, out, CHUNK)
            with target.open("rb") as clip:
                self.rates[audio_clips.probe(clip).sample_rate] += 1
        except ObjectGone:
            target.unlink(missing_ok=True)
            raise UnusableAudio("missing: no such object") from None
        except UnusableAudio:
            target.unlink(missing_ok=True)
            raise
        return relative

    def localize(self, folder: Path, path: Path, output_format: str) -> None:
        """Rewrite the split file at `path` with each row's `audio` pointing at its local copy."""
        if output_format == "json":
            rewritten = path.with_suffix(".tmp")
            with path.open("rb") as source, rewritten.open("wb") as out:
                for line in source:
                    if line.strip():
                        row = orjson.loads(line)
                        out.write(orjson.dumps({**row, "audio": self.path_of(folder, row)}) + b"\n")
            os.replace(rewritten, path)
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        rows = table.select(["audio", "case_id"]).to_pylist()
        local = pa.array([self.path_of(folder, row) for row in rows], pa.string())
        pq.write_table(table.set_column(table.schema.get_field_index("audio"), "audio", local), path,
                       compression="zstd")


def safe_file_name(name: str) -> str:
    """The last part of an object name as a local file name (letters, digits, '.', '_', '-')."""
    base = name.rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")
    return cleaned or "clip"


def _parquet_from_split(bucket: Bucket, name: str, sha256: str | None, path: Path) -> None:
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    from shared.snapshot.engine import ROW_SCHEMA

    source = path.with_suffix(".jsonl.tmp")
    download_verified(bucket, name, source, sha256)
    options = pa_json.ParseOptions(explicit_schema=ROW_SCHEMA, unexpected_field_behavior="ignore")
    pq.write_table(pa_json.read_json(source, parse_options=options), path)
    source.unlink()


def restore_version(bucket: Bucket, entry: Mapping[str, Any], target: Path, now: datetime) -> list[str]:
    """A version's files (its manifest) into local directory `target`, each verified against its sha256, with
    `.sttdata.json` as the restore's manifest; the local paths. `target` becomes exactly those files."""
    prefix = layout.dataset_prefix(str(entry["dataset_id"]))
    files = entry["files"]
    with staged_folder(target) as staging:
        for name in sorted(files):
            download_verified(bucket, prefix + name, staging / name, files[name].get("sha256"))
        _marker(staging, kind="restore", version_id=entry["version_id"], dataset_id=entry["dataset_id"],
                checksum=entry["checksum"], source=bucket.uri(prefix), restored_at=now.isoformat(), files=files)
    return [str(target / name) for name in sorted(files)]


def local_dataset(folder: Path) -> tuple[str, dict[str, Any]]:
    """(dataset_id, metadata) of a local copy made by mirror_dataset (or a restore of one); BadInput when the
    folder is none."""
    marker = read_marker(folder) or {}
    metadata_file = folder / layout.DATASET_METADATA
    if marker.get("kind") == "dataset" and metadata_file.is_file():
        metadata: dict[str, Any] = orjson.loads(metadata_file.read_bytes())
        return str(metadata["dataset_id"]), metadata
    if marker.get("kind") == "restore":
        return str(marker["dataset_id"]), {"dataset_id": marker["dataset_id"], "files": marker.get("files", {})}
    raise BadInput(f"{folder} is not a local copy of a dataset (no {MARKER} of a mirrored or restored dataset)")


def changed_local_files(folder: Path, recorded: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The recorded files (name -> {"sha256"}) missing from `folder` or different there, by name."""
    return [name for name, entry in sorted(recorded.items())
            if not (folder / name).is_file() or file_sha256(folder / name) != entry.get("sha256")]


def local_split_files(folder: Path) -> dict[str, Path | None]:
    """The split files of a local copy, by split (None for one that is not there)."""
    return {split: (folder / layout.split_file(split)) if (folder / layout.split_file(split)).is_file() else None
            for split in SPLITS}


def write_local_file(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary sibling and a rename (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
