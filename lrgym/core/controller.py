"""The Controller contract: anything that decides hyperparameters during a run.

The comparison harness treats every controller alike: static schedules, rule-based and
adaptive controllers, optimizer-level baselines and learned policies. Implementations
live in :mod:`lrgym.controllers`; add one with
:func:`lrgym.controllers.register_controller`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch.optim import Optimizer

    from lrgym.core.task import Task
    from lrgym.core.trainee import EvalReport, Trainee


class Controller(ABC):
    """Decides hyperparameters for one run; a fresh instance per run.

    The harness calls :meth:`wrap` on the freshly built trainee, :meth:`start` once,
    :meth:`step` after every optimizer step and :meth:`observe` after every validation
    evaluation. Runs of tasks for which :meth:`applies_to` is False are left out.
    """

    def applies_to(self, task: Task) -> bool:
        """False where this controller cannot drive ``task`` (default: it can)."""
        return True

    def wrap(self, trainee: Trainee) -> Trainee:
        """The trainee to run (default: unchanged; optimizer-level baselines replace its
        optimizer here)."""
        return trainee

    @abstractmethod
    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        """Attach to ``optimizer`` for a run of ``total_steps`` optimizer steps."""

    def step(self, loss: float) -> None:  # noqa: B027 - optional hook
        """Called after every optimizer step with that step's training loss."""

    def observe(self, report: EvalReport) -> None:  # noqa: B027 - optional hook
        """Called after every validation evaluation."""
