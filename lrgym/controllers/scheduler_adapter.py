"""Run a feedback LR scheduler as a comparison-harness controller.

Every :class:`~lrgym.core.feedback_scheduler.FeedbackLRScheduler` (the feedback rule,
hypergradient descent, the LR predictor, the learned policy) takes ``step(loss=...)``
after every optimizer step and ``observe_eval(val_loss, val_metric)`` after every
evaluation. One adapter runs them all.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.optim import Optimizer

from lrgym.core.controller import Controller
from lrgym.core.feedback_scheduler import FeedbackLRScheduler
from lrgym.core.task import Task
from lrgym.core.trainee import EvalReport

SchedulerBuilder = Callable[[Optimizer, int, int], FeedbackLRScheduler]
"""``(optimizer, total_steps, decision_interval) -> scheduler``."""


class SchedulerController(Controller):
    """A :class:`~lrgym.core.feedback_scheduler.FeedbackLRScheduler` as a controller.

    Args:
        build: Makes the scheduler when the run starts.
        needs_gradients: If True, the controller does not apply to gradient-free tasks
            (``task.has_gradients`` is False), and the comparison grid leaves such runs out.
        check_optimizer: Raises TypeError for an optimizer the scheduler cannot drive
            (e.g. hypergradient descent and Adagrad); the grid then leaves out the tasks
            that train with one.
    """

    def __init__(
        self,
        build: SchedulerBuilder,
        needs_gradients: bool = False,
        check_optimizer: Callable[[Optimizer], object] | None = None,
    ) -> None:
        self.build = build
        self.needs_gradients = needs_gradients
        self.check_optimizer = check_optimizer
        self.scheduler: FeedbackLRScheduler | None = None

    def applies_to(self, task: Task) -> bool:
        """False for tasks without gradients when the scheduler needs them, and for
        tasks whose optimizer the scheduler cannot drive."""
        if self.needs_gradients and not task.has_gradients:
            return False
        probe = getattr(task, "probe_optimizer", None)  # torch tasks say which optimizer
        if self.check_optimizer is not None and probe is not None:
            try:
                self.check_optimizer(probe())
            except TypeError:
                return False
        return True

    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        self.scheduler = self.build(optimizer, total_steps, decision_interval)

    def step(self, loss: float) -> None:
        self.scheduler.step(loss=loss)

    def observe(self, report: EvalReport) -> None:
        self.scheduler.observe_eval(report.loss, report.metric)
