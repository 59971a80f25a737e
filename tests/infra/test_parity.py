"""infra/ does with the generated inputs what shared/topology.py does with the Settings (python-hcl2, no terraform).

The inputs themselves (topology.auto.tfvars.json) are checked against shared/topology.py in test_tfvars.py. Here
each check reads the .tf files as data; the edits and doctored inputs at the end prove that each check can fail.
"""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from shared.config import ENV_NAMES, Settings
from shared.topology import build_topology, dead_letter_sink
from tests.infra.tf import INFRA_DIR, Infra, literal, load_file, render, strings, unquote

# What functions.tf may set for a function: inputs of modules/function.
CLOUD_ATTRIBUTES = {
    *("schedule", "invokers", "ingress", "bucket_role", "bucket_prefix_roles", "publish_topics", "memory", "cpu",
      "timeout_s", "max_instances", "env", "reads_audio")
}
ROOT_ONLY_ATTRIBUTES = {"env", "reads_audio"}  # read by the root module, not handed to the function module
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")


def _resolve(infra: Infra, setting: str) -> Any:
    """The value of a setting named by the inputs, as local.settings resolves it with the variables' defaults."""
    assert hasattr(infra.settings, setting), f"the inputs name {setting!r}, which is no Settings field"
    return getattr(infra.settings, setting)


def _pushed(infra: Infra) -> dict[str, dict[str, Any]]:
    return {name: fn["push"] for name, fn in infra.inputs["functions"].items() if fn["push"] is not None}


def _cloud(infra: Infra) -> dict[str, dict[str, Any]]:
    return dict(infra.root.locals()["function_cloud"])


# ---------------------------------------------------------------- checks


def check_settings_are_the_variables(infra: Infra) -> None:
    """local.settings holds every Settings field, each from a variable whose default is the Settings default."""
    settings = infra.root.locals()["settings"]
    assert set(settings) == {f.name for f in fields(Settings)}, "local.settings must name every Settings field"
    variables = infra.root.variables()
    for setting, expression in settings.items():
        match = re.fullmatch(r"\$\{var\.(\w+)\}", expression)
        assert match, f"local.settings.{setting} = {expression}: a setting is one variable"
        variable = variables[match.group(1)]
        expected = getattr(infra.settings, setting)
        if setting == "project":
            assert "default" not in variable, "project_id has no default: every deployment names its project"
            continue
        default = literal(variable["default"])
        assert type(expected)(default) == expected, (
            f"var.{match.group(1)} defaults to {default!r}, Settings to {expected!r}"
        )
    referenced = {*infra.inputs["topics"], infra.inputs["bucket_notification"]["topic"], *infra.inputs["settings_env"]}
    referenced |= {push["topic"] for push in _pushed(infra).values()}
    assert referenced <= set(settings), f"the inputs name settings local.settings lacks: {referenced - set(settings)}"


def check_functions_are_the_inputs(infra: Infra) -> None:
    """One module instance per generated function, made from its entry: entry point, main.py, requirements, env."""
    module = infra.root.module("functions")
    expected = {
        "source": '"./modules/function"',
        "for_each": "${var.functions}",
        "name": "${each.key}",
        "entry_point": "${each.value.entry_point}",
        "main_py": "${each.value.source}",
        "requirements": "${var.function_requirements}",
        "env": "${merge(local.function_env, try(local.function_cloud[each.key].env, {}))}",
    }
    for argument, expression in expected.items():
        assert module.get(argument) == expression, f"module.functions.{argument} = {module.get(argument)}"
    env = "${{for setting, env_name in var.settings_env : env_name => tostring(local.settings[setting])}}"
    assert infra.root.locals()["function_env"] == env, "every function gets every setting under its ENV_NAMES name"
    assert len(infra.root.blocks["module"]) == 1, "functions are made only by module.functions"

    function = infra.function.resource("google_cloudfunctions2_function", "this")
    assert function["build_config"][0]["entry_point"] == "${var.entry_point}"
    assert function["service_config"][0]["environment_variables"] == "${var.env}"
    zip_sources = {
        unquote(s["filename"]): s["content"] for s in infra.function.resource("archive_file", "source")["source"]
    }
    assert zip_sources["main.py"] == '${file("${var.source_root}/${var.main_py}")}'
    assert zip_sources["requirements.txt"] == '"${join("\\n", var.requirements)}\\n"'


def check_push_subscriptions_apply_inputs_and_policy(infra: Infra) -> None:
    """A pushed function's subscription: its topic, filter and ack deadline from the inputs, the rest from settings."""
    module = infra.root.module("functions")
    expected = {
        "topic": "${each.value.push == null ? null : google_pubsub_topic.topics[local.trigger_topics[each.key]].name}",
        "filter": '${each.value.push == null ? "" : each.value.push.filter}',
        "dead_letter_topic": "${each.value.push == null ? null : "
        "google_pubsub_topic.dead_letter[local.trigger_topics[each.key]].id}",
        "ack_deadline_s": "${each.value.push == null ? var.ack_deadline_s : "
        "coalesce(each.value.push.ack_deadline_s, var.ack_deadline_s)}",
        "min_backoff_s": "${var.min_backoff_s}",
        "max_backoff_s": "${var.max_backoff_s}",
        "max_delivery_attempts": "${var.max_delivery_attempts}",
    }
    for argument, expression in expected.items():
        assert module.get(argument) == expression, f"module.functions.{argument} = {module.get(argument)}"
    triggers = "${{for name, fn in var.functions : name => local.settings[fn.push.topic] if fn.push != null}}"
    assert infra.root.locals()["trigger_topics"] == triggers

    sub = infra.function.resource("google_pubsub_subscription", "push")
    assert sub["count"] == "${local.pushed ? 1 : 0}" and infra.function.locals()["pushed"] == "${var.topic != null}"
    assert sub["topic"] == "${var.topic}"
    assert sub["ack_deadline_seconds"] == "${var.ack_deadline_s}"
    assert sub["filter"] == '${var.filter == "" ? null : var.filter}', f"filter = {sub['filter']}"
    assert sub["retry_policy"] == [
        {"minimum_backoff": '"${var.min_backoff_s}s"', "maximum_backoff": '"${var.max_backoff_s}s"'}
    ]
    assert sub["dead_letter_policy"] == [
        {"dead_letter_topic": "${var.dead_letter_topic}", "max_delivery_attempts": "${var.max_delivery_attempts}"}
    ]
    push = sub["push_config"][0]
    url = "${google_cloudfunctions2_function.this.service_config[0].uri}"
    assert push["push_endpoint"] == url, "a subscription pushes to its own function"
    assert push["oidc_token"] == [{"service_account_email": "${var.invoker_email}", "audience": url}]


def check_names_follow_the_topology(infra: Infra) -> None:
    """Topics, subscriptions, dead-letter topics and sinks get the names build_topology gives them."""
    topology = build_topology(infra.settings)
    root, module = infra.root, infra.function
    assert root.locals()["topics"] == "${[for setting in var.topics : local.settings[setting]]}"
    topics = root.resource("google_pubsub_topic", "topics")
    assert (topics["for_each"], topics["name"]) == ("${toset(local.topics)}", "${each.key}")
    assert [_resolve(infra, s) for s in infra.inputs["topics"]] == list(topology.topics)

    assert module.locals()["function_id"] == '${replace(var.name, "_", "-")}'
    assert module.resource("google_cloudfunctions2_function", "this")["name"] == "${local.function_id}"
    template = module.resource("google_pubsub_subscription", "push")["name"]
    subscriptions = {
        render(template, {"var.topic": _resolve(infra, push["topic"]), "local.function_id": name.replace("_", "-")})
        for name, push in _pushed(infra).items()
    }
    assert subscriptions == {sub.name for sub in topology.subscriptions}

    pushed = {_resolve(infra, push["topic"]) for push in _pushed(infra).values()}
    assert root.locals()["pushed_topics"] == "${toset(values(local.trigger_topics))}"
    dead_letter = root.resource("google_pubsub_topic", "dead_letter")
    assert dead_letter["for_each"] == "${local.pushed_topics}"
    dead_letters = {topic: render(dead_letter["name"], {"each.key": topic}) for topic in pushed}
    assert set(dead_letters.values()) == set(topology.dead_letter_topics)
    for sub in topology.subscriptions:
        assert dead_letters[sub.topic] == sub.dead_letter_topic, f"{sub.name} dead-letters elsewhere in infra/"

    sink = root.resource("google_pubsub_subscription", "dead_letter_sink")
    assert sink["for_each"] == "${local.pushed_topics}" and "push_config" not in sink
    assert sink["topic"] == "${google_pubsub_topic.dead_letter[each.key].id}"
    reference = "google_pubsub_topic.dead_letter[each.key].name"
    sinks = {render(sink["name"], {reference: dead_letters[topic]}): dead_letters[topic] for topic in pushed}
    assert sinks == {s.name: s.topic for s in topology.dead_letter_sinks}
    assert sinks == {dead_letter_sink(t).name: t for t in topology.dead_letter_topics}


def check_bucket_notification(infra: Infra) -> None:
    """The datasets bucket notifies the generated topic, with the generated event types and payload format."""
    notifications = infra.root.resources("google_storage_notification")
    assert list(notifications) == ["bucket_events"], "one bucket notification"
    note = notifications["bucket_events"]
    assert note["bucket"] == "${google_storage_bucket.data.name}"
    assert infra.root.resource("google_storage_bucket", "data")["name"] == "${var.bucket_name}"
    assert infra.root.locals()["settings"]["bucket"] == "${var.bucket_name}"
    assert note["topic"] == "${google_pubsub_topic.topics[local.notification_topic].id}"
    assert infra.root.locals()["notification_topic"] == "${local.settings[var.bucket_notification.topic]}"
    assert note["event_types"] == "${var.bucket_notification.event_types}"
    assert note["payload_format"] == "${var.bucket_notification.payload_format}"
    assert "object_name_prefix" not in note, "functions filter by prefix on their subscriptions, not the bucket"
    expected = build_topology(infra.settings).notification
    generated = infra.inputs["bucket_notification"]
    assert _resolve(infra, generated["topic"]) == expected.topic


def check_no_topology_literal_in_hcl(infra: Infra) -> None:
    """No function name, topic name, env name, filter, event type or requirement is written in the wiring's code."""
    topology = build_topology(infra.settings)
    words = [*infra.inputs["functions"], *topology.topics, *ENV_NAMES.values(), "hasPrefix", "OBJECT_FINALIZE"]
    words += ["JSON_API_V1", *infra.inputs["function_requirements"]]
    wiring = [infra.root.directory / "main.tf", infra.root.directory / "outputs.tf"]
    for path in [*wiring, *sorted(infra.function.directory.glob("*.tf"))]:
        for text in strings(load_file(path)):
            for word in words:
                assert not re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text), (
                    f"{path.relative_to(infra.root.directory)} writes {word!r} in {text}: take it from the inputs"
                )


def check_function_cloud_settings(infra: Infra) -> None:
    """functions.tf sets only known attributes of known functions; a pushed one finishes within its ack deadline."""
    cloud = _cloud(infra)
    functions = infra.inputs["functions"]
    assert set(cloud) <= set(functions), (
        f"functions.tf has settings for functions that do not exist: {set(cloud) - set(functions)}"
    )
    module = infra.root.module("functions")
    for attribute in CLOUD_ATTRIBUTES - ROOT_ONLY_ATTRIBUTES:
        assert module.get(attribute) == f"${{try(local.function_cloud[each.key].{attribute}, null)}}", attribute
    module_variables = infra.function.variables()
    ack_default = literal(infra.root.variables()["ack_deadline_s"]["default"])
    for name, entry in cloud.items():
        assert set(entry) <= CLOUD_ATTRIBUTES, f"functions.tf: {name} sets {set(entry) - CLOUD_ATTRIBUTES}"
        push = functions[name]["push"]
        if "schedule" in entry:
            assert push is None and functions[name]["signature"] == "http", (
                f"{name}: only an HTTP function is scheduled"
            )
        if push is not None:
            timeout = literal(entry.get("timeout_s", module_variables["timeout_s"]["default"]))
            ack_deadline = push["ack_deadline_s"] or ack_default
            assert timeout <= ack_deadline, (
                f"{name}: timeout {timeout}s > ack deadline {ack_deadline}s: redelivered while it runs"
            )


def check_audio_reads_are_read_only_on_the_audio_buckets(infra: Infra) -> None:
    """The function that reads audio (build_dataset, alone) gets objectViewer on the audio buckets and nothing else."""
    cloud = _cloud(infra)
    readers = {name for name, entry in cloud.items() if literal(entry.get("reads_audio", False)) is True}
    # The api's augment_dataset uploads a build request (docs/datasets.md): build_dataset alone reads audio.
    assert readers == {"build_dataset"}
    grant = infra.root.resource("google_storage_bucket_iam_member", "audio_reader")
    assert literal(grant["role"]) == "roles/storage.objectViewer"
    assert grant["bucket"] == "${each.value.bucket}" and grant["for_each"] == "${local.audio_grants}"
    assert "audio_buckets" in infra.root.variables() and infra.root.variables()["audio_buckets"]["default"] == []
    audio_locals = infra.root.locals()
    assert "var.audio_buckets" in audio_locals["audio_buckets"]
    assert "reads_audio" in audio_locals["audio_readers"]


def check_every_function_is_private(infra: Infra) -> None:
    """No IAM member or function invoker in infra/ is allUsers or allAuthenticatedUsers."""
    for path in infra.root.directory.rglob("*.tf"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"\s*(member|members|invokers)\s*=", line):
                assert not any(m in line for m in PUBLIC_MEMBERS), f"{path}:{number}"
    for name, entry in _cloud(infra).items():
        assert not any(m in str(entry.get("invokers", "")) for m in PUBLIC_MEMBERS), name


def check_moved_blocks_target_existing_addresses(infra: Infra) -> None:
    """moved.tf carries each pushed function's old dead-letter resources to its topic's, under the default names."""
    moved = infra.root.blocks.get("moved", [])
    assert moved, "moved.tf keeps existing deployments' dead letters"
    pattern = r'\$\{module\.functions\["(\w+)"\]\.(\w+)\.(\w+)\[0\]\}'
    for block in moved:
        source = re.fullmatch(pattern, block["from"])
        assert source, f"moved from {block['from']}"
        function, kind, name = source.groups()
        push = infra.inputs["functions"].get(function, {}).get("push")
        assert push is not None, f"moved.tf moves from {function}, which is not a pushed function"
        topic = _resolve(replace(infra, settings=Settings()), push["topic"])
        assert block["to"] == f'${{{kind}.{name}["{topic}"]}}', f"{block['to']}: {function} is pushed from {topic}"
        infra.root.resource(kind, name)


CHECKS: list[Callable[[Infra], None]] = [
    check_settings_are_the_variables,
    check_functions_are_the_inputs,
    check_push_subscriptions_apply_inputs_and_policy,
    check_names_follow_the_topology,
    check_bucket_notification,
    check_no_topology_literal_in_hcl,
    check_function_cloud_settings,
    check_audio_reads_are_read_only_on_the_audio_buckets,
    check_every_function_is_private,
    check_moved_blocks_target_existing_addresses,
]


@pytest.fixture(scope="module")
def infra() -> Infra:
    return Infra.load()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_infra(check: Callable[[Infra], None], infra: Infra) -> None:
    check(infra)


def test_the_inputs_are_not_empty(infra: Infra) -> None:
    """Checks over nothing would pass: there are functions, pushed and not, and topics."""
    functions = infra.inputs["functions"]
    assert _pushed(infra) and len(_pushed(infra)) < len(functions) and infra.inputs["topics"]


@pytest.mark.parametrize(
    "settings",
    [Settings(topic_failures="my-failures", topic_bucket_events="my-events"), Settings(bucket="my-bucket")],
    ids=["topics", "bucket"],
)
def test_names_follow_a_deployments_settings(settings: Settings, infra: Infra) -> None:
    """With other names in the variables, infra/ names everything as build_topology does for those Settings."""
    check_names_follow_the_topology(replace(infra, settings=settings))
    check_bucket_notification(replace(infra, settings=settings))


# ---------------------------------------------------------------- each check can fail

MODULE = "modules/function/main.tf"

# Edits of a copy of infra/, by the check that must notice them: name -> (file, old text, new text).
TF_EDITS: dict[Callable[[Infra], None], dict[str, tuple[str, str, str]]] = {
    check_settings_are_the_variables: {
        "setting_dropped": ("main.tf", "    bucket                = var.bucket_name\n", ""),
        "attempts_default": ("variables.tf", "  default     = 5\n", "  default     = 7\n"),
    },
    check_functions_are_the_inputs: {
        "for_each": (
            "main.tf",
            "for_each = var.functions",
            'for_each = { for k, v in var.functions : k => v if k != "api" }',
        ),
        "entry_point": (MODULE, "entry_point = var.entry_point", 'entry_point = "main"'),
        "main_py": (MODULE, "${var.source_root}/${var.main_py}", "${var.source_root}/functions/${var.name}/main.py"),
        "requirements": (
            "main.tf",
            "requirements = var.function_requirements",
            'requirements = ["functions-framework"]',
        ),
        "env": ("main.tf", "env_name => tostring(local.settings[setting])", 'env_name => "x"'),
    },
    check_push_subscriptions_apply_inputs_and_policy: {
        "filter_dropped": ("main.tf", 'each.value.push == null ? "" : each.value.push.filter', '""'),
        "filter_expression": (MODULE, 'var.filter == "" ? null : var.filter', '"hasPrefix(attributes.name, \\"x/\\")"'),
        "ack_deadline": (
            "main.tf",
            "coalesce(each.value.push.ack_deadline_s, var.ack_deadline_s)",
            "var.ack_deadline_s",
        ),
        "backoff": (MODULE, 'minimum_backoff = "${var.min_backoff_s}s"', 'minimum_backoff = "10s"'),
        "attempts": (MODULE, "max_delivery_attempts = var.max_delivery_attempts", "max_delivery_attempts = 5"),
        "oidc": (MODULE, "= var.invoker_email\n      audience", '= "someone@example.com"\n      audience'),
    },
    check_names_follow_the_topology: {
        "topic_added": ("main.tf", "local.settings[setting]]\n", 'local.settings[setting] if setting != "x"]\n'),
        "subscription_name": (MODULE, '"${var.topic}-${local.function_id}"', '"${var.topic}-${var.name}"'),
        "dead_letter_name": ("main.tf", '"${each.key}-dead-letter"', '"${each.key}-dlq"'),
        "sink_name": ("main.tf", '"${google_pubsub_topic.dead_letter[each.key].name}-sink"', '"${each.key}-sink"'),
    },
    check_bucket_notification: {
        "event_types": ("main.tf", "= var.bucket_notification.event_types", '= ["OBJECT_FINALIZE", "OBJECT_DELETE"]'),
        "prefix": ("main.tf", "  event_types    =", '  object_name_prefix = "dataset-requests/"\n  event_types    ='),
    },
    check_no_topology_literal_in_hcl: {
        "function_literal": (
            "main.tf",
            "  bucket_location = coalesce",
            '  audit = "ingest_import"\n  bucket_location = coalesce',
        ),
        "topic_literal": (MODULE, "topic                = var.topic", 'topic                = "bucket-events"'),
    },
    check_function_cloud_settings: {
        "cloud_orphan": ("functions.tf", "  function_cloud = {\n", "  function_cloud = {\n    audit_export = {}\n"),
        "cloud_typo": ("functions.tf", 'memory      = "2Gi"', 'memroy      = "2Gi"'),
        "timeout": ("functions.tf", "timeout_s   = 540", "timeout_s   = 900"),
    },
    check_every_function_is_private: {
        "public": ("functions.tf", "invokers = var.api_invokers", 'invokers = ["allUsers"]'),
    },
    check_moved_blocks_target_existing_addresses: {
        "moved": ("moved.tf", 'dead_letter["transcription-failures"]', 'dead_letter["transcription-failure"]'),
    },
}


@pytest.mark.parametrize(
    ("check", "edit"), [pytest.param(check, edit, id=edit) for check, edits in TF_EDITS.items() for edit in edits]
)
def test_a_doctored_infra_fails_its_check(
    check: Callable[[Infra], None], edit: str, tmp_path: Path, infra: Infra
) -> None:
    copy_dir = tmp_path / "infra"
    shutil.copytree(INFRA_DIR, copy_dir, ignore=shutil.ignore_patterns(".terraform", ".build"))
    name, old, new = TF_EDITS[check][edit]
    path = copy_dir / name
    text = path.read_text()
    assert old in text, f"the edit {edit!r} no longer applies to infra/{name}; update TF_EDITS"
    path.write_text(text.replace(old, new, 1))
    check(infra)  # the check passes on the real infra/ ...
    with pytest.raises(AssertionError):
        check(Infra.load(copy_dir))  # ... and fails on the edited copy


def _drop_api(inputs: dict) -> None:
    del inputs["functions"]["api"]


def _shorten_ack_deadline(inputs: dict) -> None:
    inputs["functions"]["ingest_import"]["push"]["ack_deadline_s"] = 300


def _push_the_scheduled_function(inputs: dict) -> None:
    inputs["functions"]["aggregate"].update(signature="cloudevent", push={"topic": "topic_metrics", "filter": ""})


def _unknown_setting(inputs: dict) -> None:
    inputs["functions"]["record_failure"]["push"]["topic"] = "topic_failure"


def _new_setting(inputs: dict) -> None:
    inputs["settings_env"]["region"] = "STT_REGION"


def _move_a_function(inputs: dict) -> None:
    inputs["functions"]["record_failure"]["push"]["topic"] = "topic_metrics"


# Doctored generated inputs: what the HCL checks must then report (the file's staleness is test_tfvars.py's).
INPUT_DOCTORS: list[tuple[Callable[[dict], None], Callable[[Infra], None]]] = [
    (_drop_api, check_function_cloud_settings),
    (_shorten_ack_deadline, check_function_cloud_settings),
    (_push_the_scheduled_function, check_function_cloud_settings),
    (_unknown_setting, check_settings_are_the_variables),
    (_new_setting, check_settings_are_the_variables),
    (_move_a_function, check_moved_blocks_target_existing_addresses),
    (_move_a_function, check_names_follow_the_topology),
]


@pytest.mark.parametrize(("doctor", "check"), INPUT_DOCTORS, ids=lambda f: f.__name__.strip("_").removeprefix("check_"))
def test_doctored_inputs_fail_a_check(
    doctor: Callable[[dict], None], check: Callable[[Infra], None], infra: Infra
) -> None:
    inputs = copy.deepcopy(infra.inputs)
    doctor(inputs)
    with pytest.raises(AssertionError):
        check(replace(infra, inputs=inputs))


@pytest.mark.parametrize(
    "settings",
    [Settings(topic_metrics="model-metrics"), Settings(max_delivery_attempts=9), Settings(bucket="other-bucket")],
    ids=["topic", "attempts", "bucket"],
)
def test_variables_must_default_to_the_settings(settings: Settings, infra: Infra) -> None:
    with pytest.raises(AssertionError):
        check_settings_are_the_variables(replace(infra, settings=settings))
