"""Local copies (issue #14) on fakes: a prepared dataset mirrored to <output_dir>/<dataset_id>/, Hugging Face
folders that the real `datasets` library loads, local dataset paths, local restores and local reports; and the
api keeping bucket-only paths."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from datasets.splits import SplitDict

from shared.api import dispatch
from shared.bootstrap import Adapters
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.errors import BadInput, NotFound
from shared.finetuning_pipeline import FinetuningDatasetPipeline
from shared.integrated_system import IntegratedDataManagementSystem
from shared.services import system_report
from shared.services.local_copies import MARKER
from shared.services.version_registry import read_registry
from shared.version_control import DataVersionControl
from tests.unit.fake_dataset_bucket import FakeBucket, FakeCases
from tests.unit.test_dataset_build_service import make_cases
from tests.unit.test_metrics_service import FakeStore

SETTINGS = Settings()


class World:
    def __init__(self, tmp: Path, cases: list[dict[str, Any]] | None = None) -> None:
        self.bucket = FakeBucket()
        self.adapters = Adapters(SETTINGS, bucket=self.bucket, cases=FakeCases(make_cases() if cases is None
                                                                               else cases))
        self.out = tmp / "data" / "finetuning"
        self.pipeline = FinetuningDatasetPipeline(adapters=self.adapters, output_dir=self.out)
        self.control = DataVersionControl(adapters=self.adapters, local_storage_dir=tmp / "data" / "versions")

    def recorded(self, dataset_id: str) -> dict[str, Any]:
        data = self.bucket.get(layout.dataset_prefix(dataset_id) + layout.DATASET_METADATA)
        assert data is not None
        return dict(orjson.loads(data))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def card_header(folder: Path) -> dict[str, Any]:
    text = (folder / "README.md").read_text(encoding="utf-8")
    header: dict[str, Any] = yaml.safe_load(text.split("---\n")[1])
    return header


def load(folder: str | Path, tmp: Path) -> Any:
    import datasets

    datasets.disable_progress_bars()
    return datasets.load_dataset(str(folder), cache_dir=str(tmp / "hf-cache"))


def test_a_prepared_dataset_is_mirrored_verified_and_loads(tmp_path: Path) -> None:
    world = World(tmp_path)
    info = world.pipeline.prepare_dataset(min_error_score=0.5, balance_error_types=False, create_version=True,
                                          version_name="first")
    mirror = world.out / info["dataset_id"]
    assert info["local_path"] == str(mirror)
    metadata = world.recorded(info["dataset_id"])
    for name, entry in metadata["files"].items():  # split files and Parquet copies, each as recorded
        assert sha256(mirror / name) == entry["sha256"]
    assert orjson.loads((mirror / layout.DATASET_METADATA).read_bytes()) == metadata
    assert orjson.loads((mirror / MARKER).read_bytes())["checksum"] == metadata["checksum"]
    assert [p.name for p in world.out.iterdir()] == [info["dataset_id"]]  # no partial folder left behind
    # The mirror's card names the bucket's file names, so the mirror itself loads too.
    loaded = load(mirror, tmp_path)
    assert {name: len(split) for name, split in loaded.items()} == {
        {"val": "validation"}.get(split, split): rows for split, rows in info["split_sizes"].items() if rows}
    assert "v_first_" in (mirror / "README.md").read_text()


@pytest.mark.parametrize("output_format", ["json", "parquet"])
def test_the_hugging_face_folder_loads_with_its_splits_and_a_card(tmp_path: Path, output_format: str) -> None:
    world = World(tmp_path)
    info = world.pipeline.prepare_dataset(min_error_score=0.5, balance_error_types=False)
    folder = world.pipeline.prepare_huggingface_dataset(info["dataset_id"], output_format=output_format)
    assert isinstance(folder, str) and Path(folder).is_relative_to(world.out)
    loaded = load(folder, tmp_path)
    sizes = info["split_sizes"]
    assert {name: len(split) for name, split in loaded.items()} == {
        "train": sizes["train"], "validation": sizes["val"], "test": sizes["test"]}
    assert loaded["train"].features["error_types"].feature.dtype == "string"
    header = card_header(Path(folder))
    assert [s["split"] for s in header["configs"][0]["data_files"]] == ["train", "validation", "test"]
    assert {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]}["validation"] == sizes["val"]
    # `datasets` takes the card's split list as it is (without num_bytes it ignored it, with a warning).
    # (the check `datasets` makes when it reads a card; private, but the warning it logs instead is not raised)
    assert SplitDict._from_yaml_list(header["dataset_info"]["splits"])["validation"].num_examples == sizes["val"]
    body = (Path(folder) / "README.md").read_text()
    assert "min_error_score" in body and info["checksum"] in body and "Not registered as a version" in body
    # The bucket's card: the same header, over the bucket's own file names.
    bucket_card = (world.bucket.get(layout.dataset_prefix(info["dataset_id"]) + "README.md") or b"").decode()
    assert "path: \"val.jsonl\"" in bucket_card


@pytest.mark.parametrize("output_format", ["json", "parquet"])
def test_an_empty_split_is_left_out_so_loading_never_breaks(tmp_path: Path, output_format: str) -> None:
    world = World(tmp_path)
    info = world.pipeline.prepare_dataset(min_error_score=0.5, balance_error_types=False, train_ratio=0.9,
                                          val_ratio=0.0, test_ratio=0.1)
    assert info["split_sizes"]["val"] == 0
    folder = Path(str(world.pipeline.prepare_huggingface_dataset(info["dataset_id"], output_format)))
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(
        ["README.md", f"train.{'jsonl' if output_format == 'json' else 'parquet'}",
         f"test.{'jsonl' if output_format == 'json' else 'parquet'}"])
    assert set(load(folder, tmp_path)) == {"train", "test"}
    assert [s["split"] for s in card_header(folder)["configs"][0]["data_files"]] == ["train", "test"]
    assert "Left out, having no rows: validation" in (folder / "README.md").read_text()
    assert set(load(world.out / info["dataset_id"], tmp_path)) == {"train", "test"}  # the mirror too


def test_a_file_that_changed_since_the_build_makes_no_copy(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.pipeline.local_copies = False
    info = world.pipeline.prepare_dataset(balance_error_types=False)
    world.pipeline.local_copies = True
    world.bucket.put(layout.dataset_prefix(info["dataset_id"]) + "test.jsonl", b'{"case_id": "forged"}\n')
    with pytest.raises(BadInput, match=r"test\.jsonl has sha256 .* not the recorded"):
        world.pipeline.prepare_huggingface_dataset(info["dataset_id"])
    from shared.services.local_copies import mirror_dataset

    with pytest.raises(BadInput, match="changed since it was recorded"):
        mirror_dataset(world.bucket, info["dataset_id"], world.out, info_time())
    assert not world.out.exists() or [p for p in world.out.rglob("*") if p.is_file()] == []


def info_time() -> Any:
    from shared.clock import utc_now

    return utc_now()


def test_create_version_and_check_quality_take_the_local_copy_the_id_and_the_uri(tmp_path: Path) -> None:
    world = World(tmp_path)
    info = world.pipeline.prepare_dataset(balance_error_types=False)
    dataset_id, mirror = info["dataset_id"], Path(info["local_path"])
    by_path = world.control.create_version(dataset_path=str(mirror), version_name="initial")
    assert world.control.create_version(dataset_id, "initial") == by_path
    uri = f"gs://{SETTINGS.bucket}/{layout.dataset_prefix(dataset_id)}"
    assert world.control.create_version(uri, "initial") == by_path
    # A path whose copy is not on this machine names the dataset of its last part.
    assert world.control.create_version(str(tmp_path / "elsewhere" / dataset_id), "initial") == by_path
    with pytest.raises(BadInput, match="no local copy there and no finished dataset"):
        world.control.create_version(str(tmp_path / "elsewhere" / "nope"))
    with pytest.raises(BadInput, match="not in this deployment's bucket"):
        world.control.create_version(f"gs://other-bucket/{layout.dataset_prefix(dataset_id)}")

    local = world.control.check_quality(str(mirror))
    assert local["dataset_path"] == str(mirror) and local["num_samples"] == info["total_samples"]
    assert local["quality_metrics"] == world.control.check_quality(dataset_id)["quality_metrics"]
    (mirror / "train.jsonl").write_bytes(b'{"case_id": "edited", "text": "hi"}\n')
    assert world.control.check_quality(str(mirror))["num_samples"] != info["total_samples"]  # what is there
    with pytest.raises(BadInput, match=r"differs from the bucket's dataset .*train\.jsonl"):
        world.control.create_version(str(mirror), "edited")


def test_rollback_restores_verified_files_into_a_local_directory(tmp_path: Path) -> None:
    world = World(tmp_path)
    first = world.pipeline.prepare_dataset(balance_error_types=False, create_version=True, version_name="a")
    second = world.pipeline.prepare_dataset(balance_error_types=False, create_version=True, version_name="b",
                                            max_samples=10)
    assert read_registry(world.bucket)["current_version"] == second["version_id"]
    target = tmp_path / "trainer" / "restored"
    result = world.control.rollback_to_version(first["version_id"], target_path=str(target))
    assert read_registry(world.bucket)["current_version"] == first["version_id"] == result["current_version"]
    entry = read_registry(world.bucket)["versions"][first["version_id"]]
    assert sorted(result["restored_to"]) == sorted(str(target / name) for name in entry["files"])
    for name, recorded in entry["files"].items():
        assert sha256(target / name) == recorded["sha256"]
    assert orjson.loads((target / MARKER).read_bytes())["version_id"] == first["version_id"]

    # Again, to the same directory: replaced whole by the other version's files, never mixed.
    world.control.rollback_to_version(second["version_id"], target_path=str(target))
    assert orjson.loads((target / MARKER).read_bytes())["version_id"] == second["version_id"]
    assert [p.name for p in target.parent.iterdir()] == ["restored"]

    # A changed object stops the restore: the directory keeps the last good restore, the registry stays.
    prefix = layout.dataset_prefix(first["dataset_id"])
    world.bucket.put(prefix + "val.jsonl", b"tampered\n")
    with pytest.raises(BadInput, match=r"val\.jsonl has sha256"):
        world.control.rollback_to_version(first["version_id"], target_path=str(target))
    assert orjson.loads((target / MARKER).read_bytes())["version_id"] == second["version_id"]
    assert read_registry(world.bucket)["current_version"] == second["version_id"]
    assert [p.name for p in target.parent.iterdir()] == ["restored"]


def test_a_local_restore_never_replaces_someone_elses_directory(tmp_path: Path) -> None:
    world = World(tmp_path)
    built = world.pipeline.prepare_dataset(balance_error_types=False, create_version=True, version_name="a")
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("keep me")
    with pytest.raises(BadInput, match="did not write"):
        world.control.rollback_to_version(built["version_id"], target_path=str(mine))
    assert (mine / "todo.txt").read_text() == "keep me"
    with pytest.raises(NotFound):
        world.control.rollback_to_version("v_nope", target_path=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_a_gs_target_restores_in_the_bucket_under_restores_only(tmp_path: Path) -> None:
    world = World(tmp_path)
    built = world.pipeline.prepare_dataset(balance_error_types=False, create_version=True, version_name="a")
    result = world.control.rollback_to_version(built["version_id"],
                                               target_path=f"gs://{SETTINGS.bucket}/restores/current")
    assert all(uri.startswith(f"gs://{SETTINGS.bucket}/restores/current/") for uri in result["restored_to"])
    with pytest.raises(BadInput, match="a gs:// target must be under"):
        world.control.rollback_to_version(built["version_id"], target_path=f"gs://{SETTINGS.bucket}/data_versions")


def test_a_report_to_a_local_path_is_written_there_and_copied_under_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path)
    monkeypatch.setattr(system_report, "comprehensive_report", lambda *_: {"recommendations": ["ok"]})
    monkeypatch.chdir(tmp_path)
    adapters = Adapters(SETTINGS, bucket=world.bucket, cases=world.adapters.cases, metrics=FakeStore())
    system = IntegratedDataManagementSystem(adapters=adapters, base_dir="data/production")
    report = system.generate_comprehensive_report(output_path="reports/system_report.json")
    assert report["saved_to"] == "reports/system_report.json"
    assert report["saved_to_bucket"] == f"gs://{SETTINGS.bucket}/reports/system_report.json"
    local = orjson.loads((tmp_path / "reports" / "system_report.json").read_bytes())
    assert local["recommendations"] == ["ok"]
    assert orjson.loads(world.bucket.get("reports/system_report.json") or b"")["recommendations"] == ["ok"]
    elsewhere = system.generate_comprehensive_report(output_path=str(tmp_path / "out" / "weekly.json"))
    assert elsewhere["saved_to_bucket"].endswith("/reports/weekly.json") and (tmp_path / "out/weekly.json").exists()
    only_bucket = system.generate_comprehensive_report(output_path=f"gs://{SETTINGS.bucket}/reports/b.json")
    assert only_bucket["saved_to"] == f"gs://{SETTINGS.bucket}/reports/b.json" and not Path("gs:").exists()
    with pytest.raises(BadInput, match="a gs:// report goes under"):
        system.generate_comprehensive_report(output_path=f"gs://{SETTINGS.bucket}/data_versions/x.json")


def test_through_the_api_paths_stay_bucket_paths_and_nothing_is_written_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(tmp_path)
    built = world.pipeline.prepare_dataset(balance_error_types=False, create_version=True, version_name="a")
    monkeypatch.chdir(tmp_path / "data")
    before = sorted(p for p in (tmp_path / "data").rglob("*"))
    from shared import bootstrap

    with bootstrap.use(world.adapters):
        files = dispatch({"op": "prepare_huggingface_dataset", "dataset_id": built["dataset_id"]}, SETTINGS)
        rolled = dispatch({"op": "rollback_to_version", "version_id": built["version_id"],
                           "target_path": "current"}, SETTINGS)
        quality = dispatch({"op": "check_quality", "dataset_path": built["dataset_id"]}, SETTINGS)
    assert files.status == 200 and files.body["result"] == built["data_files"]
    assert rolled.status == 200
    assert rolled.body["result"]["restored_to"][0].startswith(f"gs://{SETTINGS.bucket}/restores/current/")
    assert quality.status == 200 and quality.body["result"]["passed"] is True
    assert sorted(p for p in (tmp_path / "data").rglob("*")) == before


def test_through_the_api_gs_uris_of_the_deployments_bucket_mean_the_bucket_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CONTRACT: gs:// URIs mean the bucket, wherever the call comes from; other buckets and prefixes stay refused."""
    world = World(tmp_path)
    built = world.pipeline.prepare_dataset(balance_error_types=False, create_version=True, version_name="a")
    monkeypatch.setattr(system_report, "comprehensive_report", lambda *_: {"recommendations": ["ok"]})
    from shared import bootstrap

    def call(**body: Any) -> Any:
        with bootstrap.use(Adapters(SETTINGS, bucket=world.bucket, cases=world.adapters.cases, metrics=FakeStore())):
            return dispatch(body, SETTINGS)

    rolled = call(op="rollback_to_version", version_id=built["version_id"],
                  target_path=f"gs://{SETTINGS.bucket}/restores/weekly")
    assert rolled.status == 200, rolled.body
    assert rolled.body["result"]["restored_to"][0].startswith(f"gs://{SETTINGS.bucket}/restores/weekly/")
    saved = call(op="generate_comprehensive_report", output_path=f"gs://{SETTINGS.bucket}/reports/w.json")
    assert saved.status == 200, saved.body
    assert saved.body["result"]["saved_to"] == f"gs://{SETTINGS.bucket}/reports/w.json"
    assert orjson.loads(world.bucket.get("reports/w.json") or b"")["recommendations"] == ["ok"]
    for refused in (call(op="rollback_to_version", version_id=built["version_id"],
                         target_path=f"gs://{SETTINGS.bucket}/finetuning_datasets/x"),
                    call(op="rollback_to_version", version_id=built["version_id"], target_path="gs://other/restores/x"),
                    call(op="generate_comprehensive_report", output_path=f"gs://{SETTINGS.bucket}/{layout.REGISTRY}")):
        assert refused.status == 400
    assert world.bucket.get("finetuning_datasets/x/" + layout.RESTORE_MANIFEST) is None


def test_check_quality_of_a_dataset_that_is_nowhere_says_so(tmp_path: Path) -> None:
    """Not a report of zeros ("the dataset has no rows") for a typo: a NotFound naming what is missing, 404
    through the api; a dataset whose split files exist but whose metadata.json is not written yet is still
    checked."""
    world = World(tmp_path)
    built = world.pipeline.prepare_dataset(balance_error_types=False, create_version=False)
    with pytest.raises(NotFound, match="no dataset 'weekly-typo'"):
        world.control.check_quality("weekly-typo")
    with pytest.raises(BadInput, match="no local copy there and no finished dataset 'nowhere'"):
        world.control.check_quality(str(tmp_path / "data" / "finetuning" / "nowhere"))
    from shared import bootstrap

    with bootstrap.use(world.adapters):
        answer = dispatch({"op": "check_quality", "dataset_path": "weekly-typo"}, SETTINGS)
    assert answer.status == 404 and "no dataset 'weekly-typo'" in answer.body["error"]
    world.bucket.delete(layout.dataset_prefix(built["dataset_id"]) + layout.DATASET_METADATA)
    assert world.control.check_quality(built["dataset_id"])["num_samples"] == built["total_samples"]
