"""infra/ alerts on what failed and keeps it long enough to act on (issue #11, items 5 and 8): alert policies on the
dead letters waiting and on function errors and quarantines, each notifying var.alert_notification_channels; the
replay's IAM; the bucket's lifecycle for transient prefixes and quarantine copies; the Firestore index exemptions
and the quarantine's TTL, named as shared/ names them."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from shared.adapters.firestore_cases import HISTORY
from shared.adapters.firestore_counters import EXPIRE_FIELD, QUARANTINE
from shared.config import Settings
from shared.domain import bucket_layout as layout
from tests.infra.tf import INFRA_DIR, TfModule, literal, unquote

POLICY = "google_monitoring_alert_policy"


@pytest.fixture(scope="module")
def root() -> TfModule:
    return TfModule.load(INFRA_DIR)


def _threshold(policy: dict[str, Any]) -> dict[str, Any]:
    [condition] = policy["conditions"]
    [threshold] = condition["condition_threshold"]
    return threshold


def test_every_alert_policy_notifies_the_channels_variable_and_says_what_to_do(root: TfModule) -> None:
    policies = root.resources(POLICY)
    assert set(policies) == {"dead_letter_backlog", "function_errors", "quarantine_rate", "builds_rejected"}
    for name, policy in policies.items():
        assert policy["notification_channels"] == "${var.alert_notification_channels}", name
        [documentation] = policy["documentation"]
        assert len(documentation["content"]) > 80, name
    channels = root.variables()["alert_notification_channels"]
    assert channels["type"] == "${list(string)}" and channels["default"] == []


def test_a_dead_letter_waiting_on_any_sink_opens_an_alert(root: TfModule) -> None:
    policy = root.resource(POLICY, "dead_letter_backlog")
    assert policy["for_each"] == "${local.pushed_topics}"  # one per dead-letter topic, as the sinks
    assert root.resource("google_pubsub_subscription", "dead_letter_sink")["for_each"] == "${local.pushed_topics}"
    threshold = _threshold(policy)
    assert "pubsub.googleapis.com/subscription/num_undelivered_messages" in threshold["filter"]
    assert "${google_pubsub_subscription.dead_letter_sink[each.key].name}" in threshold["filter"]
    assert (literal(threshold["comparison"]), threshold["threshold_value"]) == ("COMPARISON_GT", 0)
    assert "replay_dead_letters" in policy["documentation"][0]["content"]


def test_every_function_has_an_error_alert(root: TfModule) -> None:
    policy = root.resource(POLICY, "function_errors")
    assert policy["for_each"] == "${var.functions}"
    threshold = _threshold(policy)
    assert 'response_code_class = \\"5xx\\"' in threshold["filter"]
    assert "${module.functions[each.key].name}" in threshold["filter"]
    assert threshold["threshold_value"] == "${var.function_error_threshold}"


def test_the_quarantine_rate_alert_counts_the_quarantined_outcome_lines(root: TfModule) -> None:
    from shared.services.outcome import Outcome

    metric = root.resource("google_logging_metric", "quarantined")
    assert f'jsonPayload.message = \\"{Outcome("quarantined").status}\\"' in metric["filter"]
    threshold = _threshold(root.resource(POLICY, "quarantine_rate"))
    assert "${google_logging_metric.quarantined.name}" in threshold["filter"]
    assert threshold["threshold_value"] == "${var.quarantine_alert_threshold}"


def test_the_api_may_replay_dead_letters(root: TfModule) -> None:
    reads = root.resource("google_pubsub_subscription_iam_member", "api_reads_dead_letters")
    assert reads["for_each"] == "${local.pushed_topics}"
    assert literal(reads["role"]) == "roles/pubsub.subscriber"
    assert reads["subscription"] == "${google_pubsub_subscription.dead_letter_sink[each.key].name}"
    assert "api" in reads["member"]
    assert root.locals()["function_cloud"]["api"]["publish_topics"] == "${sort(local.pushed_topics)}"


def test_dead_letters_are_kept_long_enough_to_act_on(root: TfModule) -> None:
    retention = literal(root.variables()["dead_letter_retention"]["default"])
    days = int(re.fullmatch(r"(\d+)s", retention).group(1)) / 86400  # type: ignore[union-attr]
    assert 14 <= days <= 31  # Pub/Sub keeps at most 31 days


def test_transient_prefixes_and_quarantine_copies_expire(root: TfModule) -> None:
    prefixes = [literal(p) for p in root.variables()["temporary_prefixes"]["default"]]
    assert layout.EXPORT_SEGMENTS in prefixes and "tmp/" in prefixes
    [dynamic] = root.resource("google_storage_bucket", "data")["dynamic"]
    rule = dynamic['"lifecycle_rule"']
    assert "var.quarantine_retention_days > 0" in rule["for_each"]
    [content] = rule["content"]
    [condition] = content["condition"]
    assert [literal(p) for p in condition["matches_prefix"]] == [layout.QUARANTINE]
    assert literal(content["action"][0]["type"]) == "Delete"
    default = root.variables()["quarantine_retention_days"]["default"]
    assert default == Settings().quarantine_retention_days > 0


def test_big_unqueried_fields_are_not_indexed(root: TfModule) -> None:
    fields = {(unquote(f["collection"]) if f["collection"].startswith('"') else f["collection"], literal(f["field"]))
              for f in root.locals()["unindexed_fields"].values()}
    cases = "${local.collection_failed_cases}"
    assert {(cases, "corrections"), (cases, "original_transcript"), (cases, "corrected_transcript"),
            (HISTORY, "previous_transcript"), (HISTORY, "corrected_transcript")} <= fields
    exempt = root.resource("google_firestore_field", "unindexed")
    assert exempt["index_config"] == [{}] and exempt["for_each"] == "${local.unindexed_fields}"
    assert root.locals()["collection_quarantine"] == f"\"${{var.collection_prefix}}{QUARANTINE}\""


def test_quarantine_records_expire_by_ttl_on_the_field_the_functions_write(root: TfModule) -> None:
    ttl = root.resource("google_firestore_field", "quarantine_ttl")
    assert (ttl["collection"], literal(ttl["field"]), ttl["ttl_config"]) == (
        "${local.collection_quarantine}", EXPIRE_FIELD, [{}])


def test_import_reject_segments_expire_after_any_replay_could_need_them(root: TfModule) -> None:
    from shared.services.bulk_import import RejectSink
    from tests.unit.fake_dataset_bucket import FakeBucket

    bucket = FakeBucket()
    sink = RejectSink(bucket, layout.import_result_base("imports/day1.jsonl") + ".rejected.jsonl", spill_bytes=0)
    sink.add(1, b"{bad", "not valid JSON")
    [segment] = sink.cut()
    assert segment.startswith(layout.IMPORT_SEGMENTS)  # where the rule below deletes

    rules = [rule for rule in root.resource("google_storage_bucket", "data")["lifecycle_rule"]
             if rule["condition"][0].get("matches_prefix") == [f'"{layout.IMPORT_SEGMENTS}"']]
    [rule] = rules
    assert rule["condition"][0]["age"] == "${var.import_segment_age_days}"
    assert literal(rule["action"][0]["type"]) == "Delete"
    age_days = root.variables()["import_segment_age_days"]["default"]
    retention = literal(root.variables()["dead_letter_retention"]["default"])
    dead_letter_days = int(re.fullmatch(r"(\d+)s", retention).group(1)) / 86400  # type: ignore[union-attr]
    assert age_days > dead_letter_days  # a replayed import still joins the segments its checkpoint lists


def _payload_matches(log_filter: str, payload: dict[str, Any]) -> bool:
    """Whether a JSON log line matches the jsonPayload clauses of a Cloud Logging filter (its resource clauses
    are checked apart): `jsonPayload.k = "v"`, `jsonPayload.k = false|true`, AND, OR and parentheses only; any
    other syntax fails the test rather than being guessed at."""
    clauses = log_filter.split(" AND ", 2)
    assert clauses[0] == 'resource.type = "cloud_run_revision"' and clauses[1].startswith("resource.labels."), clauses
    token = r'\(|\)|AND|OR|jsonPayload\.\w+ = (?:"[^"]*"|true|false)'
    tokens = re.findall(token, clauses[2])
    assert not re.sub(token, "", clauses[2]).strip(), f"unsupported filter syntax: {clauses[2]}"
    python = []
    for part in tokens:
        if part in ("AND", "OR"):
            python.append(part.lower())
        elif part in ("(", ")"):
            python.append(part)
        else:
            key, value = part.removeprefix("jsonPayload.").split(" = ")
            python.append(repr(payload.get(key) == orjson.loads(value)))
    return bool(eval(" ".join(python), {"__builtins__": {}}))  # only True, False, and, or, ( and )


def _build_log_line(outcome: Any) -> dict[str, Any]:
    """The JSON line build_dataset writes for an outcome (shared/push.py's call, shared/observability.py's form)."""
    import logging

    from shared.observability import JsonFormatter

    record = logging.LogRecord("sttdata.build_dataset", logging.INFO, __file__, 0, outcome.status, None, None)
    record.__dict__.update({"event_id": "1", **outcome.log_fields()})
    return dict(orjson.loads(JsonFormatter().format(record)))


def test_build_requests_rejected_or_failing_quality_open_an_alert(root: TfModule) -> None:
    from shared.services.dataset_builds import serve_notification
    from tests.unit.fake_dataset_bucket import FakeBucket, FakeCases, FakeLedger
    from tests.unit.test_dataset_build_service import event, make_cases

    metric = root.resource("google_logging_metric", "builds_rejected")
    log_filter = unquote(metric["filter"]).replace('\\"', '"')
    assert '${module.functions["build_dataset"].name}' in log_filter

    settings, bucket = Settings(), FakeBucket()
    cases = make_cases(40)
    for case in cases[::2]:
        case["audio_path"] = case["audio_path"].replace(".wav", ".bin")  # no audio extension: consistency 0.5

    def serve(name: str, body: bytes) -> dict[str, Any]:
        bucket.put(name, body, "application/json")
        attributes = {**event(name), "objectGeneration": str(bucket.generation(name))}
        outcome = serve_notification(attributes, settings, FakeLedger(), FakeCases(cases), bucket)
        return _build_log_line(outcome)

    refused = serve("dataset-requests/bad.json", b'{"min_error_score": 7}')
    failed = serve("dataset-requests/strict.json", orjson.dumps({"quality_thresholds": {"min_consistency": 0.9}}))
    passed = serve("dataset-requests/fine.json", orjson.dumps({"quality_thresholds": {"min_consistency": 0.1}}))
    assert (refused["message"], failed["message"], failed["quality_passed"]) == ("rejected", "built", False)
    assert (passed["message"], passed["quality_passed"]) == ("built", True)
    assert _payload_matches(log_filter, refused) and _payload_matches(log_filter, failed)
    assert not _payload_matches(log_filter, passed)

    threshold = _threshold(root.resource(POLICY, "builds_rejected"))
    assert "${google_logging_metric.builds_rejected.name}" in threshold["filter"]
    assert threshold["threshold_value"] == "${var.build_rejection_alert_threshold}"
    assert root.variables()["build_rejection_alert_threshold"]["default"] == 0  # any one opens it
