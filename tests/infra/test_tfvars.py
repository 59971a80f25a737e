"""infra/topology.auto.tfvars.json is what `python -m stack.tfvars` writes from shared/topology.py today."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from shared import topology as topology_module
from shared.config import ENV_NAMES, Settings
from shared.topology import FunctionSpec, build_topology, terraform_inputs
from stack import tfvars
from stack.tfvars import REPO_ROOT


def stale_paths(committed: Any, fresh: Any, path: str = "") -> list[str]:
    """Where the committed inputs differ from freshly generated ones, one path each."""
    if isinstance(committed, dict) and isinstance(fresh, dict):
        return [
            p
            for key in sorted(committed.keys() | fresh.keys())
            for p in stale_paths(committed.get(key, "<missing>"), fresh.get(key, "<missing>"), f"{path}.{key}")
        ]
    return [] if committed == fresh else [f"{path}: committed {committed!r}, generated {fresh!r}"]


def test_the_committed_file_is_fresh() -> None:
    committed = tfvars.TFVARS.read_text() if tfvars.TFVARS.exists() else "{}"
    fresh = tfvars.render()
    diffs = stale_paths(json.loads(committed), json.loads(fresh)) or ["(same data, other formatting)"]
    assert committed == fresh, (
        f"infra/{tfvars.TFVARS.name} is stale: run `{tfvars.COMMAND}` (or `make tfvars`) and commit it.\n"
        + "\n".join(diffs)
    )


def test_the_file_is_stable_and_sorted() -> None:
    text = tfvars.render()
    assert text == tfvars.render() and text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert tfvars.main(["--check"]) == 0
    stale = tmp_path / "infra" / tfvars.TFVARS.name
    stale.parent.mkdir()
    stale.write_text(tfvars.render().replace('"imports/', '"import/'))
    monkeypatch.setattr(tfvars, "TFVARS", stale)
    monkeypatch.setattr(tfvars, "REPO_ROOT", tmp_path)
    assert tfvars.main(["--check"]) == 1
    assert tfvars.COMMAND in capsys.readouterr().err
    assert tfvars.main([]) == 0 and tfvars.main(["--check"]) == 0, "writing it makes it fresh"


def _drop_function(inputs: dict) -> None:
    del inputs["functions"]["api"]


def _change_filter(inputs: dict) -> None:
    inputs["functions"]["ingest_import"]["push"]["filter"] = 'hasPrefix(attributes.objectId, "import/")'


def _change_ack_deadline(inputs: dict) -> None:
    inputs["functions"]["build_dataset"]["push"]["ack_deadline_s"] = 60


def _retrigger(inputs: dict) -> None:
    inputs["functions"]["record_failure"]["push"]["topic"] = "topic_metrics"


def _rename_env(inputs: dict) -> None:
    inputs["settings_env"]["bucket"] = "BUCKET"


def _change_entry_point(inputs: dict) -> None:
    inputs["functions"]["record_metrics"]["entry_point"] = "main"


def _drop_requirement(inputs: dict) -> None:
    inputs["function_requirements"].pop()


def _add_event_type(inputs: dict) -> None:
    inputs["bucket_notification"]["event_types"].append("OBJECT_DELETE")


@pytest.mark.parametrize(
    "doctor",
    [
        _drop_function,
        _change_filter,
        _change_ack_deadline,
        _retrigger,
        _rename_env,
        _change_entry_point,
        _drop_requirement,
        _add_event_type,
    ],
    ids=lambda d: d.__name__.strip("_"),
)
def test_an_edited_file_is_stale(doctor: Callable[[dict], None]) -> None:
    """A hand edit of the file (its data, not its formatting) is reported where it is."""
    fresh = json.loads(tfvars.render())
    edited = copy.deepcopy(fresh)
    doctor(edited)
    assert stale_paths(edited, fresh)


def test_a_topology_change_makes_the_file_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a function to shared/topology.py (or a setting to ENV_NAMES) changes what is generated."""
    specs = topology_module.function_specs
    monkeypatch.setattr(
        topology_module,
        "function_specs",
        lambda s: (*specs(s), FunctionSpec("export_cases", "cloudevent", s.topic_metrics)),
    )
    assert "export_cases" in json.loads(tfvars.render())["functions"]
    monkeypatch.setattr(topology_module, "function_specs", specs)
    monkeypatch.setitem(ENV_NAMES, "region", "STT_REGION")
    assert json.loads(tfvars.render())["settings_env"]["region"] == "STT_REGION"


def test_the_inputs_hold_no_deployments_names() -> None:
    """The same file serves every deployment: names and delivery policy come from Terraform's variables."""
    other = Settings(
        project="p",
        bucket="b",
        topic_failures="f",
        topic_corrections="c",
        topic_metrics="m",
        topic_bucket_events="e",
        collection_prefix="x_",
        max_delivery_attempts=9,
        ack_deadline_s=30,
        min_backoff_s=2.0,
        max_backoff_s=300.0,
    )
    assert terraform_inputs(other) == terraform_inputs(Settings())


@pytest.mark.parametrize(
    "settings", [Settings(), Settings(topic_failures="f", ack_deadline_s=30)], ids=["default", "other"]
)
def test_the_inputs_resolve_to_the_topology(settings: Settings) -> None:
    """Resolving each named setting with `settings` (as local.settings does) gives build_topology(settings)."""
    inputs = terraform_inputs(settings)
    topology = build_topology(settings)
    assert list(inputs["functions"]) == [fn.name for fn in topology.functions]
    for spec in topology.functions:
        entry = inputs["functions"][spec.name]
        assert (entry["entry_point"], entry["signature"], entry["source"]) == (
            spec.entry_point,
            spec.signature,
            spec.source,
        )
        if spec.topic is None:
            assert entry["push"] is None
            continue
        sub = topology.subscription_for(spec.name)
        push = entry["push"]
        assert getattr(settings, push["topic"]) == sub.topic
        assert (push["ack_deadline_s"] or settings.ack_deadline_s) == sub.ack_deadline_s
        assert push["filter"] == sub.filter
    assert [getattr(settings, t) for t in inputs["topics"]] == list(topology.topics)
    notification = inputs["bucket_notification"]
    assert getattr(settings, notification["topic"]) == topology.notification.topic
    assert tuple(notification["event_types"]) == topology.notification.event_types
    assert notification["payload_format"] == topology.notification.payload_format
    assert inputs["settings_env"] == ENV_NAMES and set(ENV_NAMES) == {f.name for f in fields(Settings)}


def test_the_zips_carry_the_runtime_dependencies() -> None:
    """requirements.txt of the zips is pyproject.toml's [project] dependencies, in the same order."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as fh:
        dependencies = tomllib.load(fh)["project"]["dependencies"]
    assert json.loads(tfvars.render())["function_requirements"] == dependencies


def test_a_topic_named_by_two_settings_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly one Settings field"):
        terraform_inputs(Settings(topic_metrics="transcription-failures"))
