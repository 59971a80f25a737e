"""Progress of long work (imports, builds) as people read it: noted while the work runs, read by the `api`'s
`import_status`, `build_status` and `recent_work` ops (so the CLI and the dashboard need no Firestore access).

Notes are best effort: a note that cannot be written is logged and the work goes on, so progress never costs
an import or a build a retry. What the work finally records (the import's result, `dataset_results/`) stays
the truth; a status answer puts it beside the last note.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from shared.domain import bucket_layout as layout
from shared.errors import NotFound
from shared.observability import get_logger
from shared.ports import Bucket, CaseStore, ProgressBoard
from shared.services.bucket_objects import object_version_id

log = get_logger("progress")

# A running import notes its counts at most this often (a Firestore write each: cheap, and fresh enough to watch).
NOTE_EVERY_S = 1.0
# States after which a piece of work changes no more.
IMPORT_DONE = ("finished", "rejected", "object gone")
BUILD_DONE = ("built", "no eligible cases", "rejected", "object gone")
RECENT_LIMIT = 10
# What a status answer leaves out of an import's result: long lists, for the result object to hold.
_BULKY = ("rejects", "snapshot_parts", "reject_segments")


class ProgressNotes:
    """The notes of one piece of work on a board (none: notes go nowhere), each write best effort."""

    def __init__(
        self, board: ProgressBoard | None, kind: str, work_id: str, every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.board, self.kind, self.work_id = board, kind, work_id
        self.every_s = NOTE_EVERY_S if every_s is None else every_s
        self.clock = clock
        self.last: float | None = None

    def note(self, **fields: Any) -> None:
        """Write `fields` now."""
        self.last = self.clock()
        if self.board is None:
            return
        try:
            self.board.note(self.kind, self.work_id, fields)
        except Exception as exc:  # progress is for watching: it never fails the work
            log.warning("progress note not written", extra={"kind": self.kind, "work_id": self.work_id,
                                                            "error": f"{type(exc).__name__}: {exc}"})

    def now_and_then(self, **fields: Any) -> None:
        """Write `fields` if the last note is `every_s` old (a loop calls this on every step)."""
        if self.last is None or self.clock() - self.last >= self.every_s:
            self.note(**fields)

    def stage(self, stage: str) -> None:
        """A build's stage: what it does now."""
        self.note(state="running", stage=stage)


def _version(bucket: Bucket, object_name: str, generation: int | None, what: str) -> int:
    """The object version a status is asked of: the one given, else the live one; NotFound when there is none."""
    found = generation or bucket.generation(object_name) or None
    if found is None:
        raise NotFound(f"no {what} {object_name} in gs://{_bucket_name(bucket)}: upload it first")
    return found


def import_status(name: str, generation: int | None, board: ProgressBoard, cases: CaseStore,
                  bucket: Bucket) -> dict[str, Any]:
    """Where the import of one object version stands: `state` queued | running | finished | rejected | object
    gone, its counts so far (`lines_done`, `accepted`, `duplicates`, `rejected`), how far the object was read
    (`bytes_read` of its size `bytes_total`: a percentage, JSONL only; a Parquet import has `bytes_total` alone)
    and, once done, its `result`.

    `generation` defaults to the object's live one; NotFound when neither the object nor a record exists.
    """
    object_name = layout.import_object_name(name)
    generation = _version(bucket, object_name, generation, "import")
    import_id = object_version_id(object_name, generation)
    status: dict[str, Any] = {"import_id": import_id, "name": object_name, "generation": str(generation),
                              "state": "queued"}
    status |= _without_bulk(board.get("import", import_id) or {})
    result = cases.import_result(import_id)
    if result is not None:
        status["state"] = "rejected" if result.get("status") == "rejected" else "finished"
        status["result"] = _without_bulk(result)
        status["lines_done"] = result.get("lines", status.get("lines_done"))
        for key in ("accepted", "duplicates", "rejected"):
            if key in result:
                status[key] = result[key]
    return status


def build_status(name: str, generation: int | None, board: ProgressBoard, bucket: Bucket) -> dict[str, Any]:
    """Where the build of one request version stands: `state` queued | running | built | no eligible cases |
    rejected | object gone, its `stage` while it runs and, once done, its `result` (`dataset_results/`).

    `generation` defaults to the request's live one; NotFound when neither the request nor a record exists.
    """
    object_name = layout.request_object_name(name)
    generation = _version(bucket, object_name, generation, "build request")
    build_id = object_version_id(object_name, generation)
    status: dict[str, Any] = {"build_id": build_id, "name": object_name, "generation": str(generation),
                              "state": "queued", "stage": "waiting for the build function"}
    status |= board.get("build", build_id) or {}
    raw = bucket.get(layout.build_result_name(object_name))
    result = orjson.loads(raw) if raw is not None else None
    # The result object is per request name: it answers for this version only when it says so.
    if isinstance(result, dict) and str(result.get("generation")) == str(generation):
        status["state"] = result.get("status", status["state"])
        status["stage"] = "done"
        status["result"] = result
    return status


def recent_work(board: ProgressBoard, limit: int = RECENT_LIMIT) -> dict[str, list[dict[str, Any]]]:
    """The imports and the builds noted most recently, newest first."""
    return {"imports": [_without_bulk(r) for r in board.recent("import", limit)],
            "builds": board.recent("build", limit)}


def _without_bulk(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in _BULKY}


def _bucket_name(bucket: Bucket) -> str:
    return bucket.uri("").removeprefix("gs://").rstrip("/")
