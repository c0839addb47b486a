"""What one decision of a task costs, estimated without timing anything (so it is the same
on every machine and in every run, and a seeded training stays deterministic).

Meta-training deals its tasks to workers by this estimate (longest first, each to the
least loaded worker) so that every worker's share of a step costs about the same and
no worker waits on one that drew the slow tasks. A torch task's decision is
``decision_interval`` optimizer steps, each a forward and backward pass over a minibatch
plus a fixed per-step overhead, and one validation pass; a forward pass of one run built
from seed 0 is measured in FLOPs (``torch.utils.flop_counter.FlopCounterMode``) and in
torch calls (a ``torch.overrides.TorchFunctionMode``), which cost the time of small ops.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from lrgym.core.registration import make_task

# A linear model of a batched decision's CPU time per run, in ms, fitted (non-negative
# least squares) to the 32 tasks of the ``procedural`` selection measured at K=32
# (benchmarks/meta_train_throughput.py; within 0.5-1.5x of each measured task, log
# correlation 0.91). Only the ratios between tasks matter: they deal tasks to workers.
MS_PER_STEP = 0.047
"""Fixed cost of one optimizer step (indexing, the stacked optimizer, Python)."""
MS_PER_CALL = 0.0013
"""Cost of one torch function call of the model's forward pass, per step (vmap and
autograd overhead: a 16-step GRU written with ``nn.Linear`` gates makes hundreds)."""
MS_PER_FLOP = 4.0e-7
"""Cost of one forward FLOP of matrix products, per step (backward included)."""
MS_PER_CONV_FLOP = 8.9e-8
"""Cost of one forward convolution FLOP, per step (grouped convolutions run near peak)."""
MS_PER_VAL_FLOP = 7.8e-8
"""Cost of one FLOP of the validation pass (forward only, once per decision)."""
MS_PER_OTHER_STEP = 1.0
"""A step of a task that is not a torch task (XGBoost's boosting round, run one run
after another): a guess, not fitted."""


class _CallCounter(TorchFunctionMode):
    """Counts torch function calls (``torch.overrides``' public mode hook)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.calls += 1
        return func(*args, **(kwargs or {}))


def decision_cost(task_id: str, decision_interval: int | None = None) -> float:
    """Estimated CPU time of one decision of one batched run of ``task_id``, in ms at
    K=32 (relative: it ranks and balances tasks, it times nothing).

    Args:
        task_id: A registered task id.
        decision_interval: Optimizer steps per decision (default: the task's).
    """
    task = make_task(task_id)
    k = int(decision_interval or task.info.decision_interval)
    if task.backend != "torch":  # declared, not guessed (tests/test_decision_path.py)
        return k * MS_PER_OTHER_STEP
    trainee = task.build(0, task.info.default_lr)
    try:
        x_train, x_val = trainee.tensors["train"][0], trainee.tensors["val"][0]
        calls, flops, conv_flops = _forward(trainee.model, x_train[: trainee.batch_size])
        _, val_flops, val_conv_flops = _forward(trainee.model, x_val)
    finally:
        trainee.close()
    step = MS_PER_STEP + MS_PER_CALL * calls + MS_PER_FLOP * flops
    step += MS_PER_CONV_FLOP * conv_flops
    return k * step + MS_PER_VAL_FLOP * (val_flops + val_conv_flops)


def _forward(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, int, int]:
    """Torch function calls, matrix-product FLOPs and convolution FLOPs of a forward pass."""
    calls, flops = _CallCounter(), FlopCounterMode(display=False)
    with torch.no_grad(), calls, flops:
        model(x)
    by_op = flops.get_flop_counts().get("Global", {})
    conv = sum(n for op, n in by_op.items() if "convolution" in str(op))
    return calls.calls, int(flops.get_total_flops()) - conv, conv


def balance(costs: list[float], workers: int) -> list[list[int]]:
    """Indices of ``costs`` dealt to ``workers`` groups of near-equal total: longest first,
    each to the least loaded group (ties: the lower index), each group in index order. A
    group left empty gets an index again (``i % len(costs)``), as in round-robin."""
    loads = [0.0] * workers
    groups: list[list[int]] = [[] for _ in range(workers)]
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        w = min(range(workers), key=lambda w: (loads[w], w))
        groups[w].append(i)
        loads[w] += costs[i]
    return [sorted(g) or [w % len(costs)] for w, g in enumerate(groups)]


__all__ = ["balance", "decision_cost"]
