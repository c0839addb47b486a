"""Turn what a training run reports into the agent's observation vector.

The environment and the deployed scheduler both call :class:`SignalTracker`, so what an
agent saw during meta-training is exactly what it sees in deployment. Every feature is
scale-free (ratios and logs), so one policy can serve tasks whose losses and learning
rates differ by orders of magnitude. Changing the layout means bumping
:data:`OBS_LAYOUT_VERSION`; agent cards record it and loading a mismatched agent fails.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

OBS_LAYOUT_VERSION = 1
"""Version of :data:`FEATURES`; bump on any change to what or how features are computed."""

FEATURES: tuple[str, ...] = (
    "log_lr",  # (log10(lr) + 3) / 2: about -1 at 1e-5, +1 at 1e-1
    "log_lr_ratio",  # ln(lr / initial lr)
    "log_train_loss_ratio",  # ln(train loss / reference loss)
    "train_loss_slope",  # ln(train loss / previous chunk's train loss)
    "train_loss_noise",  # std of ln(step losses) within the chunk
    "log_grad_norm_ratio",  # ln(grad norm / first grad norm); 0 when there are no gradients
    "log_update_ratio",  # (log10(|Δθ| / |θ|) + 3) / 2 over the chunk; 0 when unknown
    "update_cosine",  # cosine of consecutive chunk updates; 0 when unknown
    "log_val_loss_ratio",  # ln(val loss / initial val loss)
    "val_loss_slope",  # ln(val loss / previous val loss)
    "val_metric",  # headline validation metric (higher is better), clipped to [-1, 1]
    "val_metric_gap",  # val metric minus the best val metric so far (<= 0)
    "progress",  # optimizer steps done / total steps
    "prev_action",  # the previous action (log2 LR multiplier in [-1, 1])
)

FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "lr": ("log_lr", "log_lr_ratio"),
    "train_loss": ("log_train_loss_ratio", "train_loss_slope", "train_loss_noise"),
    "gradient": ("log_grad_norm_ratio", "log_update_ratio", "update_cosine"),
    "validation": ("log_val_loss_ratio", "val_loss_slope", "val_metric", "val_metric_gap"),
    "time": ("progress", "prev_action"),
}
""":data:`FEATURES` by the signal they read; the unit of the feature ablations."""


def feature_indices(names: Sequence[str]) -> list[int]:
    """Indices in :data:`FEATURES` of feature or group names (see :data:`FEATURE_GROUPS`).

    Raises:
        ValueError: A name is neither a feature nor a group.
    """
    indices: set[int] = set()
    for name in names:
        members = FEATURE_GROUPS.get(name, (name,))
        unknown = [m for m in members if m not in FEATURES]
        if unknown:
            raise ValueError(
                f"unknown feature or feature group {name!r}; groups: "
                f"{', '.join(FEATURE_GROUPS)}; features: {', '.join(FEATURES)}"
            )
        indices.update(FEATURES.index(m) for m in members)
    return sorted(indices)


OBS_BOUND = 10.0
"""Every feature is clipped to ``[-OBS_BOUND, OBS_BOUND]``."""

LOSS_FLOOR = 1e-8
"""Losses are floored here before logs (a tiny validation set can reach loss 0)."""


@dataclass(frozen=True)
class Feedback:
    """One decision point's report from a run, in raw (task-scaled) units.

    Attributes:
        lr: Learning rate that was in use during the chunk.
        train_losses: Training loss of each step in the chunk.
        grad_norm: Gradient norm at the chunk's last step (NaN if none).
        update_ratio: ``|Δθ| / |θ|`` over the chunk (NaN if unknown).
        update_cosine: Cosine of this and the previous chunk's update (NaN if unknown).
        val_loss: Validation loss after the chunk (None if not evaluated).
        val_metric: Validation metric after the chunk (None if not evaluated).
        progress: Fraction of the step budget done, in [0, 1].
        prev_action: The action that set this chunk's learning rate.
    """

    lr: float
    train_losses: Sequence[float]
    grad_norm: float = math.nan
    update_ratio: float = math.nan
    update_cosine: float = math.nan
    val_loss: float | None = None
    val_metric: float | None = None
    progress: float = 0.0
    prev_action: float = 0.0


def log_floored(x: float) -> float:
    """``ln(max(x, LOSS_FLOOR))``: the log of a loss that may reach 0."""
    return math.log(max(x, LOSS_FLOOR))


def _floor_loss(x: float) -> float:
    # ``max(x, LOSS_FLOOR)`` that keeps NaN (as np.maximum does; max() would drop it).
    return x if x != x or x > LOSS_FLOOR else LOSS_FLOOR


def _finite_or(x: float | None, default: float) -> float:
    return default if x is None or not math.isfinite(x) else float(x)


def bound(x: float) -> float:
    """NaN to 0, then clip to ``[-OBS_BOUND, OBS_BOUND]`` (infinities land on the bounds)."""
    if x != x:
        return 0.0
    return OBS_BOUND if x > OBS_BOUND else -OBS_BOUND if x < -OBS_BOUND else x


class SignalTracker:
    """Keeps the reference values of one run and builds observations from feedback.

    Call :meth:`reset` at the start of a run, then :meth:`observe` at every decision.
    """

    def __init__(self) -> None:
        self.initial_lr = 1.0
        self._loss_ref: float | None = None
        self._prev_loss: float | None = None
        self._grad_ref: float | None = None
        self._val_ref: float | None = None
        self._prev_val: float | None = None
        self._val_metric = 0.0
        self._best_metric = -math.inf

    @property
    def size(self) -> int:
        """Length of the observation vector."""
        return len(FEATURES)

    def reset(
        self, lr: float, val_loss: float | None = None, val_metric: float | None = None
    ) -> np.ndarray:
        """Start a run at learning rate ``lr``; returns the first observation."""
        self.__init__()
        self.initial_lr = float(lr)
        if val_loss is not None and math.isfinite(val_loss):
            self._val_ref = self._prev_val = log_floored(val_loss)
            self._loss_ref = self._val_ref  # train loss starts near val loss
        obs = np.zeros(self.size, dtype=np.float32)
        obs[0] = (math.log10(lr) + 3.0) / 2.0
        if val_metric is not None and math.isfinite(val_metric):
            self._val_metric = self._best_metric = float(val_metric)
            obs[10] = val_metric
        return np.clip(obs, -OBS_BOUND, OBS_BOUND)

    def state_dict(self) -> dict[str, float | None]:
        """The reference values, as plain floats (``None`` where not yet set)."""
        return {k.lstrip("_"): v for k, v in vars(self).items()}

    def load_state_dict(self, state: dict[str, float | None]) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises:
            ValueError: a key is missing or unknown, or a value is not what
                :meth:`state_dict` writes (e.g. a non-positive ``initial_lr``); nothing
                is changed then.
        """
        from lrgym.io.validate import as_number, real_number

        expected = set(self.state_dict())
        if not isinstance(state, dict) or set(state) != expected:
            got = sorted(state) if isinstance(state, dict) else state
            raise ValueError(f"tracker state must have the keys {sorted(expected)}, got {got!r}")
        values: dict[str, float | None] = {}
        for key, value in state.items():
            name = f"tracker.{key}"
            if key == "initial_lr":
                values[key] = real_number(name, value, above=0)
            elif key == "grad_ref":
                values[key] = None if value is None else real_number(name, value, above=0)
            elif key in ("val_metric", "best_metric"):
                values[key] = float(as_number(name, value))
            else:
                values[key] = None if value is None else float(as_number(name, value))
        if math.isnan(values["val_metric"]) or math.isnan(values["best_metric"]):
            raise ValueError("tracker.val_metric and tracker.best_metric must not be NaN")
        for key, value in values.items():
            setattr(self, key if key == "initial_lr" else f"_{key}", value)

    def observe(self, fb: Feedback) -> np.ndarray:
        """The observation after one chunk of training (see :data:`FEATURES`)."""
        # Plain floats and ``math`` throughout: for ~25 losses and 14 features NumPy's
        # per-call overhead dominates (the deployed scheduler pays this every decision).
        floored = [_floor_loss(float(x)) for x in fb.train_losses]
        logs = [math.log(x) for x in floored]  # NaN and inf pass through, as in NumPy
        n = len(logs)
        loss = math.log(max(sum(floored) / n, LOSS_FLOOR)) if n else 0.0  # log of mean loss
        if self._loss_ref is None:
            self._loss_ref = loss
        prev_loss = self._prev_loss if self._prev_loss is not None else self._loss_ref
        self._prev_loss = loss

        noise = 0.0
        if n > 1 and all(map(math.isfinite, logs)):
            mean = sum(logs) / n
            noise = math.sqrt(sum([(v - mean) ** 2 for v in logs]) / n)  # np.std (ddof=0)

        grad = 0.0
        if math.isfinite(fb.grad_norm) and fb.grad_norm > 0:
            self._grad_ref = self._grad_ref or fb.grad_norm
            grad = math.log(fb.grad_norm / self._grad_ref)

        update = 0.0
        if math.isfinite(fb.update_ratio) and fb.update_ratio > 0:
            update = (math.log10(fb.update_ratio) + 3.0) / 2.0

        val_ratio = val_slope = 0.0
        if fb.val_loss is not None and math.isfinite(fb.val_loss):
            val = log_floored(fb.val_loss)
            if self._val_ref is None:
                self._val_ref = self._prev_val = val
            val_ratio, val_slope = val - self._val_ref, val - self._prev_val
            self._prev_val = val
        if fb.val_metric is not None and math.isfinite(fb.val_metric):
            self._val_metric = float(fb.val_metric)
            self._best_metric = max(self._best_metric, self._val_metric)

        lr = max(fb.lr, 1e-30)
        values = (
            (math.log10(lr) + 3.0) / 2.0,
            math.log(lr / self.initial_lr),
            loss - self._loss_ref,
            loss - prev_loss,
            noise,
            grad,
            update,
            _finite_or(fb.update_cosine, 0.0),
            val_ratio,
            val_slope,
            max(-1.0, min(1.0, self._val_metric)),
            self._val_metric - self._best_metric if math.isfinite(self._best_metric) else 0.0,
            fb.progress,
            fb.prev_action,
        )
        return np.array([bound(float(v)) for v in values], dtype=np.float32)


_NUMPY_FLOATS = (torch.float32, torch.float64)


def _numpy_views(tensors: Sequence[torch.Tensor]) -> list[np.ndarray] | None:
    """Zero-copy NumPy views of CPU float32/float64 tensors; None if any is not one.

    For the small reductions below, NumPy's per-call overhead is a fraction of torch's;
    other tensors (GPU, half precision, sparse, ...) take the torch path instead.
    """
    views = []
    for t in tensors:
        if not t.is_cpu or t.dtype not in _NUMPY_FLOATS:
            return None
        try:
            views.append(t.detach().numpy())
        except (TypeError, RuntimeError):  # e.g. sparse layout, negative bit
            return None
    return views


class UpdateTracker:
    """Measures parameter updates between decisions: ``|Δθ| / |θ|`` and update cosine.

    Shared by the torch trainee and the deployed scheduler so both report identical
    numbers for identical runs. The parameters are snapshotted into preallocated buffers
    that take turns (start, end, update, previous update): snapshots allocated afresh at
    every decision slowed the training steps around them by about 1.5% on DigitsMLP
    (``benchmarks/env_overhead.py``). CPU float parameters are read through zero-copy
    NumPy views (torch's per-op overhead, at one call per decision, was ~0.3% of a
    DigitsMLP run); other parameters (GPU, half precision) through torch.

    Args:
        params: The parameters to watch (e.g. every tensor in an optimizer's groups).
    """

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        self.params = list(params)
        self._numpy = _numpy_views(self.params) is not None
        self._start = self._flat()
        empty_like = np.empty_like if self._numpy else torch.empty_like
        self._end = empty_like(self._start)
        self._update = empty_like(self._start)
        self._prev_update = empty_like(self._start)
        self._has_prev = False
        self._prev_norm = 0.0

    @torch.no_grad()
    def _flat(self, out: torch.Tensor | np.ndarray | None = None) -> torch.Tensor | np.ndarray:
        """Every parameter, flattened into one vector (a copy; into ``out`` if given)."""
        if self._numpy:
            views = [v.reshape(-1) for v in _numpy_views(self.params)]
            return np.concatenate(views, out=out) if views else np.zeros(0, np.float32)
        return torch.cat([p.detach().reshape(-1) for p in self.params], out=out)

    def restart(self) -> None:
        """Start a new window at the parameters' current values, with no previous update
        (after they were replaced outside training, e.g. by loading weights)."""
        self._start = self._flat(out=self._start)
        self._has_prev, self._prev_norm = False, 0.0

    def state_dict(self) -> dict[str, torch.Tensor | float | None]:
        """The window's start snapshot and the previous update (None before the first
        measured window), as tensors so that a ``torch.load(weights_only=True)`` reload
        works, and the previous update's norm."""

        def tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
            return torch.from_numpy(x.copy()) if isinstance(x, np.ndarray) else x.clone()

        return {
            "start": tensor(self._start),
            "prev_update": tensor(self._prev_update) if self._has_prev else None,
            "prev_norm": self._prev_norm,
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor | float | None]) -> None:
        """Restore what :meth:`state_dict` returned, into this tracker's buffers.

        Raises:
            ValueError: a key is missing or unknown, a snapshot is not a float tensor of
                this tracker's size (e.g. saved for another model), or the norm is
                negative; nothing is changed then.
        """
        from lrgym.io.validate import as_number

        keys = {"start", "prev_update", "prev_norm"}
        if not isinstance(state, dict) or set(state) != keys:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"updates state must have the keys {sorted(keys)}, got {got}")
        n = self._start.shape[0]

        def vector(key: str, value: object) -> torch.Tensor:
            if not (
                isinstance(value, torch.Tensor)
                and value.is_floating_point()
                and tuple(value.shape) == (n,)
            ):
                got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else value
                raise ValueError(
                    f"updates.{key} must be a float tensor of {n} values (one per element of "
                    f"the optimizer's parameters), got {got!r}: was it saved for another model?"
                )
            return value

        start = vector("start", state["start"])
        prev = None if state["prev_update"] is None else vector("prev_update", state["prev_update"])
        norm = float(as_number("updates.prev_norm", state["prev_norm"]))
        if norm < 0:
            raise ValueError(f"updates.prev_norm must not be negative, got {norm!r}")
        for buffer, value in ((self._start, start), (self._prev_update, prev)):
            if value is None:
                continue
            if isinstance(buffer, np.ndarray):
                buffer[...] = value.detach().to("cpu", torch.float64).numpy()
            else:
                buffer.copy_(value)
        self._has_prev, self._prev_norm = prev is not None, norm if prev is not None else 0.0

    @torch.no_grad()
    def measure(self) -> tuple[float, float]:
        """``(update_ratio, update_cosine)`` since the last call; starts the next window.

        The cosine is NaN for the first window; the ratio is NaN without parameters.
        """
        if self._start.shape[0] == 0:
            return math.nan, math.nan
        end = self._flat(out=self._end)
        if self._numpy:
            update = np.subtract(end, self._start, out=self._update)
            pairs = [(update, update), (self._start, self._start)]
            if self._has_prev:
                pairs.append((update, self._prev_update))
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging run: inf/NaN
                values = [float(np.dot(a, b)) for a, b in pairs]
        else:
            update = torch.sub(end, self._start, out=self._update)
            parts = [torch.dot(update, update), torch.dot(self._start, self._start)]
            if self._has_prev:
                parts.append(torch.dot(update, self._prev_update))
            values = torch.stack(parts).tolist()  # one device sync for all three numbers
        norm, start_norm = math.sqrt(values[0]), math.sqrt(values[1])
        ratio = norm / max(start_norm, 1e-12)
        cosine = values[2] / max(norm * self._prev_norm, 1e-12) if self._has_prev else math.nan
        # the buffers take turns: this end starts the next window, this update is the
        # next one's previous update
        self._start, self._end = end, self._start
        self._prev_update, self._update = update, self._prev_update
        self._has_prev, self._prev_norm = True, norm
        return ratio, cosine


def grad_norm(params: Sequence[torch.Tensor]) -> float:
    """Global L2 norm of the parameters' current gradients (NaN if none have one)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return math.nan
    views = _numpy_views(grads)
    if views is not None:
        return math.sqrt(sum([float(np.vdot(v, v)) for v in views]))  # vdot flattens
    return float(torch.nn.utils.get_total_norm(grads))
