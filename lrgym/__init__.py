"""lrgym: learn how to train neural networks.

Training runs are Gymnasium environments; a learned policy over them ships as a
drop-in learning-rate scheduler, compared honestly against static schedules.
"""

from __future__ import annotations

from typing import Any

import gymnasium

from lrgym.agent import Agent, AgentLoadError, load_agent
from lrgym.registration import (
    UnknownTaskError,
    make_task,
    register_task,
    registry,
    select_tasks,
    spec,
    task_ids,
)
from lrgym.scheduler import PolicyScheduler
from lrgym.signals import FEATURES, OBS_LAYOUT_VERSION
from lrgym.task import ArraySplits, Task, TaskInfo
from lrgym.torch_trainee import TorchTask
from lrgym.trainee import EvalReport, Trainee, TrainReport

__version__ = "0.1.0"


def make(task_id: str, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make`` for an lrgym task id (checks the id and names close matches)."""
    spec(task_id)
    return gymnasium.make(task_id, **kwargs)


import lrgym.tasks  # noqa: E402,F401 - registers the built-in suite

__all__ = [
    "Agent",
    "AgentLoadError",
    "PolicyScheduler",
    "load_agent",
    "FEATURES",
    "OBS_LAYOUT_VERSION",
    "EvalReport",
    "Task",
    "TaskInfo",
    "TorchTask",
    "ArraySplits",
    "TrainReport",
    "Trainee",
    "UnknownTaskError",
    "make",
    "make_task",
    "register_task",
    "registry",
    "select_tasks",
    "spec",
    "task_ids",
]
