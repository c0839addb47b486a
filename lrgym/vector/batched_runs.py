"""K training runs of one torch task, trained as one stacked computation.

Each run (a *slot*) is built by the task's own :meth:`~lrgym.backends.torch_trainee.TorchTask.build`
(same data split, initialisation and minibatch order as the per-run trainee), then its
parameters are stacked with the other slots' and trained with ``torch.func``:
``vmap(grad_and_value(functional_call(...)))`` gives every slot's loss and gradients in
one call, and the optimizer update runs on the stacked tensors with one learning rate
(and momentum, weight decay) per slot. Convolutional models take another path
(:attr:`BatchedRuns.path` ``"grouped"``): :mod:`lrgym.vector.stacked` runs the slots'
convolutions as grouped channels-last convolutions, a cache-sized chunk of slots per
pass, 2.2-2.6x faster than vmap at K=64 (``benchmarks/batched_conv.py --engine``).

The optimizer update runs on the stacked tensors with one set of hyperparameters per
slot (:mod:`lrgym.vector.slot_optim`); which tasks can run at all is
:mod:`lrgym.vector.batchable`'s check.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from lrgym.backends.torch_trainee import TorchTask, TorchTrainee, regression_metrics
from lrgym.core.trainee import EvalReport, TrainReport
from lrgym.vector.batchable import NotBatchable, check_batchable, optimizer_kind
from lrgym.vector.compile_policy import compile_isolated, resolve_compile
from lrgym.vector.slot_optim import SlotOptimizer, StackedOptimizer
from lrgym.vector.stacked import (
    CACHE_BYTES,
    NotStackable,
    has_convolutions,
    largest_output_bytes,
    slots_per_pass,
    stacked_forward,
)


class CompiledOrEager:
    """``torch.compile(fn)``, falling back to ``fn`` (with one warning) if compiling fails.

    Inductor on CPU needs a C++ compiler and fuses the many small passes of a batched
    step into a few kernels (about 2.5x faster here for an MLP's gradients); a machine
    without a compiler, or a model torch cannot compile, keeps the eager path.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self._compiled: Callable[..., Any] | None = compile_isolated(fn)

    def __call__(self, *args: Any) -> Any:
        if self._compiled is not None:
            try:
                return self._compiled(*args)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: run eagerly
                warnings.warn(
                    f"torch.compile failed ({type(exc).__name__}: {str(exc)[:200]}); the "
                    "batched runs continue uncompiled (install a C++ compiler, or leave "
                    "compile off)",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._compiled = None
        return self.fn(*args)


def _per_slot_cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Every slot's mean cross-entropy, (K,), from outputs (K, B, classes) and targets
    (K, B): one call (``vmap`` over the per-slot loss cost 6% of a DigitsCNN step)."""
    return nn.functional.cross_entropy(out.transpose(1, 2), y, reduction="none").mean(1)


def _stacked_grad(
    forward: Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    chunk: int,
    params: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Every slot's gradients and loss (as ``vmap(grad_and_value(...))`` gives them)
    through a stacked forward pass: one backward pass of the sum of the slots' losses
    per ``chunk`` slots, since each slot's parameters reach only its own loss.

    Chunks keep a pass's activations within the core's cache: K=64 DigitsCNN runs in
    one pass were slower per run than 8 at a time (measured)."""
    grads = {name: torch.empty_like(p) for name, p in params.items()}
    losses = torch.empty(x.shape[0], dtype=x.dtype if x.is_floating_point() else torch.float32)
    for start in range(0, x.shape[0], chunk):
        part = slice(start, start + chunk)
        leaves = {name: p[part].detach().requires_grad_() for name, p in params.items()}
        with torch.enable_grad():
            loss = loss_fn(forward(leaves, x[part]), y[part])
            for (name, _), g in zip(
                leaves.items(), torch.autograd.grad(loss.sum(), list(leaves.values())), strict=True
            ):
                grads[name][part] = g
        losses[part] = loss.detach()
    return grads, losses


class BatchedRuns:
    """K runs of one :class:`~lrgym.backends.torch_trainee.TorchTask`, trained together.

    Every slot has its own data split, initialisation, minibatch order, learning rate
    and optimizer state. A slot whose training loss turns non-finite stops for the rest
    of the chunk (as :meth:`TorchTrainee.train` does) and touches no other slot.

    Args:
        task: The task; every run must have the same architecture and data shapes.
        num_slots: K, the number of runs.
        compile: Compile the gradient and optimizer steps with ``torch.compile`` (a
            one-off cost of about 10-30 s per task and process, then several times
            faster steps; equal to the eager steps within float tolerance, tested).
            None (the default) compiles where a C++ compiler is present
            (:func:`~lrgym.vector.compile_policy.resolve_compile`).

    Attributes:
        path: ``"vmap"`` (``torch.func.vmap`` over the model) or ``"grouped"`` (a
            convolutional model through :func:`~lrgym.vector.stacked.stacked_forward`);
            None until the first :meth:`load`.
        grad_chunk: Slots per forward/backward pass (all of them on the vmap path).

    Raises:
        NotBatchable: The task's model or optimizer is not supported.
    """

    def __init__(self, task: TorchTask, num_slots: int, compile: bool | None = None) -> None:
        check_batchable(task)
        self.task = task
        self.num_slots = int(num_slots)
        self.compile = resolve_compile(compile)
        self.optimizers: list[SlotOptimizer | None] = [None] * self.num_slots
        self._template: nn.Module | None = None
        self._names: list[str] = []
        self.params: dict[str, torch.Tensor] = {}
        self._loaded = np.zeros(self.num_slots, dtype=bool)
        self.path: str | None = None
        self.grad_chunk = self.num_slots
        self._example_bytes = 0

    # --- slots ----------------------------------------------------------------------------

    def load(self, slot: int, seed: int, lr: float) -> SlotOptimizer:
        """Start a fresh run in ``slot`` (as ``task.build(seed, lr)`` would); returns its
        optimizer-like hyperparameter holder."""
        trainee = self.task.build(seed, lr)
        kind = optimizer_kind(trainee.optimizer)
        if self._template is None:
            self._init_storage(trainee, kind)
        self._check_same_shapes(trainee)
        for name, p in trainee.model.named_parameters():
            self.params[name][slot] = p.detach()
        self._optimizer.reset(slot)
        for split, (x, y) in trainee.tensors.items():
            self._x[split][slot] = x
            self._y[split][slot] = y
        self._generators[slot] = trainee.batch_generator
        self._order[slot] = torch.randperm(self._n_train, generator=trainee.batch_generator)
        self._cursor[slot] = 0
        self._start[slot] = self._flat(torch.tensor([slot]))[0]
        self._has_prev[slot] = False
        group = {k: v for k, v in trainee.optimizer.param_groups[0].items() if k != "params"}
        optimizer = self.optimizers[slot] = SlotOptimizer(group)
        self._loaded[slot] = True
        trainee.close()
        return optimizer

    def _init_storage(self, trainee: TorchTrainee, kind: str) -> None:
        k = self.num_slots
        self.kind = kind
        self.loss_name = trainee.loss_name
        self.batch_size = trainee.batch_size
        self._template = copy.deepcopy(trainee.model).to("meta")
        self._names = [n for n, _ in trainee.model.named_parameters()]
        self.params = {
            n: torch.zeros((k, *p.shape), dtype=p.dtype)
            for n, p in trainee.model.named_parameters()
        }
        self._optimizer = StackedOptimizer(kind, self.params)
        self._x = {
            s: torch.zeros((k, *x.shape), dtype=x.dtype) for s, (x, _) in trainee.tensors.items()
        }
        self._y = {
            s: torch.zeros((k, *y.shape), dtype=y.dtype) for s, (_, y) in trainee.tensors.items()
        }
        self._n_train = int(trainee.tensors["train"][0].shape[0])
        if self._n_train < self.batch_size:
            raise NotBatchable("the training split is smaller than one batch")
        self._generators: list[torch.Generator | None] = [None] * k
        self._order = torch.zeros((k, self._n_train), dtype=torch.long)
        self._cursor = np.zeros(k, dtype=np.int64)
        n_flat = sum(p[0].numel() for p in self.params.values())
        self._start = torch.zeros((k, n_flat))
        self._prev_update = torch.zeros((k, n_flat))
        self._prev_norm = torch.zeros(k, dtype=torch.float64)
        self._has_prev = torch.zeros(k, dtype=torch.bool)

        loss_fn = trainee.loss_fn
        if self.loss_name == "cross_entropy":
            # the same mean cross-entropy with the class dimension first: torch's CPU
            # log_softmax over a short last dimension is ~8x slower (forward + backward)
            def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                return nn.functional.cross_entropy(out.t().unsqueeze(0), y.unsqueeze(0))

        def loss_of(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
            return loss_fn(functional_call(self._template, params, (x,)), y)

        self._grad = vmap(grad_and_value(loss_of))
        self._forward = vmap(lambda params, x: functional_call(self._template, params, (x,)))
        self.path = "vmap"
        self.grad_chunk = self.num_slots
        self._example_bytes = 0
        if has_convolutions(self._template):
            try:  # grouped convolutions: 2.2-2.6x vmap's speed (batched_conv.py)
                self._forward = stacked_forward(self._template)
                example = trainee.tensors["train"][0][0]
                self._example_bytes = largest_output_bytes(self._template, example)
                self.grad_chunk = slots_per_pass(self._example_bytes, self.batch_size)
                per_slot = vmap(loss_fn)
                if self.loss_name == "cross_entropy":
                    per_slot = _per_slot_cross_entropy
                self._grad = partial(_stacked_grad, self._forward, per_slot, self.grad_chunk)
                self.path = "grouped"
            except NotStackable:
                pass  # a model the translation does not read: vmap serves it
        self._forward_all = self._forward
        if self.compile:
            self._optimizer.step_all = CompiledOrEager(self._optimizer.step_every_slot)
            if self.path == "vmap":  # compiled grouped convolutions measured slower
                self._grad = CompiledOrEager(self._grad)
                self._forward_all = CompiledOrEager(self._forward)  # every slot's validation
        self._loss_fn = trainee.loss_fn

    def _check_same_shapes(self, trainee: TorchTrainee) -> None:
        shapes = {n: tuple(p.shape) for n, p in trainee.model.named_parameters()}
        want = {n: tuple(p.shape[1:]) for n, p in self.params.items()}
        if shapes != want:
            raise NotBatchable(
                "runs of this task differ in architecture (e.g. a width drawn per seed)"
            )
        for split, (x, y) in trainee.tensors.items():
            if x.shape != self._x[split].shape[1:] or y.shape != self._y[split].shape[1:]:
                raise NotBatchable(f"runs of this task differ in their {split} split's shape")

    def _flat(self, slots: torch.Tensor | None = None) -> torch.Tensor:
        """The parameters of ``slots`` (default: all), one flat row each."""
        if slots is None:
            return torch.cat([self.params[n].flatten(1) for n in self._names], 1)
        return torch.cat([self.params[n][slots].flatten(1) for n in self._names], 1)

    # --- training ------------------------------------------------------------------------

    def _next_indices(self, running: np.ndarray) -> torch.Tensor:
        """Every slot's next minibatch indices, shape (K, B); only ``running`` slots
        advance (and reshuffle at the end of an epoch, from their own generator)."""
        b = self.batch_size
        for slot in np.flatnonzero(running & (self._cursor + b > self._n_train)):
            self._order[slot] = torch.randperm(self._n_train, generator=self._generators[slot])
            self._cursor[slot] = 0
        offsets = torch.as_tensor(np.minimum(self._cursor, self._n_train - b))[:, None]
        self._cursor += np.where(running, b, 0)
        return torch.gather(self._order, 1, offsets + torch.arange(b)[None, :])

    def _hyper(self, key: str, index: int | None = None) -> torch.Tensor:
        """One hyperparameter of every slot as a (K,) float64 tensor (0 for empty slots)."""
        values = []
        for opt in self.optimizers:
            if opt is None:
                values.append(0.0)
                continue
            v = opt.param_groups[0][key]
            values.append(float(v[index] if index is not None else v))
        return torch.tensor(values, dtype=torch.float64)

    def train(self, steps: int | np.ndarray) -> list[TrainReport]:
        """Train every slot for its number of ``steps`` (an int for all, or one per slot;
        0 leaves a slot untouched).

        Returns one :class:`~lrgym.core.trainee.TrainReport` per slot (an empty one for an
        untouched slot), with the numbers :meth:`TorchTrainee.train` reports: a slot
        whose loss turns non-finite stops there, keeping its parameters.
        """
        k = self.num_slots
        budget = np.broadcast_to(np.asarray(steps, dtype=np.int64), (k,)) * self._loaded
        n_steps = int(budget.max(initial=0))
        running = budget > 0
        losses = np.full((n_steps, k), math.nan)
        counts = np.zeros(k, dtype=np.int64)
        norms = np.full(k, math.nan)
        first_row = torch.arange(k)[:, None] * self._n_train  # of each slot, in the flat view
        x_train, y_train = (t.flatten(0, 1) for t in (self._x["train"], self._y["train"]))
        hyper = self._hyperparameters()  # decisions change them between chunks only
        for i in range(n_steps):
            running &= budget > i
            if not running.any():
                break
            # index_select on the flat (K * n, ...) view: several times faster than
            # advanced indexing with a (rows, idx) pair
            idx = (self._next_indices(running) + first_row).reshape(-1)
            x = x_train.index_select(0, idx).view(k, -1, *x_train.shape[1:])
            y = y_train.index_select(0, idx).view(k, -1, *y_train.shape[1:])
            grads, loss = self._grad(self.params, x, y)
            losses[i] = loss.numpy()
            counts += running
            running &= np.isfinite(losses[i])  # a non-finite loss stops that slot
            last = running & (budget == i + 1)
            if last.any():
                sq = sum(g.reshape(k, -1).double().pow(2).sum(1) for g in grads.values())
                norms[last] = np.sqrt(sq.numpy())[last]
            self._optimizer.update(grads, torch.as_tensor(running), hyper)
        stepped = np.flatnonzero(counts)
        ratios, cosines = np.full(k, math.nan), np.full(k, math.nan)
        if len(stepped):
            ratios[stepped], cosines[stepped] = self._measure(stepped)
        return [
            TrainReport(
                int(counts[slot]),
                tuple(losses[: counts[slot], slot].tolist()),
                norms[slot],
                ratios[slot],
                cosines[slot],
            )
            if counts[slot]
            else TrainReport(0, ())
            for slot in range(k)
        ]

    def _hyperparameters(self) -> dict[str, torch.Tensor]:
        """Every slot's hyperparameters as (K,) float64 tensors."""
        hyper = {"lr": self._hyper("lr"), "wd": self._hyper("weight_decay")}
        if self.kind in ("sgd", "nesterov", "rmsprop"):
            hyper["momentum"] = self._hyper("momentum")
        if self.kind in ("adam", "adamw"):
            hyper["beta1"], hyper["beta2"] = self._hyper("betas", 0), self._hyper("betas", 1)
        if self.kind == "rmsprop":
            hyper["alpha"] = self._hyper("alpha")
        if self.kind not in ("sgd", "nesterov"):
            hyper["eps"] = self._hyper("eps")
        return hyper

    def _measure(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``|Δθ| / |θ|`` and update cosine of ``slots`` since their last measure (as
        :class:`~lrgym.core.signals.UpdateTracker` per run; NaN cosine after a fresh start)."""
        idx = torch.as_tensor(slots, dtype=torch.long)
        every = len(slots) == self.num_slots  # the usual case: no gathers, no scatters
        end = self._flat(None if every else idx)
        start = self._start if every else self._start[idx]
        prev = self._prev_update if every else self._prev_update[idx]
        update = end - start
        norm = torch.linalg.vector_norm(update, dim=1).double()
        start_norm = torch.linalg.vector_norm(start, dim=1).double()
        dot = torch.linalg.vecdot(update, prev).double()
        cosine = dot / torch.clamp(norm * self._prev_norm[idx], min=1e-12)
        cosine[~self._has_prev[idx]] = math.nan
        if every:
            self._start, self._prev_update = end, update
        else:
            self._start[idx], self._prev_update[idx] = end, update
        self._prev_norm[idx] = norm
        self._has_prev[idx] = True
        return (norm / torch.clamp(start_norm, min=1e-12)).numpy(), cosine.numpy()

    # --- evaluation ----------------------------------------------------------------------

    def _forward_in_passes(
        self, forward: Callable[..., torch.Tensor], params: dict[str, torch.Tensor], x: torch.Tensor
    ) -> torch.Tensor:
        """``forward(params, x)``, on the grouped path in cache-sized passes: training's
        ``grad_chunk`` slots at a time, over pieces of the rows whose largest layer output
        fits in twice :data:`~lrgym.vector.stacked.CACHE_BYTES` (nothing is kept for a
        backward pass). DigitsCNN's validation (359 rows) measured 1.3-2x faster per
        example this way than one slot over all its rows at a time."""
        if not self._example_bytes:
            return forward(params, x)
        slots = min(self.grad_chunk, x.shape[0])
        rows = max(1, 2 * CACHE_BYTES // (self._example_bytes * slots))
        outs = []
        for i in range(0, x.shape[0], slots):
            chunk = {n: p[i : i + slots] for n, p in params.items()}
            pieces = [
                forward(chunk, x[i : i + slots, j : j + rows]) for j in range(0, x.shape[1], rows)
            ]
            outs.append(torch.cat(pieces, dim=1))
        return torch.cat(outs)

    @torch.no_grad()
    def evaluate(self, split: str = "val", slots: Sequence[int] | None = None) -> list[EvalReport]:
        """Loss and headline metric (accuracy or R²) of ``slots`` (default: all) on ``split``."""
        if slots is None:
            y = self._y[split]
            out = self._forward_in_passes(self._forward_all, self.params, self._x[split])
        else:
            index = torch.as_tensor(list(slots), dtype=torch.long)
            y = self._y[split][index]
            params = {n: p[index] for n, p in self.params.items()}
            out = self._forward_in_passes(self._forward, params, self._x[split][index])
        if self.loss_name == "cross_entropy":  # every slot's loss and accuracy in one call
            losses = nn.functional.cross_entropy(out.transpose(1, 2), y, reduction="none")
            accs = (out.argmax(dim=2) == y).float().mean(dim=1)
            return [
                EvalReport(loss, acc, {"accuracy": acc})
                for loss, acc in zip(losses.mean(dim=1).tolist(), accs.tolist(), strict=True)
            ]
        reports = []
        for o, t in zip(out, y, strict=True):
            r2 = regression_metrics(o, t)["r2"]
            reports.append(EvalReport(float(self._loss_fn(o, t)), r2, {"r2": r2}))
        return reports


__all__ = ["BatchedRuns", "CompiledOrEager"]
