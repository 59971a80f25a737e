"""tests/fixtures/seed/usage.md, the seed's code blocks that tests/e2e/test_seed_usage.py runs, is still the
seed document's text: every block under the same heading, byte for byte, and none of the seed's left out."""

from __future__ import annotations

import re

import pytest

from stack.local_stack import REPO_ROOT
from tests.e2e.test_seed_usage import RUN, seed_blocks

# The seed sits beside the repository (../shared/seed/), where sessions and CI find it; a bare clone has none.
SEED = REPO_ROOT.parent / "shared/seed/000_fa9e2d0d50b0a308.txt"


def test_the_copy_is_the_seeds_text() -> None:
    if not SEED.is_file():
        pytest.skip(f"no seed document at {SEED}")
    seed = SEED.read_text()
    in_seed = []
    for fence in re.finditer(r"```python\n(.*?)```", seed, re.S):
        headings = re.findall(r"^#{2,3} [^\n]+$", seed[: fence.start()], re.M)
        in_seed.append((headings[-1], fence.group(1)))
    assert list(seed_blocks().items()) == in_seed


def test_every_block_the_test_runs_is_in_the_copy() -> None:
    assert set(RUN) <= set(seed_blocks())
    assert len(RUN) == len(set(RUN))
