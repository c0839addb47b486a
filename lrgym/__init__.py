"""lrgym: learn how to train neural networks.

Training runs are Gymnasium environments; a learned policy over them ships as a
drop-in learning-rate scheduler, compared honestly against static schedules.

``import lrgym`` registers the built-in tasks and loads neither torch nor xgboost: the
names that need them (``PolicyScheduler``, ``TorchTask``, ``XGBoostTask``, ...) load their
module on first use, so ``lrgym --help`` and task listings stay fast.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

import gymnasium as _gymnasium

from lrgym._aliases import install as _install_aliases
from lrgym._version import __version__ as __version__
from lrgym.core.registration import (
    UnknownTaskError,
    import_user_modules,
    make_task,
    register_family,
    register_task,
    registry,
    select_tasks,
    spec,
    task_ids,
)
from lrgym.core.registration import gymnasium_id as _gymnasium_id
from lrgym.core.task import ArraySplits, Task, TaskInfo

_install_aliases()  # lrgym.compare, lrgym.agent ... (the paths before the wings) still import

_LAZY = {
    "Agent": "lrgym.deploy.agent",
    "AgentLoadError": "lrgym.deploy.agent",
    "load_agent": "lrgym.deploy.agent",
    "PolicyScheduler": "lrgym.deploy.scheduler",
    "FEATURES": "lrgym.core.signals",
    "OBS_LAYOUT_VERSION": "lrgym.core.signals",
    "TorchTask": "lrgym.backends.torch_trainee",
    "XGBoostTask": "lrgym.backends.xgb_trainee",
    "EvalReport": "lrgym.core.trainee",
    "Trainee": "lrgym.core.trainee",
    "TrainReport": "lrgym.core.trainee",
    "load_init": "lrgym.meta_init.checkpoint",
    "InitLoadError": "lrgym.meta_init.checkpoint",
    "suggest": "lrgym.suggester",
    "SearchSpace": "lrgym.suggester",
    "Knob": "lrgym.suggester",
}
"""Public names loaded on first access (PEP 562), by defining module."""

if _TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from lrgym.backends.torch_trainee import TorchTask
    from lrgym.backends.xgb_trainee import XGBoostTask
    from lrgym.core.signals import FEATURES, OBS_LAYOUT_VERSION
    from lrgym.core.trainee import EvalReport, Trainee, TrainReport
    from lrgym.deploy.agent import Agent, AgentLoadError, load_agent
    from lrgym.deploy.scheduler import PolicyScheduler
    from lrgym.meta_init.checkpoint import InitLoadError, load_init
    from lrgym.suggester import Knob, SearchSpace, suggest


def make(task_id: str, **kwargs) -> _gymnasium.Env:
    """``gymnasium.make`` for an lrgym task id (checks the id and names close matches);
    a task drawn from a family (``lrgym/ProceduralMLP-17-v0``) runs in its family's env."""
    env_id, extra = _gymnasium_id(task_id)
    return _gymnasium.make(env_id, **{**extra, **kwargs})


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(_importlib.import_module(module), name)
        globals()[name] = value  # later lookups skip this hook
        return value
    if not name.startswith("_"):  # a submodule not imported yet, e.g. lrgym.harness.compare
        try:
            return _importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])


import lrgym.tasks  # noqa: E402,F401 - registers the built-in suite

__all__ = [
    "Agent",
    "AgentLoadError",
    "PolicyScheduler",
    "load_agent",
    "InitLoadError",
    "load_init",
    "FEATURES",
    "OBS_LAYOUT_VERSION",
    "EvalReport",
    "Task",
    "TaskInfo",
    "TorchTask",
    "XGBoostTask",
    "ArraySplits",
    "TrainReport",
    "Trainee",
    "UnknownTaskError",
    "import_user_modules",
    "make",
    "make_task",
    "register_family",
    "register_task",
    "registry",
    "select_tasks",
    "spec",
    "task_ids",
    "suggest",
    "SearchSpace",
    "Knob",
]
