"""Shared test setup: make modules in ``tests/`` importable by name.

User-task tests register entry points such as ``"user_tasks_example:make_tiny"``,
which the registry imports by module name, so ``tests/`` must be on ``sys.path``
whatever pytest's import mode is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import gymnasium
import pytest
import torch

import lrgym

# The batched engine compiles by default where a C++ compiler is present (10-30 s per
# task and process): tests that do not test compiling keep the eager path; the tests of
# the default path unset this (tests/test_batched_env.py).
os.environ.setdefault("LRGYM_COMPILE", "0")

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models: one intra-op thread is fastest, and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def forget_tasks():
    """Removes every task and task group a test registers."""
    from lrgym.core.registration import groups

    before, groups_before = set(lrgym.registry), dict(groups)
    yield
    for task_id in set(lrgym.registry) - before:
        lrgym.registry.pop(task_id, None)
        gymnasium.registry.pop(task_id, None)
    groups.clear()
    groups.update(groups_before)
