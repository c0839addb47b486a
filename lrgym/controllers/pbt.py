"""``pbt``: Ray Tune's population-based training over the LR, as a comparison controller.

PBT (Jaderberg et al., 2017) trains a population of runs at once; every few evaluations
the worst quarter copies the weights and LR of the best quarter, and the copied LR is
perturbed (×0.8 or ×1.2, or with probability 0.25 redrawn log-uniformly over
1e-5 … 1e-1). Here each member is a copy of the run the harness built (same weights,
data and batch order), starting at an LR spread over one decade either side of the
run's initial LR; Ray Tune (``ray.tune.schedulers.PopulationBasedTraining``, synchronous,
with member checkpoints) does the rest. Needs ``pip install "lrgym[ray]"``.

**Compute accounting: equal optimizer steps.** A run with a budget of ``T`` optimizer
steps gives each of the ``P`` members ``T // P`` steps, so the population spends what
one run of any other controller spends. The run's curve is the *lineage* of the member
PBT returns (the lowest final validation loss): at the harness's step ``s`` it shows that
model's ancestry after ``s / P`` member steps, so steps to target count the whole
population's steps. Its test metric is that member's. Members evaluate every
``max(1, decision_interval // P)`` of their steps, and PBT acts every ``interval`` of
those evaluations. Wall seconds count the whole search, which finishes before the first
evaluation of the curve is known (seconds to target are thus the search's duration).

Names: ``pbt`` (population 4, PBT every 4 evaluations), ``pbt:P`` and ``pbt:P:I``.
Torch tasks only (members are copies of the run's trainee). Each member reserves one CPU
on the node where the search runs (its checkpoints stay on that node's disk), so one
search needs no shared storage; with ``--backend ray`` the searches of a grid spread
over the cluster.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pickle
import random
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lrgym.core.controller import Controller
from lrgym.core.env import INITIAL_LR_RANGE
from lrgym.core.trainee import EvalReport, StepHook, Trainee, TrainReport, is_diverged

if TYPE_CHECKING:
    from torch.optim import Optimizer

    from lrgym.core.task import Task

PBT_PREFIX = "pbt:"
"""``pbt:P`` and ``pbt:P:I`` name a population of ``P`` that PBT updates every ``I``
member evaluations."""

POPULATION = 4
"""Default population size."""

INTERVAL = 4
"""Default perturbation interval, in member evaluations."""

SPREAD_DECADES = 1.0
"""Initial member LRs span the run's initial LR × 10^±this."""

BAD_SCORE = 1e30
"""The score (validation loss, lower is better) of a diverged member: Tune cannot sort NaN."""

_STATE = "member.pkl"
"""A member's state inside the search's own ``tempfile.mkdtemp`` folder (mode 0700, removed
when the search ends), written and read back by the members of that one search only: it is
in-process transient state (Ray Tune's checkpoint mechanism), never a folder a user
points lrgym at, so it stays a pickle."""
_OUTPUT_ENV = "RAY_AIR_NEW_OUTPUT"


@dataclass(frozen=True)
class _Plan:
    """What every member of one search does."""

    budget: int  # optimizer steps per member
    report_every: int  # member steps between evaluations (Tune iterations)
    perturb_every: int  # evaluations between PBT's exploit/explore steps
    initial_val_loss: float


def member_lrs(lr: float, population: int) -> list[float]:
    """The members' initial LRs: log-spaced over ``lr`` × 10^±:data:`SPREAD_DECADES`."""
    if population == 1:
        return [float(lr)]
    return [float(lr * 10**e) for e in np.linspace(-SPREAD_DECADES, SPREAD_DECADES, population)]


def _resample_lr() -> float:
    # PBT's explore runs in the search's process on Python's `random`, seeded per run
    low, high = np.log(INITIAL_LR_RANGE)
    return float(math.exp(random.uniform(low, high)))


@contextmanager
def _quiet() -> Iterator[None]:
    """Tune's progress tables and logs off while it runs (the harness has its own
    progress display; a failed member is raised by :meth:`PBTController.search`)."""
    names = ("ray.tune", "ray.train", "ray.air")
    levels = {n: logging.getLogger(n).level for n in names}
    output = os.environ.get(_OUTPUT_ENV)
    os.environ[_OUTPUT_ENV] = "0"  # Tune's legacy reporter, silent at verbose=0
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*reuse_actors", category=UserWarning)
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if output is None:
            os.environ.pop(_OUTPUT_ENV, None)
        else:
            os.environ[_OUTPUT_ENV] = output


def _member(config: dict[str, Any], base: bytes, plan: _Plan) -> None:
    """One PBT member (a Tune function trainable): trains a copy of the run, evaluates
    every ``plan.report_every`` steps and reports its validation loss; checkpoints (the
    pickled trainee and its lineage) where PBT may copy it."""
    import torch
    from ray import tune

    torch.set_num_threads(1)  # as every harness run
    for name in ("ray.train", "ray.tune"):  # no log line per checkpoint
        logging.getLogger(name).setLevel(logging.WARNING)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        trainee, history, steps, diverged = pickle.loads(base), [], 0, False
    else:  # its own state after a pause, or the state of the member it copies
        with checkpoint.as_directory() as folder:
            state = pickle.loads((Path(folder) / _STATE).read_bytes())
        trainee, history, steps, diverged = state
    trainee.set_lr(config["lr"])  # PBT's (perturbed) LR for this member from now on
    while steps < plan.budget:
        chunk = min(plan.report_every, plan.budget - steps)
        if diverged:  # a dead member waits to be replaced; it spends nothing
            report, ev = TrainReport(chunk, (math.nan,)), EvalReport(math.nan, math.nan, {})
        else:
            report = trainee.train(chunk)
            ev = trainee.evaluate("val")
            diverged = is_diverged(report, chunk, ev.loss, plan.initial_val_loss)
        steps += chunk
        history.append(
            {
                "step": steps,
                "lr": trainee.lr,
                "losses": list(report.losses),
                "val_loss": ev.loss,
                "val_metric": ev.metric,
                "metrics": ev.metrics,
                "diverged": diverged,
            }
        )
        metrics = {"score": BAD_SCORE if diverged else float(ev.loss), "member_steps": steps}
        if steps >= plan.budget:
            test = trainee.evaluate("test")
            metrics["lineage"] = json.dumps(
                {"history": history, "test": [test.loss, test.metric, test.metrics]}
            )
        if len(history) % plan.perturb_every and steps < plan.budget:
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as folder:
            state = (trainee, history, steps, diverged)
            (Path(folder) / _STATE).write_bytes(pickle.dumps(state))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


@dataclass
class _Lineage:
    """The returned member's ancestry: one record per member evaluation, and its test."""

    history: list[dict[str, Any]]
    test: EvalReport


class PopulationTrainee(Trainee):
    """The harness's view of a PBT search: its lineage, replayed in population steps.

    The search runs on the first :meth:`train`; afterwards each call advances by that
    many population steps (``P`` × member steps) and :meth:`evaluate` reports the
    lineage's latest evaluation by then.
    """

    def __init__(self, base: Trainee, controller: PBTController) -> None:
        self.base = base
        self.optimizer = base.optimizer  # its LR shows the lineage's
        self.controller = controller
        self.lineage: _Lineage | None = None
        self.population_steps = 0
        self.seen = 0  # lineage records already reported

    def train(self, steps: int, on_step: StepHook | None = None) -> TrainReport:
        """Run the search (first call), then advance ``steps`` population steps."""
        if self.lineage is None:
            self.lineage = self.controller.search(self.base)
        self.population_steps += steps
        member_steps = self.population_steps // self.controller.population
        history = self.lineage.history
        upto = sum(1 for r in history if r["step"] <= member_steps)
        new = history[self.seen : upto] or history[max(upto - 1, 0) : upto]
        self.seen = max(self.seen, upto)
        losses = [x for r in new for x in r["losses"]]
        if any(r["diverged"] for r in new):
            losses.append(math.nan)
        if new:
            self.set_lr(new[-1]["lr"])
        return TrainReport(steps, tuple(losses))

    def evaluate(self, split: str = "val") -> EvalReport:
        """Before the search: the run as built; after: the lineage's (test: its end)."""
        if self.lineage is None or (split == "val" and self.seen == 0):
            return self.base.evaluate(split)
        if split == "test":
            return self.lineage.test
        record = self.lineage.history[self.seen - 1]
        return EvalReport(record["val_loss"], record["val_metric"], record["metrics"])

    def close(self) -> None:
        """Close the run the members were copied from."""
        self.base.close()


class PBTController(Controller):
    """Population-based training over the LR with Ray Tune (see the module docstring).

    Args:
        population: Members, each training ``total_steps // population`` steps.
        interval: Member evaluations between PBT's exploit/explore steps.

    Raises:
        ImportError: Ray Tune is not installed (names the extra).
    """

    def __init__(self, population: int = POPULATION, interval: int = INTERVAL) -> None:
        from lrgym.io.validate import whole_number

        self.population = whole_number("pbt population", population, 1)
        self.interval = whole_number("pbt interval", interval, 1)
        try:
            import ray.tune  # noqa: F401 - fail when the grid is built, not hours later
        except ImportError:
            from lrgym.backends.ray_backend import INSTALL_HINT

            raise ImportError(f"the pbt controller needs Ray Tune: {INSTALL_HINT}") from None
        self.total_steps = 0
        self.decision_interval = 1

    @classmethod
    def from_name(cls, name: str) -> PBTController:
        """``pbt``, ``pbt:P`` or ``pbt:P:I``."""
        parts = name[len(PBT_PREFIX) :].split(":") if name.startswith(PBT_PREFIX) else []
        if name != "pbt" and not (1 <= len(parts) <= 2 and all(p.isdigit() for p in parts)):
            raise ValueError(
                f"scheduler {name!r}: write pbt, pbt:P (population P) or pbt:P:I (and PBT "
                "every I member evaluations), e.g. pbt:8:2"
            )
        return cls(*(int(p) for p in parts))

    def applies_to(self, task: Task) -> bool:
        """Torch tasks (members are pickled copies of the run's trainee)."""
        return task.backend == "torch"

    def wrap(self, trainee: Trainee) -> Trainee:
        """The search's view of the run (:class:`PopulationTrainee`)."""
        return PopulationTrainee(trainee, self)

    def start(self, optimizer: Optimizer, total_steps: int, decision_interval: int) -> None:
        if total_steps < self.population:
            raise ValueError(
                f"pbt: a population of {self.population} cannot share {total_steps} steps "
                "(each member needs at least one); use a smaller population or more steps"
            )
        self.total_steps = total_steps
        self.decision_interval = decision_interval

    def search(self, base: Trainee) -> _Lineage:
        """Run PBT from ``base`` on Ray Tune; the lineage of the best final member."""
        from ray import tune
        from ray.tune.schedulers import PopulationBasedTraining

        from lrgym.backends.ray_backend import connect

        ray = connect()
        initial = base.evaluate("val")
        plan = _Plan(
            budget=self.total_steps // self.population,
            report_every=max(1, self.decision_interval // self.population),
            perturb_every=self.interval,
            initial_val_loss=initial.loss,
        )
        state = pickle.dumps(base)
        node = f"node:{ray.util.get_node_ip_address()}"  # checkpoints stay on this node
        trainable = tune.with_resources(
            tune.with_parameters(_member, base=state, plan=plan), {"cpu": 1, node: 0.001}
        )
        scheduler = PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=self.interval,
            hyperparam_mutations={"lr": _resample_lr},
            synch=True,  # perturb when every member got there: reproducible
        )
        storage = tempfile.mkdtemp(prefix="lrgym-pbt-")
        tuner = tune.Tuner(
            trainable,
            param_space={"lr": tune.grid_search(member_lrs(base.lr, self.population))},
            tune_config=tune.TuneConfig(
                metric="score", mode="min", scheduler=scheduler, reuse_actors=True
            ),
            run_config=tune.RunConfig(name="pbt", storage_path=storage, verbose=0),
        )
        rng_state = random.getstate()
        random.seed(int.from_bytes(hashlib.sha256(state).digest()[:8], "big"))
        try:
            with _quiet():
                results = tuner.fit()
        finally:
            random.setstate(rng_state)
            shutil.rmtree(storage, ignore_errors=True)
        errors = [r.error for r in results if r.error is not None]
        if errors:
            raise RuntimeError(f"pbt: a population member failed: {errors[0]}") from errors[0]
        best = results.get_best_result(metric="score", mode="min", scope="last")
        lineage = json.loads(best.metrics["lineage"])
        loss, metric, metrics = lineage["test"]
        return _Lineage(lineage["history"], EvalReport(loss, metric, metrics))


__all__ = ["PBT_PREFIX", "PBTController", "PopulationTrainee", "member_lrs"]
