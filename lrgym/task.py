"""Tasks: what a registered id builds. One abstract method, :meth:`Task.build`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from lrgym.torch_trainee import ArraySplits, TorchTrainee
from lrgym.trainee import Trainee

Split = Literal["meta-train", "held-out", "real"]
SPLITS: tuple[str, ...] = ("meta-train", "held-out", "real")


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

    Subclass this (or use :class:`TorchTask`) and register the class or a factory with
    :func:`lrgym.register_task`.
    """

    info: TaskInfo

    @abstractmethod
    def build(self, seed: int, lr: float) -> Trainee:
        """A fresh run: model, optimizer and data split drawn from ``seed``, LR ``lr``."""


ModelFactory = Callable[[int, int, np.random.Generator], nn.Module]
"""``(n_inputs, n_outputs, rng) -> model``; ``rng`` draws architecture choices."""

DataFactory = Callable[[np.random.Generator], ArraySplits]
"""``rng -> splits``; ``rng`` draws the split (and synthetic data)."""


@dataclass
class TorchTask(Task):
    """A task trained by :class:`~lrgym.torch_trainee.TorchTrainee`.

    Attributes:
        info: Metadata, budget and target.
        data: Builds the data splits from an rng.
        model: Builds the model from input/output sizes and an rng.
        loss: ``"cross_entropy"`` or ``"mse"``.
        optimizer: ``"sgd"`` (momentum 0.9), ``"adam"`` or ``"adamw"``.
        batch_size: Minibatch size.
        weight_decay: Optimizer weight decay.
    """

    info: TaskInfo
    data: DataFactory
    model: ModelFactory
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    batch_size: int = 64
    weight_decay: float = 0.0

    def build(self, seed: int, lr: float) -> TorchTrainee:
        """Data split, model init and batch order all follow from ``seed``."""
        data_seq, model_seq, torch_seq = np.random.SeedSequence(int(seed)).spawn(3)
        splits = self.data(np.random.default_rng(data_seq))
        n_in = int(np.prod(splits.x_train.shape[1:]))
        n_out = int(splits.y_train.max()) + 1 if self.loss == "cross_entropy" else 1
        torch_seed = int(torch_seq.generate_state(1)[0])
        with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
            torch.manual_seed(torch_seed)
            model = self.model(n_in, n_out, np.random.default_rng(model_seq))
        return TorchTrainee(
            model,
            splits,
            loss=self.loss,
            optimizer=self.optimizer,
            lr=lr,
            batch_size=self.batch_size,
            seed=torch_seed,
            weight_decay=self.weight_decay,
        )
