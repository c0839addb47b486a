"""Held-out tasks added in round 24, for a wider judgement than the first five.

Nothing here was trained on, and no agent had been evaluated on these tasks when they
were registered and their targets calibrated: they stand for what users bring. Each
brings what the first five lack: new data (hand-written generators that neither the
meta-train tasks nor the procedural families use), new optimizers (Nesterov SGD,
Adagrad, RMSprop, AdamW on a deeper net) and the dynamics that broke earlier agents:

========================== ============================================ ==============
id                         what it is                                   dynamics
========================== ============================================ ==============
SparseParityNesterov-v0    4-bit parity hidden among 20 ±1 bits, MLP    slow start,
                           128, Nesterov SGD                            then take-off
NoisyLinearAdagrad-v0      linear teacher under heavy noise (R² about   plateau near
                           0.2 at best), MLP 64-64, Adagrad             the floor
SineFitRMSprop-v0          1-D sum of sines, MLP 64-64, RMSprop         slow, steady
TwoSpiralsAdamW-v0         two interleaved spirals, MLP 4×64, AdamW     long, curved
========================== ============================================ ==============

They form the ``held-out`` split with the first five, and the group ``held-out-fresh``
on their own (``--tasks held-out-fresh``), so they can be reported beside the others;
both are registered in :mod:`lrgym.tasks` (this module is imported only when one of
them is made, as it imports torch).
Targets follow :mod:`lrgym.tasks.builtin`'s rule (0.97 × the best static baseline's
median final validation metric at the default LR, seeds 100-104, via
``python benchmarks/calibrate_targets.py --tasks held-out-fresh --workers 1``),
measured once on 2026-12-06, before any learned agent was evaluated on them. The
medians it printed, for the record (accuracy or R²):

* SparseParityNesterov: constant, cosine, cyclic, OneCycle 1.000; step 0.990;
  exponential 0.573; plateau 0.501 (annealing early stalls the slow start).
* NoisyLinearAdagrad: exponential 0.165, cyclic 0.160, OneCycle 0.160, step 0.160,
  cosine 0.159, plateau 0.158, constant 0.122.
* SineFitRMSprop: OneCycle 0.977, constant 0.931, plateau 0.916, cosine 0.907, cyclic
  0.904, step 0.857, exponential 0.801.
* TwoSpiralsAdamW: constant 0.985, plateau 0.980, cosine 0.970, OneCycle 0.970, cyclic
  0.955, step 0.930, exponential 0.920.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from lrgym.backends.torch_trainee import TorchTask
from lrgym.core.task import ArraySplits, TaskInfo
from lrgym.tasks import models
from lrgym.tasks.data import split_arrays

# --- data: every array follows from the run's rng -----------------------------------


def sparse_parity(
    rng: np.random.Generator, n: int = 4000, bits: int = 20, k: int = 4
) -> ArraySplits:
    """Parity of ``k`` of ``bits`` random ±1 inputs (which ``k`` is drawn per run)."""
    x = rng.choice(np.array([-1.0, 1.0], np.float32), size=(n, bits))
    hidden = rng.choice(bits, size=k, replace=False)
    y = ((x[:, hidden] < 0).sum(1) % 2).astype(np.int64)
    return split_arrays(x, y, rng, regression=False, standardize=False)


def noisy_linear(
    rng: np.random.Generator, n: int = 2000, d: int = 20, snr: float = 0.25
) -> ArraySplits:
    """A linear teacher whose signal has ``snr`` times the noise's variance."""
    x = rng.standard_normal((n, d)).astype(np.float32)
    signal = x @ rng.standard_normal(d)
    noise = rng.standard_normal(n) * np.sqrt(signal.var() / snr)
    return split_arrays(x, signal + noise, rng, regression=True)


def sum_of_sines(rng: np.random.Generator, n: int = 2000) -> ArraySplits:
    """``y = sin(a x) + 0.5 sin(b x + c)`` on ``x`` in [-π, π], small noise (a, b, c drawn)."""
    a, b = rng.uniform(1.0, 3.0), rng.uniform(4.0, 7.0)
    c = rng.uniform(0.0, 2 * np.pi)
    x = rng.uniform(-np.pi, np.pi, size=(n, 1)).astype(np.float32)
    y = np.sin(a * x[:, 0]) + 0.5 * np.sin(b * x[:, 0] + c) + 0.05 * rng.standard_normal(n)
    return split_arrays(x, y, rng, regression=True)


def two_spirals(rng: np.random.Generator, n: int = 2000, turns: float = 3.0) -> ArraySplits:
    """Two interleaved spirals in the plane, one class each, with a little noise."""
    t = np.sqrt(rng.uniform(0.0, 1.0, size=n)) * turns * 2 * np.pi
    label = rng.integers(0, 2, size=n)
    angle = t + np.pi * label
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], 1) / (turns * 2 * np.pi)
    x = (x + 0.02 * rng.standard_normal(x.shape)).astype(np.float32)
    return split_arrays(x, label, rng, regression=False)


# --- tasks ----------------------------------------------------------------------------


def _info(**kw) -> TaskInfo:
    return TaskInfo(split="held-out", **kw)


def sparse_parity_nesterov() -> TorchTask:
    """4-bit parity among 20 bits, 128-unit MLP, Nesterov SGD (momentum 0.9), batch 64."""
    return TorchTask(
        _info(
            domain="boolean function",
            model="MLP 128",
            data="sparse parity, 4 of 20 ±1 bits (seeded)",
            metric="accuracy",
            target=0.97,
            default_lr=2e-2,
            total_steps=1500,
            decision_interval=25,
        ),
        data=sparse_parity,
        model=partial(models.mlp, hidden=(128,)),
        optimizer="nesterov",
        batch_size=64,
    )


def noisy_linear_adagrad() -> TorchTask:
    """Linear teacher under heavy noise, 64-64 MLP, Adagrad, batch 32."""
    return TorchTask(
        _info(
            domain="regression",
            model="MLP 64-64",
            data="linear teacher, signal/noise variance 0.25 (seeded)",
            metric="r2",
            target=0.15,
            default_lr=1e-2,
            total_steps=600,
            decision_interval=25,
        ),
        data=noisy_linear,
        model=models.mlp,
        loss="mse",
        optimizer="adagrad",
        batch_size=32,
    )


def sine_fit_rmsprop() -> TorchTask:
    """A 1-D sum of two sines, 64-64 MLP, RMSprop, batch 32."""
    return TorchTask(
        _info(
            domain="regression",
            model="MLP 64-64",
            data="sum of two sines on [-π, π] (seeded)",
            metric="r2",
            target=0.94,
            default_lr=1e-3,
            total_steps=1000,
            decision_interval=25,
        ),
        data=sum_of_sines,
        model=models.mlp,
        loss="mse",
        optimizer="rmsprop",
        batch_size=32,
    )


def two_spirals_adamw() -> TorchTask:
    """Two spirals, 4×64 MLP, AdamW (weight decay 0.01), batch 64."""
    return TorchTask(
        _info(
            domain="classification",
            model="MLP 64-64-64-64",
            data="two spirals, 3 turns (seeded)",
            metric="accuracy",
            target=0.95,
            default_lr=3e-3,
            total_steps=1000,
            decision_interval=25,
        ),
        data=two_spirals,
        model=partial(models.mlp, hidden=(64, 64, 64, 64)),
        optimizer="adamw",
        batch_size=64,
    )
