"""Controllers: anything that decides hyperparameters during a run.

The comparison harness treats every controller alike: static schedules (thin wrappers
around ``torch.optim.lr_scheduler`` classes, never re-implemented), rule-based
controllers and learned policies. Add one with :func:`register_controller`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

from torch.optim import Optimizer, lr_scheduler

from lrgym.registration import did_you_mean
from lrgym.trainee import EvalReport, Trainee

if TYPE_CHECKING:
    from lrgym.task import Task


class Controller(ABC):
    """Decides hyperparameters for one run; a fresh instance per run.

    The harness calls :meth:`wrap` on the freshly built trainee, :meth:`start` once,
    :meth:`step` after every optimizer step and :meth:`observe` after every validation
    evaluation. Runs of tasks for which :meth:`applies_to` is False are left out.
    """

    def applies_to(self, task: Task) -> bool:
        """False where this controller cannot drive ``task`` (default: it can)."""
        return True

    def wrap(self, trainee: Trainee) -> Trainee:
        """The trainee to run (default: unchanged; optimizer-level baselines replace its
        optimizer here)."""
        return trainee

    @abstractmethod
    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        """Attach to ``optimizer`` for a run of ``total_steps`` optimizer steps."""

    def step(self, loss: float) -> None:  # noqa: B027 - optional hook
        """Called after every optimizer step with that step's training loss."""

    def observe(self, report: EvalReport) -> None:  # noqa: B027 - optional hook
        """Called after every validation evaluation."""


SchedulerFactory = Callable[[Optimizer, int], "lr_scheduler.LRScheduler"]
"""``(optimizer, total_steps) -> torch scheduler``; the optimizer's LR is the base LR."""


class TorchSchedule(Controller):
    """A ``torch.optim.lr_scheduler`` stepped once per optimizer step.

    Args:
        factory: Builds the scheduler from the optimizer and the run's total steps.
    """

    def __init__(self, factory: SchedulerFactory) -> None:
        self.factory = factory
        self.scheduler: lr_scheduler.LRScheduler | None = None

    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        self.scheduler = self.factory(optimizer, total_steps)

    def step(self, loss: float) -> None:
        self.scheduler.step()


class PlateauSchedule(Controller):
    """``ReduceLROnPlateau`` on validation loss, stepped at every evaluation.

    Args:
        factor: LR multiplier on a plateau.
        patience: Evaluations without improvement before reducing.
    """

    def __init__(self, factor: float = 0.5, patience: int = 2) -> None:
        self.factor = factor
        self.patience = patience

    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        self.scheduler = lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.factor, patience=self.patience
        )

    def observe(self, report: EvalReport) -> None:
        self.scheduler.step(report.loss)


def _cosine_with_warmup(opt: Optimizer, total: int, warmup_share: float = 0.05):
    warmup = max(1, int(warmup_share * total))
    return lr_scheduler.SequentialLR(
        opt,
        [
            lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warmup),
            lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total - warmup)),
        ],
        milestones=[warmup],
    )


def _cyclic(opt: Optimizer, total: int):
    lr = opt.param_groups[0]["lr"]
    return lr_scheduler.CyclicLR(
        opt, base_lr=lr / 10, max_lr=lr, step_size_up=max(1, total // 8), cycle_momentum=False
    )


STATIC_SCHEDULES: dict[str, SchedulerFactory] = {
    "constant": lambda opt, total: lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0),
    "step": lambda opt, total: lr_scheduler.StepLR(opt, step_size=max(1, total // 3), gamma=0.1),
    "exponential": lambda opt, total: lr_scheduler.ExponentialLR(opt, gamma=0.01 ** (1 / total)),
    "cosine": _cosine_with_warmup,
    "cyclic": _cyclic,
    "onecycle": lambda opt, total: lr_scheduler.OneCycleLR(
        opt, max_lr=opt.param_groups[0]["lr"], total_steps=total
    ),
}
"""Static schedules by name; the run's initial LR is each schedule's base (peak) LR:
constant; step (×0.1 every third of the run); exponential (to 1% at the end); cosine to
0 after a 5% linear warmup from 1%; cyclic (triangular between LR/10 and LR, 8
half-cycles); OneCycle (peak LR, torch defaults). ``plateau`` is ReduceLROnPlateau."""


def _feedback_rule() -> Controller:
    from lrgym.feedback_rule import FeedbackRuleLR
    from lrgym.scheduler_controller import SchedulerController

    return SchedulerController(lambda opt, total, interval: FeedbackRuleLR(opt))


def _hypergradient() -> Controller:
    from lrgym.hypergradient import HypergradientLR
    from lrgym.scheduler_controller import SchedulerController

    return SchedulerController(
        lambda opt, total, interval: HypergradientLR(opt), needs_gradients=True
    )


def _schedulefree_adamw() -> Controller:
    from lrgym.optimizer_baselines import ScheduleFreeAdamW

    return ScheduleFreeAdamW()


def _prodigy() -> Controller:
    from lrgym.optimizer_baselines import ProdigyBaseline

    return ProdigyBaseline()


CONTROLLERS: dict[str, Callable[[], Controller]] = {
    **{name: (lambda f=f: TorchSchedule(f)) for name, f in STATIC_SCHEDULES.items()},
    "plateau": PlateauSchedule,
    "feedback-rule": _feedback_rule,
    "hypergradient": _hypergradient,
    "schedulefree-adamw": _schedulefree_adamw,
    "prodigy": _prodigy,
}
"""Every controller the harness can run, by name: a factory making a fresh one."""

BASELINES: tuple[str, ...] = (*STATIC_SCHEDULES, "plateau")
"""Names of the static baselines."""

ADAPTIVE: tuple[str, ...] = ("feedback-rule", "hypergradient", "schedulefree-adamw", "prodigy")
"""Adaptive controllers from the experiment plans (``lr-predictor:PATH`` needs a file):
the feedback rule (:mod:`lrgym.feedback_rule`), hypergradient descent
(:mod:`lrgym.hypergradient`), and the optimizer-level baselines
(:mod:`lrgym.optimizer_baselines`; these need ``pip install "lrgym[optim]"``)."""


def register_controller(name: str, factory: Callable[[], Controller]) -> None:
    """Make ``factory`` available to ``compare``/``evaluate`` under ``name``."""
    CONTROLLERS[name] = factory


class LearnedController(Controller):
    """A trained agent driving the LR through :class:`~lrgym.scheduler.PolicyScheduler`.

    Args:
        agent: Shipped agent name or agent directory.
    """

    def __init__(self, agent: str) -> None:
        from lrgym.agent import load_agent

        self.agent = load_agent(agent)

    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        from lrgym.scheduler import PolicyScheduler

        self.scheduler = PolicyScheduler(
            optimizer, self.agent, total_steps, decision_interval, eval_feedback=True
        )

    def step(self, loss: float) -> None:
        self.scheduler.step(loss)

    def observe(self, report: EvalReport) -> None:
        self.scheduler.observe_eval(report.loss, report.metric)


LEARNED_PREFIX = "learned:"
"""``make_controller("learned:default")`` runs the shipped default agent; any agent
directory works after the prefix too."""

PREDICTOR_PREFIX = "lr-predictor:"
"""``make_controller("lr-predictor:PATH")`` runs the LR predictor saved at ``PATH``
(written by ``lrgym train-predictor``)."""


def make_controller(name: str) -> Controller:
    """A fresh controller by name; an unknown name raises with the closest names."""
    if name.startswith(LEARNED_PREFIX):
        return LearnedController(name[len(LEARNED_PREFIX) :])
    if name.startswith(PREDICTOR_PREFIX):
        from lrgym.lr_predictor import PredictorController

        return PredictorController(name[len(PREDICTOR_PREFIX) :])
    try:
        return CONTROLLERS[name]()
    except KeyError:
        raise ValueError(
            f"unknown scheduler {name!r}.{did_you_mean(name, CONTROLLERS)} "
            f"Available: {', '.join(CONTROLLERS)}"
        ) from None
