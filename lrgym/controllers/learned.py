"""A trained agent as a comparison-harness controller."""

from __future__ import annotations

from lrgym.agent import load_agent
from lrgym.controllers.scheduler_adapter import SchedulerController
from lrgym.scheduler import PolicyScheduler

LEARNED_PREFIX = "learned:"
"""``make_controller("learned:default")`` runs the shipped default agent; any agent
directory works after the prefix too."""


class LearnedController(SchedulerController):
    """A trained agent driving the run through :class:`~lrgym.scheduler.PolicyScheduler`.

    Decisions wait for each validation evaluation, exactly as in the environment.

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
