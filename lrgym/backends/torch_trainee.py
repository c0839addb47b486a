"""The torch backend: one generic Trainee for every PyTorch task, and :class:`TorchTask`.

A torch task is a model factory + loss + in-memory data; :class:`TorchTrainee` trains it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from lrgym.core.signals import UpdateTracker, grad_norm
from lrgym.core.task import ArraySplits, Backend, DataFactory, Task, TaskInfo
from lrgym.core.trainee import EvalReport, StepHook, Trainee, TrainReport

OptimizerFactory = Callable[..., torch.optim.Optimizer]
"""Builds an optimizer: ``factory(params, lr=lr, weight_decay=wd)``; any
``torch.optim.Optimizer`` subclass is one, and so is a ``functools.partial`` of one."""

OPTIMIZERS: dict[str, OptimizerFactory] = {
    "sgd": partial(torch.optim.SGD, momentum=0.9),
    "nesterov": partial(torch.optim.SGD, momentum=0.9, nesterov=True),
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}
"""Optimizers by name; ``sgd`` is SGD with momentum 0.9, ``nesterov`` the same with
Nesterov momentum."""


def _features(x: np.ndarray) -> torch.Tensor:
    """Integer arrays (token ids) become int64 tensors, everything else float32."""
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        return torch.as_tensor(x, dtype=torch.long)
    return torch.as_tensor(x, dtype=torch.float32)


def optimizer_factory(optimizer: str | OptimizerFactory) -> OptimizerFactory:
    """The factory a task's ``optimizer`` names: a key of :data:`OPTIMIZERS`, an
    optimizer class or any callable ``factory(params, lr=..., weight_decay=...)``.

    Raises:
        ValueError: an unknown name, or something that is neither a name nor callable.
    """
    if isinstance(optimizer, str):
        try:
            return OPTIMIZERS[optimizer]
        except KeyError:
            raise ValueError(
                f"unknown optimizer {optimizer!r}; use one of {sorted(OPTIMIZERS)}, a "
                "torch.optim.Optimizer class or a factory(params, lr=..., weight_decay=...)"
            ) from None
    if not callable(optimizer):
        raise ValueError(
            f"optimizer must be a name in {sorted(OPTIMIZERS)}, a torch.optim.Optimizer class "
            f"or a factory(params, lr=..., weight_decay=...), got {optimizer!r}"
        )
    return optimizer


def optimizer_name(optimizer: str | OptimizerFactory) -> str:
    """A readable name for a task's ``optimizer`` (for tables and cards)."""
    if isinstance(optimizer, str):
        return optimizer
    if isinstance(optimizer, partial):
        args = ", ".join(f"{k}={v}" for k, v in optimizer.keywords.items())
        return f"{optimizer_name(optimizer.func)}({args})"
    return getattr(optimizer, "__name__", type(optimizer).__name__)


def make_optimizer(
    name: str | OptimizerFactory, params, lr: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """Build the optimizer ``name`` stands for (see :func:`optimizer_factory`).

    Raises:
        ValueError: ``name`` is unknown, or the factory does not return an optimizer.
    """
    optimizer = optimizer_factory(name)(params, lr=lr, weight_decay=weight_decay)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(
            f"optimizer factory {optimizer_name(name)} returned {type(optimizer).__name__}, "
            "not a torch.optim.Optimizer"
        )
    return optimizer


class TorchTrainee(Trainee):
    """Minibatch training of a torch model on in-memory tensors.

    Args:
        model: The freshly initialised model.
        splits: Data, already split and preprocessed.
        loss: ``"cross_entropy"`` (targets are class ids) or ``"mse"`` (targets are floats).
        optimizer: Name in :data:`OPTIMIZERS`, optimizer class or factory (see
            :func:`optimizer_factory`).
        lr: Initial learning rate.
        batch_size: Minibatch size.
        seed: Seeds the minibatch order.
        weight_decay: Weight decay passed to the optimizer.
    """

    def __init__(
        self,
        model: nn.Module,
        splits: ArraySplits,
        loss: str,
        optimizer: str | OptimizerFactory,
        lr: float,
        batch_size: int,
        seed: int,
        weight_decay: float = 0.0,
    ) -> None:
        if loss not in ("cross_entropy", "mse"):
            raise ValueError(f"loss must be 'cross_entropy' or 'mse', got {loss!r}")
        self.model = model
        self.loss_name = loss
        self.loss_fn = nn.CrossEntropyLoss() if loss == "cross_entropy" else nn.MSELoss()
        self._data = {
            name: (_features(x), self._targets(y))
            for name, x, y in (
                ("train", splits.x_train, splits.y_train),
                ("val", splits.x_val, splits.y_val),
                ("test", splits.x_test, splits.y_test),
            )
        }
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(optimizer, self.params, lr, weight_decay)
        self.batch_size = int(batch_size)
        self._generator = torch.Generator().manual_seed(int(seed))
        self._order = torch.empty(0, dtype=torch.long)
        self._cursor = 0
        self._updates = UpdateTracker(self.params)

    def weights_loaded(self) -> None:
        """Call after replacing the model's weights outside training (e.g. loading an
        init): update sizes are then measured from the new weights."""
        self._updates.restart()

    @property
    def tensors(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The run's ``(features, targets)`` tensors by split (``train``, ``val``, ``test``)."""
        return self._data

    @property
    def batch_generator(self) -> torch.Generator:
        """The generator that draws the minibatch order (seeded from the run's seed)."""
        return self._generator

    def _targets(self, y: np.ndarray) -> torch.Tensor:
        if self.loss_name == "cross_entropy":
            return torch.as_tensor(y, dtype=torch.long)
        return torch.as_tensor(y, dtype=torch.float32).reshape(len(y), -1)

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self._data["train"]
        n = x.shape[0]
        if self._cursor + self.batch_size > self._order.numel():
            self._order = torch.randperm(n, generator=self._generator)
            self._cursor = 0
        idx = self._order[self._cursor : self._cursor + self.batch_size]
        self._cursor += self.batch_size
        return x[idx], y[idx]

    def train(self, steps: int, on_step: StepHook | None = None) -> TrainReport:
        """Run ``steps`` minibatch steps; stops early on a non-finite loss."""
        self.model.train()
        losses: list[float] = []
        norm = math.nan
        for i in range(steps):
            xb, yb = self._next_batch()
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(xb), yb)
            value = loss.item()
            losses.append(value)
            if not math.isfinite(value):
                break  # diverged: the caller decides what ends
            loss.backward()
            if i == steps - 1:
                norm = grad_norm(self.params)
            self.optimizer.step()
            if on_step is not None:
                on_step(value)
        ratio, cosine = self._updates.measure()
        return TrainReport(len(losses), tuple(losses), norm, ratio, cosine)

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> EvalReport:
        """Loss and metrics on ``split`` (accuracy and macro-F1, or R², MAE and RMSE)."""
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        self.model.eval()
        x, y = self._data[split]
        out = self.model(x)
        loss = float(self.loss_fn(out, y))
        if self.loss_name == "cross_entropy":
            pred, labels = out.argmax(dim=1).numpy(), y.numpy()
            # macro-F1 only when read: the env reads the accuracy alone at every decision
            metrics = partial(classification_metrics, pred, labels, out.shape[1])
            return EvalReport(loss, accuracy(pred, labels), metrics)
        metrics = regression_metrics(out, y)
        return EvalReport(loss, metrics["r2"], metrics)


def accuracy(pred: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Share of ``pred`` equal to ``y``, rounded to float32 like torch's
    ``(pred == y).float().mean()`` (an exact count divided once: the same value)."""
    hits = np.count_nonzero(np.asarray(pred) == np.asarray(y))
    return float(np.float32(hits) / np.float32(max(len(y), 1)))


def classification_metrics(
    pred: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, n_classes: int
) -> dict[str, float]:
    """Accuracy and macro-F1 (classes absent from both ``pred`` and ``y`` are skipped)."""
    # in NumPy: a handful of tiny tensor ops costs ~10x more in torch's per-call overhead,
    # paid at every decision of every run
    pred_np, y_np = np.asarray(pred), np.asarray(y)
    hit = pred_np == y_np
    # per class: F1 = 2·TP / (2·TP + FP + FN) = 2·TP / (#predicted + #true), in 3 bincounts
    tp = np.bincount(y_np[hit], minlength=n_classes)
    support = np.bincount(pred_np, minlength=n_classes) + np.bincount(y_np, minlength=n_classes)
    present = support > 0
    f1 = float((2 * tp[present] / support[present]).mean()) if present.any() else 0.0
    return {"accuracy": accuracy(pred_np, y_np), "macro_f1": f1}


def regression_metrics(pred: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """R² (the headline metric, higher is better), MAE and RMSE; NaN predictions → -inf R²."""
    err = pred - y
    mse = float((err**2).mean())
    var = float(((y - y.mean()) ** 2).mean())
    r2 = 1.0 - mse / max(var, 1e-12) if math.isfinite(mse) else float("-inf")
    return {"r2": r2, "mae": float(err.abs().mean()), "rmse": math.sqrt(mse)}


ModelFactory = Callable[..., nn.Module]
"""``(n_inputs, n_outputs, rng) -> model``; ``rng`` draws architecture choices. A factory
with a parameter ``input_shape`` (or ``**kwargs``) also gets the shape of one example,
e.g. ``(1, 28, 28)`` for MNIST images, so a CNN need not hard-code it; ``n_inputs`` is
that shape's product."""

DEFAULT_WEIGHT_DECAY: dict[str, float] = {"adamw": 1e-2}
"""Weight decay of a :class:`TorchTask` that sets none: torch's own AdamW default for
``"adamw"`` (with 0 it would be plain Adam), 0 for ``"sgd"`` and ``"adam"``."""


def takes_input_shape(factory: Callable[..., object]) -> bool:
    """True if ``factory`` accepts an ``input_shape`` keyword."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: call it the old way
        return False
    return any(p.name == "input_shape" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


@dataclass
class TorchTask(Task):
    """A task trained by :class:`TorchTrainee` (backend ``"torch"``).

    Attributes:
        info: Metadata, budget and target.
        data: Builds the data splits from an rng.
        model: Builds the model from input/output sizes and an rng (and, if it takes
            one, the ``input_shape`` of one example; see :data:`ModelFactory`).
        loss: ``"cross_entropy"`` or ``"mse"``.
        optimizer: A name in :data:`OPTIMIZERS` (``"sgd"`` is momentum 0.9, ``"adam"``,
            ``"adamw"``, ``"nesterov"``, ``"rmsprop"``, ``"adagrad"``), any
            ``torch.optim.Optimizer`` class (``torch.optim.RMSprop``) or a factory
            ``f(params, lr=..., weight_decay=...)`` such as
            ``functools.partial(torch.optim.SGD, momentum=0.95, nesterov=True)``.
        batch_size: Minibatch size.
        weight_decay: Optimizer weight decay; None (the default) takes
            :data:`DEFAULT_WEIGHT_DECAY`: 0.01 for ``"adamw"``, 0 otherwise.
    """

    backend: ClassVar[Backend] = "torch"

    info: TaskInfo
    data: DataFactory
    model: ModelFactory
    loss: str = "cross_entropy"
    optimizer: str | OptimizerFactory = "adam"
    batch_size: int = 64
    weight_decay: float | None = None

    def __post_init__(self) -> None:
        optimizer_factory(self.optimizer)  # an unknown name is refused here, not mid-run
        if self.weight_decay is None:
            self.weight_decay = DEFAULT_WEIGHT_DECAY.get(self.optimizer, 0.0)

    def probe_optimizer(self) -> torch.optim.Optimizer:
        """The task's optimizer over one throwaway parameter (to ask what it is)."""
        return make_optimizer(self.optimizer, [nn.Parameter(torch.zeros(1))], 1e-3)

    def build(self, seed: int, lr: float) -> TorchTrainee:
        """Data split, model init and batch order all follow from ``seed``."""
        data_seq, model_seq, torch_seq = np.random.SeedSequence(int(seed)).spawn(3)
        splits = self.data(np.random.default_rng(data_seq))
        shape = tuple(int(d) for d in splits.x_train.shape[1:])
        n_in = int(np.prod(shape))
        extra = {"input_shape": shape} if takes_input_shape(self.model) else {}
        # classes from every split: a small table's training rows may miss the last one
        labels = (splits.y_train, splits.y_val, splits.y_test)
        n_out = (
            int(max(y.max() for y in labels if len(y))) + 1 if self.loss == "cross_entropy" else 1
        )
        torch_seed = int(torch_seq.generate_state(1)[0])
        with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
            torch.manual_seed(torch_seed)
            model = self.model(n_in, n_out, np.random.default_rng(model_seq), **extra)
        return TorchTrainee(
            model,
            splits,
            loss=self.loss,
            optimizer=self.optimizer,
            lr=lr,
            batch_size=self.batch_size,
            seed=torch_seed,
            weight_decay=self.weight_decay,
        )
