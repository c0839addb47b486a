"""The Trainee contract: one training run that an environment or a loop can drive.

A :class:`~lrgym.core.task.Task` builds a Trainee for a seed and an initial learning
rate. The Trainee owns model, optimizer and data; everything outside it (the env, the
comparison harness, the deployed scheduler) talks to it only through this interface.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads when a run is built, not on `import lrgym`
    import torch

StepHook = Callable[[float], None]
"""Called after every optimizer step with that step's training loss."""


@dataclass(frozen=True)
class TrainReport:
    """What a run reports after a chunk of optimizer steps.

    Attributes:
        steps: Optimizer steps done in this chunk.
        losses: Training loss of every step in the chunk, in order.
        grad_norm: Global gradient norm at the chunk's last step (NaN if the trainee has
            no gradients, e.g. gradient boosting).
        update_ratio: ``|θ_end - θ_start| / |θ_start|`` over the chunk (NaN if unknown).
        update_cosine: Cosine between this chunk's and the previous chunk's parameter
            update (NaN if unknown or first chunk).
    """

    steps: int
    losses: tuple[float, ...]
    grad_norm: float = float("nan")
    update_ratio: float = float("nan")
    update_cosine: float = float("nan")

    @property
    def mean_loss(self) -> float:
        """Mean training loss over the chunk (NaN/inf propagate)."""
        return sum(self.losses) / max(len(self.losses), 1)


class EvalReport:
    """Loss and metrics on one data split.

    ``metrics`` may be given as a function that computes them: it is called once, when
    :attr:`metrics` is first read. The env reads only the headline metric at each
    decision, and macro-F1 there cost about 0.7% of a DigitsMLP run's time.

    Attributes:
        loss: Mean loss on the split (same loss as training).
        metric: The task's headline metric, higher is better (accuracy, R², ...).
        metrics: Every metric computed, by name (includes the headline metric).
    """

    __slots__ = ("loss", "metric", "_metrics")

    def __init__(
        self,
        loss: float,
        metric: float,
        metrics: dict[str, float] | Callable[[], dict[str, float]],
    ) -> None:
        self.loss = loss
        self.metric = metric
        self._metrics = metrics

    @property
    def metrics(self) -> dict[str, float]:
        """Every metric computed, by name (includes the headline metric)."""
        if callable(self._metrics):
            self._metrics = self._metrics()
        return self._metrics

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EvalReport):
            return NotImplemented
        return (self.loss, self.metric, self.metrics) == (other.loss, other.metric, other.metrics)

    def __repr__(self) -> str:
        return f"EvalReport(loss={self.loss!r}, metric={self.metric!r}, metrics={self.metrics!r})"


class Trainee(ABC):
    """One training run: model, optimizer and data, trained a chunk at a time.

    ``optimizer`` is a real ``torch.optim.Optimizer`` whose ``param_groups[i]["lr"]`` is
    the learning rate in use, so every ``torch.optim.lr_scheduler`` works on it
    unchanged. Non-torch trainees (XGBoost) expose a proxy optimizer whose LR they read
    before every step.
    """

    optimizer: torch.optim.Optimizer

    @abstractmethod
    def train(self, steps: int, on_step: StepHook | None = None) -> TrainReport:
        """Run ``steps`` optimizer steps, calling ``on_step(loss)`` after each one."""

    @abstractmethod
    def evaluate(self, split: str = "val") -> EvalReport:
        """Evaluate on ``"val"`` or ``"test"`` without changing the model."""

    @property
    def lr(self) -> float:
        """Learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of every parameter group."""
        for group in self.optimizer.param_groups:
            group["lr"] = float(lr)

    def close(self) -> None:  # noqa: B027 - optional hook, most trainees hold nothing
        """Release resources (default: nothing to release)."""


DIVERGENCE_FACTOR = 10.0
"""A run has diverged when its validation loss exceeds this multiple of the initial one."""


def is_diverged(
    report: TrainReport,
    requested_steps: int,
    val_loss: float | None,
    initial_val_loss: float,
    factor: float = DIVERGENCE_FACTOR,
) -> bool:
    """True if a chunk diverged: it stopped early, a training loss was NaN/inf, or the
    validation loss is non-finite or above ``factor`` × its initial value."""
    if report.steps < requested_steps or not all(math.isfinite(x) for x in report.losses):
        return True
    if val_loss is None:
        return False
    return not math.isfinite(val_loss) or val_loss > factor * max(initial_val_loss, 1e-8)
