"""Which knobs a task accepts, and how a configuration becomes a training run.

A task that declares knobs has two members (the :class:`Tunable` protocol):
``search_space: SearchSpace`` and ``build_config(seed, config) -> Trainee``. A user's
task adds them to its class; :func:`tunable` then uses them as they are. The built-in
tasks keep their ``build(seed, lr)`` contract unchanged and get their knobs from an
adapter chosen by their backend and model: MLPs (fixed or drawn) accept the whole
:data:`~lrgym.suggester.space.PLAN_SPACE`, the digits CNN, the image tasks' small CNN
(CIFAR-10, MNIST, Fashion-MNIST) and the LSTM forecaster the knobs that fit them, linear
models LR, batch size and optimizer, and XGBoost tasks
:data:`~lrgym.suggester.space.XGB_SPACE`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from lrgym.suggester.space import PLAN_SPACE, STEPS_KNOB, XGB_SPACE, Config, SearchSpace

if TYPE_CHECKING:
    from torch import nn

    from lrgym.core.task import Task
    from lrgym.core.trainee import Trainee


class NoKnobsError(ValueError):
    """The task declares no knobs, so there is nothing to suggest."""


@runtime_checkable
class Tunable(Protocol):
    """A task that declares its knobs: add these two members to your ``Task`` subclass.

    Attributes:
        search_space: The knobs the task accepts.
    """

    search_space: SearchSpace

    def build_config(self, seed: int, config: Config) -> Trainee:
        """A fresh run for ``seed`` with every knob of ``config`` applied."""
        ...


@dataclass(frozen=True)
class TunableTask:
    """A task together with its knobs: what the suggester, probes and searches run.

    Attributes:
        task: The task.
        space: The knobs it accepts.
        builder: ``(seed, complete config) -> Trainee``.
        kind: What the knobs act on (``"mlp"``, ``"cnn"``, ``"lstm"``, ``"linear"``,
            ``"xgboost"`` or ``"user"``).
    """

    task: Task
    space: SearchSpace
    builder: Callable[[int, dict], Trainee]
    kind: str

    def build(self, seed: int, config: Config) -> Trainee:
        """A run with ``config`` (missing knobs at their defaults, all checked)."""
        return self.builder(int(seed), self.space.validate(config))

    def steps(self, config: Config, final_steps: int) -> int:
        """Optimizer steps of one run of ``config``: its ``rounds`` if it has that knob."""
        if STEPS_KNOB in self.space:
            return int(self.space.validate(config)[STEPS_KNOB])
        return int(final_steps)


def tunable(task: Task) -> TunableTask:
    """The knobs of ``task`` and a builder for its configurations.

    Raises:
        NoKnobsError: If the task declares no knobs and no built-in adapter fits it.
    """
    if isinstance(task, Tunable):
        space = task.search_space
        if not isinstance(space, SearchSpace):
            raise NoKnobsError(
                f"{type(task).__name__}.search_space must be a lrgym.suggester.SearchSpace, "
                f"got {type(space).__name__}"
            )
        return TunableTask(task, space, task.build_config, "user")
    # dispatch on the declared backend and the dataclass fields the built-in tasks have
    # (TorchTask: model, optimizer, batch_size; XGBoostTask: params), not on their classes
    fields = {f.name for f in dataclasses.fields(task)} if dataclasses.is_dataclass(task) else ()
    if task.backend == "xgboost" and "params" in fields:
        return TunableTask(task, XGB_SPACE, functools.partial(_build_xgb, task), "xgboost")
    if task.backend == "torch" and {"model", "optimizer", "batch_size"} <= set(fields):
        kind = _torch_kind(task.model)
        if kind is not None:
            space = PLAN_SPACE.subset(_TORCH_KNOBS[kind])
            return TunableTask(task, space, functools.partial(_build_torch, task, kind), kind)
    raise NoKnobsError(
        f"{type(task).__name__} ({task.info.model}) declares no knobs, so there is nothing "
        "to suggest. Give the task a `search_space` (a lrgym.suggester.SearchSpace) and a "
        "`build_config(seed, config)` method that builds a Trainee for a configuration "
        "(see docs/suggest.md)"
    )


# --- built-in torch tasks -------------------------------------------------------------

_TORCH_KNOBS: dict[str, tuple[str, ...]] = {
    "mlp": ("lr", "batch_size", "layers", "units", "dropout", "optimizer"),
    "cnn": ("lr", "batch_size", "layers", "units", "dropout", "optimizer"),
    "lstm": ("lr", "batch_size", "layers", "units", "dropout", "optimizer"),
    "linear": ("lr", "batch_size", "optimizer"),
}
"""The plan's knobs each built-in model kind accepts."""


def _torch_kind(factory: Callable[..., Any]) -> str | None:
    from lrgym.tasks import models, timeseries, vision

    func, kwargs = factory, {}
    if isinstance(factory, functools.partial):
        func, kwargs = factory.func, factory.keywords
    if func in (models.mlp, models.random_mlp):
        return "mlp"
    if func is models.linear:
        return "linear"
    if func in (models.digits_cnn, vision.small_cnn):  # the real image tasks' CNN too
        return "cnn"
    if func is timeseries.lstm_forecaster:
        return "lstm"
    if getattr(func, "__module__", "") == "lrgym.tasks.procedural":
        return {"mlp": "mlp", "cnn": "cnn"}.get(kwargs.get("family"))
    return None


def knob_mlp(n_in: int, n_out: int, layers: int, units: int, dropout: float) -> nn.Module:
    """A ReLU MLP of ``layers`` hidden layers of ``units``, dropout after each (inputs of
    any shape are flattened first)."""
    from torch import nn

    modules: list[nn.Module] = [nn.Flatten()]
    for _ in range(layers):
        modules += [nn.Linear(n_in, units), nn.ReLU(), nn.Dropout(dropout)]
        n_in = units
    modules.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*modules)


def knob_cnn(
    n_out: int, input_shape: tuple[int, ...], layers: int, units: int, dropout: float
) -> nn.Module:
    """``layers`` 3×3 conv layers of ``units // 8`` channels, one 2×2 pool, dropout, linear."""
    from torch import nn

    channels = max(units // 8, 4)
    if len(input_shape) == 1:  # flat 8x8 digits
        side = int(round(input_shape[0] ** 0.5))
        shape = (1, side, side)
    else:
        shape = tuple(input_shape)
    modules: list[nn.Module] = [nn.Unflatten(1, shape)] if len(input_shape) == 1 else []
    c_in = shape[0]
    for i in range(layers):
        modules += [nn.Conv2d(c_in, channels, 3, padding=1), nn.ReLU()]
        c_in = channels
        if i == 1:
            modules.append(nn.MaxPool2d(2))
    h, w = shape[1] // 2, shape[2] // 2
    modules += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * h * w, n_out)]
    return nn.Sequential(*modules)


class _KnobLSTM:
    """Factory of an LSTM forecaster with ``layers`` stacked layers (dropout between)."""

    @staticmethod
    def build(n_in: int, n_out: int, window: int, layers: int, units: int, dropout: float):
        from torch import nn

        n_series = n_in // window

        class KnobLSTMForecaster(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.window = window
                self.lstm = nn.LSTM(
                    n_series, units, num_layers=layers, batch_first=True, dropout=dropout
                )
                self.head = nn.Linear(units, n_out)

            def forward(self, x):
                x = x.reshape(x.shape[0], self.window, -1)
                out, _ = self.lstm(x)
                return self.head(out[:, -1])

        return KnobLSTMForecaster()


def _model_factory(task: Any, kind: str, config: dict) -> Callable[..., nn.Module]:
    if kind == "linear":
        return task.model
    layers, units, dropout = int(config["layers"]), int(config["units"]), float(config["dropout"])
    if kind == "mlp":

        def factory(n_in: int, n_out: int, rng: np.random.Generator) -> nn.Module:
            return knob_mlp(n_in, n_out, layers, units, dropout)

    elif kind == "cnn":

        def factory(n_in: int, n_out: int, rng: np.random.Generator, input_shape=None):
            return knob_cnn(n_out, tuple(input_shape or (n_in,)), layers, units, dropout)

    else:  # lstm
        window = int(task.model.keywords.get("window", 48))

        def factory(n_in: int, n_out: int, rng: np.random.Generator) -> nn.Module:
            return _KnobLSTM.build(n_in, n_out, window, layers, units, dropout)

    return factory


def _build_torch(task: Any, kind: str, seed: int, config: dict) -> Trainee:
    optimizer = str(config["optimizer"])
    # the task's own weight decay only where its optimizer is kept (AdamW's 0.01 is not Adam's)
    decay = task.weight_decay if optimizer == task.optimizer else None
    variant = dataclasses.replace(
        task,
        model=_model_factory(task, kind, config),
        optimizer=optimizer,
        batch_size=int(config["batch_size"]),
        weight_decay=decay,
    )
    return variant.build(seed, float(config["lr"]))


def _build_xgb(task: Any, seed: int, config: dict) -> Trainee:
    params = {
        **task.params,
        "max_depth": int(config["max_depth"]),
        "subsample": float(config["subsample"]),
    }
    return dataclasses.replace(task, params=params).build(seed, float(config["lr"]))
