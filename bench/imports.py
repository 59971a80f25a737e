"""Bulk imports at scale (issue #13): the bucket read rate, peak memory over a 1 GB file, the stored rate.

Three measures, each against a floor measured in the same run, on a stack of its own:

- **read rate**: the import's own reader (`BucketStore.lines`, what `run_import` iterates) over the generated
  JSONL object on fake-gcs-server, against a raw read of the same object with the google-cloud-storage client
  in 64 MiB chunks (no line splitting). Target >= 100 MB/s.
- **peak RSS over a 1 GB import** (BENCH_IMPORT_MB, default 1024): `run_import` in a fresh process over the
  generated object (unique events, 1 line in 50 rejected, 1 in 97 repeating an earlier one, 1 in 20
  corrected so scored), with the real bucket adapter (reads from fake-gcs-server, rejected-line segments and
  snapshot parts written there, composed at the end) and a case store that does what the Firestore adapter
  does for memory without the emulator: it keeps nothing past a batch's commit (MemoryFaithfulStore says how
  close its encoding is to the client's), and every case is new (the
  emulator cannot hold millions of documents: ~2 GB of heap per 180k, LOCAL-STACK-NOTES.md, and at ~5k
  documents/s a 1 GB file would take longer than a bench run). Checkpoints are saved in memory. Reported: the
  import process's peak (VmHWM), the parser worker's peak (its forked child), and the largest sum of both
  sampled every 0.2 s (what the function instance's memory limit counts; shared copy-on-write pages count
  twice, so it is an upper bound). Target: never above 1 GiB.
  Floor: the peak of a process that only reads the object's lines and parses them as JSON.
- **stored rate**: an import through the whole stack (upload -> notification -> ingest_import -> Firestore
  + snapshot parts -> result object) of BENCH_IMPORT_STORED_N lines, in cases stored per second, against the
  raw rate of the same documents written 500 per WriteBatch by one writer on the same emulator (target >= 60%).
  Measured twice: lines without a correction (the storage path) and half of them corrected (scored on
  ingest: scoring, ~1 ms a corrected line on this machine, is then the bound, not Firestore). The
  ingest_import function's peak RSS over that import is reported too.

Run: `make bench` or `.venv/bin/python bench/imports.py`. The 1 GB import alone takes ~10 minutes on 2 shared
cores (2.5M lines; parsing and scoring run at ~4.5k lines/s): BENCH_IMPORT_MB=64 BENCH_IMPORT_STORED_N=5000 for a
quick run.

Measured 2026-12-03, quiet machine (the day's second session): read 218 MB/s (raw client read 214 MB/s); the 1 GB
import (2.51M lines) peaked at 629 MiB in the import process, 112 MiB in the parser worker, 740 MiB sampled sum
(read-and-parse floor 104 MiB), in 631 s; stored 1,296 cases/s without corrections (76% of raw WriteBatch's
1,705/s) and 1,212/s half corrected (75% of 1,615/s). Two shorter runs (BENCH_IMPORT_MB=32) the same hour: 81%
and 82% uncorrected, 73% and 72% half corrected. Before that session's change the half-corrected import stored
55-62% (a miss): a profile of ingest_import showed the commit chunking re-summing every earlier case's size for
each case (quadratic in the batch), each case's storage size counted three times, and a batch of 499 cases
sent as two commits as soon as they named a model version (their counters took the 500-write commit past its
limit). The Firestore client's own encoding of the documents (proto-plus) is now most of the import process's
time, as it is the raw WriteBatch's. The import process grows by ~150 bytes per distinct case (the ids it has
seen, so two batches in flight never hold the same case).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("STT_EMULATOR_HEAP", "3g")  # the raw baseline and the import: ~2 x 40k documents

import orjson

from bench.tables import print_table

IMPORT_MB = int(os.environ.get("BENCH_IMPORT_MB", "1024"))
STORED_N = int(os.environ.get("BENCH_IMPORT_STORED_N", "40000"))
BIG_OBJECT = "imports/bench-big.jsonl"
MIB = 1024 * 1024
RAW_CHUNK = 64 * MIB
WORDS = ["turn", "left", "at", "the", "second", "light", "and", "park", "behind", "bank", "meeting", "moved",
         "three", "thirty", "Thursday", "please", "call", "Stella", "bring", "things", "store", "ticket"]


def big_line(i: int) -> bytes:
    """Line i (from 0) of the big file: ~500 bytes, every text its own; some rejected, some repeated."""
    if i % 50 == 7:
        return orjson.dumps({"audio_path": f"gs://stt-audio/big/{i:08d}.wav", "error_score": 0.5})  # no transcript
    if i % 97 == 13:
        i -= 13  # the same event as 13 lines earlier: a duplicate
    words = " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(28))
    reference = f"{words} for ticket {i}"
    event: dict[str, Any] = {
        "audio_path": f"gs://stt-audio/big/{i:08d}.wav",
        "original_transcript": reference.upper() if i % 3 else reference.replace("left", "right"),
        "error_score": (i % 100) / 100,
        "model_version": f"v{i % 4}",
        "speaker_id": f"spk-{i % 900}",
        "duration_s": 3.5 + i % 7,
        "language": "en",
        "metadata": {"source": "warehouse-export", "batch": i // 10_000, "device": f"dev-{i % 13}"},
    }
    if i % 20 == 0:
        event["corrected_transcript"] = reference
    return orjson.dumps(event)


def write_big_file(path: Path, megabytes: int) -> int:
    """The big JSONL file of at least `megabytes` MiB; its line count."""
    limit, size, i = megabytes * MIB, 0, 0
    with path.open("wb") as out:
        while size < limit:
            block = b"".join(big_line(n) + b"\n" for n in range(i, i + 10_000))
            out.write(block)
            size += len(block)
            i += 10_000
    return i


# -- read rate ---------------------------------------------------------------------------------------------


def read_with_import_reader(settings: Any, name: str) -> tuple[float, int]:
    """Seconds for the import's reader to yield every line of `name`, and the bytes it covered."""
    from shared.adapters.gcs import BucketStore
    from shared.services.bulk_import import ReadPosition, counted_lines

    position = ReadPosition(None)
    started = time.perf_counter()
    with BucketStore(settings).reader(name) as stream:  # what run_import reads a JSONL import through
        for _ in counted_lines(stream, position):
            pass
    return time.perf_counter() - started, position.bytes_read


def read_raw(bucket: Any, name: str) -> tuple[float, int]:
    """Seconds for the storage client to read `name` in RAW_CHUNK reads, and the bytes read."""
    started, size = time.perf_counter(), 0
    with bucket.blob(name).open("rb", chunk_size=RAW_CHUNK) as stream:
        while chunk := stream.read(RAW_CHUNK):
            size += len(chunk)
    return time.perf_counter() - started, size


# -- peak memory over the big import, in a fresh process ---------------------------------------------------


class MemoryFaithfulStore:
    """The CaseStore calls run_import makes, holding what FirestoreCaseStore holds: nothing past a batch's commit.

    Each batch is encoded (orjson, about the size of its CommitRequest: 499 of the big file's cases are 370 kB
    as JSON, 440 kB as the protobuf the Firestore client sends) and dropped, and no case exists already (every
    case is new, as in a first import). Encoding through the Firestore client's proto-plus types costs ~1 ms of
    CPU a case here (GIL-bound, beside the reader): that would stretch the 1 GB run past half an hour without
    changing its memory, which is one batch in flight per writer thread (IMPORT_WRITERS)."""

    def __init__(self) -> None:
        self.imports: dict[str, dict[str, Any]] = {}
        self.sent_bytes = 0

    def create_cases(self, items: Any) -> dict[str, dict[str, Any]]:
        from shared.json_encoding import json_default

        self.sent_bytes += len(orjson.dumps([[case_id, case] for case_id, case, _ in items], default=json_default))
        return {}

    def get_case(self, case_id: str) -> None:
        return None

    def save_import_progress(self, import_id: str, progress: dict[str, Any]) -> None:
        self.imports[import_id] = {**progress, "state": "running"}

    def import_progress(self, import_id: str) -> dict[str, Any] | None:
        record = self.imports.get(import_id)
        return record if record and record["state"] == "running" else None

    def save_import(self, import_id: str, summary: dict[str, Any]) -> None:
        self.imports[import_id] = {**summary, "state": "finished"}

    def import_result(self, import_id: str) -> dict[str, Any] | None:
        record = self.imports.get(import_id)
        return record if record and record["state"] == "finished" else None


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


class SumSampler:
    """The largest RSS of this process plus its children, sampled every 0.2 s in a thread."""

    def __init__(self) -> None:
        self.peak_kib, self.child_peak_kib = 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.2):
            children = [_rss_kib(child) for child in _children(me)]
            self.child_peak_kib = max([self.child_peak_kib, *children])
            self.peak_kib = max(self.peak_kib, _rss_kib(me) + sum(children))

    def __enter__(self) -> SumSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def memory_child(name: str, mode: str) -> None:
    """In a fresh process: import `name` (mode "import") or only read and JSON-parse its lines (mode "floor");
    prints the seconds, the counts and the peaks in MiB as one JSON line."""
    from shared.adapters.gcs import BucketStore
    from shared.config import Settings

    settings = Settings.from_env()
    bucket = BucketStore(settings)
    blob = bucket.bucket.get_blob(name)
    started = time.perf_counter()
    with SumSampler() as sampler:
        if mode == "floor":
            lines = 0
            for line in bucket.lines(name, int(blob.generation)):
                lines += 1
                if line:
                    orjson.loads(line)
            result: dict[str, Any] = {"lines": lines}
        else:
            from shared.services.bulk_import import run_import

            store = MemoryFaithfulStore()
            result = run_import(name, blob.generation, store, bucket)  # type: ignore[arg-type]
            result = {key: result[key] for key in ("lines", "accepted", "duplicates", "rejected")}
            result["sent_mib"] = store.sent_bytes / MIB
    elapsed = time.perf_counter() - started
    parent = _rss_kib(os.getpid(), "VmHWM") / 1024
    worker = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, sampler.child_peak_kib) / 1024
    print(orjson.dumps({**result, "s": elapsed, "parent_mib": parent, "worker_mib": worker,
                        "sum_mib": sampler.peak_kib / 1024}).decode())


def measure_memory(name: str, mode: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--memory", name, mode], env=env, check=True,
                         capture_output=True, text=True).stdout
    return dict(orjson.loads(out.strip().splitlines()[-1]))


# -- stored rate through the stack -------------------------------------------------------------------------


def corrected_events(n: int, corrected: bool) -> list[dict[str, Any]]:
    from bench.ingestion import events

    evs = events(n)
    if not corrected:
        for event in evs:
            event.pop("corrected_transcript", None)
    return evs


def raw_write_batch_rate(db: Any, collection: str, evs: list[dict[str, Any]]) -> float:
    """Baseline: the same case documents (built beforehand), 500 per WriteBatch, one writer."""
    from bench.ingestion import raw_write_batch

    return float(raw_write_batch(db, collection, evs))


def import_rate(bucket: Any, name: str, evs: list[dict[str, Any]]) -> float:
    """Cases stored per second by an import of `evs` through the stack (upload -> result object)."""
    from bench.objects import wait_for_json

    body = b"".join(orjson.dumps(e) + b"\n" for e in evs)
    started = time.perf_counter()
    bucket.blob(f"imports/{name}.jsonl").upload_from_string(body)
    result = wait_for_json(bucket, f"import_results/{name}.json")
    elapsed = time.perf_counter() - started
    if result.get("accepted") != len(evs):
        raise SystemExit(f"the import accepted {result.get('accepted')} of {len(evs)}: {result}")
    return len(evs) / elapsed


def main() -> None:
    from google.cloud import firestore, storage

    from bench.dataset_build import function_peak_mib
    from shared.config import Settings
    from shared.topology import build_topology
    from stack.local_stack import running_stack

    settings = Settings(project="demo-bench-imports", collection_prefix="bench_")
    with running_stack(settings, (build_topology(settings).function("ingest_import"),)) as info, \
            tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **info.env, **settings.to_env()}
        bucket = storage.Client(project=settings.project).bucket(settings.bucket)
        # The big object goes to a name ingest_import ignores (not imports/*.jsonl of the stack's function:
        # the memory run imports it in its own process).
        big = Path(tmp) / "big.jsonl"
        big_lines = write_big_file(big, IMPORT_MB)
        blob = bucket.blob("bench/" + BIG_OBJECT)
        blob.upload_from_filename(str(big), content_type="application/x-ndjson")
        size = big.stat().st_size
        big.unlink()

        raw_s, ours_s = [], []
        for _ in range(2):  # alternated, so neither gets only a warm cache
            raw_s.append(read_raw(bucket, blob.name)[0])
            seconds, covered = read_with_import_reader(settings, blob.name)
            ours_s.append(seconds)
            if covered != size:
                raise SystemExit(f"the import reader covered {covered} of {size} bytes")
        floor_mem = measure_memory(blob.name, "floor", env)
        mem = measure_memory(blob.name, "import", env)
        if mem["lines"] != big_lines:
            raise SystemExit(f"the import counted {mem['lines']} of {big_lines} lines: {mem}")
        blob.delete()

        db = firestore.Client(project=settings.project)
        stored = {}
        for corrected in (False, True):
            evs = corrected_events(STORED_N, corrected)
            label = "half corrected" if corrected else "uncorrected"
            raw = raw_write_batch_rate(db, f"raw_{'c' if corrected else 'u'}_failed_cases", evs)
            # Distinct audio paths per run: the second import must store its own cases, not find the first's.
            for event in evs:
                event["audio_path"] = str(event["audio_path"]).replace("/bench/", f"/bench-{label[:4]}/")
            stored[label] = (import_rate(bucket, f"bench-{label[:4]}", evs), raw)
        function_peak = function_peak_mib("ingest_import")

    mb = size / 1e6
    rows: list[list[object]] = [
        [f"read MB/s, import reader ({mb:,.0f} MB object, best of 2)", mb / min(ours_s), mb / min(raw_s),
         f"{min(raw_s) / min(ours_s):.0%}", ">= 100 MB/s"],
        [f"peak RSS MiB, {mb:,.0f} MB import: import process", mem["parent_mib"], floor_mem["parent_mib"],
         f"{mem['parent_mib'] / floor_mem['parent_mib']:.2f}x", "<= 1024 MiB"],
        ["  parser worker (forked child)", mem["worker_mib"], "", "", ""],
        # A small object's floor can end before the sampler's first look: no sum, no ratio.
        ["  sum of both, sampled every 0.2 s", mem["sum_mib"], floor_mem["sum_mib"],
         f"{mem['sum_mib'] / floor_mem['sum_mib']:.2f}x" if floor_mem["sum_mib"] else "-", "<= 1024 MiB"],
        [f"  import s ({mem['lines']:,} lines: {mem['accepted']:,} stored, {mem['rejected']:,} rejected, "
         f"{mem['duplicates']:,} dup.)", mem["s"], floor_mem["s"], f"{mem['lines'] / mem['s']:,.0f} lines/s",
         "540 s an attempt, then resumed"],
    ]
    for label, (ours, raw) in stored.items():
        rows.append([f"stored cases/s, {STORED_N:,} lines {label} (stack)", ours, raw, f"{ours / raw:.0%}",
                     ">= 60% of raw WriteBatch"])
    rows.append(["ingest_import function peak RSS MiB (those imports)", function_peak, "", "", ""])
    print_table(
        "bulk imports (floors: raw storage-client read; lines read + JSON-parsed only; raw WriteBatch of the "
        "same documents)",
        ["measure", "sttdata", "floor", "ratio", "target"],
        rows,
    )
    print(f"The memory run's case store encodes each batch and drops it ({mem['sent_mib']:,.0f} MiB encoded); "
          "the stored rate is the full path on the emulator.")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory"]:
        memory_child(sys.argv[2], sys.argv[3])
    else:
        main()
