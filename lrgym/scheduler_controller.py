"""Run a feedback-taking LR scheduler as a comparison-harness controller.

The adaptive schedulers in lrgym (:class:`~lrgym.feedback_rule.FeedbackRuleLR`,
:class:`~lrgym.hypergradient.HypergradientLR`, :class:`~lrgym.lr_predictor.PredictorLR`)
share one protocol with :class:`~lrgym.scheduler.PolicyScheduler`: ``step(loss)`` after
every optimizer step and, where they use validation feedback,
``observe_eval(val_loss, val_metric)`` after every evaluation. One adapter runs them all.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrgym.controllers import Controller
from lrgym.task import Task
from lrgym.trainee import EvalReport
from lrgym.xgb_trainee import XGBoostTask

SchedulerBuilder = Callable[[Optimizer, int, int], LRScheduler]
"""``(optimizer, total_steps, decision_interval) -> scheduler``."""


class SchedulerController(Controller):
    """A scheduler with the ``step(loss)`` / ``observe_eval`` protocol as a controller.

    Args:
        build: Makes the scheduler when the run starts.
        needs_gradients: If True, the controller does not apply to gradient-free tasks
            (XGBoost), and the comparison grid leaves such runs out.
    """

    def __init__(self, build: SchedulerBuilder, needs_gradients: bool = False) -> None:
        self.build = build
        self.needs_gradients = needs_gradients
        self.scheduler: LRScheduler | None = None

    def applies_to(self, task: Task) -> bool:
        """False for XGBoost tasks when the scheduler needs gradients."""
        return not (self.needs_gradients and isinstance(task, XGBoostTask))

    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        self.scheduler = self.build(optimizer, total_steps, decision_interval)

    def step(self, loss: float) -> None:
        self.scheduler.step(loss)

    def observe(self, report: EvalReport) -> None:
        observe_eval = getattr(self.scheduler, "observe_eval", None)
        if observe_eval is not None:
            observe_eval(report.loss, report.metric)
