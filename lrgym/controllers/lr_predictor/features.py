"""What the LR predictor sees: features of a run's recent evaluations."""

from __future__ import annotations

import math

import numpy as np

from lrgym.core.signals import bound, log_floored

PREDICTOR_FEATURES: tuple[str, ...] = (
    "log_lr",  # (log10(lr) + 3) / 2: about -1 at 1e-5, +1 at 1e-1
    "log_lr_ratio",  # ln(lr / initial lr)
    "last_lr_change",  # log10(lr / lr at the previous evaluation)
    "log_train_loss_ratio",  # ln(mean train loss over the interval / initial val loss)
    "train_loss_slope",  # ln(train loss / previous interval's train loss)
    "log_val_loss_ratio",  # ln(val loss / initial val loss)
    "val_loss_slope",  # ln(val loss / previous val loss)
    "val_metric",  # headline validation metric, clipped to [-1, 1]
    "val_metric_gap",  # val metric minus the best so far (<= 0)
    "progress",  # optimizer steps done / total steps
)
"""What the predictor sees at each evaluation; all scale-free."""


class MetricHistory:
    """Turns a run's evaluations into predictor features (training and deployment alike).

    Call :meth:`reset` with the evaluation before training, then :meth:`features` at every
    later evaluation.
    """

    def __init__(self) -> None:
        self.initial_lr = 1.0
        self.val_ref = 0.0
        self.prev_lr = 1.0
        self.prev_train: float | None = None
        self.prev_val = 0.0
        self.best_metric: float | None = None

    def reset(self, lr: float, val_loss: float, val_metric: float | None) -> None:
        """Start a run at LR ``lr`` with its first validation loss and metric."""
        self.__init__()
        self.initial_lr = self.prev_lr = max(float(lr), 1e-30)
        if math.isfinite(val_loss):
            self.val_ref = self.prev_val = log_floored(val_loss)
        if val_metric is not None and math.isfinite(val_metric):
            self.best_metric = float(val_metric)

    def features(
        self,
        lr: float,
        train_loss: float,
        val_loss: float,
        val_metric: float | None,
        progress: float,
    ) -> np.ndarray:
        """The :data:`PREDICTOR_FEATURES` after one evaluation interval.

        Args:
            lr: The LR in use now.
            train_loss: Mean training loss over the interval.
            val_loss: Validation loss now.
            val_metric: Validation metric now (higher is better), or None.
            progress: Optimizer steps done / total steps.
        """
        lr = max(float(lr), 1e-30)
        train = log_floored(train_loss) if math.isfinite(train_loss) else math.nan
        val = log_floored(val_loss) if math.isfinite(val_loss) else math.nan
        prev_train = train if self.prev_train is None else self.prev_train
        metric = 0.0
        gap = 0.0
        if val_metric is not None and math.isfinite(val_metric):
            metric = max(-1.0, min(1.0, float(val_metric)))
            best = float(val_metric) if self.best_metric is None else self.best_metric
            self.best_metric = max(best, float(val_metric))
            gap = float(val_metric) - self.best_metric
        values = (
            (math.log10(lr) + 3.0) / 2.0,
            math.log(lr / self.initial_lr),
            math.log10(lr / self.prev_lr),
            train - self.val_ref,
            train - prev_train,
            val - self.val_ref,
            val - self.prev_val,
            metric,
            gap,
            progress,
        )
        self.prev_lr = lr
        if math.isfinite(train):
            self.prev_train = train
        if math.isfinite(val):
            self.prev_val = val
        return np.array([bound(float(v)) for v in values], dtype=np.float32)

    def state_dict(self) -> dict[str, float | None]:
        """The history as plain floats."""
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, float | None]) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises:
            ValueError: a key is missing or unknown, or a value is not what
                :meth:`state_dict` writes (e.g. a non-positive LR); nothing is changed then.
        """
        from lrgym.io.validate import real_number

        expected = set(vars(self))
        if not isinstance(state, dict) or set(state) != expected:
            got = sorted(state) if isinstance(state, dict) else state
            raise ValueError(f"history state must have the keys {sorted(expected)}, got {got!r}")
        values: dict[str, float | None] = {}
        for key, value in state.items():
            name = f"history.{key}"
            if key in ("initial_lr", "prev_lr"):
                values[key] = real_number(name, value, above=0)
            elif key in ("prev_train", "best_metric") and value is None:
                values[key] = None
            else:
                values[key] = real_number(name, value)
        for key, value in values.items():
            setattr(self, key, value)
