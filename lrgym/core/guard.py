"""Rules a policy cannot argue with: the LR it asks for, bounded by what the run shows.

A learned policy can be wrong on a task it never saw, and the two ways it wrecks a run
are known: it raises the LR on a plateau until the run breaks, or it anneals while the
loss is still falling fast and stalls a slow start. :class:`HarmGuard` bounds the
*residual* LR (the LR over the base schedule's factor, see
:class:`~lrgym.core.actions.LogLRAction`) with three rules, and a fourth where the action
map asks for it (``val_anneal``), from the training losses every decision sees and the
validation loss when one is shown:

1. **No runaway on a plateau.** The residual may not exceed ``2 ** RISE_LOG2`` (8×) the
   residual at the last decision whose loss set a clear new best: below the loss at the
   anchor by more than ``IMPROVE_TOL`` and by more than ``NOISE_Z`` standard errors of
   the difference of the two decisions' mean losses (each from its step losses; the
   first decision's loss is the reference, and the run's start the first anchor). While
   the loss keeps falling the bound moves with it; on a plateau it stays put, and the
   step-to-step noise of a plateau's losses does not move it (a margin of
   ``IMPROVE_TOL`` alone did: on a pure-noise regression, mini-batch noise set new bests
   by 5-19%, and each let the LR rise 8× further). With the action map's ``slow_fall``
   the margin is ``SLOW_FALL_TOL`` (0.1%) instead of ``IMPROVE_TOL``: an LR far too low
   moves the loss by less than 1% per decision, steadily, and would otherwise stay
   capped at 8× the initial LR for the whole run. With ``val_progress`` a shown
   validation loss below the best shown one by ``SLOW_FALL_TOL`` moves the bound too:
   a validation loss is computed on a fixed set, so it shows a slow fall that a noisy
   training loss hides.
2. **No collapse while the loss falls.** While the loss sets new bests (an improving
   streak, from the run's start until ``PATIENCE`` decisions pass without one), the
   residual may not fall
   more than ``2 ** FALL_LOG2`` (8×) below the highest residual of the streak. Once the
   loss stops improving, decreases are free: that is when annealing pays. The run's
   first ``early_decisions`` are exempt, so a too-high initial LR is cut at once.
3. **Back off after a harmful increase.** When a shown validation loss is worse than the
   previous shown one by more than ``VAL_WORSE`` (in log loss) and the residual was
   raised in between, the residual goes back to where it was before the raise.
4. **Anneal once validation has turned** (only with the action map's ``val_anneal``).
   When a shown validation loss is above the best shown one by more than
   ``VAL_OVERFIT`` (in log loss), the residual is halved (``OVERFIT_LOG2``) and may not
   rise again until a shown validation loss is back within that margin: the model is
   fitting its training data at the expense of unseen data, as a small dataset does
   within a run, and a lower LR is what slows that (the training loss cannot show it:
   it keeps falling). Each further shown validation loss still above the margin halves
   it again.

Written by hand: these are lrgym's own rules over lrgym's own signals; no library offers
them. Every number is a module constant, recorded nowhere else, so a card's
``guard: true`` always means rules 1-3, ``val_anneal: true`` adds rule 4,
``slow_fall: true`` changes rule 1's margin and ``val_progress: true`` adds a signal to
it (an agent evaluated without them acts, and scores, as its card says).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

RISE_LOG2 = 3.0
"""Most the residual LR may rise over its value at the last new best loss (8×)."""
FALL_LOG2 = 3.0
"""Most the residual LR may fall below its streak's highest value while the loss improves."""
IMPROVE_TOL = 0.01
"""A decision's mean log loss must beat the best by this much to count as a new best."""
SLOW_FALL_TOL = 0.001
"""Rule 1's margin instead of :data:`IMPROVE_TOL` with ``slow_fall``."""
NOISE_Z = 3.0
"""Rule 1 also asks a new best to beat the anchor's mean log loss by this many standard
errors of their difference (each mean's from its decision's step losses)."""
PATIENCE = 2
"""Decisions without a new best that end an improving streak."""
VAL_WORSE = 0.02
"""A shown validation log loss this much above the previous shown one counts as worse."""
VAL_OVERFIT = 0.1
"""A shown validation log loss this much above the best shown one starts rule 4."""
OVERFIT_LOG2 = 1.0
"""How far rule 4 lowers the residual at each shown validation loss above that margin."""


class HarmGuard:
    """Bounds on the residual log2 LR, updated from each decision's feedback.

    Call :meth:`start` when the run starts, :meth:`observe` with each decision's
    feedback, and :meth:`limit` to bound the residual the policy asks for.

    Args:
        val_anneal: Apply rule 4 (anneal once validation has turned) too.
        slow_fall: Rule 1 counts a fall of :data:`SLOW_FALL_TOL` (beyond the noise) as a
            new best, not only one of :data:`IMPROVE_TOL`.
        val_progress: Rule 1 also counts a shown validation loss below the best shown one
            by :data:`SLOW_FALL_TOL` as a new best.
    """

    def __init__(
        self, val_anneal: bool = False, slow_fall: bool = False, val_progress: bool = False
    ) -> None:
        self.val_anneal = val_anneal
        self.val_progress = val_progress
        self.rise_tol = SLOW_FALL_TOL if slow_fall else IMPROVE_TOL
        self.start(0.0)

    def start(self, residual: float, val_loss: float | None = None) -> None:
        """Start a run at residual log2 LR ``residual``."""
        self.best = math.inf  # best mean log training loss so far
        self.anchor = residual  # residual at the last clear new best (rule 1)
        self.anchor_loss = math.inf  # mean log training loss there
        self.anchor_se = 0.0  # its standard error
        self.streak_high: float | None = residual  # highest residual of the improving streak
        self.stale = 0  # decisions since the last new best
        self.val = _log(val_loss)
        self.val_residual = residual  # residual when that validation loss was shown
        self.backoff: float | None = None  # rule 3's cap for the next decision
        self.val_best = self.val  # best shown validation log loss (rule 4)
        self.overfit_cap: float | None = None  # rule 4's cap until validation recovers

    def observe(
        self, residual: float, train_losses: Sequence[float], val_loss: float | None = None
    ) -> None:
        """Take one decision's feedback: the residual it trained at, its losses, its val loss."""
        finite = [x for x in train_losses if math.isfinite(x)]
        mean = _log(sum(finite) / len(finite)) if finite else None
        se = _log_mean_se(finite)
        if mean is not None and self.anchor_loss == math.inf:
            # the first chunk is the reference for rule 1 too
            self.anchor_loss, self.anchor_se = mean, se
        elif mean is not None and mean < self.anchor_loss - max(
            self.rise_tol, NOISE_Z * math.hypot(se, self.anchor_se)
        ):
            self.anchor_loss, self.anchor_se, self.anchor = mean, se, residual
        if mean is not None and self.best == math.inf:
            self.best = mean  # the first chunk is the reference: nothing improved on yet
        elif mean is not None and mean < self.best - IMPROVE_TOL:
            self.best = mean
            self.streak_high = (
                residual if self.streak_high is None else max(self.streak_high, residual)
            )
            self.stale = 0
        else:
            self.stale += 1
            if self.stale >= PATIENCE:
                self.streak_high = None
        self.backoff = None
        val = _log(val_loss)
        if val is not None and val != self.val:  # a fresh validation loss was shown
            if self.val is not None and val > self.val + VAL_WORSE and residual > self.val_residual:
                self.backoff = self.val_residual
            self.val, self.val_residual = val, residual
            shows_progress = self.val_best is not None and val < self.val_best - SLOW_FALL_TOL
            if self.val_progress and shows_progress and mean is not None:  # rule 1, by validation
                self.anchor_loss, self.anchor_se, self.anchor = mean, se, residual
            turned = self.val_best is not None and val > self.val_best + VAL_OVERFIT
            self.overfit_cap = residual - OVERFIT_LOG2 if self.val_anneal and turned else None
            self.val_best = val if self.val_best is None else min(self.val_best, val)

    def limit(self, current: float, proposed: float, exempt_fall: bool = False) -> float:
        """The residual allowed when the policy proposes ``proposed`` at ``current``.

        Args:
            current: The residual now.
            proposed: The residual the policy asks for.
            exempt_fall: Skip rule 2 (the run's early decisions).
        """
        high = self.anchor + RISE_LOG2
        allowed = proposed if proposed <= high else max(high, min(current, proposed))
        if not exempt_fall and self.streak_high is not None:
            allowed = max(allowed, min(current, self.streak_high - FALL_LOG2))
        if self.backoff is not None:
            allowed = min(allowed, self.backoff)
        if self.overfit_cap is not None:
            allowed = min(allowed, self.overfit_cap)
        return allowed

    def state_dict(self) -> dict[str, Any]:
        """The guard's state as plain numbers (None where unset)."""
        return {
            "best": self.best,
            "anchor": self.anchor,
            "anchor_loss": self.anchor_loss,
            "anchor_se": self.anchor_se,
            "streak_high": self.streak_high,
            "stale": self.stale,
            "val": self.val,
            "val_residual": self.val_residual,
            "backoff": self.backoff,
            "val_best": self.val_best,
            "overfit_cap": self.overfit_cap,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises:
            ValueError: a key is missing or a value is not a number (nothing is changed).
        """
        if isinstance(state, dict) and "anchor_loss" not in state and "best" in state:
            # saved before rule 1 had its own reference: the best loss, no noise margin
            state = {**state, "anchor_loss": state["best"], "anchor_se": 0.0}
        if isinstance(state, dict) and "val_best" not in state and "val" in state:
            # saved before rule 4: the last shown validation loss is the best one known
            state = {**state, "val_best": state["val"], "overfit_cap": None}
        if not isinstance(state, dict) or set(state) != set(self.state_dict()):
            raise ValueError(f"guard state must hold exactly {sorted(self.state_dict())}")
        for key, value in state.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            nullable = ("streak_high", "val", "backoff", "val_best", "overfit_cap")
            if not (number or (value is None and key in nullable)):
                raise ValueError(f"guard state {key!r} must be a number, got {value!r}")
            if number and math.isnan(value):
                raise ValueError(f"guard state {key!r} must not be NaN")
        self.__dict__.update(state)
        self.stale = int(self.stale)


def _log(x: float | None) -> float | None:
    """Natural log of a positive finite loss (floored at 1e-12), else None."""
    if x is None or not math.isfinite(x):
        return None
    return math.log(max(x, 1e-12))


def _log_mean_se(losses: Sequence[float]) -> float:
    """Standard error of the log of the mean of ``losses`` (delta method; 0 for fewer
    than two losses or a zero mean)."""
    n = len(losses)
    mean = sum(losses) / n if n else 0.0
    if n < 2 or mean <= 0:
        return 0.0
    var = sum((x - mean) ** 2 for x in losses) / (n - 1)
    return math.sqrt(var / n) / mean
