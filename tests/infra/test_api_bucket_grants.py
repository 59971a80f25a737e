"""The api's service account writes to the bucket only where its ops write (issue #11, item 1): it reads the
whole bucket, and may create, replace or delete objects only under the prefixes granted by IAM condition in
functions.tf (reports/, restores/, the registry) and create without replacing under dataset-requests/api-augment/
(augment_dataset's build requests) and quarantine/. The writes the api's ops make on the fake bucket are checked
against those grants as Terraform states them, so an op that starts writing elsewhere, or replacing what it may
only create, fails here before it fails in the cloud with a 403."""

from __future__ import annotations

from typing import Any

import pytest

from shared.bootstrap import Adapters
from shared.domain import bucket_layout as layout
from shared.services.system_report import save_report
from tests.infra.tf import INFRA_DIR, TfModule, literal, unquote

VIEWER, CREATOR, USER = "roles/storage.objectViewer", "roles/storage.objectCreator", "roles/storage.objectUser"


@pytest.fixture(scope="module")
def root() -> TfModule:
    return TfModule.load(INFRA_DIR)


def api_grants(root: TfModule) -> dict[str, str]:
    """The api's conditioned bucket roles, by object prefix (ending with "/") or object name."""
    api = root.locals()["function_cloud"]["api"]
    return {unquote(name) if name.startswith('"') else name: literal(role)
            for name, role in api["bucket_prefix_roles"].items()}


def allows(grants: dict[str, str], name: str, *, replaces: bool) -> bool:
    """Whether a grant covers writing `name`: objectCreator creates, objectUser also replaces and deletes."""
    for granted, role in grants.items():
        covers = name.startswith(granted) if granted.endswith("/") else name == granted
        if covers and (role == USER or not replaces):
            return True
    return False


def test_the_api_reads_the_bucket_and_writes_only_where_it_is_granted(root: TfModule) -> None:
    api = root.locals()["function_cloud"]["api"]
    assert literal(api["bucket_role"]) == VIEWER  # unconditioned: reads and lists, never writes
    assert api_grants(root) == {
        layout.REPORTS: USER,
        layout.RESTORES: USER,
        layout.REGISTRY: USER,
        layout.API_AUGMENT_REQUESTS: CREATOR,
        layout.QUARANTINE: CREATOR,
    }
    assert root.module("functions")["bucket_prefix_roles"] == (
        "${try(local.function_cloud[each.key].bucket_prefix_roles, null)}"
    )


def test_each_grant_is_an_iam_condition_on_the_object_names() -> None:
    module = TfModule.load(INFRA_DIR / "modules" / "function")
    grant = module.resource("google_storage_bucket_iam_member", "bucket_prefix")
    assert grant["for_each"] == "${var.bucket_prefix_roles}" and grant["role"] == "${each.value}"
    [condition] = grant["condition"]
    expression = condition["expression"]
    objects = "projects/_/buckets/${var.bucket}/objects/${each.key}"
    # A prefix (ending with "/") by startsWith, any other name exactly.
    assert 'endswith(each.key, \\"/\\")' in expression or 'endswith(each.key, "/")' in expression
    assert f'resource.name.startsWith(\\"{objects}\\")' in expression
    assert f'resource.name == \\"{objects}\\"' in expression
    variable = module.variables()["bucket_prefix_roles"]
    assert variable["default"] == {} and variable["nullable"] is False


def test_the_grants_refuse_what_the_api_must_never_write(root: TfModule) -> None:
    grants = api_grants(root)
    for name in (layout.REGISTRY + ".bak", "dataset-requests/x.json", "imports/day1.jsonl",
                 "learning_data/failed_cases.jsonl", "metadata/model_versions.json", "reportsX/a.json"):
        assert not allows(grants, name, replaces=False), name
    # Datasets are build_dataset's alone; augmentation requests and quarantined copies are created once.
    assert not allows(grants, "finetuning_datasets/weekly-1/train.jsonl", replaces=False)
    assert not allows(grants, "dataset-requests/weekly.json", replaces=False)
    assert allows(grants, layout.API_AUGMENT_REQUESTS + "base-0123.json", replaces=False)
    assert not allows(grants, layout.API_AUGMENT_REQUESTS + "base-0123.json", replaces=True)
    assert allows(grants, layout.quarantine_copy_name("api", "q1"), replaces=False)


def test_what_the_api_ops_write_is_within_its_grants(root: TfModule) -> None:
    from shared.api import dispatch
    from shared.version_control import DataVersionControl
    from tests.unit.test_augment_requests import Deployment
    from tests.unit.test_augmentation import SPEED_NOISE

    deployment = Deployment()  # "base" built and versioned, as build_dataset writes it, not the api
    bucket = deployment.bucket
    status, asked = deployment.call(dataset_id="base", augmentations=SPEED_NOISE)
    assert status == 200, asked
    api_changes = list(bucket.changes)
    built = deployment.serve(asked["result"]["request"])  # build_dataset's writes, not the api's
    bucket.changes.clear()

    instances: dict[str, Any] = {
        "DataVersionControl": DataVersionControl(adapters=Adapters(deployment.settings, bucket=bucket),
                                                 local_copies=False),
    }
    target = "current"  # through the api a target is a name under restores/
    for version_id in (built["version_id"], built["parent_version"]) * 2:
        answer = dispatch({"op": "rollback_to_version", "version_id": version_id, "target_path": target},
                          deployment.settings, instances)
        assert answer.status == 200, answer.body
    for _ in range(2):  # generate_comprehensive_report(output_path=...) saves through save_report
        save_report(bucket, "weekly.json", {"at": "now"})
    api_changes += bucket.changes

    written = {name.split("/")[0] + "/" for name, _ in api_changes}
    assert {layout.REQUESTS, layout.RESTORES, "data_versions/", layout.REPORTS} <= written  # the ops ran
    assert layout.DATASETS not in written  # augmenting through the api only asks build_dataset
    assert any(replaced for name, replaced in api_changes if name.startswith(layout.RESTORES))
    grants = api_grants(root)
    refused = [(name, "replaces" if replaced else "creates") for name, replaced in api_changes
               if not allows(grants, name, replaces=replaced)]
    assert refused == []


@pytest.mark.parametrize("function", ["record_failure", "record_correction", "record_metrics"])
def test_the_push_functions_may_only_create_quarantine_copies(root: TfModule, function: str) -> None:
    # What they write (an oversize rejected payload, FirestoreCaseStore/record_metrics through Bucket.keep) is
    # a create-once object under quarantine/; a whole-bucket objectCreator would let them add any upload.
    grants = root.locals()["function_cloud"][function]
    assert "bucket_role" not in grants
    prefix_roles = {unquote(name) if name.startswith('"') else name: literal(role)
                    for name, role in grants["bucket_prefix_roles"].items()}
    assert prefix_roles == {layout.QUARANTINE: CREATOR}
    assert allows(prefix_roles, layout.quarantine_copy_name("record_failure", "q1"), replaces=False)
    assert not allows(prefix_roles, "dataset-requests/x.json", replaces=False)
