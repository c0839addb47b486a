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
from lrgym.suggester.probes import RunOutcome, probe_task, run_config
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


def rank(
    tt: TunableTask, suggester: Suggester, seed: int, top: int = 5
) -> tuple[int, list[tuple[dict, float, float]]]:
    """Probe ``tt`` and rank candidate configurations by predicted validation metric.

    Returns the probes' steps and up to ``top`` distinct configurations (LRs of otherwise
    equal configurations at least 0.4 decades apart), best first, with mean and std.
    """
    probe = probe_task(tt, seed, suggester.probe)
    cands = candidates(tt.space, seed)
    pred = suggester.predict(probe.features, probe.anchor, cands)
    order = np.lexsort((np.arange(len(cands)), -pred.score))  # stable: ties keep grid order
    ranked: list[tuple[dict, float, float]] = []
    for i in order:
        if _distinct(cands[i], [r[0] for r in ranked]):
            ranked.append((cands[i], float(pred.mean[i]), float(pred.std[i])))
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
    from lrgym.suggester.probes import _floor, seeded_run
    from lrgym.trainee import is_diverged

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
    validation metric and returns the best; ``train=True`` then trains it for
    ``final_steps`` steps. ``search="tpe"``, ``"random"`` or ``"grid"`` instead spend the
    whole budget on an Optuna search of full runs (``lrgym[tune]``).

    Args:
        task: A registered task id or a task object.
        budget: Optimizer steps it may spend, probes and runs included.
        seed: Seeds the probes, the search and the final run: same seed, same suggestion.
        suggester: A trained suggester or its directory (None: the shipped one).
        search: ``"suggest"`` or one of :data:`~lrgym.suggester.search.SEARCHES`.
        train: Train the suggestion (the meta-model path) once it is chosen.
        final_steps: Steps of the final run (default: the task's ``total_steps``).
        scheduler: Harness scheduler for the final run, e.g. ``"learned:default"``.
        on_trial: Called after each run of an Optuna search.

    Raises:
        NoKnobsError: If the task declares no knobs.
        BudgetError: If ``budget`` cannot pay for the probes (and the final run, with
            ``train``); the message says the minimum.
    """
    from lrgym.registration import make_task

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
    probe_cost = model.probe.cost
    if budget < probe_cost:
        raise BudgetError(
            f"budget {budget} is smaller than the probes ({model.probe.n_probes} probes x "
            f"{model.probe.steps} steps = {probe_cost} steps); pass --budget {probe_cost} or more"
        )
    probe_steps, ranked = rank(tt, model, seed)
    config, mean, std = ranked[0]
    n_final = tt.steps(config, steps)
    final = None
    used = probe_steps
    if train:
        if budget < probe_steps + n_final:
            raise BudgetError(
                f"budget {budget} cannot pay for the probes ({probe_steps} steps) and the "
                f"final run ({n_final} steps); pass --budget {probe_steps + n_final} or more"
            )
        final = train_final(tt, config, seed, steps, scheduler)
        used += final.steps
    return Suggestion(
        task_id, dict(config), mean, std, "suggest", probe_steps, used, budget, n_final,
        tuple(ranked[1:]), final,
    )  # fmt: skip


def _rounds(tt: TunableTask) -> tuple:
    return tt.space[STEPS_KNOB].choices if STEPS_KNOB in tt.space else ()
