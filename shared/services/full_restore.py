"""Use case: `sync_all_from_gcs`, the cases (case_restore.py) and the metric records (metric_restore.py) back
from what `sync_all_to_gcs` wrote.

The two parts are exported by different steps (the cases by the data manager, the metrics by the tracker and
the scheduled aggregate), so one can exist without the other: each is restored when its export exists and
reported `absent` when it does not. Only when nothing at all was exported is the restore refused
(NeverExported, a NotFound: 404 through the api),
since an answer of zeros would read as "restored, and there was nothing".
"""

from __future__ import annotations

from typing import Any

from shared.domain import bucket_layout as layout
from shared.errors import NeverExported
from shared.ports import Bucket, CaseStore, MetricStore
from shared.services.case_restore import restore_cases
from shared.services.metric_restore import restore_metrics


def restore_all(cases: CaseStore, metrics: MetricStore, bucket: Bucket) -> dict[str, Any]:
    """Restore the cases and the metric records whose exports exist; per part what was restored or absent
    (`learning_data.status`, each metric kind's `status`) and `absent`: the exports that do not exist."""
    try:
        learning_data = {**restore_cases(cases, bucket), "status": "restored"}
    except NeverExported:
        learning_data = {"source": bucket.uri(layout.FAILED_CASES), "status": "absent"}
    metadata = restore_metrics(metrics, bucket)
    absent = [part["source"] for part in (learning_data, *metadata.values()) if part["status"] == "absent"]
    if len(absent) == 1 + len(metadata):
        raise NeverExported(f"nothing to restore: none of {', '.join(absent)} exists; run sync_all_to_gcs first")
    return {"learning_data": learning_data, "metadata": metadata, "absent": absent}
