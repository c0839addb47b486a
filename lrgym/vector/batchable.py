"""Which torch tasks the batched engine (:class:`~lrgym.vector.batched_runs.BatchedRuns`) runs.

Every run of the task must build the same architecture, without batch statistics,
randomness in the model, fused RNNs or buffers, and train with ``torch.optim``'s SGD
(plain momentum), Adam or AdamW (:func:`optimizer_kind`), whose update rules
:mod:`lrgym.vector.slot_optim` follows per slot.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lrgym.backends.torch_trainee import TorchTrainee

UNBATCHABLE_MODULES = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.dropout._DropoutNd,
    nn.RNNBase,
)
"""Modules the batched engine does not run: batch statistics, randomness, fused RNNs."""


class NotBatchable(ValueError):
    """A task cannot be trained by :class:`BatchedRuns`; the message says why."""


def optimizer_kind(optimizer: torch.optim.Optimizer) -> str:
    """``"sgd"``, ``"adam"`` or ``"adamw"``, or :class:`NotBatchable`."""
    if len(optimizer.param_groups) != 1:
        raise NotBatchable("the optimizer has several param groups")
    group = optimizer.param_groups[0]
    if type(optimizer) is torch.optim.SGD:
        if group["nesterov"] or group["dampening"] != 0 or group.get("maximize"):
            raise NotBatchable("only SGD with plain momentum is batched")
        return "sgd"
    if type(optimizer) in (torch.optim.Adam, torch.optim.AdamW):
        if group["amsgrad"] or group.get("maximize"):
            raise NotBatchable("Adam/AdamW with amsgrad or maximize is not batched")
        return "adamw" if type(optimizer) is torch.optim.AdamW else "adam"
    raise NotBatchable(f"{type(optimizer).__name__} is not batched (SGD, Adam, AdamW are)")


def check_batchable(task: Any) -> None:
    """Raise :class:`NotBatchable` unless ``task`` can run in :class:`BatchedRuns`."""
    if task.backend != "torch":
        raise NotBatchable(f"{type(task).__name__} is not a torch task (backend {task.backend!r})")
    probe = task.build(0, 1e-3)
    if not isinstance(probe, TorchTrainee):
        raise NotBatchable(f"{type(task).__name__} does not build a TorchTrainee")
    optimizer_kind(probe.optimizer)
    bad = [type(m).__name__ for m in probe.model.modules() if isinstance(m, UNBATCHABLE_MODULES)]
    if bad:
        raise NotBatchable(f"the model uses {', '.join(sorted(set(bad)))}")
    if any(True for _ in probe.model.buffers()):
        raise NotBatchable("the model has buffers")
    other = task.build(1, 1e-3)
    shapes = [[tuple(p.shape) for p in t.model.parameters()] for t in (probe, other)]
    if shapes[0] != shapes[1]:
        raise NotBatchable("runs of this task differ in architecture (drawn per seed)")


__all__ = ["UNBATCHABLE_MODULES", "NotBatchable", "check_batchable", "optimizer_kind"]
