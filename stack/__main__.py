"""`python -m stack up|down|demo [--keep]|sweep`: the local stack from the command line."""

from __future__ import annotations

import sys
import time

from stack.local_stack import LocalStack
from stack.processes import StackError, sweep


def main(argv: list[str]) -> int:
    """Run one command; errors print one line and exit non-zero."""
    command = argv[0] if argv else "help"
    stack = LocalStack()
    try:
        if command == "up":
            started = time.monotonic()
            info = stack.up()
            print(f"stack up in {time.monotonic() - started:.1f}s; env: {stack.env_file}")
            for name, url in info.function_urls.items():
                print(f"  function {name}: {url}")
            return 0
        if command == "down":
            stopped = stack.down()
            print(f"stack down; stopped: {', '.join(stopped) or 'nothing was running'}")
            return 0
        if command == "sweep":
            # For CI: whatever a killed test run left behind, found by the mark every launched process carries.
            leaders = sweep()
            print(f"swept {len(leaders)} process group(s)")
            return 0
        if command == "demo":
            from stack.demo import run_demo

            return run_demo(stack, keep="--keep" in argv[1:])
    except StackError as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1
    print("usage: python -m stack up|down|demo [--keep]|sweep", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
