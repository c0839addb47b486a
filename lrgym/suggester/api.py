"""``lrgym.suggester``: probe a task, predict good hyperparameters, optionally train them."""

from __future__ import annotations

import itertools
import json
import math
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lrgym.suggester.knobs import TunableTask, tunable
from lrgym.suggester.model import Suggester, load_suggester
from lrgym.suggester.probes import (
    RunOutcome,
    probe_task,
    range_configs,
    range_slot,
    run_config,
)
from lrgym.suggester.search import SEARCHES, SearchResult, Trial, optuna_search
from lrgym.suggester.space import STEPS_KNOB, SearchSpace, Value

MODEL_KNOBS = frozenset(
    ("lr", "batch_size", "layers", "units", "dropout", "optimizer", "max_depth", "subsample")
    + (STEPS_KNOB,)
)
"""Knobs the meta-model knows; others stay at their default in a suggestion."""

LR_POINTS = 13
"""Candidate LRs per decade-spanning range (log-spaced) the meta-model ranks."""
MAX_CANDIDATES = 20_000
MIN_FINAL_STEPS = 10
"""The budget must leave at least this many steps after the probes for the final run."""


class BudgetError(ValueError):
    """The budget cannot pay for the probes (or for the probes and the final run)."""


@dataclass(frozen=True)
class Suggestion:
    """What :func:`suggest` recommends.

    Attributes:
        task_id: The task's registered id, or ``""`` for a task object passed directly.
        config: The suggested configuration (every knob of the task).
        predicted_val: Predicted final validation metric of ``config``.
        predicted_std: Its uncertainty (one standard deviation).
        method: ``"suggest"`` (the meta-model) or the Optuna search that chose it.
        probe_steps: Optimizer steps the probes took.
        steps_used: Optimizer steps spent in all (probes, searches and a final run).
        budget: The budget it was given.
        final_steps: Steps of the final run (``rounds`` where the task has that knob).
        ranked: The meta-model's next best configurations with their predictions.
        final: The final run's outcome, if it trained one.
        search: The search's runs, for an Optuna search.
        predicted_low: Lower end of the one-standard-deviation interval of
            ``predicted_val``, computed on the logit scale of the metric's range so it
            stays inside it (:func:`lrgym.suggester.model.interval`); NaN for a search.
        predicted_high: Upper end of that interval.
        metric: The task's metric (``accuracy``, ``r2``, ...).
        notes: Why the recommendation departs from what was asked (a final run shorter
            than the task's default to fit the budget, or longer than the budget allows
            because it was asked for), and what the prediction assumes.
    """

    task_id: str
    config: dict[str, Value]
    predicted_val: float
    predicted_std: float
    method: str
    probe_steps: int
    steps_used: int
    budget: int
    final_steps: int
    ranked: tuple[tuple[dict[str, Value], float, float], ...] = ()
    final: RunOutcome | None = None
    search: SearchResult | None = field(default=None, repr=False)
    predicted_low: float = math.nan
    predicted_high: float = math.nan
    metric: str = ""
    notes: tuple[str, ...] = ()

    def command(self, scheduler: str | None = None) -> str:
        """The command that trains ``config`` (``lrgym train-config``); for a task object
        that is not registered, the Python call that builds the run."""
        if not self.task_id:
            return f"task.build_config(seed, {self.config!r})  # train {self.final_steps} steps"
        parts = [
            "lrgym",
            "train-config",
            self.task_id,
            "--config",
            json.dumps(self.config, sort_keys=True),
            "--steps",
            str(self.final_steps),
        ]
        if scheduler:
            parts += ["--scheduler", scheduler]
        return shlex.join(parts)


def candidates(space: SearchSpace, seed: int) -> list[dict[str, Value]]:
    """The configurations the meta-model ranks: the grid of the knobs it knows.

    Ranges take :data:`LR_POINTS` log-spaced points; knobs it does not know stay at their
    default. Above :data:`MAX_CANDIDATES` grid points a seeded sample is taken.
    """
    axes = [k.grid(LR_POINTS) if k.name in MODEL_KNOBS else (k.default,) for k in space.knobs]
    size = math.prod(len(a) for a in axes)
    if size <= MAX_CANDIDATES:
        return [dict(zip(space.names, v, strict=True)) for v in itertools.product(*axes)]
    rng = np.random.default_rng([int(seed), 11])
    return [
        {
            k.name: axis[int(rng.integers(len(axis)))]
            for k, axis in zip(space.knobs, axes, strict=True)
        }
        for _ in range(MAX_CANDIDATES)
    ]


def _distinct(config: dict, chosen: Sequence[dict]) -> bool:
    for other in chosen:
        same = all(config[k] == other[k] for k in config if k != "lr")
        if same and abs(math.log10(config.get("lr", 1)) - math.log10(other.get("lr", 1))) < 0.4:
            return False
    return True


@dataclass(frozen=True)
class Ranked:
    """One ranked configuration and its prediction.

    Attributes:
        config: The configuration.
        mean: Predicted final validation metric (in the metric's range).
        std: Its standard deviation.
        low: Lower end of the one-std interval (logit scale; in range).
        high: Upper end of that interval.
    """

    config: dict[str, Value]
    mean: float
    std: float
    low: float
    high: float


def rank(
    tt: TunableTask,
    suggester: Suggester,
    seed: int,
    top: int = 5,
    max_steps: int | None = None,
) -> tuple[int, list[Ranked]]:
    """Probe ``tt`` and rank candidate configurations by predicted validation metric.

    Args:
        tt: The task and its knobs.
        suggester: The meta-model.
        seed: Seeds the probes.
        top: How many distinct configurations to return (LRs of otherwise equal
            configurations at least 0.4 decades apart).
        max_steps: Where the space has a ``rounds`` knob, only configurations of at most
            this many rounds are ranked (the cheapest ones if none fits).

    Returns:
        The probes' steps and up to ``top`` configurations, best first.
    """
    probe = probe_task(tt, seed, suggester.probe)
    cands = candidates(tt.space, seed)
    if max_steps is not None and STEPS_KNOB in tt.space:
        costs = np.array([tt.steps(c, 0) for c in cands])
        fits = costs <= max_steps
        keep = fits if fits.any() else costs == costs.min()
        cands = [c for c, k in zip(cands, keep, strict=True) if k]
    slots = [range_slot(tt, c) for c in cands]
    pred = suggester.predict(probe.features, probe.anchor, cands, slots, tt.task.info.metric)
    within = np.zeros(len(cands)) if pred.within is None else pred.within
    # the ranking head first, the ridge's score next; stable: ties keep grid order
    order = np.lexsort((np.arange(len(cands)), -pred.score, -within))
    ranked: list[Ranked] = []
    for i in order:
        if _distinct(cands[i], [r.config for r in ranked]):
            ranked.append(
                Ranked(
                    cands[i],
                    float(pred.mean[i]),
                    float(pred.std[i]),
                    float(pred.low[i]),
                    float(pred.high[i]),
                )
            )
        if len(ranked) >= top:
            break
    return probe.steps, ranked


def train_final(
    tt: TunableTask, config: dict, seed: int, steps: int, scheduler: str | None = None
) -> RunOutcome:
    """Train ``config`` for ``steps`` steps, under a harness controller if ``scheduler``
    names one (``"learned"`` or ``"learned:default"`` runs the shipped agent as the LR
    scheduler)."""
    if not scheduler or scheduler == "constant":
        return run_config(tt, config, seed, steps)
    import time

    from lrgym.controllers import LEARNED_PREFIX, make_controller
    from lrgym.core.trainee import is_diverged
    from lrgym.suggester.probes import _floor, seeded_run

    if scheduler == "learned":
        scheduler = f"{LEARNED_PREFIX}default"
    start = time.perf_counter()
    n = tt.steps(config, steps)
    controller = make_controller(scheduler)
    if not controller.applies_to(tt.task):
        raise ValueError(f"scheduler {scheduler!r} does not apply to this task")
    with seeded_run(seed):
        trainee = controller.wrap(tt.build(seed, config))
        interval = max(1, min(tt.task.info.decision_interval, n))
        controller.start(trainee.optimizer, n, interval)
        ev = trainee.evaluate("val")
        controller.observe(ev)
        done, diverged = 0, False
        try:
            while done < n and not diverged:
                chunk = min(interval, n - done)
                report = trainee.train(chunk, on_step=controller.step)
                done += report.steps
                diverged = is_diverged(report, chunk, None, ev.loss)  # as run_config: losses
                if not diverged:
                    ev = trainee.evaluate("val")
                    controller.observe(ev)
            val = trainee.evaluate("val").metric if diverged else ev.metric
            test = trainee.evaluate("test").metric
        finally:
            trainee.close()
    return RunOutcome(_floor(val), _floor(test), done, diverged, time.perf_counter() - start)


def suggest(
    task: str | object,
    budget: int,
    *,
    seed: int = 0,
    suggester: Suggester | str | os.PathLike[str] | None = None,
    search: str = "suggest",
    train: bool = False,
    final_steps: int | None = None,
    scheduler: str | None = None,
    on_trial: Callable[[Trial], None] | None = None,
) -> Suggestion:
    """Suggest hyperparameters for ``task`` within ``budget`` optimizer steps.

    With ``search="suggest"`` (the default) it runs the meta-model's short probes (their
    steps count against the budget), ranks the task's configurations by predicted
    validation metric (clipped to the metric's range, with an in-range interval) and
    returns the best; ``train=True`` then trains it for ``final_steps`` steps.
    ``search="tpe"``, ``"random"`` or ``"grid"`` instead spend the whole budget on an
    Optuna search of full runs (``lrgym[tune]``).

    Args:
        task: A registered task id or a task object.
        budget: Optimizer steps it may spend, probes and runs included.
        seed: Seeds the probes, the search and the final run: same seed, same suggestion.
        suggester: A trained suggester or its directory (None: the shipped one).
        search: ``"suggest"`` or one of :data:`~lrgym.suggester.search.SEARCHES`.
        train: Train the suggestion (the meta-model path) once it is chosen.
        final_steps: Steps of the final run. Default: the task's ``total_steps`` or what
            the budget leaves after the probes, whichever is less (a note says so). A
            value above what is left is kept with a note (an error with ``train``).
        scheduler: Harness scheduler for the final run, e.g. ``"learned:default"``.
        on_trial: Called after each run of an Optuna search.

    Raises:
        NoKnobsError: If the task declares no knobs.
        BudgetError: If ``budget`` cannot pay for the probes (and the final run, with
            ``train``); the message says the minimum.
    """
    from lrgym.core.registration import make_task

    task_id = task if isinstance(task, str) else ""
    task_obj = make_task(task) if isinstance(task, str) else task
    tt = tunable(task_obj)
    steps = int(final_steps or task_obj.info.total_steps)
    budget = int(budget)
    if search in SEARCHES:
        rounds = _rounds(tt)
        cheapest = min(tt.steps({STEPS_KNOB: c}, steps) for c in rounds) if rounds else steps
        if budget < cheapest:
            raise BudgetError(
                f"budget {budget} is smaller than one run ({cheapest} steps); "
                f"pass --budget {cheapest} or more"
            )
        result = optuna_search(tt, search, budget, seed, steps, on_trial)
        best = result.best
        assert best is not None
        return Suggestion(
            task_id, best.config, best.outcome.val_metric, math.nan, search, 0,
            result.steps_used, budget, tt.steps(best.config, steps), final=best.outcome,
            search=result,
        )  # fmt: skip
    if search != "suggest":
        raise ValueError(f"unknown search {search!r}; use 'suggest' or one of {list(SEARCHES)}")
    model = suggester if isinstance(suggester, Suggester) else load_suggester(suggester)
    probe_cost = model.probe.cost_for(tt)
    if budget < probe_cost + MIN_FINAL_STEPS:
        raise BudgetError(
            f"budget {budget} cannot pay for the probes ({_describe_probes(model, tt)} = "
            f"{probe_cost} steps) and a final run of at least {MIN_FINAL_STEPS} steps; pass "
            f"--budget {probe_cost + MIN_FINAL_STEPS} or more"
        )
    left = budget - probe_cost
    probe_steps, ranked = rank(tt, model, seed, max_steps=left)
    best = ranked[0]
    config = best.config
    notes: list[str] = []
    if STEPS_KNOB in tt.space:
        n_final = tt.steps(config, steps)
        if n_final > left:
            notes.append(
                f"{STEPS_KNOB}={n_final} (the fewest this task offers) is more than the "
                f"{left} steps the budget leaves after the probes: a run needs --budget "
                f"{probe_cost + n_final}"
            )
    elif final_steps is not None and steps > left:
        n_final = steps
        notes.append(
            f"--steps {steps} was asked for, more than the {left} steps the budget leaves "
            f"after the probes ({probe_steps}): probes and run need --budget "
            f"{probe_steps + steps}"
        )
    else:
        n_final = min(steps, left)
        if n_final < steps:
            notes.append(
                f"the final run is {n_final} steps, not the task's default {steps}, to fit "
                f"the budget ({budget} = {probe_steps} probe steps + {n_final}); pass "
                f"--budget {probe_steps + steps} for the full run"
            )
        if n_final != model.final_steps:
            notes.append(
                f"the prediction is for a run of {model.final_steps} steps (the length of "
                f"the runs the suggester learned from); a {n_final}-step run may score "
                "differently"
            )
    final = None
    used = probe_steps
    if train:
        if budget < probe_steps + n_final:
            raise BudgetError(
                f"budget {budget} cannot pay for the probes ({probe_steps} steps) and the "
                f"final run ({n_final} steps); pass --budget {probe_steps + n_final} or more"
            )
        final = train_final(tt, config, seed, n_final, scheduler)
        used += final.steps
    return Suggestion(
        task_id, dict(config), best.mean, best.std, "suggest", probe_steps, used, budget,
        n_final, tuple((r.config, r.mean, r.std) for r in ranked[1:]), final,
        predicted_low=best.low, predicted_high=best.high, metric=task_obj.info.metric,
        notes=tuple(notes),
    )  # fmt: skip


def _describe_probes(model: Suggester, tt: TunableTask) -> str:
    text = f"{model.probe.n_probes} probes x {model.probe.steps} steps"
    if model.probe.range_steps:
        n = len(range_configs(tt))
        text += f" + {n} LR range test{'s' * (n > 1)} x {model.probe.range_steps} steps"
    return text


def _rounds(tt: TunableTask) -> tuple:
    return tt.space[STEPS_KNOB].choices if STEPS_KNOB in tt.space else ()
