"""Cold `make up` to all-ready and `make down`, against the emulators alone started in the same run.

Target (issue 2): up <= 15 s on the 2-core machine. Run: `make bench` or `.venv/bin/python bench/stack_startup.py`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tables import print_table
from stack import components
from stack.processes import free_port, launch, stop_group, wait_until_answers

REPO = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def emulators_alone(state: Path) -> tuple[float, float]:
    """Baseline: the three servers started in parallel, no functions, no topology."""
    root, env = components.sdk_root(None), dict(os.environ)
    pubsub_port = free_port()
    parts = [
        components.pubsub_part(root, pubsub_port, env),
        components.firestore_part(root, free_port(), env),
        components.fake_gcs_part(
            free_port(), state / "gcs", "demo-bench", "bucket-events", f"127.0.0.1:{pubsub_port}", env
        ),
    ]
    started = time.perf_counter()
    launched = [launch(p.name, p.argv, p.env, state / "logs") for p in parts]
    for part, proc in zip(parts, launched, strict=True):
        wait_until_answers(proc, part.ready_url, part.timeout_s, part.fix)
    up = time.perf_counter() - started
    started = time.perf_counter()
    for proc in launched:
        stop_group(proc.pid)
    return up, time.perf_counter() - started


def whole_stack(state: Path) -> tuple[float, float]:
    """`python -m stack up` then `down`, as `make up` / `make down` run them, in fresh processes."""
    env = {**os.environ, "STT_STATE_DIR": str(state)}
    cmd = [sys.executable, "-m", "stack"]
    started = time.perf_counter()
    subprocess.run([*cmd, "up"], check=True, env=env, cwd=REPO, capture_output=True)
    up = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([*cmd, "down"], check=True, env=env, cwd=REPO, capture_output=True)
    return up, time.perf_counter() - started


def main() -> None:
    results: dict[str, list[tuple[float, float]]] = {"emulators alone (baseline)": [], "make up / make down": []}
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as tmp:
            results["emulators alone (baseline)"].append(emulators_alone(Path(tmp)))
        with tempfile.TemporaryDirectory() as tmp:
            results["make up / make down"].append(whole_stack(Path(tmp)))
    rows = []
    for name, runs in results.items():
        ups, downs = [u for u, _ in runs], [d for _, d in runs]
        rows.append(
            [name, statistics.median(ups), max(ups), statistics.median(downs), "<= 15 s up" if "make" in name else ""]
        )
    print_table(
        f"stack start-up, {ROUNDS} cold rounds each (seconds)", ["what", "up p50", "up max", "down p50", "target"], rows
    )


if __name__ == "__main__":
    main()
