"""Hyperparameters an agent may control beside the learning rate, and how actions move them.

Dimension 0 of every action is the learning rate (XGBoost's ``eta``), mapped by
:class:`~lrgym.core.actions.LogLRAction` exactly as in the single-LR environments. Each further
dimension moves one :class:`HyperParam` of :data:`HYPERPARAMS` in the optimizer's param
groups, on a log, logit or integer scale, within documented bounds. The env and the
deployed scheduler both go through :class:`HyperParamSet`, so what an agent did in
meta-training is exactly what it does in deployment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # the names below load without torch (task registration needs them)
    import torch

LR = "lr"
"""Name of action dimension 0: the learning rate (``eta`` for XGBoost)."""

Scale = Literal["log", "logit", "int"]
Backend = Literal["torch", "xgboost"]


@dataclass(frozen=True)
class HyperParam:
    """One controlled hyperparameter: where it lives, its bounds and its action scale.

    An action ``a`` in ``[-1, 1]`` moves the value ``v`` (first clipped into
    ``[low, high]``) by ``a * max_step`` on its scale, then clips into ``[low, high]``:

    * ``"log"``: ``v * 2 ** (a * max_step)`` (``max_step`` in powers of two);
    * ``"logit"``: ``sigmoid(logit(v) + a * max_step)`` (``max_step`` in nats);
    * ``"int"``: ``round(v + a * max_step)`` (halves round up), an ``int``.

    Attributes:
        name: Action-dimension name, e.g. ``"momentum"``.
        scale: ``"log"``, ``"logit"`` or ``"int"``.
        low: Lower bound (``> 0`` for log; ``0 < low < high < 1`` for logit).
        high: Upper bound.
        max_step: Largest move per decision, in the scale's units.
        backend: ``"torch"`` (a real optimizer) or ``"xgboost"`` (the proxy optimizer).
        doc: Where the value lives and what the bounds mean.
    """

    name: str
    scale: Scale
    low: float
    high: float
    max_step: float
    backend: Backend
    doc: str = ""

    def __post_init__(self) -> None:
        ok = {
            "log": 0 < self.low < self.high,
            "logit": 0 < self.low < self.high < 1,
            "int": self.low < self.high
            and float(self.low).is_integer()
            and float(self.high).is_integer(),
        }
        if self.scale not in ok:
            raise ValueError(
                f"{self.name}: scale must be 'log', 'logit' or 'int', not {self.scale!r}"
            )
        if not ok[self.scale]:
            raise ValueError(
                f"{self.name}: bounds [{self.low}, {self.high}] do not suit the {self.scale} "
                "scale (log: 0 < low < high; logit: 0 < low < high < 1; int: integers low < high)"
            )
        if not self.max_step > 0:
            raise ValueError(f"{self.name}: max_step must be > 0, got {self.max_step}")

    def encode(self, value: float) -> float:
        """``value`` on the action scale: log2, logit, or itself (no clipping)."""
        if self.scale == "log":
            return math.log2(value)
        if self.scale == "logit":
            return math.log(value / (1.0 - value))
        return float(value)

    def decode(self, z: float) -> float:
        """Inverse of :meth:`encode`."""
        if self.scale == "log":
            return 2.0**z
        if self.scale == "logit":
            return 1.0 / (1.0 + math.exp(-z))
        return float(z)

    def clip(self, value: float) -> float:
        """``value`` clipped into ``[low, high]`` (NaN becomes ``low``)."""
        return self.low if not value >= self.low else min(float(value), self.high)

    def apply(self, value: float, action: float) -> float | int:
        """The value after ``action`` (clipped to [-1, 1]) moved ``value``."""
        a = max(-1.0, min(1.0, float(action)))
        if self.scale == "int":
            return int(self.clip(math.floor(self.clip(value) + a * self.max_step + 0.5)))
        if self.scale == "log":  # as LogLRAction: exact at a = 0 and for powers of two
            return self.clip(self.clip(value) * 2.0 ** (a * self.max_step))
        return self.clip(self.decode(self.encode(self.clip(value)) + a * self.max_step))

    def normalize(self, value: float) -> float:
        """Observation feature: ``value`` (clipped into bounds) mapped to ``[-1, 1]``."""
        lo, hi = self.encode(self.low), self.encode(self.high)
        return 2.0 * (self.encode(self.clip(value)) - lo) / (hi - lo) - 1.0

    def get(self, group: Mapping[str, Any]) -> float | int:
        """The value in one optimizer param group (Adam's β1 is ``betas[0]``)."""
        if self.name == "momentum" and "betas" in group:
            return float(group["betas"][0])
        try:
            value = group[self.name]
        except KeyError:
            raise ValueError(self._missing()) from None
        return int(value) if self.scale == "int" else float(value)

    def set(self, group: dict[str, Any], value: float) -> None:
        """Write ``value`` into one optimizer param group (replacing Adam's ``betas``)."""
        if self.name == "momentum" and "betas" in group:
            beta1, *rest = group["betas"]
            if hasattr(beta1, "fill_"):  # a tensor beta (torch's capturable Adam)
                beta1.fill_(value)
            else:
                group["betas"] = (float(value), *rest)
        else:
            group[self.name] = value

    def _missing(self) -> str:
        if self.name == "momentum":
            return (
                "the optimizer's param groups have neither 'momentum' (SGD, RMSprop) nor "
                "'betas' (Adam, AdamW): use one of those optimizers, or an agent that does "
                "not control momentum"
            )
        if self.backend == "xgboost":
            return (
                f"the proxy optimizer's param group has no {self.name!r}: build it with "
                f"lrgym.backends.xgb_trainee.proxy_optimizer(eta, {self.name}=...)"
            )
        return (
            f"the optimizer's param groups have no {self.name!r}: use an optimizer that "
            "has it, or an agent that does not control it"
        )


HYPERPARAMS: dict[str, HyperParam] = {
    h.name: h
    for h in (
        HyperParam(
            "momentum",
            "logit",
            0.1,
            0.99,
            1.0,
            "torch",
            "SGD/RMSprop group['momentum'] or Adam/AdamW group['betas'][0]",
        ),
        HyperParam(
            "weight_decay",
            "log",
            1e-6,
            1e-1,
            1.0,
            "torch",
            "group['weight_decay']; a value of 0 starts from the floor 1e-6",
        ),
        HyperParam(
            "max_depth",
            "int",
            2,
            10,
            1.0,
            "xgboost",
            "XGBoost max_depth, read from the proxy optimizer each round; ±1 per decision",
        ),
        HyperParam(
            "subsample",
            "logit",
            0.5,
            0.99,
            1.0,
            "xgboost",
            "XGBoost subsample, read from the proxy optimizer each round",
        ),
    )
}
"""Every hyperparameter beside the LR that an agent can control, by name."""

TORCH_HPARAMS: tuple[str, ...] = (LR, "momentum", "weight_decay")
"""The set the torch multi-hyperparameter env variants control."""

XGBOOST_HPARAMS: tuple[str, ...] = (LR, "max_depth", "subsample")
"""The set the XGBoost multi-hyperparameter env variants control (``lr`` is ``eta``)."""


def feature_name(name: str) -> str:
    """Observation feature name of an extra hyperparameter's current value."""
    return f"hp_{name}"


class HyperParamSet:
    """The hyperparameters an env or agent controls: ``"lr"`` first, then extras.

    Args:
        names: Action dimensions in order; must start with ``"lr"``.
        specs: Extra hyperparameters by name (default :data:`HYPERPARAMS`); an agent's
            card passes the specs it was trained with.

    Raises:
        ValueError: ``names`` does not start with ``"lr"``, repeats or names an unknown
            hyperparameter.
    """

    def __init__(
        self, names: Sequence[str] = (LR,), specs: Mapping[str, HyperParam] | None = None
    ) -> None:
        names = [names] if isinstance(names, str) else list(names)
        table = dict(HYPERPARAMS if specs is None else specs)
        if not names or names[0] != LR:
            raise ValueError(
                f"hparams must start with 'lr' (action dimension 0 is always the learning "
                f"rate), got {names}; e.g. {list(TORCH_HPARAMS)} or {list(XGBOOST_HPARAMS)}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"hparams repeats a name: {names}")
        unknown = [n for n in names[1:] if n not in table]
        if unknown:
            raise ValueError(
                f"unknown hyperparameter(s) {', '.join(map(repr, unknown))}; known: "
                f"{', '.join([LR, *table])}"
            )
        self.names: tuple[str, ...] = tuple(names)
        self.extras: tuple[HyperParam, ...] = tuple(table[n] for n in names[1:])

    @classmethod
    def from_specs(
        cls, names: Sequence[str], specs: Mapping[str, Mapping[str, Any]]
    ) -> HyperParamSet:
        """Rebuild from :meth:`specs` output (an agent card); missing specs use the table."""
        table = {**HYPERPARAMS, **{n: HyperParam(**s) for n, s in specs.items()}}
        return cls(names, table)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"HyperParamSet({list(self.names)})"

    def specs(self) -> dict[str, dict[str, Any]]:
        """The extras' specs as plain data (for an agent card)."""
        return {h.name: asdict(h) for h in self.extras}

    @property
    def features(self) -> list[str]:
        """Observation feature names: :data:`~lrgym.core.signals.FEATURES`, then one per extra."""
        from lrgym.core.signals import FEATURES

        return [*FEATURES, *(feature_name(h.name) for h in self.extras)]

    def check_backend(self, backend: str, task: str) -> None:
        """Raise if an extra does not suit the task's ``backend`` (see ``Task.backend``)."""
        wrong = [h.name for h in self.extras if h.backend != backend]
        if wrong:
            fits = [LR, *(n for n, h in HYPERPARAMS.items() if h.backend == backend)]
            kind = {"xgboost": "an XGBoost", "torch": "a torch"}.get(backend, f"a {backend!r}")
            raise ValueError(
                f"{task} is {kind} task: it takes hyperparameters {', '.join(fits)}, not "
                f"{', '.join(wrong)}"
            )

    def check_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Raise a clear error if a param group lacks a controlled hyperparameter."""
        for h in self.extras:
            for group in optimizer.param_groups:
                h.get(group)

    def _groups(self, h: HyperParam, optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
        # A group with weight decay 0 beside one with decay is a no-decay group (biases,
        # norms): it stays 0. If every group is 0, all are controlled (from the floor).
        groups = optimizer.param_groups
        if h.name == "weight_decay":
            decayed = [g for g in groups if h.get(g) != 0]
            return decayed or groups
        return groups

    def apply(self, optimizer: torch.optim.Optimizer, actions: Sequence[float]) -> None:
        """Move every extra in every (controlled) param group by its action.

        Args:
            optimizer: The optimizer (or XGBoost proxy optimizer) to change.
            actions: One action per extra, i.e. the action vector without dimension 0.
        """
        if len(actions) != len(self.extras):
            raise ValueError(
                f"expected {len(self.extras)} actions for {self.names[1:]}, got {len(actions)}"
            )
        for h, a in zip(self.extras, actions, strict=True):
            for group in self._groups(h, optimizer):
                h.set(group, h.apply(h.get(group), float(a)))

    def values(self, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        """Current value of each extra (first controlled param group)."""
        return {h.name: h.get(self._groups(h, optimizer)[0]) for h in self.extras}

    def observe(self, optimizer: torch.optim.Optimizer) -> np.ndarray:
        """The extras' observation features (:meth:`HyperParam.normalize`, float32)."""
        return np.array(
            [
                h.normalize(v)
                for h, v in zip(self.extras, self.values(optimizer).values(), strict=True)
            ],
            dtype=np.float32,
        )

    def set_initial(self, optimizer: torch.optim.Optimizer, values: Mapping[str, float]) -> None:
        """Set extras to given starting values in every param group.

        Raises:
            ValueError: A name is not controlled, or a value is outside its bounds.
        """
        by_name = {h.name: h for h in self.extras}
        for name, value in values.items():
            h = by_name.get(name)
            if h is None:
                raise ValueError(
                    f"initial_hparams names {name!r}, which this env does not control "
                    f"({', '.join(by_name) or 'no extras'})"
                )
            if not h.low <= float(value) <= h.high:
                raise ValueError(
                    f"initial {name} {value!r} is outside its bounds [{h.low}, {h.high}]"
                )
            for group in optimizer.param_groups:
                h.set(group, int(value) if h.scale == "int" else float(value))
