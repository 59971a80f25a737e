"""`make up` / `make down` behaviour: what starts, what stops, and the one-line errors."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
from pathlib import Path

import pytest
import requests

from shared.config import Settings
from stack.local_stack import LocalStack, StackConfig
from stack.processes import StackError, is_running

pytestmark = pytest.mark.emulators


def _pids(state_dir: Path) -> list[int]:
    return [p["pid"] for p in json.loads((state_dir / "stack.json").read_text())["processes"]]


def _stack(tmp_path: Path, **overrides: object) -> LocalStack:
    config = StackConfig(state_dir=tmp_path / "state", settings=Settings(project="demo-lifecycle"))
    for key, value in overrides.items():
        setattr(config, key, value)
    return LocalStack(config)


def test_up_writes_stack_env_and_down_stops_every_pid(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    before = dict(os.environ)
    info = stack.up()
    try:
        # The stack's emulators are in stack.env and info.env, never in this process's environment: a stack a
        # test starts and stops must not take the place of the session's (tests/conftest.py).
        assert dict(os.environ) == before
        pids = _pids(stack.config.state_dir)
        assert len(pids) == 3 + len(info.topology.functions)
        env = dict(
            line.removeprefix("export ").split("=", 1) for line in stack.env_file.read_text().splitlines()
        )
        assert {k: shlex.split(v)[0] for k, v in env.items()} == info.env
        for name in ("GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST",
                     "STORAGE_EMULATOR_HOST", "STT_BUCKET", "STT_API_URL"):
            assert name in env
        assert requests.get(f"http://{info.env['FIRESTORE_EMULATOR_HOST']}/", timeout=2).text.strip() == "Ok"
        for url in info.function_urls.values():
            requests.get(url, timeout=2)  # answers at all: the function process is serving
    finally:
        stopped = stack.down()
    assert len(stopped) == len(pids)
    assert not any(is_running(pid) for pid in pids)
    assert not stack.env_file.exists()
    assert dict(os.environ) == before


def test_up_after_a_crash_recovers_without_cleanup(tmp_path: Path) -> None:
    first = _stack(tmp_path)
    first.up()
    old_pids = _pids(first.config.state_dir)
    os.kill(old_pids[-1], signal.SIGKILL)  # a function dies; the emulators are left behind
    second = _stack(tmp_path)  # a new process knows the old one only by its state files
    second.up()
    try:
        assert not any(is_running(pid) for pid in old_pids)
        assert all(is_running(pid) for pid in _pids(second.config.state_dir))
    finally:
        second.down()


def test_taken_port_is_a_one_line_error_and_nothing_is_left_running(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        stack = _stack(tmp_path, ports={"pubsub-emulator": None, "firestore-emulator": port, "fake-gcs-server": None})
        with pytest.raises(StackError, match=rf"firestore-emulator: port {port} is taken.*STT_FIRESTORE_PORT"):
            stack.up()
    assert not stack.state_file.exists()


def test_missing_java_names_java_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = Path(__import__("shutil").which("gcloud"))
    (bin_dir / "gcloud").symlink_to(gcloud.resolve())
    monkeypatch.setenv("PATH", str(bin_dir))
    stack = _stack(tmp_path)
    with pytest.raises(StackError, match=r"java not found.*Java 17"):
        stack.up()
    assert not stack.state_file.exists()


def test_emulator_that_dies_at_start_is_named(tmp_path: Path) -> None:
    fake_root = tmp_path / "sdk"
    launcher = fake_root / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
    launcher.parent.mkdir(parents=True)
    launcher.write_text("#!/bin/sh\necho 'Address already in use' >&2\nexit 1\n")
    launcher.chmod(0o755)
    real_root = Path(__import__("shutil").which("gcloud")).resolve().parent.parent
    firestore = fake_root / "platform/cloud-firestore-emulator"
    firestore.parent.mkdir(parents=True, exist_ok=True)
    firestore.symlink_to(real_root / "platform/cloud-firestore-emulator")
    stack = _stack(tmp_path, sdk_root=str(fake_root))
    with pytest.raises(StackError, match=r"pubsub-emulator exited during start-up \(Address already in use\)"):
        stack.up()
    assert not stack.state_file.exists()
