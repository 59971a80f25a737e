"""Settings from the environment and the topology they resolve to."""

import ast

import pytest

from shared.config import ENV_NAMES, Settings
from shared.topology import build_topology
from stack.local_stack import REPO_ROOT


def test_defaults_are_the_contract_names() -> None:
    settings = Settings.from_env({})
    assert settings.bucket == "stt-project-datasets"
    assert (
        settings.topic_failures,
        settings.topic_corrections,
        settings.topic_metrics,
        settings.topic_bucket_events,
    ) == (
        "transcription-failures",
        "transcription-corrections",
        "training-metrics",
        "bucket-events",
    )


def test_env_overrides_and_types() -> None:
    settings = Settings.from_env(
        {
            "GOOGLE_CLOUD_PROJECT": "demo-x",
            "STT_MAX_DELIVERY_ATTEMPTS": "7",
            "STT_MIN_BACKOFF_S": "0.25",
            "STT_BUCKET": "",
        }
    )
    assert settings.project == "demo-x"
    assert settings.max_delivery_attempts == 7
    assert settings.min_backoff_s == 0.25
    assert settings.bucket == "stt-project-datasets"  # empty means unset
    assert settings.firestore_database == "(default)"


def test_to_env_round_trips() -> None:
    settings = Settings(project="demo-y", collection_prefix="t1_", ack_deadline_s=33)
    assert Settings.from_env(settings.to_env()) == settings
    assert set(settings.to_env()) == set(ENV_NAMES.values())


def test_bad_number_in_env_is_an_error() -> None:
    with pytest.raises(ValueError):
        Settings.from_env({"STT_MAX_DELIVERY_ATTEMPTS": "five"})


def test_every_subscription_has_its_dead_letter_topic_and_sink() -> None:
    topology = build_topology(Settings(max_delivery_attempts=6))
    assert topology.subscriptions, "at least the failure ingestion is wired"
    sinks = {sink.topic for sink in topology.dead_letter_sinks}
    for sub in topology.subscriptions:
        assert sub.dead_letter_topic == f"{sub.topic}-dead-letter"
        assert sub.dead_letter_topic in topology.dead_letter_topics
        assert sub.dead_letter_topic in sinks
        assert sub.topic in topology.topics
        assert sub.max_delivery_attempts == 6


def test_record_failure_is_pushed_from_transcription_failures() -> None:
    topology = build_topology(Settings(topic_failures="tf-custom"))
    assert topology.subscription_for("record_failure").topic == "tf-custom"
    assert topology.function("record_failure").signature == "cloudevent"
    with pytest.raises(KeyError, match="known"):
        topology.function("nope")


def test_each_function_source_defines_its_entry_point() -> None:
    for fn in build_topology(Settings()).functions:
        tree = ast.parse((REPO_ROOT / fn.source).read_text())
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert fn.entry_point in names, f"{fn.source} lacks {fn.entry_point}()"


def test_collection_prefix() -> None:
    assert Settings(collection_prefix="t9_").collection("failed_cases") == "t9_failed_cases"
