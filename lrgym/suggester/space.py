"""The knob contract: which hyperparameters a task lets `lrgym suggest` choose.

A :class:`Knob` is one hyperparameter (a log-scaled float range or a set of choices), a
:class:`SearchSpace` a tuple of knobs. A configuration is a plain mapping from knob names
to values (``{"lr": 3e-3, "batch_size": 64, "optimizer": "adam"}``), checked by
:meth:`SearchSpace.validate`, the form Optuna's trials produce too.

:data:`PLAN_SPACE` is the search space of the experiment plan: LR 1e-4…1e-1 (log),
batch size {32, 64, 128}, layers {2, 3, 4}, units {64, 128, 256}, dropout
{0.1, 0.3, 0.5}, optimizer {SGD with momentum, Adam}. XGBoost tasks use
:data:`XGB_SPACE` (eta, depth, subsample, rounds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

Value = float | int | str
"""A knob's value: a float (LR, dropout), an int (batch size, layers) or a name."""

Config = Mapping[str, Value]
"""A configuration: knob name → value."""


@dataclass(frozen=True)
class Knob:
    """One hyperparameter a task accepts.

    Either a continuous range (``low``/``high``, log-scaled if ``log``) or a finite set of
    ``choices``, never both.

    Attributes:
        name: The knob's name; the meta-model knows ``lr``, ``batch_size``, ``layers``,
            ``units``, ``dropout``, ``optimizer``, ``max_depth``, ``subsample`` and
            ``rounds`` (other names are set to their default when it suggests).
        default: The value used when nothing chooses it (probes, unknown knobs).
        low: Lower end of a continuous range.
        high: Upper end of a continuous range.
        log: Whether the range is searched on a log scale.
        choices: The allowed values of a categorical knob.
    """

    name: str
    default: Value
    low: float | None = None
    high: float | None = None
    log: bool = True
    choices: tuple[Value, ...] = field(default=())

    def __post_init__(self) -> None:
        ranged = self.low is not None and self.high is not None
        if ranged == bool(self.choices):
            raise ValueError(
                f"knob {self.name!r}: give either low and high (a range) or choices, not both"
            )
        if ranged:
            if not self.low < self.high or (self.log and self.low <= 0):
                raise ValueError(
                    f"knob {self.name!r}: need 0 < low < high for a log range, "
                    f"got low={self.low}, high={self.high}"
                )
        self.check(self.default)

    @property
    def is_range(self) -> bool:
        """True for a continuous range, False for a set of choices."""
        return not self.choices

    def check(self, value: Value) -> Value:
        """Return ``value`` if the knob accepts it, else raise ``ValueError``."""
        if self.is_range:
            if (
                isinstance(value, str)
                or not math.isfinite(float(value))
                or not self.low <= float(value) <= self.high
            ):
                raise ValueError(
                    f"knob {self.name!r} takes a number in [{self.low}, {self.high}], got {value!r}"
                )
            return float(value)
        if value not in self.choices:
            raise ValueError(f"knob {self.name!r} takes one of {list(self.choices)}, got {value!r}")
        return value

    def grid(self, n_range: int) -> tuple[Value, ...]:
        """The knob's grid: its choices, or ``n_range`` points spread over the range."""
        if not self.is_range:
            return self.choices
        if self.log:
            points = np.geomspace(self.low, self.high, n_range)
        else:
            points = np.linspace(self.low, self.high, n_range)
        return tuple(float(f"{p:.4g}") for p in points)

    def sample(self, rng: np.random.Generator) -> Value:
        """One value drawn from ``rng`` (log-uniform on a log range)."""
        if self.is_range:
            if self.log:
                return float(np.exp(rng.uniform(math.log(self.low), math.log(self.high))))
            return float(rng.uniform(self.low, self.high))
        return self.choices[int(rng.integers(len(self.choices)))]


@dataclass(frozen=True)
class SearchSpace:
    """The knobs a task accepts (its hyperparameter search space).

    Attributes:
        knobs: The knobs, each name once.
    """

    knobs: tuple[Knob, ...]

    def __post_init__(self) -> None:
        names = [k.name for k in self.knobs]
        if not names:
            raise ValueError("a SearchSpace needs at least one knob")
        if len(set(names)) != len(names):
            raise ValueError(f"knob names repeat: {names}")

    @property
    def names(self) -> tuple[str, ...]:
        """Knob names in order."""
        return tuple(k.name for k in self.knobs)

    def __getitem__(self, name: str) -> Knob:
        for knob in self.knobs:
            if knob.name == name:
                return knob
        raise KeyError(f"no knob {name!r}; this space has {list(self.names)}")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def subset(self, names: Sequence[str]) -> SearchSpace:
        """The knobs of this space whose names are in ``names`` (in this space's order)."""
        return SearchSpace(tuple(k for k in self.knobs if k.name in names))

    def defaults(self) -> dict[str, Value]:
        """Every knob at its default."""
        return {k.name: k.default for k in self.knobs}

    def validate(self, config: Config) -> dict[str, Value]:
        """A complete, checked configuration: missing knobs take their default.

        Raises:
            ValueError: If ``config`` names a knob the space lacks or a value is out of range.
        """
        unknown = sorted(set(config) - set(self.names))
        if unknown:
            raise ValueError(f"unknown knobs {unknown}; this task accepts {list(self.names)}")
        return {k.name: k.check(config.get(k.name, k.default)) for k in self.knobs}

    def sample(self, rng: np.random.Generator) -> dict[str, Value]:
        """A configuration drawn from ``rng`` (every knob independently)."""
        return {k.name: k.sample(rng) for k in self.knobs}

    def grid_axes(self, n_range: int = 4) -> dict[str, list[Value]]:
        """The grid as knob name → values (Optuna's ``GridSampler`` takes this)."""
        return {k.name: list(k.grid(n_range)) for k in self.knobs}


LR = Knob("lr", default=1e-3, low=1e-4, high=1e-1, log=True)
BATCH_SIZE = Knob("batch_size", default=64, choices=(32, 64, 128))
LAYERS = Knob("layers", default=2, choices=(2, 3, 4))
UNITS = Knob("units", default=64, choices=(64, 128, 256))
DROPOUT = Knob("dropout", default=0.1, choices=(0.1, 0.3, 0.5))
OPTIMIZER = Knob("optimizer", default="adam", choices=("sgd", "adam"))

PLAN_SPACE = SearchSpace((LR, BATCH_SIZE, LAYERS, UNITS, DROPOUT, OPTIMIZER))
"""The experiment plan's space; built-in torch tasks accept the knobs that fit them."""

XGB_SPACE = SearchSpace(
    (
        Knob("lr", default=0.3, low=1e-2, high=1.0, log=True),
        Knob("max_depth", default=3, choices=(2, 3, 4, 6)),
        Knob("subsample", default=0.8, choices=(0.6, 0.8, 1.0)),
        Knob("rounds", default=100, choices=(50, 100, 200)),
    )
)
"""XGBoost's space: eta (the LR), tree depth, row subsample and boosting rounds."""

STEPS_KNOB = "rounds"
"""A knob that sets the run's length in optimizer steps (boosting rounds)."""
