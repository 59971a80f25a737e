"""sttdata's one Python package: domain logic, use cases and the adapters to Google Cloud.

The Python API's classes are importable from here (`from shared import DataManager`); they load on first use,
so importing `shared` (as every function does) stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Public class -> the module that defines it.
_API = {
    "DataManager": "shared.data_manager",
    "MetadataTracker": "shared.metadata_tracker",
    "FinetuningDatasetPipeline": "shared.finetuning_pipeline",
    "DataVersionControl": "shared.version_control",
    "IntegratedDataManagementSystem": "shared.integrated_system",
    "WorkProgress": "shared.progress",
    "Dashboard": "shared.dashboard.facade",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'shared' has no attribute {name!r}")
