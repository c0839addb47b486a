"""Which torch tasks the batched engine (:class:`~lrgym.vector.batched_runs.BatchedRuns`) runs.

Every run of the task must build the same architecture, without batch statistics,
randomness in the model, fused RNNs or buffers, and train with one of the ``torch.optim``
optimizers in :data:`SUPPORTED_OPTIMIZERS` (:func:`optimizer_kind`), whose update rules
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


SUPPORTED_OPTIMIZERS = (
    "SGD (momentum, plain or Nesterov, dampening 0), Adam and AdamW (no amsgrad), "
    "RMSprop (not centered) and Adagrad (lr_decay 0, initial_accumulator_value 0), "
    "none with maximize"
)
"""The ``torch.optim`` optimizers the batched engine runs, in words (error messages say it)."""


def _refuse(what: str) -> NotBatchable:
    return NotBatchable(
        f"{what} is not batched; the batched engine runs {SUPPORTED_OPTIMIZERS} "
        "(choose one of those, or train this task without --batched)"
    )


def optimizer_kind(optimizer: torch.optim.Optimizer) -> str:
    """Which per-slot update rule of :mod:`lrgym.vector.slot_optim` runs ``optimizer``.

    Returns:
        ``"sgd"``, ``"nesterov"``, ``"adam"``, ``"adamw"``, ``"rmsprop"`` or
        ``"adagrad"``.

    Raises:
        NotBatchable: Another optimizer or option (see :data:`SUPPORTED_OPTIMIZERS`), or
            several param groups.
    """
    if len(optimizer.param_groups) != 1:
        raise NotBatchable("the optimizer has several param groups")
    group = optimizer.param_groups[0]
    name = type(optimizer).__name__
    if group.get("maximize"):
        raise _refuse(f"{name} with maximize=True")
    if type(optimizer) is torch.optim.SGD:
        if group["dampening"] != 0:
            raise _refuse("SGD with dampening")
        return "nesterov" if group["nesterov"] else "sgd"
    if type(optimizer) in (torch.optim.Adam, torch.optim.AdamW):
        if group["amsgrad"]:
            raise _refuse(f"{name} with amsgrad=True")
        return "adamw" if type(optimizer) is torch.optim.AdamW else "adam"
    if type(optimizer) is torch.optim.RMSprop:
        if group["centered"]:
            raise _refuse("RMSprop with centered=True")
        return "rmsprop"
    if type(optimizer) is torch.optim.Adagrad:
        if group["lr_decay"] != 0:
            raise _refuse("Adagrad with lr_decay")
        if group["initial_accumulator_value"] != 0:
            raise _refuse("Adagrad with initial_accumulator_value")
        return "adagrad"
    raise _refuse(name)


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


__all__ = [
    "SUPPORTED_OPTIMIZERS",
    "UNBATCHABLE_MODULES",
    "NotBatchable",
    "check_batchable",
    "optimizer_kind",
]
