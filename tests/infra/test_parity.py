"""infra/*.tf declares the same deployment as shared/topology.py (python-hcl2, no terraform needed)."""

from __future__ import annotations

import copy
import re
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.topology import build_topology
from tests.infra.parity import INFRA_DIR, REPO_ROOT, compare, infra_model, topology_model
from tests.infra.tfmodel import Module


@pytest.fixture(scope="module")
def infra() -> dict[str, Any]:
    return infra_model(INFRA_DIR)


@pytest.fixture(scope="module")
def topology() -> dict[str, Any]:
    settings = Settings()
    return topology_model(build_topology(settings), settings)


def test_infra_declares_the_topology(topology: dict[str, Any], infra: dict[str, Any]) -> None:
    assert compare(topology, infra) == []


def test_the_models_are_not_empty(infra: dict[str, Any]) -> None:
    """A reader that found nothing would agree with an empty topology; this one found the real thing."""
    assert infra["functions"] and infra["subscriptions"] and infra["dead_letter_sinks"]
    assert len(infra["notifications"]) == 1


def _add_topic(m: dict) -> None:
    m["topics"] = sorted([*m["topics"], "extra-topic"])


def _drop_topic(m: dict) -> None:
    m["topics"] = m["topics"][1:]


def _drop_subscription(m: dict) -> None:
    m["subscriptions"].popitem()


def _rename_dead_letter_topic(m: dict) -> None:
    next(iter(m["subscriptions"].values()))["dead_letter_topic"] += "-x"


def _change_attempts(m: dict) -> None:
    next(iter(m["subscriptions"].values()))["max_delivery_attempts"] += 1


def _change_backoff(m: dict) -> None:
    next(iter(m["subscriptions"].values()))["max_backoff_s"] *= 2


def _change_filter(m: dict) -> None:
    sub = next(s for s in m["subscriptions"].values() if s["filter"])
    sub["filter"] = sub["filter"].replace("/", "-/")


def _drop_filter(m: dict) -> None:
    next(s for s in m["subscriptions"].values() if s["filter"])["filter"] = ""


def _drop_sink(m: dict) -> None:
    m["dead_letter_sinks"].popitem()


def _add_function(m: dict) -> None:
    m["functions"]["aggregate"] = {"entry_point": "aggregate", "triggers": [], "env": {}}


def _change_entry_point(m: dict) -> None:
    next(iter(m["functions"].values()))["entry_point"] = "main"


def _add_env(m: dict) -> None:
    next(iter(m["functions"].values()))["env"]["STT_NEW_SETTING"] = "x"


def _drop_env(m: dict) -> None:
    next(iter(m["functions"].values()))["env"].pop("STT_BUCKET")


def _change_env_value(m: dict) -> None:
    next(iter(m["functions"].values()))["env"]["STT_TOPIC_METRICS"] = "other-metrics"


def _change_notification(m: dict) -> None:
    m["notifications"][0]["event_types"] = ["OBJECT_DELETE", "OBJECT_FINALIZE"]


def _add_prefix(m: dict) -> None:
    m["notifications"][0]["prefix"] = "dataset-requests/"


DOCTORS: list[Callable[[dict], None]] = [
    _add_topic,
    _drop_topic,
    _drop_subscription,
    _rename_dead_letter_topic,
    _change_attempts,
    _change_backoff,
    _change_filter,
    _drop_filter,
    _drop_sink,
    _add_function,
    _change_entry_point,
    _add_env,
    _drop_env,
    _change_env_value,
    _change_notification,
    _add_prefix,
]


@pytest.mark.parametrize("doctor", DOCTORS, ids=lambda d: d.__name__.strip("_"))
def test_comparator_reports_a_doctored_model(
    doctor: Callable[[dict], None], topology: dict[str, Any], infra: dict[str, Any]
) -> None:
    doctored = copy.deepcopy(infra)
    doctor(doctored)
    assert compare(topology, doctored), f"{doctor.__name__} went unnoticed"
    assert compare(doctored, infra), f"{doctor.__name__} on the topology side went unnoticed"


# Edits of a copy of infra/: (file, old text, new text). Each declares something on the Terraform side only.
TF_EDITS = {
    "topic": ("main.tf", "topics = [var.topic_failures,", 'topics = ["audit-events", var.topic_failures,'),
    "function": (
        "main.tf",
        "  functions = {\n",
        '  functions = {\n    audit_export = {\n      schedule = "0 3 * * *"\n    }\n',
    ),
    "dead_letter_name": ("main.tf", '"${each.key}-dead-letter"', '"${each.key}-dlq"'),
    "attempts_default": ("variables.tf", "  default     = 5\n", "  default     = 7\n"),
    "entry_point": ("modules/function/main.tf", "entry_point = var.name", 'entry_point = "main"'),
    "env": ("main.tf", "    STT_BUCKET                = var.bucket_name\n", ""),
    "notification": (
        "main.tf",
        'event_types    = ["OBJECT_FINALIZE"]',
        'event_types    = ["OBJECT_FINALIZE", "OBJECT_DELETE"]',
    ),
    "sink": ("main.tf", '"${google_pubsub_topic.dead_letter[each.key].name}-sink"', '"${each.key}-sink"'),
    "filter": ("main.tf", 'object_prefix  = "dataset-requests/"', 'object_prefix  = "dataset-request/"'),
    "no_filter": ("main.tf", '      object_prefix  = "imports/"\n', ""),
    "filter_expression": ("modules/function/main.tf", "hasPrefix(attributes.objectId", "hasPrefix(attributes.name"),
}


@pytest.mark.parametrize("edit", sorted(TF_EDITS))
def test_parity_fails_on_doctored_terraform(edit: str, tmp_path: Path, topology: dict[str, Any]) -> None:
    copy_dir = tmp_path / "infra"
    shutil.copytree(INFRA_DIR, copy_dir, ignore=shutil.ignore_patterns(".terraform", ".build"))
    name, old, new = TF_EDITS[edit]
    path = copy_dir / name
    text = path.read_text()
    assert old in text, f"the edit {edit!r} no longer applies to infra/{name}; update TF_EDITS"
    path.write_text(text.replace(old, new, 1))
    assert compare(topology, infra_model(copy_dir)), f"a Terraform-only {edit} went unnoticed"


@pytest.mark.parametrize(
    "settings",
    [Settings(topic_metrics="model-metrics"), Settings(max_delivery_attempts=9), Settings(bucket="other-bucket")],
    ids=["topic", "attempts", "bucket"],
)
def test_parity_fails_on_doctored_settings(settings: Settings, infra: dict[str, Any]) -> None:
    assert compare(topology_model(build_topology(settings), settings), infra)


def test_function_zips_carry_the_runtime_dependencies() -> None:
    """requirements.txt of the zips is pyproject.toml's [project] dependencies, in the same order."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as fh:
        dependencies = tomllib.load(fh)["project"]["dependencies"]
    assert Module(INFRA_DIR).local("function_requirements") == dependencies


def test_every_function_is_private() -> None:
    """No IAM member or function invoker in infra/ is allUsers or allAuthenticatedUsers."""
    for path in INFRA_DIR.rglob("*.tf"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"\s*(member|members|invokers)\s*=", line):
                assert "allUsers" not in line and "allAuthenticatedUsers" not in line, f"{path}:{number}"
    for name, spec in Module(INFRA_DIR).local("functions").items():
        assert not {"allUsers", "allAuthenticatedUsers"} & set(spec.get("invokers", [])), name
