"""Search backends over a task's knobs at a fixed compute budget (optimizer steps).

Every backend trains whole runs of ``final_steps`` steps (``rounds`` for XGBoost) and
stops before a run would exceed the budget. ``tpe``, ``random`` and ``grid`` are Optuna's
``TPESampler``, ``RandomSampler`` and ``GridSampler`` (the ``lrgym[tune]`` extra), driven
through its ask-and-tell interface; nothing of them is re-implemented here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lrgym.suggester.knobs import TunableTask
from lrgym.suggester.probes import RunOutcome, run_config

SEARCHES = ("tpe", "random", "grid")
"""Optuna-backed searches (``lrgym suggest --search NAME``)."""

GRID_LR_POINTS = 4
"""Grid search puts the LR on this many log-spaced points (1e-4, 1e-3, 1e-2, 1e-1)."""


def startup_trials(n_runs: int) -> int:
    """TPE's random start-up fitted to a budget of ``n_runs`` whole runs.

    Optuna's default (10 random trials) means a search of fewer than 11 runs never leaves
    its random start-up, so at small budgets TPE would only be random search under
    another name. A third of the runs (1 to 10) leaves TPE at least two thirds of the
    budget to model what the start-up found: 1 at 3 runs, 10 at 30.
    """
    return int(min(10, max(1, n_runs // 3)))


@dataclass(frozen=True)
class Trial:
    """One finished run of a search.

    Attributes:
        config: The configuration.
        outcome: What the run reached.
        steps_used: The search's optimizer steps after this run (probes included).
    """

    config: dict
    outcome: RunOutcome
    steps_used: int


@dataclass(frozen=True)
class SearchResult:
    """A finished search.

    Attributes:
        method: ``"suggest"``, ``"tpe"``, ``"random"`` or ``"grid"``.
        trials: The runs, in order.
        steps_used: Optimizer steps spent (probes included).
    """

    method: str
    trials: tuple[Trial, ...]
    steps_used: int

    @property
    def best(self) -> Trial | None:
        """The run with the best validation metric (the one a user would keep)."""
        return max(self.trials, key=lambda t: t.outcome.val_metric, default=None)

    def trace(self) -> list[tuple[int, float]]:
        """``(steps used, test metric of the best-by-validation run so far)`` after each run."""
        out, best = [], None
        for trial in self.trials:
            if best is None or trial.outcome.val_metric > best.outcome.val_metric:
                best = trial
            out.append((trial.steps_used, best.outcome.test_metric))
        return out


def require_optuna():
    """Import Optuna, or say how to install it."""
    try:
        import optuna
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "this search needs Optuna: pip install 'lrgym[tune]' (or pip install optuna)"
        ) from None
    return optuna


def _distributions(tt: TunableTask, optuna, grid: bool) -> dict:
    dists = {}
    for knob in tt.space.knobs:
        if knob.is_range and not grid:
            dists[knob.name] = optuna.distributions.FloatDistribution(
                knob.low, knob.high, log=knob.log
            )
        else:
            values = knob.grid(GRID_LR_POINTS)  # its choices, or points on its range
            dists[knob.name] = optuna.distributions.CategoricalDistribution(list(values))
    return dists


def optuna_search(
    tt: TunableTask,
    method: str,
    budget: int,
    seed: int,
    final_steps: int,
    on_trial: Callable[[Trial], None] | None = None,
) -> SearchResult:
    """Search with Optuna's TPE, random or grid sampler within ``budget`` optimizer steps.

    TPE's random start-up is fitted to the number of default-length runs the budget pays
    for (:func:`startup_trials`).

    Args:
        tt: The task and its knobs.
        method: One of :data:`SEARCHES`.
        budget: Optimizer steps the search may spend.
        seed: Seeds the sampler and every run.
        final_steps: Steps of each run (its ``rounds`` where the space has that knob).
        on_trial: Called after each run.
    """
    optuna = require_optuna()
    if method not in SEARCHES:
        raise ValueError(f"unknown search {method!r}; use one of {list(SEARCHES)}")
    if method == "tpe":
        runs = budget // max(1, tt.steps(tt.space.defaults(), final_steps))
        sampler = optuna.samplers.TPESampler(n_startup_trials=startup_trials(runs), seed=seed)
    elif method == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.GridSampler(tt.space.grid_axes(GRID_LR_POINTS), seed=seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    dists = _distributions(tt, optuna, grid=method == "grid")
    trials: list[Trial] = []
    used = 0
    while True:
        trial = study.ask(dists)
        config = tt.space.validate(dict(trial.params))
        steps = tt.steps(config, final_steps)
        if used + steps > budget:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        outcome = run_config(tt, config, seed, final_steps)
        used += outcome.steps
        study.tell(trial, outcome.val_metric)  # floored: finite even for a diverged run
        trials.append(Trial(config, outcome, used))
        if on_trial:
            on_trial(trials[-1])
    return SearchResult(method, tuple(trials), used)
