"""A rule-based LR controller driven by real-time feedback (the plan's "feedback rule").

The plan behind lrgym proposed to "adjust LR using gradient magnitudes, loss values and
validation accuracy", with feedback every batch, an adjustment factor of 0.1 and a
gradient-magnitude threshold of 0.01. :class:`FeedbackRuleLR` is that rule, made precise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch.optim import Optimizer

from lrgym.core.feedback_scheduler import FeedbackLRScheduler, require_keys, require_optimizer
from lrgym.core.signals import grad_norm


@dataclass(frozen=True)
class FeedbackRule:
    """The rule's settings (defaults: the plan's factor 0.1 and threshold 0.01).

    Attributes:
        factor: Adjustment factor: the LR is multiplied by ``1 + factor`` or ``1 − factor``.
        grad_threshold: Global gradient L2 norm below which gradients count as vanishing.
        loss_tolerance: A batch loss above ``(1 + loss_tolerance)`` × its running average
            counts as a loss increase (minibatch losses are noisy; 0 reacts to any rise).
        loss_decay: Decay of the loss's running (exponential moving) average.
        metric_tolerance: A validation metric below the previous one by more than this
            counts as a drop.
        min_lr: Lower LR bound.
        max_lr: Upper LR bound.
    """

    factor: float = 0.1
    grad_threshold: float = 0.01
    loss_tolerance: float = 0.5
    loss_decay: float = 0.9
    metric_tolerance: float = 0.0
    min_lr: float = 1e-7
    max_lr: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {self.factor}")
        if not self.grad_threshold >= 0:
            raise ValueError(f"grad_threshold must be >= 0, got {self.grad_threshold}")
        if not (self.loss_tolerance >= 0 and self.metric_tolerance >= 0):
            raise ValueError(
                f"loss_tolerance and metric_tolerance must be >= 0, got "
                f"{self.loss_tolerance} and {self.metric_tolerance}"
            )
        if not 0 <= self.loss_decay < 1:
            raise ValueError(f"loss_decay must be in [0, 1), got {self.loss_decay}")
        if not 0 < self.min_lr < self.max_lr:
            raise ValueError(f"need 0 < min_lr < max_lr, got {self.min_lr} and {self.max_lr}")


RULES = ("loss_increase", "vanishing_gradient", "validation_drop")
"""Names of the rule's branches, as counted in :attr:`FeedbackRuleLR.fired`."""


class FeedbackRuleLR(FeedbackLRScheduler):
    """Adjust the LR every batch from gradient magnitude and loss, and at every validation.

    After every optimizer step, :meth:`step` takes the batch loss ``L`` and reads the
    global gradient norm ``g`` from the optimizer's parameters (still set after
    ``optimizer.step()``). With ``A`` the running average of the previous batch losses:

    1. **loss increase**: ``L`` is not finite, or ``L > (1 + loss_tolerance) · A``
       → LR × ``(1 − factor)``;
    2. otherwise **vanishing gradient**: ``g < grad_threshold`` → LR × ``(1 + factor)``;
    3. otherwise the LR is unchanged.

    Then ``A ← loss_decay · A + (1 − loss_decay) · L`` (``A = L`` at the first batch;
    non-finite losses are not averaged in). Without gradients (``g`` is NaN, e.g.
    gradient boosting) rule 2 never fires.

    After every validation, :meth:`observe_eval` takes the validation metric ``M``
    (higher is better; ``−val_loss`` if no metric is given):

    4. **validation drop**: ``M < M_prev − metric_tolerance`` → LR × ``(1 − factor)``.

    Every change is clamped to ``[min_lr, max_lr]``, per parameter group (their ratios are
    kept unless a bound cuts one). :attr:`fired` counts how often each rule fired.

    Example:
        >>> scheduler = FeedbackRuleLR(optimizer)
        >>> for x, y in loader:
        ...     loss = loss_fn(model(x), y)
        ...     optimizer.zero_grad(); loss.backward(); optimizer.step()
        ...     scheduler.step(loss=loss)
        >>> scheduler.observe_eval(val_loss, val_accuracy)  # after each validation pass

    Args:
        optimizer: The optimizer whose LRs the rule sets.
        rule: Settings (default: :class:`FeedbackRule`'s, the plan's).
    """

    def __init__(self, optimizer: Optimizer, rule: FeedbackRule | None = None) -> None:
        require_optimizer(optimizer)
        self.rule = rule or FeedbackRule()
        self._params = [p for g in optimizer.param_groups for p in g["params"]]
        super().__init__(optimizer)

    def on_start(self) -> None:
        """Forget the loss average, the previous metric and the rule counts."""
        self.loss_average: float | None = None
        self.prev_metric: float | None = None
        self.fired = dict.fromkeys(RULES, 0)

    def _scale(self, multiplier: float) -> None:
        lo, hi = self.rule.min_lr, self.rule.max_lr
        groups = self.optimizer.param_groups
        self._set_lrs([min(hi, max(lo, float(g["lr"]) * multiplier)) for g in groups])

    def on_step(self, loss: float | None) -> None:
        """Apply rules 1–2 to one optimizer step's loss (no loss: count the step only)."""
        if loss is None:
            return
        average = self.loss_average
        r = self.rule
        if not math.isfinite(loss) or (
            average is not None and loss > (1 + r.loss_tolerance) * average
        ):
            self.fired["loss_increase"] += 1
            self._scale(1 - r.factor)
        elif grad_norm(self._params) < r.grad_threshold:  # NaN (no gradients) is never <
            self.fired["vanishing_gradient"] += 1
            self._scale(1 + r.factor)
        if math.isfinite(loss):
            self.loss_average = (
                loss if average is None else r.loss_decay * average + (1 - r.loss_decay) * loss
            )

    def observe_eval(self, val_loss: float, val_metric: float | None = None) -> None:
        """Apply rule 4 to one validation result."""
        metric = -float(val_loss) if val_metric is None else float(val_metric)
        if not math.isfinite(metric):
            return
        if self.prev_metric is not None and metric < self.prev_metric - self.rule.metric_tolerance:
            self.fired["validation_drop"] += 1
            self._scale(1 - self.rule.factor)
        self.prev_metric = metric

    def state_dict(self) -> dict[str, Any]:
        """Counters, running loss average, previous metric, rule counts and last LRs.

        Everything the rule's next decisions depend on (the gradient norm is read afresh
        at every step), so a reloaded run takes the LRs of the uninterrupted one.
        """
        return {
            **super().state_dict(),
            "loss_average": self.loss_average,
            "prev_metric": self.prev_metric,
            "fired": dict(self.fired),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the rule's settings come from __init__).

        Raises:
            ValueError: a key is missing or a value is not what :meth:`state_dict`
                writes (the message names it); nothing is changed then.
        """
        from lrgym.io.validate import real_number, whole_number

        state = require_keys(state_dict, ("loss_average", "prev_metric", "fired"))

        def optional(key: str) -> float | None:
            value = state[key]
            return None if value is None else real_number(key, value)

        loss_average, prev_metric = optional("loss_average"), optional("prev_metric")
        fired = state["fired"]
        if not isinstance(fired, dict) or set(fired) != set(RULES):
            raise ValueError(f"fired must map each of {list(RULES)} to a count, got {fired!r}")
        counts = {k: whole_number(f"fired[{k!r}]", fired[k], 0) for k in RULES}
        super().load_state_dict(state)
        self.loss_average, self.prev_metric, self.fired = loss_average, prev_metric, counts
