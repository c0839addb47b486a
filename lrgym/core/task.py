"""The Task contract: what a registered id builds. One abstract method, :meth:`Task.build`.

Backends implement it beside their trainee: :class:`~lrgym.backends.torch_trainee.TorchTask` and
:class:`~lrgym.backends.xgb_trainee.XGBoostTask`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

if TYPE_CHECKING:  # keeps `import lrgym` free of torch
    from lrgym.core.trainee import Trainee

Split = Literal["meta-train", "held-out", "real"]
SPLITS: tuple[str, ...] = ("meta-train", "held-out", "real")

Backend = Literal["torch", "xgboost", "other"]
"""What trains a task's runs (see :attr:`Task.backend`)."""


@dataclass(frozen=True)
class ArraySplits:
    """Train/validation/test arrays of one task instance (features float32, targets).

    Integer feature arrays (token ids) are kept as int64 tensors instead of floats.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


DataFactory = Callable[[np.random.Generator], ArraySplits]
"""``rng -> splits``; ``rng`` draws the split (and synthetic data)."""


@dataclass(frozen=True)
class TaskInfo:
    """What a task is, and the budget and target it is judged by.

    Attributes:
        domain: e.g. ``"image classification"``, ``"tabular classification"``, ``"regression"``.
        model: Short model description.
        data: Where the data comes from.
        metric: Name of the headline validation metric (higher is better).
        split: ``"meta-train"`` (agents may train on it), ``"held-out"`` (never) or
            ``"real"`` (never; real-world data fetched on demand, so kept out of the
            offline ``held-out`` suite).
        target: Validation metric that counts as reaching the target (time-to-target).
            Fixed before any learned agent is evaluated; see the task's docstring.
        default_lr: The LR a practitioner would start from.
        total_steps: Optimizer steps in one run (the episode's budget).
        decision_interval: Optimizer steps between two decisions (``k``).
    """

    domain: str
    model: str
    data: str
    metric: str
    split: Split
    target: float
    default_lr: float
    total_steps: int
    decision_interval: int

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.total_steps < self.decision_interval or self.decision_interval < 1:
            raise ValueError(
                f"need 1 <= decision_interval <= total_steps, got "
                f"decision_interval={self.decision_interval}, total_steps={self.total_steps}"
            )
        if not self.default_lr > 0:
            raise ValueError(f"default_lr must be > 0, got {self.default_lr}")


class Task(ABC):
    """A family of training runs; :meth:`build` makes one run for a seed and LR.

    Subclass this (or use :class:`~lrgym.backends.torch_trainee.TorchTask`) and register the class
    or a factory with :func:`lrgym.register_task`.

    Attributes:
        info: Metadata, budget and target.
        backend: What trains the runs, which decides the controllers and hyperparameters
            that apply: ``"torch"`` (a torch model with gradients: every controller, and
            momentum/weight decay as extra hyperparameters), ``"xgboost"`` (no gradients;
            eta, ``max_depth`` and ``subsample``) or ``"other"`` (the default for a
            user's own subclass: LR only, and controllers that need gradients or replace
            the optimizer leave it out). Set it on your subclass if it trains a torch
            model.
    """

    info: TaskInfo
    backend: ClassVar[Backend] = "other"

    @property
    def has_gradients(self) -> bool:
        """True if runs report gradients a controller can read (a torch backend)."""
        return self.backend == "torch"

    @abstractmethod
    def build(self, seed: int, lr: float) -> Trainee:
        """A fresh run: model, optimizer and data split drawn from ``seed``, LR ``lr``."""
