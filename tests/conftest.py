"""Shared test setup: make modules in ``tests/`` importable by name.

User-task tests register entry points such as ``"user_tasks_example:make_tiny"``,
which the registry imports by module name, so ``tests/`` must be on ``sys.path``
whatever pytest's import mode is.
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
