"""Every controller the comparison harness can run, and the one registry of their names.

* :mod:`~lrgym.controllers.static`: torch's static schedules and ReduceLROnPlateau;
* :mod:`~lrgym.controllers.feedback_rule`, :mod:`~lrgym.controllers.hypergradient`,
  :mod:`~lrgym.controllers.lr_predictor`: adaptive LR schedulers;
* :mod:`~lrgym.controllers.optimizer_baselines`: schedule-free AdamW and Prodigy;
* :mod:`~lrgym.controllers.pbt`: Ray Tune's population-based training over the LR;
* :mod:`~lrgym.controllers.learned`: a trained agent.

The contract is :class:`lrgym.core.controller.Controller`; add a controller with
:func:`register_controller`.
"""

from __future__ import annotations

from collections.abc import Callable

from lrgym.controllers.feedback_rule import FeedbackRuleLR
from lrgym.controllers.hypergradient import HypergradientLR, optimizer_kind
from lrgym.controllers.learned import LEARNED_PREFIX, LearnedController
from lrgym.controllers.lr_predictor import PredictorController
from lrgym.controllers.optimizer_baselines import ProdigyBaseline, ScheduleFreeAdamW
from lrgym.controllers.pbt import PBT_PREFIX, PBTController
from lrgym.controllers.scheduler_adapter import SchedulerController
from lrgym.controllers.static import STATIC_SCHEDULES, PlateauSchedule, TorchSchedule
from lrgym.core.controller import Controller
from lrgym.core.registration import did_you_mean

PREDICTOR_PREFIX = "lr-predictor:"
"""``make_controller("lr-predictor:PATH")`` runs the LR predictor saved at ``PATH``
(written by ``lrgym train-predictor``)."""


def _feedback_rule() -> Controller:
    return SchedulerController(lambda opt, total, interval: FeedbackRuleLR(opt))


def _hypergradient() -> Controller:
    return SchedulerController(
        lambda opt, total, interval: HypergradientLR(opt),
        needs_gradients=True,
        check_optimizer=optimizer_kind,
    )


CONTROLLERS: dict[str, Callable[[], Controller]] = {
    **{name: (lambda f=f: TorchSchedule(f)) for name, f in STATIC_SCHEDULES.items()},
    "plateau": PlateauSchedule,
    "feedback-rule": _feedback_rule,
    "hypergradient": _hypergradient,
    "schedulefree-adamw": ScheduleFreeAdamW,
    "prodigy": ProdigyBaseline,
    "pbt": PBTController,
}
"""Every controller the harness can run, by name: a factory making a fresh one."""

BASELINES: tuple[str, ...] = (*STATIC_SCHEDULES, "plateau")
"""Names of the static baselines."""

ADAPTIVE: tuple[str, ...] = ("feedback-rule", "hypergradient", "schedulefree-adamw", "prodigy")
"""Adaptive controllers from the experiment plans (``lr-predictor:PATH`` needs a file):
the feedback rule, hypergradient descent, and the optimizer-level baselines (these need
``pip install "lrgym[optim]"``)."""


def register_controller(name: str, factory: Callable[[], Controller]) -> None:
    """Make ``factory`` available to ``compare``/``evaluate`` under ``name``."""
    CONTROLLERS[name] = factory


def make_controller(name: str) -> Controller:
    """A fresh controller by name; an unknown name raises with the closest names.

    Besides the names in :data:`CONTROLLERS`: ``learned:NAME|PATH`` (a trained agent) and
    ``lr-predictor:PATH`` (a saved LR predictor).
    """
    if name.startswith(LEARNED_PREFIX):
        return LearnedController(name[len(LEARNED_PREFIX) :])
    if name.startswith(PREDICTOR_PREFIX):
        return PredictorController(name[len(PREDICTOR_PREFIX) :])
    if name.startswith(PBT_PREFIX):
        return PBTController.from_name(name)
    try:
        return CONTROLLERS[name]()
    except KeyError:
        raise ValueError(
            f"unknown scheduler {name!r}.{did_you_mean(name, CONTROLLERS)} Available: "
            f"{', '.join(CONTROLLERS)}, {LEARNED_PREFIX}NAME|PATH (a trained agent), "
            f"{PREDICTOR_PREFIX}PATH (a trained LR predictor), {PBT_PREFIX}P[:I] (PBT with "
            "population P, every I evaluations), or in `lrgym compare` "
            "'baselines' (the seven static schedules)"
        ) from None


__all__ = [
    "ADAPTIVE",
    "BASELINES",
    "CONTROLLERS",
    "LEARNED_PREFIX",
    "PBT_PREFIX",
    "PREDICTOR_PREFIX",
    "STATIC_SCHEDULES",
    "Controller",
    "LearnedController",
    "PlateauSchedule",
    "SchedulerController",
    "TorchSchedule",
    "make_controller",
    "register_controller",
]
