"""Where requests may write: reports under reports/, restores under restores/, nothing anywhere else."""

import pytest

from shared.domain import bucket_layout as layout
from shared.errors import BadInput


@pytest.mark.parametrize(("given", "name"), [
    ("weekly.json", "reports/weekly.json"),
    ("reports/2026/12/weekly.json", "reports/2026/12/weekly.json"),
    ("/reports/weekly.json", "reports/weekly.json"),
])
def test_a_report_goes_under_reports(given: str, name: str) -> None:
    assert layout.report_name(given) == name


@pytest.mark.parametrize("given", [
    "data_versions/version_registry.json", "finetuning_datasets/ds-1/train.jsonl", "dataset-requests/x.json",
    "reports/../data_versions/version_registry.json", "reports/", "reports//x.json", "", "..",
])
def test_a_report_anywhere_else_is_refused(given: str) -> None:
    with pytest.raises(BadInput, match="only a name under reports/"):
        layout.report_name(given)


@pytest.mark.parametrize(("given", "prefix"), [
    ("current", "restores/current/"),
    ("restores/team-a/current/", "restores/team-a/current/"),
    ("dataset-requests", "restores/dataset-requests/"),  # a bare name is one under restores/, never the trigger
    ("data_versions/", "restores/data_versions/"),
])
def test_a_restore_goes_under_restores(given: str, prefix: str) -> None:
    assert layout.restore_prefix(given) == prefix


@pytest.mark.parametrize("given", [
    "finetuning_datasets/ds-2", "imports/x", "dataset-requests/x", "restores/../imports", "data_versions/v", "/",
])
def test_a_restore_anywhere_else_is_refused(given: str) -> None:
    with pytest.raises(BadInput, match="only a name under restores/"):
        layout.restore_prefix(given)
