"""Whether a built dataset's splits came out near the ratios asked, and if not, why and what to do.

Cases are split by group (the speaker, else the recording: dataset_build.group_key) so one speaker never sits
in two splits. The price: a split's share of rows follows its share of *groups*, and with few groups (12
speakers at 0.8/0.1/0.1 leave val or test empty about half the time) or groups of very unequal size (one
speaker with most of the rows) it lands far from its ratio. A build still succeeds; these warnings tell the
user to lower that split's ratio or add speakers.

Rules (a split with a ratio of 0 is never warned about):
- empty: a split with a positive ratio and no rows;
- far from its ratio: its share of the rows differs from its ratio by more than half the ratio
  (a 0.1 split under 5% or over 15% of the rows).
The reason named is "too few groups" when the split's expected number of groups (ratio x all groups) is under
FEW_GROUPS, else "groups of very unequal size".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.domain.dataset_build import SPLITS

# Below this many groups expected in a split, chance alone moves its share a lot (a split's group count is
# roughly binomial: at 10 expected, one standard deviation is about a third of it).
FEW_GROUPS = 10
FAR_FRACTION = 0.5  # a share off by more than this fraction of the ratio is "far from its ratio"
PARAMETER = {"train": "train_ratio", "val": "val_ratio", "test": "test_ratio"}


def split_warnings(
    split_sizes: Mapping[str, int], groups_per_split: Mapping[str, int], ratios: Sequence[float]
) -> list[str]:
    """One message per split that is empty or far from its ratio, saying why and what to change; [] when the
    dataset is empty (nothing was split) or every split is near its ratio."""
    total = sum(int(split_sizes.get(split) or 0) for split in SPLITS)
    groups = sum(int(groups_per_split.get(split) or 0) for split in SPLITS)
    if total == 0:
        return []
    messages = []
    for split, ratio in zip(SPLITS, ratios, strict=True):
        rows = int(split_sizes.get(split) or 0)
        share = rows / total
        if ratio <= 0 or abs(share - ratio) <= FAR_FRACTION * ratio:
            continue
        in_split = int(groups_per_split.get(split) or 0)
        what = (f"split {split!r} is empty ({PARAMETER[split]} {ratio:g})" if rows == 0 else
                f"split {split!r} holds {share:.0%} of the rows ({rows} of {total}) for a {PARAMETER[split]} of "
                f"{ratio:g}")
        if ratio * groups < FEW_GROUPS:
            why = (f"cases are split by speaker (else recording) and only {groups} groups were there to split, "
                   f"{in_split} of them in {split!r}: lower {PARAMETER[split]} or add cases of more speakers")
        else:
            why = (f"cases are split by speaker (else recording) and the {groups} groups differ a lot in size "
                   f"({in_split} of them in {split!r}): a few speakers hold many of the rows; add cases of other "
                   f"speakers or lower {PARAMETER[split]}")
        messages.append(f"{what}: {why}")
    return messages


def metadata_split_warnings(metadata: Mapping[str, Any]) -> list[str]:
    """split_warnings of a finished dataset, from its metadata.json (split_sizes, groups_per_split and the
    request's ratios); [] when the metadata lacks them."""
    request = metadata.get("request") or {}
    ratios = [request.get(PARAMETER[split]) for split in SPLITS]
    if "groups_per_split" not in metadata:
        return []
    numbers = [float(r) for r in ratios if isinstance(r, int | float)]
    if len(numbers) != len(SPLITS):
        return []
    return split_warnings(metadata.get("split_sizes") or {}, metadata["groups_per_split"], numbers)


def with_split_warnings(report: Mapping[str, Any], messages: Sequence[str]) -> dict[str, Any]:
    """A quality report (dataset_quality.quality_report's shape) with each message as a "warning" issue of
    category "split" and in `quality_metrics.warnings`; a plain "split 'x' is empty" warning the report already
    has is replaced by the message that explains it. The verdict and the metrics are unchanged."""
    if not messages:
        return dict(report)
    explained = {message.split(" ", 2)[1] for message in messages}  # "split 'val' ..." -> "'val'"
    metrics = dict(report["quality_metrics"])
    plain = {f"split {name} is empty" for name in explained}
    issues = [entry for entry in metrics.get("issues", []) if entry.get("message") not in plain]
    issues += [{"severity": "warning", "category": "split", "message": message} for message in messages]
    metrics["issues"] = issues
    metrics["warnings"] = [entry["message"] for entry in issues if entry["severity"] == "warning"]
    return {**report, "quality_metrics": metrics}
