"""How an action becomes a learning rate: shared by the env and the deployed scheduler."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LogLRAction:
    """Maps an action in ``[-1, 1]`` to a multiplicative LR change on a log2 scale.

    ``new_lr = clip(lr * 2 ** (action * max_log2_step), min_lr, max_lr)``: the default
    halves the LR at -1, keeps it at 0 and doubles it at +1.

    Attributes:
        max_log2_step: Largest change per decision, in powers of two.
        min_lr: Lower bound on the LR.
        max_lr: Upper bound on the LR.
    """

    max_log2_step: float = 1.0
    min_lr: float = 1e-7
    max_lr: float = 10.0

    def apply(self, lr: float, action: float) -> float:
        """The LR after applying ``action`` (clipped to [-1, 1]) to ``lr``."""
        # plain floats: NumPy's scalar overhead is most of this call's cost, paid per decision
        a = min(1.0, max(-1.0, float(action)))
        return min(self.max_lr, max(self.min_lr, lr * 2.0 ** (a * self.max_log2_step)))
