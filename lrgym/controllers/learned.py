"""A trained agent as a comparison-harness controller."""

from __future__ import annotations

from lrgym.controllers.scheduler_adapter import SchedulerController
from lrgym.core.task import Task
from lrgym.deploy.agent import load_agent
from lrgym.deploy.scheduler import PolicyScheduler

LEARNED_PREFIX = "learned:"
"""``make_controller("learned:default")`` runs the shipped default agent; any agent
directory works after the prefix too."""


class LearnedController(SchedulerController):
    """A trained agent driving the run through :class:`~lrgym.deploy.scheduler.PolicyScheduler`.

    Decisions wait for each validation evaluation, exactly as in the environment. An
    agent that controls more than the LR drives only tasks that take its
    hyperparameters (a torch agent's momentum and weight decay, an XGBoost agent's
    ``max_depth`` and ``subsample``); the comparison grid leaves the others out.

    Args:
        agent: Shipped agent name or agent directory.
    """

    def __init__(self, agent: str) -> None:
        self.agent = load_agent(agent)
        super().__init__(
            lambda opt, total, interval: PolicyScheduler(
                opt, self.agent, total, interval, eval_feedback=True
            )
        )

    def applies_to(self, task: Task) -> bool:
        """False where the task does not take every hyperparameter the agent controls."""
        try:
            self.agent.hparams.check_backend(task.backend, type(task).__name__)
        except ValueError:
            return False
        return super().applies_to(task)
