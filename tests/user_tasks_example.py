"""A user-defined task, written the way a user's own package would write one.

Imported by module name (``user_tasks_example:make_tiny``) from the registry, so it
exercises the same path as a third-party package's entry point.
"""

from __future__ import annotations

import numpy as np
from torch import nn

import lrgym
from lrgym.backends.torch_trainee import TorchTask
from lrgym.core.task import ArraySplits, TaskInfo

TINY_ID = "testuser/Tiny-v0"
PLUGIN_ID = "testuser/TinyPlugin-v0"


def tiny_regression(rng: np.random.Generator, n: int = 240, d: int = 5) -> ArraySplits:
    """A noisy linear regression problem drawn entirely from ``rng``."""
    w = rng.standard_normal(d)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (x @ w + 0.1 * rng.standard_normal(n)).astype(np.float32)
    a, b = int(0.6 * n), int(0.8 * n)
    return ArraySplits(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])


def linear_model(n_in: int, n_out: int, rng: np.random.Generator) -> nn.Module:
    return nn.Linear(n_in, n_out)


def make_tiny() -> TorchTask:
    """The registry entry point: a tiny held-out linear-regression task."""
    return TorchTask(
        TaskInfo(
            domain="regression",
            model="linear",
            data="synthetic linear (numpy, seeded)",
            metric="r2",
            split="held-out",
            target=0.9,
            default_lr=0.05,
            total_steps=40,
            decision_interval=5,
        ),
        data=tiny_regression,
        model=linear_model,
        loss="mse",
        optimizer="adam",
        batch_size=16,
    )


def register_all() -> None:
    """What a package's ``lrgym.tasks`` entry point would call."""
    lrgym.register_task(id=PLUGIN_ID, entry_point="user_tasks_example:make_tiny")


def broken_plugin() -> None:
    """A plugin whose registration hook fails."""
    raise RuntimeError("this plugin is broken on purpose")
