"""Child processes of the local stack: start detached, wait until they answer, stop by pid."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests


class StackError(RuntimeError):
    """A part of the local stack could not be started; the message names the part and the fix."""


# Every process the stack launches carries this mark, so `sweep()` finds any left behind by a killed run.
OWNER_VAR = "STT_LAUNCHED_BY"
OWNER = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class Launched:
    """A started process: its pid (also its process-group id) and where its output goes."""

    name: str
    pid: int
    log: Path


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range.

    A port handed out by bind(0) comes from the ephemeral range, where client sockets and the Firestore
    emulator's own websocket server take ports too: one of them can grab it before our server binds it.
    Below that range only servers that chose their port stand, and the random pick keeps parallel stacks apart.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = secrets.randbelow(low - 20000) + 20000
        if port_is_free(port):
            return port
    raise StackError(f"no free loopback port between 20000 and {low}: set the STT_*_PORT variables")


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as ports:
            return max(20100, int(ports.read().split()[0]))
    except (OSError, ValueError, IndexError):
        return 32768


def port_is_free(port: int) -> bool:
    """True when nothing can be bound on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def launch(name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path, owner: str = OWNER) -> Launched:
    """Start `argv` in its own session, so stopping it stops the JVMs and workers it forks."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(argv),
            env={**env, OWNER_VAR: owner},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Launched(name=name, pid=proc.pid, log=log)


def is_running(pid: int) -> bool:
    """True while a process with this pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def stop_group(pid: int, grace_s: float = 5.0) -> None:
    """Stop the process group led by `pid`: SIGTERM, then SIGKILL after `grace_s`."""
    stop_groups([pid], grace_s)


def stop_groups(pids: Sequence[int], grace_s: float = 5.0) -> None:
    """Stop several process groups at once (so `down` takes the slowest one's time, not the sum)."""
    alive = list(pids)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        alive = [pid for pid in alive if _signal_group(pid, sig)]
        deadline = time.monotonic() + wait_s
        while alive and time.monotonic() < deadline:
            for pid in alive:
                _reap(pid)
            alive = [pid for pid in alive if _group_alive(pid)]
            if alive:
                time.sleep(0.05)
        if not alive:
            return


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _reap(pid: int) -> None:
    # A child of this process stays a zombie until waited for.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(_pgid_of(p) == pgid and is_running(p) for p in _all_pids())


def _all_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def listens_on(pgid: int, port: int) -> bool:
    """True when a process of group `pgid` holds the listening socket of 127.0.0.1:`port` (Linux /proc)."""
    inodes = _listening_inodes(port)
    for pid in _all_pids():
        if _pgid_of(pid) != pgid:
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return True
            except OSError:
                continue
    return False


def _listening_inodes(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as rows:
                next(rows)
                for row in rows:
                    cols = row.split()
                    if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                        found.add(f"socket:[{cols[9]}]")
        except OSError:
            continue
    return found


def wait_until_answers(launched: Launched, url: str, timeout_s: float, fix: str) -> None:
    """Poll `url` until our process answers on it; raise StackError naming the part if it dies or times out.

    "Our process" is checked: another server that took the port first would answer too.
    """
    port = urlsplit(url).port
    deadline = time.monotonic() + timeout_s
    session = requests.Session()
    while time.monotonic() < deadline:
        if not is_running(launched.pid):
            raise StackError(
                f"{launched.name} exited during start-up ({_last_line(launched.log)}); {fix}; log: {launched.log}"
            )
        try:
            session.get(url, timeout=0.5)
        except requests.RequestException:
            time.sleep(0.05)
            continue
        if port is None or listens_on(launched.pid, port):
            return
        time.sleep(0.05)
    raise StackError(f"{launched.name} did not answer on {url} within {timeout_s:.0f}s; {fix}; log: {launched.log}")


def _last_line(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        return "no output"
    return lines[-1][:200] if lines else "no output"


def sweep(owner: str = OWNER) -> list[int]:
    """Stop every process group `owner` (by default this checkout) launched that still runs; their leaders."""
    mark = f"{OWNER_VAR}={owner}".encode()
    leaders = []
    for pid in _all_pids():
        if pid == os.getpid() or _pgid_of(pid) != pid:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                if mark not in environ.read().split(b"\0"):
                    continue
        except OSError:
            continue
        stop_group(pid)
        leaders.append(pid)
    return leaders
