"""Optimizer-level baselines: schedule-free AdamW and Prodigy in the comparison harness.

Neither is an LR schedule: each *replaces* the task's optimizer with its own, built over
the same parameters, and is then left alone (the LR it reports is its effective step
size). Both come from optional packages (``pip install "lrgym[optim]"``):

* ``schedulefree-adamw``: ``schedulefree.AdamWScheduleFree`` (Defazio et al., 2024) at the
  run's initial LR with a linear warmup over the first 5% of steps (as the ``cosine``
  baseline). Schedule-free evaluates at a different point (``x``) than it trains at
  (``y``): the optimizer is put in train mode before every training chunk and in eval
  mode before every evaluation, including the final test, as its documentation demands.
* ``prodigy``: ``prodigyopt.Prodigy`` (Mishchenko & Defazio, 2024), which estimates its own
  step size ``d``, configured as its authors recommend (the prodigyopt README): LR
  multiplier ``lr=1.0`` and its own small initial estimate ``d0`` (1e-6, the package
  default), so the run's initial LR does not enter. (An earlier lrgym passed the run's
  LR as ``d0``; since ``d`` only grows, a large task LR then skipped Prodigy's own
  estimate, and it collapsed to chance on an unseen CNN task.)

Both keep the task's weight decay (decoupled). They need a torch model: they do not apply
to XGBoost tasks, and the comparison grid leaves those runs out.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from types import ModuleType

import torch
from torch.optim import Optimizer

from lrgym.backends.torch_trainee import TorchTrainee
from lrgym.core.controller import Controller
from lrgym.core.task import Task
from lrgym.core.trainee import EvalReport, StepHook, Trainee, TrainReport

OPTIM_INSTALL = 'pip install "lrgym[optim]"'
"""How to install the optional optimizers."""

WARMUP_SHARE = 0.05
"""Share of the run spent in schedule-free's linear warmup."""


def require(module: str, package: str) -> ModuleType:
    """Import an optional optimizer package, or fail saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{package} is not installed; install the optional optimizers with {OPTIM_INSTALL}"
        ) from None


class OptimizerTrainee(Trainee):
    """A :class:`~lrgym.backends.torch_trainee.TorchTrainee` trained by a replacement optimizer.

    Args:
        inner: The task's trainee; its optimizer is replaced by ``optimizer``.
        optimizer: The new optimizer, over ``inner.params``.
        switch_modes: Call ``optimizer.train()`` before training and ``optimizer.eval()``
            before evaluating (schedule-free optimizers need it).
    """

    def __init__(self, inner: TorchTrainee, optimizer: Optimizer, switch_modes: bool) -> None:
        inner.optimizer = optimizer
        self.inner = inner
        self.optimizer = optimizer
        self.switch_modes = switch_modes

    def train(self, steps: int, on_step: StepHook | None = None) -> TrainReport:
        """Train ``steps`` steps (in the optimizer's train mode where it has one)."""
        if self.switch_modes:
            self.optimizer.train()
        return self.inner.train(steps, on_step)

    def evaluate(self, split: str = "val") -> EvalReport:
        """Evaluate (in the optimizer's eval mode where it has one)."""
        if self.switch_modes:
            self.optimizer.eval()
        return self.inner.evaluate(split)

    @property
    def lr(self) -> float:
        """The effective step size: schedule-free's warmed-up LR, Prodigy's ``d · lr``."""
        group = self.optimizer.param_groups[0]
        if "d" in group:  # Prodigy
            return float(group["d"]) * float(group["lr"])
        return float(group.get("scheduled_lr") or group["lr"])

    def close(self) -> None:
        """Release the inner trainee."""
        self.inner.close()


class OptimizerBaseline(Controller):
    """Base class: replaces the task's optimizer in :meth:`wrap`, then sets nothing.

    Subclasses implement :meth:`make_optimizer`.
    """

    name = "optimizer baseline"
    switch_modes = False

    def applies_to(self, task: Task) -> bool:
        """False for tasks without a torch model to optimize (``task.backend != "torch"``)."""
        return task.backend == "torch"

    def make_optimizer(self, params: list[torch.Tensor], lr: float, weight_decay: float):
        """The replacement optimizer over ``params``, from the run's initial LR."""
        raise NotImplementedError

    def wrap(self, trainee: Trainee) -> Trainee:
        """The trainee, now trained by this baseline's optimizer."""
        if not isinstance(trainee, TorchTrainee):
            raise TypeError(
                f"{self.name} replaces a torch optimizer and needs a lrgym TorchTrainee, got "
                f"{type(trainee).__name__}; run it on torch tasks only"
            )
        weight_decay = float(trainee.optimizer.param_groups[0].get("weight_decay", 0.0))
        optimizer = self.make_optimizer(trainee.params, trainee.lr, weight_decay)
        return OptimizerTrainee(trainee, optimizer, self.switch_modes)

    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        """Nothing to attach: the optimizer sets its own step size."""

    def observe(self, report: EvalReport) -> None:
        """Validation feedback is not used."""


class ScheduleFreeAdamW(OptimizerBaseline):
    """``schedulefree.AdamWScheduleFree`` at the run's initial LR (see the module docstring).

    Args:
        warmup_share: Share of the run's steps in linear warmup.
    """

    name = "schedulefree-adamw"
    switch_modes = True

    def __init__(self, warmup_share: float = WARMUP_SHARE) -> None:
        self.module = require("schedulefree", "schedulefree")
        if not 0 <= warmup_share < 1:
            raise ValueError(f"warmup_share must be in [0, 1), got {warmup_share}")
        self.warmup_share = warmup_share

    def make_optimizer(self, params: list[torch.Tensor], lr: float, weight_decay: float):
        """``AdamWScheduleFree(params, lr, weight_decay)``, starting in eval mode."""
        return self.module.AdamWScheduleFree(params, lr=lr, weight_decay=weight_decay)

    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        """Set the warmup length from the run's step budget."""
        for group in optimizer.param_groups:
            group["warmup_steps"] = int(self.warmup_share * total_steps)


class ProdigyBaseline(OptimizerBaseline):
    """``prodigyopt.Prodigy`` as recommended: LR multiplier 1.0, its default ``d0``.

    Args:
        d_coef: Prodigy's coefficient on its step-size estimate (its preferred knob).
    """

    name = "prodigy"

    def __init__(self, d_coef: float = 1.0) -> None:
        self.module = require("prodigyopt", "prodigyopt")
        self.d_coef = d_coef

    def make_optimizer(self, params: list[torch.Tensor], lr: float, weight_decay: float):
        """``Prodigy(params, lr=1.0, weight_decay=weight_decay)`` (decoupled); ``lr``, the
        run's initial LR, is not used: Prodigy finds its own step size."""
        with contextlib.redirect_stdout(io.StringIO()):  # it prints on weight decay
            return self.module.Prodigy(
                params, lr=1.0, d_coef=self.d_coef, weight_decay=weight_decay
            )
