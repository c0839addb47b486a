"""Static baselines: ``torch.optim.lr_scheduler`` classes as controllers, never re-implemented."""

from __future__ import annotations

from collections.abc import Callable

from torch.optim import Optimizer, lr_scheduler

from lrgym.core.controller import Controller
from lrgym.core.trainee import EvalReport

SchedulerFactory = Callable[[Optimizer, int], "lr_scheduler.LRScheduler"]
"""``(optimizer, total_steps) -> torch scheduler``; the optimizer's LR is the base LR."""


class TorchSchedule(Controller):
    """A ``torch.optim.lr_scheduler`` stepped once per optimizer step.

    Args:
        factory: Builds the scheduler from the optimizer and the run's total steps.
    """

    def __init__(self, factory: SchedulerFactory) -> None:
        self.factory = factory
        self.scheduler: lr_scheduler.LRScheduler | None = None

    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        self.scheduler = self.factory(optimizer, total_steps)

    def step(self, loss: float) -> None:
        self.scheduler.step()


class PlateauSchedule(Controller):
    """``ReduceLROnPlateau`` on validation loss, stepped at every evaluation.

    Args:
        factor: LR multiplier on a plateau.
        patience: Evaluations without improvement before reducing.
    """

    def __init__(self, factor: float = 0.5, patience: int = 2) -> None:
        self.factor = factor
        self.patience = patience

    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        self.scheduler = lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.factor, patience=self.patience
        )

    def observe(self, report: EvalReport) -> None:
        self.scheduler.step(report.loss)


def _cosine_with_warmup(opt: Optimizer, total: int, warmup_share: float = 0.05):
    warmup = max(1, int(warmup_share * total))
    return lr_scheduler.SequentialLR(
        opt,
        [
            lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warmup),
            lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total - warmup)),
        ],
        milestones=[warmup],
    )


def _has_momentum(opt: Optimizer) -> bool:
    """True if OneCycleLR can cycle ``opt``'s momentum (a ``momentum`` or ``betas`` key)."""
    return "momentum" in opt.defaults or "betas" in opt.defaults


def _cyclic(opt: Optimizer, total: int):
    lr = opt.param_groups[0]["lr"]
    return lr_scheduler.CyclicLR(
        opt, base_lr=lr / 10, max_lr=lr, step_size_up=max(1, total // 8), cycle_momentum=False
    )


STATIC_SCHEDULES: dict[str, SchedulerFactory] = {
    "constant": lambda opt, total: lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0),
    "step": lambda opt, total: lr_scheduler.StepLR(opt, step_size=max(1, total // 3), gamma=0.1),
    "exponential": lambda opt, total: lr_scheduler.ExponentialLR(opt, gamma=0.01 ** (1 / total)),
    "cosine": _cosine_with_warmup,
    "cyclic": _cyclic,
    "onecycle": lambda opt, total: lr_scheduler.OneCycleLR(
        opt,
        max_lr=opt.param_groups[0]["lr"],
        total_steps=total,
        cycle_momentum=_has_momentum(opt),
    ),
}
"""Static schedules by name; the run's initial LR is each schedule's base (peak) LR:
constant; step (×0.1 every third of the run); exponential (to 1% at the end); cosine to
0 after a 5% linear warmup from 1%; cyclic (triangular between LR/10 and LR, 8
half-cycles); OneCycle (peak LR, torch defaults; momentum is cycled only where the
optimizer has one, as torch refuses it otherwise, e.g. for Adagrad). ``plateau`` is
ReduceLROnPlateau."""
