"""The LR predictor deployed: a feedback LR scheduler and its comparison-harness controller."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from torch.optim import Optimizer

from lrgym.controllers.lr_predictor.features import MetricHistory
from lrgym.controllers.lr_predictor.model import LRPredictor, load_predictor
from lrgym.controllers.scheduler_adapter import SchedulerController
from lrgym.core.feedback_scheduler import FeedbackLRScheduler, require_keys
from lrgym.io.validate import as_number, real_number, whole_number


class PredictorLR(FeedbackLRScheduler):
    """The LR predictor as a drop-in torch LR scheduler; decides at every validation.

    Call :meth:`step` after every optimizer step (with its loss) and
    :meth:`observe_eval` after every validation pass, once before training too. From the
    second validation on, each call sets ``lr ← lr · 10^ŷ`` (``ŷ`` the prediction,
    within ±:data:`MAX_LOG10_CHANGE`), clamped to ``[min_lr, max_lr]``; the LR is held
    when a training loss was not finite. :attr:`lr_stability` is the mean
    ``|Δ log10 LR|`` over its decisions so far.

    Example:
        >>> scheduler = PredictorLR(optimizer, "lr_predictor.pt", total_steps=1000)
        >>> scheduler.observe_eval(val_loss, val_accuracy)  # before training
        >>> for x, y in loader:
        ...     loss = loss_fn(model(x), y)
        ...     optimizer.zero_grad(); loss.backward(); optimizer.step()
        ...     scheduler.step(loss=loss)
        >>> scheduler.observe_eval(val_loss, val_accuracy)  # after each validation pass

    Args:
        optimizer: The optimizer whose LRs it sets (group ratios are kept).
        predictor: An :class:`LRPredictor` or the path of a saved one.
        total_steps: Optimizer steps the run will take (the predictor sees progress).
        min_lr: Lower LR bound.
        max_lr: Upper LR bound.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        predictor: LRPredictor | str | Path,
        total_steps: int,
        min_lr: float = 1e-7,
        max_lr: float = 1.0,
    ) -> None:
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        if not 0 < min_lr < max_lr:
            raise ValueError(f"need 0 < min_lr < max_lr, got {min_lr} and {max_lr}")
        self.predictor = (
            predictor if isinstance(predictor, LRPredictor) else load_predictor(predictor)
        )
        self.total_steps = int(total_steps)
        self.min_lr = float(min_lr)
        self.max_lr = float(max_lr)
        super().__init__(optimizer)

    def on_start(self) -> None:
        """Start the run: the next :meth:`observe_eval` is its first evaluation."""
        self.history = MetricHistory()
        self.decisions = 0
        self.total_change = 0.0
        self._losses: list[float] = []
        self._started = False

    @property
    def steps_done(self) -> int:
        """Optimizer steps counted since the run started."""
        return self.last_epoch

    @property
    def lr_stability(self) -> float:
        """Mean ``|Δ log10 LR|`` per decision so far (NaN before the first)."""
        return self.total_change / self.decisions if self.decisions else math.nan

    def on_step(self, loss: float | None) -> None:
        """Record one optimizer step's loss."""
        if loss is not None:
            self._losses.append(loss)

    def observe_eval(self, val_loss: float, val_metric: float | None = None) -> None:
        """Feed one validation result; from the second on, predict and set the next LR."""
        lr = float(self.optimizer.param_groups[0]["lr"])
        losses, self._losses = self._losses, []
        if not self._started:
            self.history.reset(lr, float(val_loss), val_metric)
            self._started = True
            return
        train_loss = sum(losses) / len(losses) if losses else math.nan
        if not (losses and all(map(math.isfinite, losses)) and math.isfinite(val_loss)):
            return  # hold the LR
        progress = min(self.steps_done / self.total_steps, 1.0)
        feats = self.history.features(lr, train_loss, float(val_loss), val_metric, progress)
        change = float(self.predictor.predict(feats)[0])
        groups = self.optimizer.param_groups
        scale = 10.0**change
        self._set_lrs([min(self.max_lr, max(self.min_lr, float(g["lr"]) * scale)) for g in groups])
        new_lr = float(groups[0]["lr"])
        self.total_change += abs(math.log10(new_lr / lr))
        self.decisions += 1

    def state_dict(self) -> dict[str, Any]:
        """Counters, pending losses, the metric history and last LRs: everything the next
        decisions depend on, as plain numbers."""
        return {
            **super().state_dict(),
            "decisions": self.decisions,
            "total_change": self.total_change,
            "started": self._started,
            "losses": list(self._losses),
            "history": self.history.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved.

        Raises:
            ValueError: a key is missing or a value is not what :meth:`state_dict`
                writes (the message names it); nothing is changed then.
        """
        keys = ("decisions", "total_change", "started", "losses", "history")
        state = require_keys(state_dict, keys)
        decisions = whole_number("decisions", state["decisions"], 0)
        total_change = real_number("total_change", state["total_change"], 0)
        started = state["started"]
        if not isinstance(started, bool):
            raise ValueError(f"started must be True or False, got {started!r}")
        losses = state["losses"]
        if not isinstance(losses, list | tuple):
            raise ValueError(f"losses must be a list of numbers, got {losses!r}")
        losses = [float(as_number(f"losses[{i}]", x)) for i, x in enumerate(losses)]
        history = MetricHistory()
        history.load_state_dict(state["history"])
        super().load_state_dict(state)
        self.decisions, self.total_change, self._started = decisions, total_change, started
        self._losses, self.history = losses, history


class PredictorController(SchedulerController):
    """A comparison-harness controller running the predictor saved at ``path``.

    Args:
        path: A file written by ``lrgym train-predictor``.
    """

    def __init__(self, path: str | Path) -> None:
        predictor = load_predictor(path)
        super().__init__(lambda opt, total, interval: PredictorLR(opt, predictor, total))
