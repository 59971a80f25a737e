"""`python -m stack sweep` stops what a killed run left behind, and only that."""

import uuid
from pathlib import Path

from stack.processes import is_running, launch, sweep


def test_sweep_stops_marked_process_groups_only(tmp_path: Path) -> None:
    owner = f"test-{uuid.uuid4().hex}"
    mine = launch("sleeper", ["sh", "-c", "sleep 60 & sleep 60"], {"PATH": "/usr/bin:/bin"}, tmp_path, owner=owner)
    other = launch("other", ["sleep", "60"], {"PATH": "/usr/bin:/bin"}, tmp_path, owner=f"{owner}-other")
    try:
        assert sweep(owner) == [mine.pid]
        assert not is_running(mine.pid)
        assert is_running(other.pid)
    finally:
        sweep(f"{owner}-other")
    assert not is_running(other.pid)
