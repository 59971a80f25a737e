"""Fixtures: one emulator stack per test session, and a namespace of its own for every test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from shared.config import Settings
from stack.local_stack import REPO_ROOT, LocalStack, StackConfig, StackInfo, emulator_env

# Short backoff so retry and dead-letter tests take seconds, not minutes; the policy shape is the real one.
# The stack's bucket is not the default name: tests/e2e/test_seed_usage.py runs the seed's examples, which name
# the bucket "stt-project-datasets", against a bucket that only they use (a case snapshot mirrors one deployment).
TEST_SETTINGS = Settings(project="demo-sttdata-test", bucket="stt-test-datasets", min_backoff_s=0.1,
                         max_backoff_s=0.5, ack_deadline_s=20)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """The whole local stack, as `make up` starts it, for the session; stopped at the end."""
    state_dir = tmp_path_factory.mktemp("stack")
    local = LocalStack(StackConfig(state_dir=state_dir, settings=TEST_SETTINGS))
    try:
        info = local.up()
        with emulator_env(info.env):  # the clients the tests make find the session's emulators
            yield info
    finally:
        local.down()


@pytest.fixture
def namespace() -> str:
    """A name no other test uses: a prefix for collections, topics and subscriptions."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def test_settings(namespace: str) -> Settings:
    """The session settings with this test's own collection prefix."""
    return replace(TEST_SETTINGS, collection_prefix=f"{namespace}_")


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """Where a test's own function processes write their logs."""
    return tmp_path / "logs"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
