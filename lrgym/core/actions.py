"""How an action becomes a learning rate: shared by the env and the deployed scheduler."""

from __future__ import annotations

import math
from dataclasses import dataclass

BASES = ("constant", "cosine", "linear")
"""Base schedules an action can be a residual on (see :attr:`LogLRAction.base`)."""


GUARD_RULES = ("val_anneal", "slow_fall", "val_progress")
"""The opt-in rules of :class:`~lrgym.core.guard.HarmGuard` (its keyword arguments), each a
boolean field of :class:`LogLRAction` that needs ``guard``."""


@dataclass(frozen=True)
class LogLRAction:
    """Maps an action in ``[-1, 1]`` to a multiplicative LR change on a log2 scale.

    ``new_lr = clip(lr * 2 ** (action * step) * base(p_next) / base(p_now), min_lr,
    max_lr)``, where ``step`` is ``early_log2_step`` for the run's first
    ``early_decisions`` decisions and ``max_log2_step`` after them. The default (constant
    base, no early range, no guard) halves the LR at -1, keeps it at 0 and doubles it at
    +1, which is what every agent trained before these options existed does.

    Attributes:
        max_log2_step: Largest change per decision, in powers of two.
        min_lr: Lower bound on the LR.
        max_lr: Upper bound on the LR.
        early_log2_step: Largest change per decision during the first
            ``early_decisions`` decisions (0: same as ``max_log2_step``), so that a bad
            initial LR is fixed within the first decisions rather than a quarter of the run.
        early_decisions: How many decisions, from the start, use ``early_log2_step``.
        base: The schedule the action is a residual on: ``"constant"`` (the action alone
            moves the LR), ``"cosine"`` or ``"linear"`` decay over the run, down to
            ``base_floor`` times the LR the run would otherwise hold. With a decaying base,
            an agent that does nothing anneals.
        base_floor: The base's value at the end of the run, as a fraction of its start.
        guard: Apply :class:`~lrgym.core.guard.HarmGuard`'s rules (no runaway on a plateau, no
            collapse while the loss falls, back off after an increase that hurt the
            validation loss) on top of the action.
        val_anneal: Add the guard's rule 4: halve the LR at each shown validation loss
            clearly above its best so far (a small dataset memorised within the run), and
            no rise until it is back near its best. Needs ``guard``.
        slow_fall: The guard's rule 1 counts a slow, steady fall of the loss as progress
            (0.1% instead of 1% below its anchor, beyond the noise), so that an LR too
            low to move the loss much can still be raised out of. Needs ``guard``.
        val_progress: The guard's rule 1 also counts a shown validation loss's new best
            (by 0.1%) as progress, for runs whose training loss is too noisy to show a
            slow fall. Needs ``guard``.
    """

    max_log2_step: float = 1.0
    min_lr: float = 1e-7
    max_lr: float = 10.0
    early_log2_step: float = 0.0
    early_decisions: int = 0
    base: str = "constant"
    base_floor: float = 0.01
    guard: bool = False
    val_anneal: bool = False
    slow_fall: bool = False
    val_progress: bool = False

    def __post_init__(self) -> None:
        def finite(name: str, low: float, high: float) -> None:
            value = getattr(self, name)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and low <= value <= high):
                raise ValueError(
                    f"action {name} must be a number in [{low}, {high}], got {value!r}"
                )

        finite("max_log2_step", 1e-3, 10.0)
        finite("early_log2_step", 0.0, 10.0)
        finite("min_lr", 1e-30, 1e6)
        finite("max_lr", 1e-30, 1e6)
        finite("base_floor", 1e-4, 1.0)
        if not self.min_lr < self.max_lr:
            raise ValueError(f"action needs min_lr < max_lr, got {self.min_lr} and {self.max_lr}")
        early = self.early_decisions
        if isinstance(early, bool) or not isinstance(early, int) or not 0 <= early <= 1000:
            raise ValueError(
                f"action early_decisions must be a whole number in [0, 1000], got {early!r}"
            )
        if self.base not in BASES:
            raise ValueError(f"action base must be one of {BASES}, got {self.base!r}")
        for name in ("guard", *GUARD_RULES):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"action {name} must be true or false, got {getattr(self, name)!r}"
                )
        for name in GUARD_RULES:
            if getattr(self, name) and not self.guard:
                raise ValueError(f"action {name} is a rule of the guard: set guard: true too")

    def step_at(self, decision: int) -> float:
        """Largest log2 change allowed at decision number ``decision`` (0: the first)."""
        if decision < self.early_decisions and self.early_log2_step > 0:
            return self.early_log2_step
        return self.max_log2_step

    def base_log2(self, progress: float) -> float:
        """log2 of the base schedule at ``progress`` in [0, 1] (0 at the start)."""
        if self.base == "constant":
            return 0.0
        p = min(1.0, max(0.0, progress))
        shape = 0.5 * (1.0 + math.cos(math.pi * p)) if self.base == "cosine" else 1.0 - p
        return math.log2(self.base_floor + (1.0 - self.base_floor) * shape)

    def apply(self, lr: float, action: float, decision: int | None = None) -> float:
        """The LR after applying ``action`` (clipped to [-1, 1]) to ``lr``, base left out.

        Args:
            lr: The current LR.
            action: The action, clipped to [-1, 1].
            decision: The decision's number (0: the first); None counts as a late one.
        """
        # plain floats: NumPy's scalar overhead is most of this call's cost, paid per decision
        a = min(1.0, max(-1.0, float(action)))
        step = self.max_log2_step if decision is None else self.step_at(decision)
        return self.clip(lr * 2.0 ** (a * step))

    def clip(self, lr: float) -> float:
        """``lr`` within ``[min_lr, max_lr]``."""
        return min(self.max_lr, max(self.min_lr, lr))
