"""Run a feedback LR scheduler as a comparison-harness controller.

Every :class:`~lrgym.feedback_scheduler.FeedbackLRScheduler` (the feedback rule,
hypergradient descent, the LR predictor, the learned policy) takes ``step(loss=...)``
after every optimizer step and ``observe_eval(val_loss, val_metric)`` after every
evaluation. One adapter runs them all.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.optim import Optimizer

from lrgym.controller import Controller
from lrgym.feedback_scheduler import FeedbackLRScheduler
from lrgym.task import Task
from lrgym.trainee import EvalReport

SchedulerBuilder = Callable[[Optimizer, int, int], FeedbackLRScheduler]
"""``(optimizer, total_steps, decision_interval) -> scheduler``."""


class SchedulerController(Controller):
    """A :class:`~lrgym.feedback_scheduler.FeedbackLRScheduler` as a controller.

    Args:
        build: Makes the scheduler when the run starts.
        needs_gradients: If True, the controller does not apply to gradient-free tasks
            (``task.has_gradients`` is False), and the comparison grid leaves such runs out.
    """

    def __init__(self, build: SchedulerBuilder, needs_gradients: bool = False) -> None:
        self.build = build
        self.needs_gradients = needs_gradients
        self.scheduler: FeedbackLRScheduler | None = None

    def applies_to(self, task: Task) -> bool:
        """False for tasks without gradients when the scheduler needs them."""
        return task.has_gradients or not self.needs_gradients

    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        self.scheduler = self.build(optimizer, total_steps, decision_interval)

    def step(self, loss: float) -> None:
        self.scheduler.step(loss=loss)

    def observe(self, report: EvalReport) -> None:
        self.scheduler.observe_eval(report.loss, report.metric)
