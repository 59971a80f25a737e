"""Which deployment the CLI talks to: `.local/stack.env` (what `make up` writes) over the environment.

The file is `--env-file PATH` (or `STT_ENV_FILE`); without one, the nearest `.local/stack.env` from the working
directory up, if any. `--env-file none` ignores any file (the cloud, from a checkout with a local stack up).
Variables: GOOGLE_CLOUD_PROJECT, STT_BUCKET, STT_API_URL and, locally, the emulator hosts.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.config import Settings
from sttdata_cli.errors import CliError

STACK_ENV = Path(".local") / "stack.env"
NO_FILE = ("none", "")


@dataclass(frozen=True)
class CliConfig:
    """The variables in force and the file they came from (None: the environment alone)."""

    env: Mapping[str, str]
    source: Path | None = None

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @property
    def api_url(self) -> str:
        url = self.env.get("STT_API_URL", "").strip()
        if not url:
            raise CliError("STT_API_URL is not set: start the local stack with `make up` (it writes "
                           ".local/stack.env), or export STT_API_URL=<the api function's URL> for the cloud")
        return url.rstrip("/")

    @property
    def storage_emulator(self) -> str | None:
        return self.env.get("STORAGE_EMULATOR_HOST") or None

    def where(self) -> str:
        """Where the settings came from, for messages."""
        return str(self.source) if self.source is not None else "the environment"


def parse_env_file(text: str) -> dict[str, str]:
    """`export NAME=value` lines (shell-quoted values, `#` comments) as a dict."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "export":
            words = words[1:]
        if len(words) != 1 or "=" not in words[0]:
            raise CliError(f"line {number} of the env file is not `export NAME=value`: {line.strip()!r}")
        name, _, value = words[0].partition("=")
        values[name] = value
    return values


def find_stack_env(start: Path) -> Path | None:
    """The nearest `.local/stack.env` from `start` up, or None."""
    for folder in (start, *start.parents):
        candidate = folder / STACK_ENV
        if candidate.is_file():
            return candidate
    return None


def load_config(env_file: str | None, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> CliConfig:
    """The file's variables over the environment's (the file says where the running local stack is)."""
    environ = dict(os.environ if environ is None else environ)
    if env_file is not None and env_file.strip().lower() in NO_FILE:
        return CliConfig(environ)
    if env_file is not None:
        path = Path(env_file).expanduser()
        if not path.is_file():
            raise CliError(f"env file {path} does not exist: start the local stack with `make up`, or pass "
                           "--env-file none to use the environment alone")
    else:
        found = find_stack_env(cwd or Path.cwd())
        if found is None:
            return CliConfig(environ)
        path = found
    return CliConfig({**environ, **parse_env_file(path.read_text())}, path)
