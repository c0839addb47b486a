"""Whether the batched engine compiles its stacked steps: on by default where it pays.

``torch.compile`` (Inductor on CPU) fuses a batched step's many small passes into a few
kernels: 1.7x faster for a procedural attention task, about 2x for MLPs (see
docs/results/benchmarks.md), at a one-off 10-30 s per task and process. It needs a C++
compiler; without one the engine warns once and runs eagerly. Inductor keeps its
compiled graphs in an on-disk cache keyed by graph and shape, so a second process (or
run) compiling the same task and K reuses them.
"""

from __future__ import annotations

import inspect
import itertools
import os
import shutil
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

import torch

COMPILE_ENV = "LRGYM_COMPILE"
"""Environment variable overriding the default: ``0`` never compiles by default, ``1``
always tries (the test suite sets ``0``, so tests that do not test compiling do not pay
for it)."""

COMPILE_PAYS_BACK_AFTER = 5_000
"""Decisions per task after which compiling has paid for itself: measured on a
procedural attention task at K=32 (26 s more at start, 6.7 ms less per decision: even
after about 3,900 decisions), rounded up. ``lrgym train`` compiles by default only when
each task gets at least this many decisions."""


@cache
def compiler_available() -> bool:
    """True if a C++ compiler that Inductor can use is on the ``PATH`` (``$CXX``, ``c++``,
    ``g++`` or ``clang++``)."""
    names = [os.environ.get("CXX", ""), "c++", "g++", "clang++"]
    return any(name and shutil.which(name) for name in names)


def default_compile() -> bool:
    """The default: :data:`COMPILE_ENV` if set, else whether a compiler is present."""
    setting = os.environ.get(COMPILE_ENV, "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    if setting:
        raise ValueError(f"{COMPILE_ENV} must be 0 or 1, got {setting!r}")
    return compiler_available()


def resolve_compile(compile: bool | None) -> bool:
    """``compile`` as given, or :func:`default_compile` for None. An explicit True on a
    machine without a compiler warns and returns False (the eager path)."""
    if compile is None:
        return default_compile()
    if compile and not compiler_available():
        warnings.warn(
            "compile was asked for but no C++ compiler is on the PATH (torch.compile "
            "needs one on CPU); the batched runs continue uncompiled (install g++ or "
            "clang++, or leave compile off)",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return bool(compile)


def compile_pays_back(decisions_per_task: float) -> bool:
    """Whether compiling by default pays back within a run giving each task this many
    decisions (see :data:`COMPILE_PAYS_BACK_AFTER`), where :func:`default_compile` allows."""
    return decisions_per_task >= COMPILE_PAYS_BACK_AFTER and default_compile()


VARIANTS_PER_CALLABLE = 8
"""Compiled variants one stacked step may need (grad mode, the train, val and test
splits' shapes, a last partial chunk), with room to spare."""

_ISOLATES = "isolate_recompiles" in inspect.signature(torch.compile).parameters
_callables = itertools.count(1)


def compile_isolated(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.compile(fn, dynamic=False)`` whose recompilations count against ``fn``'s
    own limit, not those of every other task in the process.

    Dynamo keeps one cache per code object, and every task's ``vmap`` (gradients and
    forward passes) and optimizer step share theirs: under the process-wide limit of 8
    variants, a worker's fifth task or so silently ran eagerly after paying for its
    compiling (``torch._dynamo hit config.recompile_limit (8)`` on 41 tasks). Each
    callable gets its own region (``isolate_recompiles``) where torch has it; on an older
    torch the shared limit grows by :data:`VARIANTS_PER_CALLABLE` per callable. The
    global cap across regions grows the same way either way.
    """
    room = VARIANTS_PER_CALLABLE * next(_callables)
    dynamo = torch._dynamo.config
    dynamo.accumulated_recompile_limit = max(dynamo.accumulated_recompile_limit, room)
    if _ISOLATES:
        return torch.compile(fn, dynamic=False, isolate_recompiles=True)
    dynamo.recompile_limit = max(dynamo.recompile_limit, room)
    return torch.compile(fn, dynamic=False)


__all__ = [
    "COMPILE_ENV",
    "COMPILE_PAYS_BACK_AFTER",
    "VARIANTS_PER_CALLABLE",
    "compile_isolated",
    "compile_pays_back",
    "compiler_available",
    "default_compile",
    "resolve_compile",
]
