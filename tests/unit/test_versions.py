"""The version registry as a pure value: manifests, idempotent adds, lineage, comparison, rollback, report."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from shared.domain.versions import (
    add_version,
    compare_versions,
    empty_registry,
    file_entry,
    get_version,
    get_version_lineage,
    list_versions,
    manifest_checksum,
    new_version,
    parse_registry,
    quality_comparison,
    rollback,
    version_id_for,
    version_report,
)
from shared.errors import BadInput

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def files_of(seed: str, sizes: dict[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """A manifest whose file contents depend on seed."""
    sizes = sizes or {"train": 8, "val": 1, "test": 1}
    files = {f"{split}.jsonl": file_entry(f"{seed}-{split}".encode(), rows) for split, rows in sizes.items()}
    files["metadata.json"] = file_entry(f"{seed}-meta".encode(), 0)
    return files


def entry(
    version_id: str,
    parent: str | None = None,
    score: float | None = 0.97,
    day: int = 0,
    seed: str | None = None,
    sizes: dict[str, int] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A version entry built by new_version."""
    report = None if score is None else {"passed": True, "quality_metrics": {"overall_score": score}}
    return new_version(
        version_id=version_id,
        dataset_id=f"ds_{version_id}",
        dataset_uri=f"gs://stt-project-datasets/finetuning_datasets/ds_{version_id}/",
        files=files_of(seed or version_id, sizes),
        metadata=metadata if metadata is not None else {"min_error_score": 0.3},
        quality_report=report,
        parent_version=parent,
        created_at=T0 + timedelta(days=day),
    )


def registry_of(*entries: dict[str, Any]) -> dict[str, Any]:
    """A registry with entries added in order, one day apart."""
    registry = empty_registry()
    for day, item in enumerate(entries):
        registry, changed = add_version(registry, item, T0 + timedelta(days=day))
        assert changed
    return registry


def test_manifest_checksum_ignores_order_and_follows_every_byte() -> None:
    files = files_of("a")
    reordered = dict(reversed(list(files.items())))
    assert list(reordered) != list(files)
    assert manifest_checksum(reordered) == manifest_checksum(files)
    changed = dict(files) | {"train.jsonl": file_entry(b"a-trainX", 8)}
    assert manifest_checksum(changed) != manifest_checksum(files)
    one_bit = dict(files) | {"val.jsonl": file_entry(b"a-vam", 1)}  # 'l' -> 'm'
    assert manifest_checksum(one_bit) != manifest_checksum(files)


def test_file_entry_counts_bytes_and_rows() -> None:
    assert file_entry(b"abc", 3) == {
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "bytes": 3,
        "rows": 3,
    }


def test_version_id_is_deterministic_and_safe() -> None:
    assert version_id_for("release 1/final", "ds_1") == version_id_for("release 1/final", "ds_1")
    assert version_id_for("release 1/final", "ds_1").startswith("v_release_1_final_")
    assert version_id_for(None, "ds_1").startswith("v_ds_1_")
    assert version_id_for("x", "ds_1") != version_id_for("x", "ds_2")
    assert all(c.isalnum() or c in "._-" for c in version_id_for("ü/../*?", "ds"))


def test_new_version_carries_checksum_and_path() -> None:
    item = entry("v1")
    assert item["checksum"] == manifest_checksum(item["files"])
    assert item["dataset_path"] == "gs://stt-project-datasets/finetuning_datasets/ds_v1/"
    assert item["created_at"] == "2026-11-01T12:00:00+00:00"
    assert item["parent_version"] is None


def test_add_version_makes_it_current_without_touching_the_input() -> None:
    registry = registry_of(entry("v1"))
    before = copy.deepcopy(registry)
    updated, changed = add_version(registry, entry("v2", parent="v1", day=1), T0 + timedelta(days=1))
    assert changed is True
    assert registry == before
    assert updated["current_version"] == "v2"
    assert updated["history"][-1] == {
        "at": "2026-11-02T12:00:00+00:00",
        "action": "create",
        "version_id": "v2",
        "previous": "v1",
    }
    assert set(updated["versions"]) == {"v1", "v2"}


def test_add_version_is_idempotent_for_a_redelivered_build() -> None:
    registry = registry_of(entry("v1"), entry("v2", parent="v1", day=1))
    again, changed = add_version(registry, entry("v1"), T0 + timedelta(days=5))
    assert changed is False
    assert again == registry
    assert again["current_version"] == "v2"


def test_add_version_refuses_a_conflicting_checksum() -> None:
    registry = registry_of(entry("v1"))
    with pytest.raises(ValueError, match="'v1' already exists with checksum"):
        add_version(registry, entry("v1", seed="other"), T0)


def test_add_version_refuses_an_unknown_parent_and_names_the_known_ones() -> None:
    registry = registry_of(*(entry(f"v{i}", day=i) for i in range(12)))
    with pytest.raises(ValueError, match="parent version 'nope' is unknown") as info:
        add_version(registry, entry("v99", parent="nope"), T0)
    message = str(info.value)
    assert "v11, v10, v9" in message
    assert "(and 2 more)" in message


def test_registry_round_trips_and_corruption_is_named() -> None:
    registry = registry_of(entry("v1"), entry("v2", parent="v1", day=1))
    assert parse_registry(orjson.dumps(registry)) == registry
    assert parse_registry(None) == empty_registry()
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_registry(b"{oops")
    with pytest.raises(ValueError, match="schema_version"):
        parse_registry(orjson.dumps({"versions": {}}))
    broken = copy.deepcopy(registry)
    broken["current_version"] = "ghost"
    with pytest.raises(ValueError, match="current_version 'ghost'"):
        parse_registry(orjson.dumps(broken))
    broken = copy.deepcopy(registry)
    del broken["versions"]["v1"]["checksum"]
    with pytest.raises(ValueError, match="'v1' has no checksum"):
        parse_registry(orjson.dumps(broken))


def test_get_version_names_an_unknown_id() -> None:
    registry = registry_of(entry("v1"))
    assert get_version(registry, "v1")["version_id"] == "v1"
    with pytest.raises(KeyError, match="unknown version 'v7'"):
        get_version(registry, "v7")


def test_list_versions_newest_first_with_filters() -> None:
    registry = registry_of(
        entry("v1", score=0.99, day=0),
        entry("v2", parent="v1", score=0.85, day=2),
        entry("v3", parent="v1", score=None, day=1),
    )
    assert [e["version_id"] for e in list_versions(registry)] == ["v2", "v3", "v1"]
    assert [e["version_id"] for e in list_versions(registry, parent_version="v1")] == ["v2", "v3"]
    assert [e["version_id"] for e in list_versions(registry, min_quality_score=0.9)] == ["v1"]


@pytest.mark.parametrize("score", [-0.1, 1.5, 90, float("nan")])
def test_list_versions_refuses_a_min_quality_score_outside_0_to_1(score: float) -> None:
    registry = registry_of(entry("v1", score=0.99))
    with pytest.raises(BadInput, match=r"min_quality_score must be between 0 and 1"):
        list_versions(registry, min_quality_score=score)
    assert [e["version_id"] for e in list_versions(registry, min_quality_score=1)] == []  # the bounds are allowed
    assert [e["version_id"] for e in list_versions(registry, min_quality_score=0)] == ["v1"]


def test_listed_versions_read_as_attributes_and_stay_the_same_json() -> None:
    registry = registry_of(entry("v1", day=0), entry("v2", parent="v1", day=1))
    [newest, oldest] = list_versions(registry)
    # The seed's loop: `for v in versions: print(f"{v.version_id}: {v.checksum}")`.
    assert (newest.version_id, newest.checksum) == ("v2", registry["versions"]["v2"]["checksum"])
    assert newest.parent_version == "v1" and oldest.parent_version is None
    assert newest.quality_report["quality_metrics"]["overall_score"] == 0.97
    assert newest["version_id"] == "v2" and isinstance(newest, dict)
    with pytest.raises(AttributeError, match="no 'versionid'; its keys: checksum, created_at"):
        _ = newest.versionid
    with pytest.raises(AttributeError):
        newest.version_id = "v9"  # type: ignore[attr-defined]
    # Encoded exactly as the registry's plain dict by orjson (the api), json and pickle.
    assert orjson.dumps(newest) == orjson.dumps(registry["versions"]["v2"])
    assert json.dumps(newest, sort_keys=True) == json.dumps(registry["versions"]["v2"], sort_keys=True)
    assert pickle.loads(pickle.dumps(newest)) == newest and copy.deepcopy(newest).checksum == newest.checksum
    assert "checksum" in dir(newest)
    assert [v.version_id for v in get_version_lineage(registry, "v2")] == ["v1", "v2"]


def test_lineage_runs_from_the_oldest_ancestor_and_survives_a_cycle() -> None:
    registry = registry_of(entry("a"), entry("b", parent="a"), entry("c", parent="b"), entry("x"))
    assert [e["version_id"] for e in get_version_lineage(registry, "c")] == ["a", "b", "c"]
    assert [e["version_id"] for e in get_version_lineage(registry, "x")] == ["x"]
    cyclic = copy.deepcopy(registry)
    cyclic["versions"]["a"]["parent_version"] = "c"  # only a hand-edited registry can do this
    assert [e["version_id"] for e in get_version_lineage(cyclic, "c")] == ["a", "b", "c"]
    with pytest.raises(KeyError):
        get_version_lineage(registry, "zzz")


def two_version_registry() -> dict[str, Any]:
    """v1 and its child v2: more training rows, another val file, a new error type, a better score."""
    v1 = entry(
        "v1",
        score=0.90,
        seed="one",
        metadata={"min_error_score": 0.3, "error_type_distribution": {"spelling": 5, "number": 2}, "old": 1},
    )
    v2 = entry(
        "v2",
        parent="v1",
        score=0.96,
        day=1,
        sizes={"train": 10, "val": 1, "test": 1},
        metadata={"min_error_score": 0.5, "error_type_distribution": {"spelling": 4, "punctuation": 3}, "new": 1},
    )
    v2["files"]["test.jsonl"] = v1["files"]["test.jsonl"]  # test split byte-identical
    v2["checksum"] = manifest_checksum(v2["files"])
    sibling = entry("v3", parent="v1", day=2)
    return registry_of(v1, v2, sibling, entry("lone", day=3))


def test_compare_versions_on_hand_built_registries() -> None:
    registry = two_version_registry()
    result = compare_versions(registry, "v1", "v2")
    assert result["checksum_match"] is False
    assert result["files_differ"] == ["metadata.json", "train.jsonl", "val.jsonl"]
    assert result["split_sizes"] == {
        "version1": {"train": 8, "val": 1, "test": 1},
        "version2": {"train": 10, "val": 1, "test": 1},
        "delta": {"test": 0, "train": 2, "val": 0},
    }
    assert result["error_type_distribution_delta"] == {"number": -2, "punctuation": 3, "spelling": -1}
    assert result["quality"]["version1"] == 0.90
    assert result["quality"]["improvement"] == pytest.approx(0.06)
    assert result["lineage_relation"] == "v2 is a descendant of v1"
    assert result["metadata_diff"] == {
        "only_in_version1": ["old"],
        "only_in_version2": ["new"],
        "differing": ["error_type_distribution", "min_error_score"],
    }
    assert result["cases"] is None
    # The seed's key: overall_score of version 2 minus that of version 1 (positive = version 2 is better).
    assert result["quality_comparison"] == {
        "version1_score": 0.90, "version2_score": 0.96, "improvement": 0.06,
        "version1_passed": True, "version2_passed": True, "metrics_delta": {},
    }


def test_quality_comparison_per_metric_and_without_a_report() -> None:
    def scored(version_id: str, overall: float, completeness: float, passed: bool) -> dict[str, Any]:
        with_report = entry(version_id)
        with_report["quality_report"] = {"passed": passed, "quality_metrics": {
            "overall_score": overall, "metrics": {"completeness": completeness, "uniqueness": 1.0}}}
        return with_report

    comparison = quality_comparison(scored("a", 0.95, 1.0, True), scored("b", 0.85, 0.7, False))
    assert comparison["improvement"] == -0.1
    assert comparison["metrics_delta"] == {"completeness": -0.3, "uniqueness": 0.0}
    assert (comparison["version1_passed"], comparison["version2_passed"]) == (True, False)
    unscored = quality_comparison(entry("a"), entry("b", score=None))
    assert unscored["improvement"] is None and unscored["version2_score"] is None
    assert unscored["version2_passed"] is None


def test_compare_versions_lineage_sentences() -> None:
    registry = two_version_registry()
    assert compare_versions(registry, "v1", "v2")["lineage_relation"] == "v2 is a descendant of v1"
    assert compare_versions(registry, "v2", "v1")["lineage_relation"] == "v2 is a descendant of v1"
    assert compare_versions(registry, "v2", "v3")["lineage_relation"] == "v2 and v3 share ancestor v1"
    assert compare_versions(registry, "v2", "lone")["lineage_relation"] == "v2 and lone are not related"
    same = compare_versions(registry, "v1", "v1")
    assert same["checksum_match"] is True
    assert same["files_differ"] == []


def test_compare_versions_counts_cases_and_names_the_moved_ones() -> None:
    registry = two_version_registry()
    before = {"c1": "train", "c2": "train", "c3": "val", "c4": "test"}
    after = {"c1": "train", "c2": "val", "c3": "val", "c5": "train", "c6": "test"}
    cases = compare_versions(registry, "v1", "v2", before, after)["cases"]
    assert cases == {"added": 2, "removed": 1, "kept": 3, "moved": 1, "moved_case_ids": ["c2"]}
    many_before = {f"c{i}": "train" for i in range(50)}
    many_after = {f"c{i}": "test" for i in range(50)}
    cases = compare_versions(registry, "v1", "v2", many_before, many_after)["cases"]
    assert cases["moved"] == 50
    assert len(cases["moved_case_ids"]) == 20


def test_rollback_moves_current_records_history_and_deletes_nothing() -> None:
    registry = two_version_registry()
    before = copy.deepcopy(registry)
    rolled = rollback(registry, "v1", T0 + timedelta(days=9))
    assert registry == before
    assert rolled["current_version"] == "v1"
    assert rolled["versions"] == registry["versions"]
    assert rolled["history"][-1] == {
        "at": "2026-11-10T12:00:00+00:00",
        "action": "rollback",
        "version_id": "v1",
        "previous": "lone",
    }
    assert len(rolled["history"]) == len(registry["history"]) + 1
    with pytest.raises(KeyError, match="unknown version 'gone'"):
        rollback(registry, "gone", T0)


def test_version_report_buckets_and_recent_versions() -> None:
    scores = [0.99, 0.95, 0.93, 0.90, 0.85, 0.80, 0.79, None] + [0.5] * 5
    registry = registry_of(*(entry(f"v{i}", score=score, day=i) for i, score in enumerate(scores)))
    now = T0 + timedelta(days=30)
    report = version_report(registry, now)
    assert report["generated_at"] == now.isoformat()
    assert report["total_versions"] == 13
    assert report["current_version"] == "v12"
    assert report["versions_by_quality"] == {"excellent": 2, "good": 2, "acceptable": 2, "poor": 7}
    recent = report["recent_versions"]
    assert [item["version_id"] for item in recent] == [f"v{i}" for i in range(12, 2, -1)]
    assert recent[-1] == {
        "version_id": "v3",
        "created_at": "2026-11-04T12:00:00+00:00",
        "checksum": registry["versions"]["v3"]["checksum"],
        "quality_score": 0.90,
    }
    assert version_report(empty_registry(), now)["total_versions"] == 0
