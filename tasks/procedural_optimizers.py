"""The optimizer, default LR and weight decay of a drawn procedural task.

Versions 0 and 1 draw from three optimizers (:data:`V1_OPTIMIZERS`), version 2 from six
(:data:`V2_OPTIMIZERS`), each uniformly, through the same :func:`draw_optimizer`:

* SGD with momentum 0.9 and SGD with Nesterov momentum 0.9: :data:`SGD_LRS`
  (:data:`SGD_REGRESSION_LRS` on regression, whose MSE gradients scale with the targets);
* Adam, AdamW and RMSprop: :data:`ADAM_LRS` (RMSprop's steady-state step is about its LR,
  as Adam's; without bias correction its first steps are larger, up to 10x at α 0.99);
* Adagrad: :data:`ADAGRAD_LRS` (under a steady gradient its step is LR / sqrt(steps
  taken), so its LR sits higher: 1e-2, torch's default, to 1e-1);
* weight decay: AdamW 1e-4 to 5e-2, otherwise 0 (60%) or 1e-5 to 5e-4.

torch's defaults otherwise (RMSprop α 0.99, ε 1e-8, no momentum; Adagrad ε 1e-10). Every
one of them has a per-slot update rule in :mod:`lrgym.vector.slot_optim`, so drawn tasks
stay batchable.
"""

from __future__ import annotations

import numpy as np

from lrgym.tasks.procedural_archs import choice

SGD_LRS = (3e-3, 1e-2, 3e-2)
SGD_REGRESSION_LRS = (1e-3, 3e-3, 1e-2)
ADAM_LRS = (3e-4, 1e-3, 3e-3)
ADAGRAD_LRS = (1e-2, 3e-2, 1e-1)
V1_OPTIMIZERS = ("sgd", "adam", "adamw")
"""Versions 0 and 1's optimizers (names of :data:`lrgym.backends.torch_trainee.OPTIMIZERS`)."""
V2_OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
"""Version 2's optimizers, each drawn with probability 1/6."""


def draw_optimizer(
    rng: np.random.Generator, task: str, optimizers: tuple[str, ...] = V1_OPTIMIZERS
) -> tuple[str, float, float]:
    """``(optimizer, default_lr, weight_decay)`` of one drawn task (see the module docstring).

    Args:
        rng: The task's generator (three draws: optimizer, LR, weight decay).
        task: ``"classification"`` or ``"regression"``.
        optimizers: The optimizers to draw from, uniformly.
    """
    optimizer = choice(rng, optimizers)
    if optimizer in ("sgd", "nesterov"):
        lrs = SGD_LRS if task == "classification" else SGD_REGRESSION_LRS
    else:
        lrs = ADAGRAD_LRS if optimizer == "adagrad" else ADAM_LRS
    default_lr = float(choice(rng, lrs))
    if optimizer == "adamw":
        weight_decay = float(choice(rng, (1e-4, 1e-3, 1e-2, 5e-2)))
    else:
        weight_decay = 0.0 if rng.uniform() < 0.6 else float(choice(rng, (1e-5, 1e-4, 5e-4)))
    return str(optimizer), default_lr, weight_decay


__all__ = [
    "ADAGRAD_LRS",
    "ADAM_LRS",
    "SGD_LRS",
    "SGD_REGRESSION_LRS",
    "V1_OPTIMIZERS",
    "V2_OPTIMIZERS",
    "draw_optimizer",
]
