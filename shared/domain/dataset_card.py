"""A finished dataset's card: the `README.md` Hugging Face reads from a dataset folder.

The YAML header names one config whose `data_files` list each split that has rows (an empty split is left
out: Hugging Face cannot load a split file without rows), the columns as `dataset_info.features` and the rows
per split; the body says which filters made the dataset, where it came from and which versions hold it. The
header is plain JSON scalars in YAML block form, so no YAML library is needed to write it.

Hugging Face names the splits `train`, `validation` and `test`; the build's `val` split is `validation`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from shared.domain import bucket_layout as layout
from shared.domain.dataset_build import ROW_FEATURES, SPLITS

# The build's split -> Hugging Face's split name.
HF_SPLITS: dict[str, str] = {"train": "train", "val": "validation", "test": "test"}
CARD_NAME = "README.md"
# ROW_FEATURES' type names -> Hugging Face's YAML feature entry (besides the name). `sequence` is read by every
# `datasets` since 2.x (4.x and later read it as `List`).
_FEATURE_YAML = {
    "string": ("dtype", "string"),
    "float64": ("dtype", "float64"),
    "int64": ("dtype", "int64"),
    "bool": ("dtype", "bool"),
    "list<string>": ("sequence", "string"),
}


def _scalar(value: Any) -> str:
    """A YAML scalar: JSON's form (a JSON string is a valid YAML double-quoted string)."""
    return orjson.dumps(value).decode()


def rows_per_split(metadata: Mapping[str, Any]) -> dict[str, int]:
    """Rows of each split, by the build's split names, from metadata.json."""
    sizes = metadata.get("split_sizes") or {}
    return {split: int(sizes.get(split) or 0) for split in SPLITS}


def splits_with_rows(metadata: Mapping[str, Any]) -> list[str]:
    """The build's splits that have rows, in dataset order."""
    return [split for split, rows in rows_per_split(metadata).items() if rows > 0]


def sampling_rate(metadata: Mapping[str, Any]) -> int | None:
    """The rate the rows' audio was read at (metadata's `audio`, when the build read it), else None."""
    rate = (metadata.get("audio") or {}).get("sampling_rate")
    return int(rate) if isinstance(rate, int) and not isinstance(rate, bool) and rate > 0 else None


def _split_bytes(metadata: Mapping[str, Any], split: str) -> int:
    """The split's JSON lines file size as metadata.json records it (0 when it does not): `datasets` ignores a
    card's split list that lacks num_bytes (with a warning), so every split carries one."""
    entry = (metadata.get("files") or {}).get(layout.split_file(split)) or {}
    return int(entry.get("bytes") or 0)


def struct_fields(kind: str) -> list[tuple[str, str]] | None:
    """The fields of a `struct<name: type, ...>` type name (types may nest), in order; None for another type.
    metadata.json names an augmented row's `augmentation` so (audio_transforms.AUGMENTATION_FEATURE)."""
    kind = kind.strip()
    if not (kind.startswith("struct<") and kind.endswith(">")):
        return None
    fields, depth, start, inner = [], 0, 0, kind[len("struct<"):-1]
    for at, char in enumerate(inner + ","):
        depth += (char == "<") - (char == ">")
        if char == "," and depth == 0:
            name, _, field_kind = inner[start:at].partition(":")
            fields.append((name.strip(), field_kind.strip()))
            start = at + 1
    return fields


def _feature(name: str, kind: str, indent: str) -> list[str]:
    """One feature's YAML entry: a scalar's dtype, a list's type, or a struct's fields (Hugging Face's form, so
    `datasets` reads a struct column as a dict)."""
    fields = struct_fields(kind)
    if fields is None:
        key, value = _FEATURE_YAML.get(kind, ("dtype", "string"))
        return [f"{indent}- name: {_scalar(name)}", f"{indent}  {key}: {value}"]
    lines = [f"{indent}- name: {_scalar(name)}", f"{indent}  struct:"]
    for field_name, field_kind in fields:
        lines += _feature(field_name, field_kind, indent + "  ")
    return lines


def _features(metadata: Mapping[str, Any]) -> list[str]:
    features = metadata.get("features") or ROW_FEATURES
    rate = sampling_rate(metadata)
    lines = []
    for name, kind in features.items():
        if name == "audio" and rate is not None:
            # Hugging Face's Audio feature: decoded (and resampled to this rate) when a row is read.
            lines += [f"  - name: {_scalar(name)}", "    dtype:", "      audio:", f"        sampling_rate: {rate}"]
            continue
        lines += _feature(str(name), str(kind), "  ")
    return lines


def card_text(
    metadata: Mapping[str, Any], data_files: Mapping[str, str], versions: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The card of a dataset whose split files sit at `data_files` (the build's split -> a path relative to the
    card's folder; only splits with rows are named, whatever is given), with the `versions` (registry entries)
    that hold it."""
    sizes = rows_per_split(metadata)
    named = [split for split in splits_with_rows(metadata) if split in data_files]
    header = ["---", f"pretty_name: {_scalar('sttdata ' + str(metadata.get('dataset_id')))}",
              "task_categories:", "- automatic-speech-recognition", "configs:", "- config_name: default",
              "  data_files:"]
    for split in named:
        header += [f"  - split: {HF_SPLITS[split]}", f"    path: {_scalar(data_files[split])}"]
    header += ["dataset_info:", "  features:", *_features(metadata), "  splits:"]
    for split in named:
        header += [f"  - name: {HF_SPLITS[split]}", f"    num_bytes: {_split_bytes(metadata, split)}",
                   f"    num_examples: {sizes[split]}"]
    header.append("---")
    return "\n".join(header) + "\n\n" + _body(metadata, sizes, named, versions)


def _body(
    metadata: Mapping[str, Any], sizes: Mapping[str, int], named: Sequence[str],
    versions: Sequence[Mapping[str, Any]],
) -> str:
    request = metadata.get("request") or {}
    quality = metadata.get("quality_report") or {}
    overall = (quality.get("quality_metrics") or {}).get("overall_score")
    lines = [f"# {metadata.get('dataset_id')}", "",
             "Fine-tuning rows of a speech-to-text model built by sttdata from corrected transcription failures:",
             "`audio` is the recording's URI, `text` the transcript to learn.", "", "## Splits", "",
             "| split | file | rows |", "|---|---|---|"]
    for split in SPLITS:
        shown = HF_SPLITS[split]
        lines.append(f"| {shown} | {'`' + split + '`' if split in named else '(none)'} | {sizes[split]} |")
    empty = [HF_SPLITS[split] for split in SPLITS if split not in named]
    if empty:
        groups = metadata.get("groups_per_split") or {}
        lines += ["", f"Left out, having no rows: {', '.join(empty)}. Splits are assigned by speaker (else by "
                  f"recording) group, and {sum(int(v or 0) for v in groups.values())} groups were too few to fill "
                  "every ratio: lower that split's ratio or add speakers."]
    lines += ["", "## Filters", ""]
    lines += [f"- `{key}`: {_scalar(value)}" for key, value in sorted(request.items())]
    lines += ["", "## Provenance", "",
              f"- built: {metadata.get('created_at')} from {metadata.get('source')}",
              f"- bucket prefix: {metadata.get('gcs_path')}",
              f"- checksum (sha256 over the files' sha256): `{metadata.get('checksum')}`",
              f"- quality: {'passed' if quality.get('passed') else 'failed'}"
              + (f", overall score {overall:.4f}" if isinstance(overall, int | float) else "")
              + (f", thresholds {_scalar(quality['thresholds'])}" if quality.get("thresholds") else "")]
    lines += ["", "## Versions", ""]
    if not versions:
        lines.append("Not registered as a version.")
    for entry in versions:
        flag = " (registered although its quality check failed)" if entry.get("quality_failed") else ""
        lines.append(f"- `{entry.get('version_id')}`, checksum `{entry.get('checksum')}`, created "
                     f"{entry.get('created_at')}{flag}")
    return "\n".join(lines) + "\n"
