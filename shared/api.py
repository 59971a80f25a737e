"""The `api` HTTP function's dispatch: `{"op": "<method name>", ...arguments}` to the Python API's classes.

Only the operations listed in OPERATIONS are reachable; arguments are checked against the method's signature,
so an unknown op or a bad argument is a 400 with a message that says what is wrong, never a 500.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_type_hints

import orjson
from pydantic import TypeAdapter, ValidationError

from shared.config import Settings
from shared.domain.json_payload import json_kind, shown_input
from shared.errors import BadRequest, SttdataError, http_status
from shared.json_encoding import json_default

# op -> the class (by its name in `shared`) whose method of the same name serves it.
OPERATIONS: dict[str, str] = {
    "get_statistics": "DataManager",
    "get_failed_case": "DataManager",
    "get_failed_cases_by_error_type": "DataManager",
    "get_corrected_cases": "DataManager",
    "store_failed_case": "DataManager",
    "store_correction": "DataManager",
    "get_performance_trend": "MetadataTracker",
    "generate_performance_report": "MetadataTracker",
    "get_model_lineage": "MetadataTracker",
    "get_learning_progress": "MetadataTracker",
    "get_inference_stats": "MetadataTracker",
    "list_datasets": "FinetuningDatasetPipeline",
    "get_dataset_info": "FinetuningDatasetPipeline",
    "validate_dataset": "FinetuningDatasetPipeline",
    "prepare_huggingface_dataset": "FinetuningDatasetPipeline",
    # Uploads, create-only, the build request dataset-requests/api-augment/<dataset>-<digest>.json: build_dataset
    # writes the augmented dataset and its version, the api none of it (docs/datasets.md).
    "augment_dataset": "FinetuningDatasetPipeline",
    "list_versions": "DataVersionControl",
    "get_version": "DataVersionControl",
    "get_version_lineage": "DataVersionControl",
    "compare_versions": "DataVersionControl",
    "check_quality": "DataVersionControl",
    "rollback_to_version": "DataVersionControl",
    "generate_version_report": "DataVersionControl",
    "get_system_statistics": "IntegratedDataManagementSystem",
    "generate_comprehensive_report": "IntegratedDataManagementSystem",
    "sync_all_from_gcs": "IntegratedDataManagementSystem",
    "replay_dead_letters": "IntegratedDataManagementSystem",
    "list_dead_letters": "IntegratedDataManagementSystem",
    # How far long work got (not seed methods: the CLI's and the dashboard's progress).
    "import_status": "WorkProgress",
    "build_status": "WorkProgress",
    "recent_work": "WorkProgress",
    # What the dashboard page (a browser's GET on the api) shows, as JSON.
    "dashboard_facts": "Dashboard",
}
# Builds are asked by uploading dataset-requests/<name>.json (or from Python): a build can outlast an HTTP call.



@dataclass(frozen=True)
class Answer:
    """An HTTP status and a JSON-ready body."""

    status: int
    body: dict[str, Any]

    def json(self) -> bytes:
        return orjson.dumps(self.body, default=json_default)


def dispatch(body: Any, settings: Settings, instances: Mapping[str, Any] | None = None) -> Answer:
    """Run the operation a request body names; errors answer as shared/errors.py maps them (400, 404, 503)."""
    try:
        op, method, arguments = _resolve(body, settings, instances or {})
        result = method(**arguments)
    except SttdataError as exc:
        return Answer(http_status(exc), {"error": exc.reason})
    if result is None and op.startswith("get_"):  # the Python API's getters answer None for an unknown id
        return Answer(404, {"error": f"{op}: nothing found for {arguments}"})
    return Answer(200, {"op": op, "result": result})


def _resolve(
    body: Any, settings: Settings, instances: Mapping[str, Any]
) -> tuple[str, Callable[..., Any], dict[str, Any]]:
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object like {"op": "get_statistics"}')
    arguments = dict(body)
    op = arguments.pop("op", None)
    if op not in OPERATIONS:
        raise BadRequest(f"unknown op {op!r}; known: {sorted(OPERATIONS)}")
    owner = instances.get(OPERATIONS[op]) or _instance(OPERATIONS[op], settings)
    method = getattr(owner, op)
    signature = inspect.signature(method)
    try:
        signature.bind(**arguments)
    except TypeError as exc:
        raise BadRequest(f"{op}: {exc}; signature: {op}{signature}") from None
    return op, method, _typed(op, method, signature, arguments)


def _typed(
    op: str, method: Callable[..., Any], signature: inspect.Signature, arguments: dict[str, Any]
) -> dict[str, Any]:
    """The arguments checked against the method's annotations (strictly: "5" is no integer); BadRequest names
    the first one of the wrong type."""
    hints = get_type_hints(method)
    checked = dict(arguments)
    for name, value in arguments.items():
        parameter = signature.parameters.get(name)
        hint = hints.get(name) if parameter is not None and parameter.kind is not parameter.VAR_KEYWORD else None
        if hint is None:
            continue
        try:
            checked[name] = TypeAdapter(hint).validate_python(value, strict=True)
        except ValidationError:
            wanted = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
            raise BadRequest(f"{op}: {name} must be {wanted}, got {json_kind(value)} {shown_input(value)}; "
                             f"signature: {op}{signature}") from None
    return checked


# Classes whose local paths mean the local disk from Python: through the api they mean the bucket only (a
# function's disk is neither the caller's nor kept), so they are made with local_copies=False.
_BUCKET_ONLY = frozenset({"FinetuningDatasetPipeline", "DataVersionControl", "IntegratedDataManagementSystem"})


def _instance(class_name: str, settings: Settings) -> Any:
    import shared

    options = {"local_copies": False} if class_name in _BUCKET_ONLY else {}
    return getattr(shared, class_name)(settings=settings, **options)
