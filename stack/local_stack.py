"""The whole local stack: emulators, fake-gcs-server, functions and topology, up and down by pid."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import Settings
from shared.topology import FunctionSpec, Topology, build_topology
from stack import components, provision
from stack.processes import (
    Launched,
    StackError,
    free_port,
    is_running,
    launch,
    port_is_free,
    stop_groups,
    wait_until_answers,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
EMULATOR_VARS = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")
PORT_VARS = {"pubsub-emulator": "STT_PUBSUB_PORT", "firestore-emulator": "STT_FIRESTORE_PORT",
             "fake-gcs-server": "STT_GCS_PORT"}


@dataclass
class StackConfig:
    """Where the stack keeps its state and which ports it uses (None: a free one)."""

    state_dir: Path = REPO_ROOT / ".local"
    settings: Settings = field(default_factory=Settings.from_env)
    ports: dict[str, int | None] = field(default_factory=dict)
    sdk_root: str | None = None
    functions: tuple[FunctionSpec, ...] | None = None  # default: the topology's

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> StackConfig:
        """Ports, SDK root and state dir from STT_*_PORT / STT_GCLOUD_SDK_ROOT / STT_STATE_DIR; settings as usual."""
        env = os.environ if env is None else env
        ports = {part: int(env[var]) if env.get(var) else None for part, var in PORT_VARS.items()}
        config = cls(settings=Settings.from_env(env), ports=ports, sdk_root=env.get("STT_GCLOUD_SDK_ROOT"))
        if env.get("STT_STATE_DIR"):
            config.state_dir = Path(env["STT_STATE_DIR"])
        for key, value in overrides.items():
            setattr(config, key, value)
        return config


@dataclass(frozen=True)
class StackInfo:
    """What a client needs to talk to a running stack."""

    settings: Settings
    env: dict[str, str]  # the stack.env variables
    function_urls: dict[str, str]
    topology: Topology

    @property
    def project(self) -> str:
        return self.settings.project


class LocalStack:
    """Starts and stops the local stack; state lives in `config.state_dir` so a later process can stop it."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig.from_env()
        self._launched: list[Launched] = []

    @property
    def state_file(self) -> Path:
        return self.config.state_dir / "stack.json"

    @property
    def env_file(self) -> Path:
        return self.config.state_dir / "stack.env"

    def up(self) -> StackInfo:
        """Start everything, create the topology, wait until all answers, write stack.env."""
        self.down()  # a crashed earlier stack leaves pids behind: stop them first
        try:
            return self._up()
        except BaseException:
            self.down()
            raise

    def _up(self) -> StackInfo:
        cfg, settings = self.config, self.config.settings
        topology = build_topology(settings)
        functions = cfg.functions if cfg.functions is not None else topology.functions
        ports = {part: self._port(part) for part in PORT_VARS}
        fn_ports = {fn.name: free_port() for fn in functions}
        root = components.sdk_root(cfg.sdk_root)
        components.require_java()

        hosts = {
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{ports['pubsub-emulator']}",
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{ports['firestore-emulator']}",
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{ports['fake-gcs-server']}",
        }
        base_env = inherited_env()
        java_env = {**base_env, "CLOUDSDK_CORE_PROJECT": settings.project}
        client_env = function_env(hosts, settings)

        # Like the in-memory emulators, every stack starts with an empty bucket.
        shutil.rmtree(cfg.state_dir / "gcs", ignore_errors=True)
        parts = [
            components.pubsub_part(root, ports["pubsub-emulator"], java_env),
            components.firestore_part(root, ports["firestore-emulator"], java_env),
            components.fake_gcs_part(
                ports["fake-gcs-server"],
                cfg.state_dir / "gcs",
                settings.project,
                settings.topic_bucket_events,
                hosts["PUBSUB_EMULATOR_HOST"],
                base_env,
            ),
            *(
                components.function_part(fn.name, REPO_ROOT / fn.source, fn.signature, fn_ports[fn.name], client_env)
                for fn in functions
            ),
        ]
        started = {part.name: self._start(part) for part in parts}
        function_urls = {fn.name: f"http://127.0.0.1:{fn_ports[fn.name]}" for fn in functions}

        self._wait(parts[0], started)
        from google.cloud import pubsub_v1, storage

        # The clients below find the emulators the standard way, through the environment, which they read when
        # made: set for their making only, so this process's environment is left as it was (a test session's
        # stack is not replaced by a stack a test starts and stops).
        with emulator_env(hosts):
            publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
            gcs = storage.Client(project=settings.project)
        provision.create_topics(topology, publisher)
        for sink in topology.dead_letter_sinks:
            provision.create_dead_letter_sink(settings.project, sink, subscriber)
        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            list(pool.map(lambda part: self._wait(part, started), parts[1:]))
        provision.create_bucket(topology, gcs)
        for sub in topology.subscriptions:
            if sub.function in function_urls:
                provision.create_push_subscription(settings.project, sub, function_urls[sub.function], subscriber)

        stack_env = {"GOOGLE_CLOUD_PROJECT": settings.project, **hosts, "STT_BUCKET": settings.bucket}
        if "api" in function_urls:
            stack_env["STT_API_URL"] = function_urls["api"]
        self._write_env(stack_env)
        self._save_state(stack_env, function_urls)
        return StackInfo(settings=settings, env=stack_env, function_urls=function_urls, topology=topology)

    def _port(self, part: str) -> int:
        port = self.config.ports.get(part)
        if port is None:
            return free_port()
        if not port_is_free(port):
            raise StackError(
                f"{part}: port {port} is taken; stop what holds it (`make down` if it is an earlier stack) "
                f"or set {PORT_VARS[part]} to another port (unset: any free port)"
            )
        return port

    def _start(self, part: components.Part) -> Launched:
        launched = launch(part.name, part.argv, part.env, self.config.state_dir / "logs")
        self._launched.append(launched)
        self._save_state({}, {})  # record the pid at once: a crash from here on is still cleaned up
        return launched

    @staticmethod
    def _wait(part: components.Part, started: dict[str, Launched]) -> None:
        wait_until_answers(started[part.name], part.ready_url, part.timeout_s, part.fix)

    def _save_state(self, env: dict[str, str], function_urls: dict[str, str]) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "processes": [{"name": p.name, "pid": p.pid, "log": str(p.log)} for p in self._launched],
            "env": env,
            "function_urls": function_urls,
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def _write_env(self, env: dict[str, str]) -> None:
        lines = [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
        self.env_file.write_text("\n".join(lines) + "\n")

    def down(self) -> list[str]:
        """Stop every process this stack (or a crashed earlier one in the same state dir) started."""
        # Each part leads its own process group; a reused pid that leads none is not ours.
        ours = {pid: name for pid, name in self._recorded_processes().items() if is_running(pid) and _leads_group(pid)}
        stop_groups(list(ours))
        stopped = list(ours.values())
        self._launched.clear()
        for path in (self.state_file, self.env_file):
            path.unlink(missing_ok=True)
        return stopped

    def _recorded_processes(self) -> dict[int, str]:
        """pid -> part name of what the state file (or this object) says was launched."""
        recorded: dict[int, str] = {}
        if self.state_file.exists():
            try:
                for proc in json.loads(self.state_file.read_text()).get("processes", []):
                    recorded[int(proc["pid"])] = str(proc["name"])
            except (ValueError, KeyError, TypeError):
                pass  # a torn state file: fall back to what this process launched
        recorded.update({launched.pid: launched.name for launched in self._launched})
        return recorded


@contextmanager
def emulator_env(env: Mapping[str, str]) -> Iterator[None]:
    """`env` in os.environ within the block; every variable it names back as it was after (unset if it was)."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def inherited_env() -> dict[str, str]:
    """This process's environment without emulator endpoints: a stack's parts get their own stack's."""
    return {k: v for k, v in os.environ.items() if k not in EMULATOR_VARS}


def function_env(hosts: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """The environment of a function process: the emulators, the settings, the repo on the path."""
    base_env = inherited_env()
    env = {**base_env, **hosts, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), base_env.get("PYTHONPATH")]))
    return env


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


@contextmanager
def running_stack(settings: Settings, functions: tuple[FunctionSpec, ...] = ()) -> Iterator[StackInfo]:
    """A stack of its own in a temporary folder for a script (bench, probe), its emulators in os.environ within
    the block (as they were before, after it)."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(StackConfig(state_dir=Path(tmp), settings=settings, functions=functions))
        info = stack.up()
        try:
            with emulator_env(info.env):
                yield info
        finally:
            stack.down()
