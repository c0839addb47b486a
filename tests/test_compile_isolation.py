"""Every task of a worker compiles its own stacked steps (issue 25, a 41-task run).

Dynamo keeps one compile cache per code object, and every task's ``vmap`` shares one:
under the shared limit, a worker's later tasks silently ran eagerly after paying for
their compiling. :func:`lrgym.vector.compile_policy.compile_isolated` gives each its own.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import lrgym
from lrgym.vector import BatchedRuns
from lrgym.vector.compile_policy import compiler_available


def _runs(task_id: str) -> BatchedRuns:
    runs = BatchedRuns(lrgym.make_task(task_id), 2, compile=True)
    for slot, (seed, lr) in enumerate([(3, 1e-2), (4, 3e-3)]):
        runs.load(slot, seed, lr)
    runs.train(3)
    runs.evaluate("val")
    runs.evaluate("test")
    return runs


@pytest.mark.skipif(not compiler_available(), reason="no C++ compiler: nothing compiles")
def test_two_tasks_of_different_shapes_in_one_process_both_stay_compiled():
    torch._dynamo.reset()
    # A limit of 2 per region: one task's gradients (grad mode on) and its val and test
    # forward passes (grad mode off, two shapes) already make 3 variants of the shared
    # vmap code, so without isolation the limit is hit, and raises here.
    with (
        torch._dynamo.config.patch(recompile_limit=2, fail_on_recompile_limit_hit=True),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("error", RuntimeWarning)  # a fallback to eager warns
        graphs = []
        for task_id in ("lrgym/IllConditionedRegression-v0", "lrgym/DigitsMLP-v0"):
            runs = _runs(task_id)
            assert runs.compile and runs.path == "vmap"
            for step in (runs._grad, runs._forward_all, runs._optimizer.step_all):
                assert step._compiled is not None, f"{task_id} fell back to eager"
            graphs.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])
    assert graphs[1] > graphs[0] > 0  # the second task compiled graphs of its own
