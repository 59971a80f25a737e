"""`sttdata` end to end on the local stack, as a person runs it: a process reading the stack's env file, uploading
an import and a build request, waiting on their progress through the api, listing versions and pulling one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from shared import DataVersionControl
from stack.local_stack import EMULATOR_VARS, StackInfo

pytestmark = pytest.mark.emulators


def sttdata(repo_root: Path, env_file: Path, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m sttdata_cli --env-file ENV ...` in a process whose environment knows no emulator: the env file
    alone says where the stack is."""
    env = {k: v for k, v in os.environ.items() if k not in (*EMULATOR_VARS, "STT_API_URL", "STT_BUCKET")}
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "sttdata_cli", "--env-file", str(env_file), *args], cwd=repo_root,
                          env=env, capture_output=True, text=True, timeout=timeout_s, check=False)


def test_import_build_versions_and_pull_through_the_command_line(
    stack: StackInfo, namespace: str, repo_root: Path, tmp_path: Path
) -> None:
    env_file = tmp_path / "stack.env"
    env_file.write_text("".join(f"export {name}={value}\n" for name, value in stack.env.items()))
    lines = []
    for i in range(300):
        if i % 30 == 7:
            lines.append(b'{"audio_path": "/not/relative.wav", "original_transcript": "x"}')
            continue
        lines.append(orjson.dumps({
            "audio_path": f"gs://stt-audio/{namespace}/{i}.wav", "original_transcript": f"THE NUMBER IS {i}",
            "corrected_transcript": f"The number is {i}.", "error_score": 0.97, "speaker_id": f"{namespace}-{i % 6}",
        }))
    source = tmp_path / f"{namespace}.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")

    imported = sttdata(repo_root, env_file, "import", str(source), "--wait", "--timeout", "240")
    assert imported.returncode == 0, imported.stderr + imported.stdout
    assert f"imports/{namespace}.jsonl" in imported.stdout
    assert "imported 300 lines: 290 stored, 0 duplicates, 10 rejected" in imported.stdout

    built = sttdata(repo_root, env_file, "build", "--name", namespace, "--min-error-score", "0.96", "--version-name",
                    namespace, "--no-balance", "--wait", "--timeout", "240")
    assert built.returncode == 0, built.stderr + built.stdout
    assert f"built {namespace}-" in built.stdout and "quality passed" in built.stdout

    listed = sttdata(repo_root, env_file, "versions", "--json")
    assert listed.returncode == 0, listed.stderr
    versions = json.loads(listed.stdout)
    [entry] = [v for v in versions["versions"] if v["version_id"].startswith(f"v_{namespace}_")]
    assert versions["current_version"] is not None

    target = tmp_path / "pulled"
    pulled = sttdata(repo_root, env_file, "pull", entry["version_id"], str(target))
    assert pulled.returncode == 0, pulled.stderr + pulled.stdout
    registered = DataVersionControl(stack.settings).get_version(entry["version_id"])
    assert registered is not None and registered["files"]
    for name, expected in registered["files"].items():
        assert hashlib.sha256((target / name).read_bytes()).hexdigest() == expected["sha256"]
    rows = [orjson.loads(line) for split in ("train", "val", "test")
            for line in (target / f"{split}.jsonl").read_bytes().splitlines()]
    assert {row["audio"] for row in rows} >= {f"gs://stt-audio/{namespace}/{i}.wav" for i in (0, 1, 2)}

    status = sttdata(repo_root, env_file, "status", "--json", "--limit", "20")
    assert status.returncode == 0, status.stderr
    recent = json.loads(status.stdout)
    [mine] = [i for i in recent["imports"] if i.get("name") == f"imports/{namespace}.jsonl"]
    assert (mine["state"], mine["lines_done"], mine["accepted"]) == ("finished", 300, 290)
    assert any(b.get("name") == f"dataset-requests/{namespace}.json" and b["state"] == "built"
               for b in recent["builds"])

    backlog = sttdata(repo_root, env_file, "dead-letters", "--json")
    assert backlog.returncode == 0, backlog.stderr
    listed = json.loads(backlog.stdout)
    assert set(listed["topics"]) == set(stack.topology.topics)
    assert listed["total"] == sum(t["count"] for t in listed["topics"].values())

    missing = sttdata(repo_root, env_file, "pull", "v_nope", str(tmp_path / "none"))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
