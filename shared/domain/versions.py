"""The dataset version registry as a pure value: build entries, add, compare, roll back, report.

The registry is the JSON document ``data_versions/version_registry.json``; the adapter reads and writes it
with a generation precondition, this module only computes the next value::

    {"schema_version": 1, "current_version": str | None, "versions": {version_id: entry},
     "history": [{"at": iso, "action": "create" | "rollback", "version_id": str, "previous": str | None}]}

Versions are immutable: nothing is ever deleted or rewritten, a rollback only moves ``current_version``.
A version is a manifest of per-file sha256 checksums plus ``checksum``, a sha256 over that manifest.
Every function returns a new registry and leaves its input untouched.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from shared.errors import BadInput, NotFound

SCHEMA_VERSION = 1
ACTIONS = ("create", "rollback")
KNOWN_NAMES_CAP = 10
MOVED_IDS_CAP = 20
RECENT_VERSIONS = 10
# Lower bounds of the report's quality buckets, best first; a version without a score is "poor".
QUALITY_BUCKETS = (("excellent", 0.95), ("good", 0.90), ("acceptable", 0.80))
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 64


def empty_registry() -> dict[str, Any]:
    """A registry with no versions."""
    return {"schema_version": SCHEMA_VERSION, "current_version": None, "versions": {}, "history": []}


def parse_registry(data: bytes | None) -> dict[str, Any]:
    """The registry stored as JSON bytes (None: not stored yet); ValueError naming what is corrupt."""
    if data is None:
        return empty_registry()
    try:
        registry = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"version registry is not valid JSON: {exc}") from exc
    _validate(registry)
    return registry


def _validate(registry: Any) -> None:
    """Raise ValueError at the first part of the registry that has the wrong shape."""
    if not isinstance(registry, dict):
        raise ValueError(f"version registry must be a JSON object, not {type(registry).__name__}")
    if registry.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"version registry schema_version is {registry.get('schema_version')!r}, expected 1")
    versions = registry.get("versions")
    if not isinstance(versions, dict):
        raise ValueError("version registry 'versions' must be an object of version_id -> entry")
    for version_id, entry in versions.items():
        _validate_entry(version_id, entry)
    current = registry.get("current_version")
    if current is not None and current not in versions:
        raise ValueError(f"version registry current_version {current!r} is not among its versions")
    history = registry.get("history")
    if not isinstance(history, list):
        raise ValueError("version registry 'history' must be a list")
    for position, item in enumerate(history):
        if (
            not isinstance(item, dict)
            or item.get("action") not in ACTIONS
            or not isinstance(item.get("version_id"), str)
        ):
            raise ValueError(f"version registry history item {position} is malformed: {item!r}")


def _validate_entry(version_id: str, entry: Any) -> None:
    """Raise ValueError when one version entry lacks what every reader relies on."""
    if not isinstance(entry, dict):
        raise ValueError(f"version {version_id!r} must be an object")
    if entry.get("version_id") != version_id:
        raise ValueError(f"version {version_id!r} carries version_id {entry.get('version_id')!r}")
    if not isinstance(entry.get("checksum"), str):
        raise ValueError(f"version {version_id!r} has no checksum")
    if not isinstance(entry.get("files"), dict):
        raise ValueError(f"version {version_id!r} has no files manifest")


def file_entry(data: bytes, rows: int) -> dict[str, Any]:
    """The manifest entry of one stored file."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "rows": rows}


def manifest_checksum(files: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 over the canonical JSON of name -> file sha256, so dict order does not matter."""
    canonical = orjson.dumps({name: entry["sha256"] for name, entry in files.items()}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def version_id_for(version_name: str | None, dataset_id: str) -> str:
    """The deterministic id of a build's version, so a redelivered build maps to the same id."""
    name = _UNSAFE.sub("_", version_name or dataset_id).strip("_")[:_MAX_NAME] or "dataset"
    return f"v_{name}_{hashlib.sha256(dataset_id.encode()).hexdigest()[:8]}"


def new_version(
    version_id: str,
    dataset_id: str,
    dataset_uri: str,
    files: Mapping[str, Mapping[str, Any]],
    metadata: Mapping[str, Any],
    quality_report: Mapping[str, Any] | None,
    parent_version: str | None,
    created_at: datetime,
) -> dict[str, Any]:
    """A registry entry for a committed dataset (copies of the given mappings)."""
    return {
        "version_id": version_id,
        "dataset_id": dataset_id,
        "dataset_path": dataset_uri,
        "created_at": created_at.isoformat(),
        "parent_version": parent_version,
        "checksum": manifest_checksum(files),
        "files": copy.deepcopy(dict(files)),
        "metadata": copy.deepcopy(dict(metadata)),
        "quality_report": copy.deepcopy(dict(quality_report)) if quality_report is not None else None,
    }


def _known(registry: Mapping[str, Any]) -> str:
    """The newest version ids, capped, for error messages."""
    ids = [entry["version_id"] for entry in _newest_first(registry["versions"].values())]
    shown = ", ".join(ids[:KNOWN_NAMES_CAP]) or "none"
    return shown + (f" (and {len(ids) - KNOWN_NAMES_CAP} more)" if len(ids) > KNOWN_NAMES_CAP else "")


def _history_item(action: str, version_id: str, previous: str | None, at: datetime) -> dict[str, Any]:
    """One line of the registry's history."""
    return {"at": at.isoformat(), "action": action, "version_id": version_id, "previous": previous}


def add_version(registry: Mapping[str, Any], entry: Mapping[str, Any], at: datetime) -> tuple[dict[str, Any], bool]:
    """A new registry with entry added and current; (registry, False) when the same version is already there."""
    version_id = entry["version_id"]
    existing = registry["versions"].get(version_id)
    if existing is not None:
        if existing["checksum"] == entry["checksum"]:
            return dict(registry), False
        raise BadInput(
            f"version {version_id!r} already exists with checksum {existing['checksum']}, "
            f"not {entry['checksum']}: versions are immutable, build under a new version name"
        )
    parent = entry.get("parent_version")
    if parent is not None and parent not in registry["versions"]:
        raise BadInput(f"parent version {parent!r} is unknown; known versions: {_known(registry)}")
    updated = copy.deepcopy(dict(registry))
    updated["versions"][version_id] = copy.deepcopy(dict(entry))
    updated["history"].append(_history_item("create", version_id, registry.get("current_version"), at))
    updated["current_version"] = version_id
    return updated, True


def get_version(registry: Mapping[str, Any], version_id: str) -> dict[str, Any]:
    """The entry of version_id; NotFound naming it when unknown."""
    entry = registry["versions"].get(version_id)
    if entry is None:
        raise NotFound(f"unknown version {version_id!r}; known versions: {_known(registry)}")
    return entry


def _newest_first(entries: Any) -> list[dict[str, Any]]:
    """Entries newest first; ties keep the later-added first."""
    indexed = list(enumerate(entries))
    return [entry for _, entry in sorted(indexed, key=lambda pair: (_created_key(pair[1]), pair[0]), reverse=True)]


def _created_key(entry: Mapping[str, Any]) -> tuple[float, str]:
    """(timestamp, raw) so parsed and unparsable created_at values still sort together."""
    raw = entry.get("created_at")
    text = raw if isinstance(raw, str) else ""
    try:
        return datetime.fromisoformat(text).timestamp(), text
    except ValueError:
        return float("-inf"), text


class VersionEntry(dict[str, Any]):
    """A registry entry as the Python API hands it out: a dict (JSON as it is, for the `api` and any encoder)
    whose top-level keys also read as attributes, as the seed's `v.version_id` / `v.checksum` do.

    A key that is not there is an AttributeError when read as an attribute (a KeyError by subscript, as for any
    dict); nested values stay plain dicts. No attribute can be set: a change goes through the dict's keys.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"version entry has no {name!r}; its keys: {', '.join(sorted(self))}") from None

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(key for key in self if isinstance(key, str))})


def as_entry(entry: Mapping[str, Any]) -> VersionEntry:
    """A copy of one registry entry readable by attribute (the nested values are the entry's own)."""
    return VersionEntry(entry)


def quality_score(entry: Mapping[str, Any]) -> float | None:
    """The overall quality score of a version's report, None when it has none."""
    report = entry.get("quality_report") or {}
    metrics = report.get("quality_metrics") or {}
    score = metrics.get("overall_score", report.get("overall_score"))
    return float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None


def list_versions(
    registry: Mapping[str, Any], parent_version: str | None = None, min_quality_score: float | None = None
) -> list[VersionEntry]:
    """Entries newest first, optionally only children of parent_version and only those scoring at least the min;
    each one readable by key or attribute (`VersionEntry`). A min outside [0, 1] is refused: no score is
    there, so it would answer an empty list that reads as "no version is good enough"."""
    if min_quality_score is not None and not 0.0 <= min_quality_score <= 1.0:  # NaN fails too
        raise BadInput(f"min_quality_score must be between 0 and 1 (a quality report's overall_score), "
                       f"got {min_quality_score!r}")
    entries = _newest_first(registry["versions"].values())
    if parent_version is not None:
        entries = [entry for entry in entries if entry.get("parent_version") == parent_version]
    if min_quality_score is not None:
        entries = [entry for entry in entries if (quality_score(entry) or 0.0) >= min_quality_score]
    return [as_entry(entry) for entry in entries]


def _ancestors(registry: Mapping[str, Any], version_id: str) -> list[str]:
    """version_id then its parents up the chain, stopping at a missing parent or a cycle."""
    chain: list[str] = []
    current: str | None = version_id
    while current is not None and current in registry["versions"] and current not in chain:
        chain.append(current)
        current = registry["versions"][current].get("parent_version")
    return chain


def get_version_lineage(registry: Mapping[str, Any], version_id: str) -> list[VersionEntry]:
    """The entries from the oldest known ancestor down to version_id; KeyError when it is unknown."""
    get_version(registry, version_id)
    return [as_entry(registry["versions"][ancestor]) for ancestor in reversed(_ancestors(registry, version_id))]


def _lineage_relation(registry: Mapping[str, Any], version_id1: str, version_id2: str) -> str:
    """A sentence saying how two versions are related through their parents."""
    if version_id1 == version_id2:
        return f"{version_id1} and {version_id2} are the same version"
    chain1, chain2 = _ancestors(registry, version_id1), _ancestors(registry, version_id2)
    if version_id2 in chain1:
        return f"{version_id1} is a descendant of {version_id2}"
    if version_id1 in chain2:
        return f"{version_id2} is a descendant of {version_id1}"
    # The nearest common ancestor: the first of version 1's ancestors that version 2 also descends from.
    common = next((ancestor for ancestor in chain1 if ancestor in set(chain2)), None)
    if common is not None:
        return f"{version_id1} and {version_id2} share ancestor {common}"
    return f"{version_id1} and {version_id2} are not related"


def split_sizes(entry: Mapping[str, Any]) -> dict[str, int]:
    """Rows per split: from the manifest's *.jsonl files, else from the quality report."""
    sizes = {
        name.removesuffix(".jsonl"): int(info.get("rows", 0))
        for name, info in entry.get("files", {}).items()
        if name.endswith(".jsonl")
    }
    if sizes:
        return sizes
    return dict((entry.get("quality_report") or {}).get("split_sizes") or {})


def _delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, float]:
    """after - before per key of either (a missing key counts as 0); non-numbers are skipped."""
    keys = sorted(set(before) | set(after))
    return {
        key: after.get(key, 0) - before.get(key, 0)
        for key in keys
        if all(isinstance(side.get(key, 0), int | float) for side in (before, after))
    }


def _metadata_diff(meta1: Mapping[str, Any], meta2: Mapping[str, Any]) -> dict[str, list[str]]:
    """Keys only in one side, and keys whose values differ."""
    return {
        "only_in_version1": sorted(set(meta1) - set(meta2)),
        "only_in_version2": sorted(set(meta2) - set(meta1)),
        "differing": sorted(key for key in set(meta1) & set(meta2) if meta1[key] != meta2[key]),
    }


def _files_differ(files1: Mapping[str, Any], files2: Mapping[str, Any]) -> list[str]:
    """Names of files whose sha256 differs or that exist in only one version."""
    names = set(files1) | set(files2)
    return sorted(
        name for name in names if (files1.get(name) or {}).get("sha256") != (files2.get(name) or {}).get("sha256")
    )


def compare_cases(case_ids1: Mapping[str, str], case_ids2: Mapping[str, str]) -> dict[str, Any]:
    """Counts of cases added, removed, kept and moved between splits (moved is 0 by design)."""
    kept = case_ids1.keys() & case_ids2.keys()
    moved = sorted(case_id for case_id in kept if case_ids1[case_id] != case_ids2[case_id])
    return {
        "added": len(case_ids2.keys() - case_ids1.keys()),
        "removed": len(case_ids1.keys() - case_ids2.keys()),
        "kept": len(kept),
        "moved": len(moved),
        "moved_case_ids": moved[:MOVED_IDS_CAP],
    }


def compare_versions(
    registry: Mapping[str, Any],
    version_id1: str,
    version_id2: str,
    case_ids1: Mapping[str, str] | None = None,
    case_ids2: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What changed from version 1 to version 2 (deltas are 2 minus 1); cases only when both maps are given."""
    entry1, entry2 = get_version(registry, version_id1), get_version(registry, version_id2)
    sizes1, sizes2 = split_sizes(entry1), split_sizes(entry2)
    meta1, meta2 = entry1.get("metadata") or {}, entry2.get("metadata") or {}
    score1, score2 = quality_score(entry1), quality_score(entry2)
    return {
        "version1": version_id1,
        "version2": version_id2,
        "checksum_match": entry1["checksum"] == entry2["checksum"],
        "files_differ": _files_differ(entry1.get("files") or {}, entry2.get("files") or {}),
        "split_sizes": {"version1": sizes1, "version2": sizes2, "delta": _delta(sizes1, sizes2)},
        "error_type_distribution_delta": _delta(
            meta1.get("error_type_distribution") or {}, meta2.get("error_type_distribution") or {}
        ),
        "quality": {
            "version1": score1,
            "version2": score2,
            "improvement": _improvement(score1, score2),
        },
        "quality_comparison": quality_comparison(entry1, entry2),
        "lineage_relation": _lineage_relation(registry, version_id1, version_id2),
        "metadata_diff": _metadata_diff(meta1, meta2),
        "cases": compare_cases(case_ids1, case_ids2) if case_ids1 is not None and case_ids2 is not None else None,
    }


def _improvement(score1: float | None, score2: float | None) -> float | None:
    """score2 - score1, rounded as the scores are; None unless both are known."""
    return round(score2 - score1, 6) if score1 is not None and score2 is not None else None


def _passed(entry: Mapping[str, Any]) -> bool | None:
    """Whether a version's quality report passed its thresholds; None without a report."""
    report = entry.get("quality_report")
    return bool(report.get("passed")) if isinstance(report, Mapping) and "passed" in report else None


def _quality_metrics(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The per-rule metrics (completeness, consistency, ...) of a version's quality report, {} without one."""
    metrics = ((entry.get("quality_report") or {}).get("quality_metrics") or {}).get("metrics") or {}
    return dict(metrics) if isinstance(metrics, Mapping) else {}


def quality_comparison(entry1: Mapping[str, Any], entry2: Mapping[str, Any]) -> dict[str, Any]:
    """The seed's `compare_versions(...)['quality_comparison']`, from the two versions' quality reports.

    ``improvement`` is ``version2_score - version1_score``, the difference of the reports' ``overall_score``
    (each the mean of the rule metrics, in [0, 1]): positive when version 2 scores better, so it lies in
    [-1, 1] (0.05 = five points better). None when either version has no quality report (an entry registered
    before reports existed); every version a build or `create_version` registers has one.
    ``metrics_delta`` is the same difference per rule metric.
    """
    score1, score2 = quality_score(entry1), quality_score(entry2)
    return {
        "version1_score": score1,
        "version2_score": score2,
        "improvement": _improvement(score1, score2),
        "version1_passed": _passed(entry1),
        "version2_passed": _passed(entry2),
        "metrics_delta": {key: round(value, 6) for key, value in
                          _delta(_quality_metrics(entry1), _quality_metrics(entry2)).items()},
    }


def rollback(registry: Mapping[str, Any], version_id: str, at: datetime) -> dict[str, Any]:
    """A new registry whose current version is version_id, the move recorded in history; KeyError if unknown."""
    get_version(registry, version_id)
    updated = copy.deepcopy(dict(registry))
    updated["history"].append(_history_item("rollback", version_id, registry.get("current_version"), at))
    updated["current_version"] = version_id
    return updated


def _bucket(score: float | None) -> str:
    """The quality bucket of a score."""
    for name, lower in QUALITY_BUCKETS:
        if score is not None and score >= lower:
            return name
    return "poor"


def version_report(registry: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Totals, versions per quality bucket and the newest versions."""
    entries = _newest_first(registry["versions"].values())
    buckets = {name: 0 for name, _ in QUALITY_BUCKETS} | {"poor": 0}
    for entry in entries:
        buckets[_bucket(quality_score(entry))] += 1
    return {
        "generated_at": now.isoformat(),
        "total_versions": len(entries),
        "current_version": registry.get("current_version"),
        "versions_by_quality": buckets,
        "recent_versions": [
            {
                "version_id": entry["version_id"],
                "created_at": entry.get("created_at"),
                "checksum": entry["checksum"],
                "quality_score": quality_score(entry),
            }
            for entry in entries[:RECENT_VERSIONS]
        ],
    }
