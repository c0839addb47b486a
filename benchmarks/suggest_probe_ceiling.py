"""How much could any LR probe add to the suggester? Its model, given an oracle's best LR.

Leave-task-out on the meta-train logs (``lrgym suggest-logs``), with the shipped
suggester's model (its ridge penalty and ranking-head settings, read from its card): the
share of tasks whose top-ranked configuration lands within 5% of the best logged one
(issue 28's "probes matter" measure), for the same model given

* ``configuration only``: no probe features (the baseline of the bar);
* ``probe features``: the probes' features, as the shipped suggester has them;
* ``oracle: quadratic peak``: the configuration, and the distance (and its square) of its
  log10 LR from its task's best log10 LR for its optimizer, where "best" is the peak of a
  quadratic fit of the task's own logged metrics against log10 LR;
* ``oracle: five best``: the same distance to the mean log10 LR of the task's five best
  configurations with that optimizer;
* ``oracle: five best, every knob``: the squared distance of the configuration's encoded
  knobs (LR, optimizer, batch, depth, width, dropout, ...) from the mean of its task's
  five best, per knob; ``... layers and units``: the same for the model size alone.

The oracles read each task's own labels, which no probe can see, so they bound from
above what a perfect LR probe (a range test, a curvature estimate, ...), or a perfect
probe of every knob, can tell the model: where they add little, no such probe can add
more on this measure. The exact best
configuration is not used: with labels shared by a task's seeds it would mark the answer.

    python benchmarks/suggest_probe_ceiling.py --logs results/suggest/logs
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from lrgym.suggester.logs import read_logs
from lrgym.suggester.model import CONFIG_FEATURES, load_suggester
from lrgym.suggester.probes import feature_names
from lrgym.suggester.ranker import RankerSettings
from lrgym.suggester.training import (
    TrainingSet,
    config_only,
    leave_task_out,
    logged_probe_settings,
    training_set,
)


def _peak_quadratic(log_lr: np.ndarray, val: np.ndarray) -> float:
    """The log LR at the peak of a quadratic fit of ``val`` (within the logged range)."""
    if len(log_lr) < 4:
        return float(log_lr[np.argmax(val)])
    grid = np.linspace(log_lr.min(), log_lr.max(), 200)
    return float(grid[np.argmax(np.polyval(np.polyfit(log_lr, val, 2), grid))])


def _five_best(log_lr: np.ndarray, val: np.ndarray) -> float:
    """The mean log LR of the five best configurations."""
    return float(log_lr[np.argsort(-val)[:5]].mean())


def with_oracle(ts: TrainingSet, names: list[str], best_of) -> TrainingSet:
    """``ts``'s configuration columns and the oracle's distance of each configuration's
    log LR from its task's best (``best_of(log_lr, val)`` per task and optimizer).

    The LR and the optimizer are read from the encoded columns
    (:func:`lrgym.suggester.model.encode_config`: log10 LR shifted by a constant, and SGD
    or not, the plan's two optimizers)."""
    base = config_only(ts, names)
    log_lr = base.x[:, CONFIG_FEATURES.index("log_lr")]
    optimizer = base.x[:, CONFIG_FEATURES.index("sgd")]
    distance = np.zeros(len(base.x))
    for group in np.unique(ts.group):
        rows = np.flatnonzero(ts.group == group)
        for name in np.unique(optimizer[rows]):
            same = rows[optimizer[rows] == name]
            distance[same] = log_lr[same] - best_of(log_lr[same], ts.val[same])
    x = np.concatenate([base.x, distance[:, None], distance[:, None] ** 2], axis=1)
    return replace(base, x=x, rank_x=x)


def with_knob_oracle(
    ts: TrainingSet, names: list[str], knobs: tuple[str, ...] = CONFIG_FEATURES
) -> TrainingSet:
    """``ts``'s configuration columns and each of ``knobs``' squared distance from the
    mean of its task's five best configurations (encoded as the model encodes them)."""
    base = config_only(ts, names)
    columns = [CONFIG_FEATURES.index(k) for k in knobs]
    distance = np.zeros((len(base.x), len(columns)))
    for group in np.unique(ts.group):
        rows = np.flatnonzero(ts.group == group)
        best = rows[np.argsort(-ts.val[rows])[:5]]
        distance[rows] = (base.x[rows][:, columns] - base.x[best][:, columns].mean(axis=0)) ** 2
    x = np.concatenate([base.x, distance], axis=1)
    return replace(base, x=x, rank_x=x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", default="results/suggest/logs", help="lrgym suggest-logs' folder")
    parser.add_argument("--suggester", default=None, help="suggester folder (default: shipped)")
    args = parser.parse_args()

    runs, probes = read_logs(args.logs)
    names = list(feature_names(logged_probe_settings(probes)))
    card = load_suggester(args.suggester).card
    alpha = float(card["alpha"])
    head = RankerSettings(**card["ranker"]) if "ranker" in card else None
    ts = training_set(runs, probes, names)
    rows = {
        "configuration only": config_only(ts, names),
        "probe features": ts,
        "oracle: quadratic peak": with_oracle(ts, names, _peak_quadratic),
        "oracle: five best": with_oracle(ts, names, _five_best),
        "oracle: five best, every knob": with_knob_oracle(ts, names),
        "oracle: five best, layers and units": with_knob_oracle(ts, names, ("layers", "log_units")),
    }
    n_tasks = len(np.unique(ts.task))
    print(
        f"leave-task-out over {n_tasks} tasks ({len(np.unique(ts.group))} task seeds), "
        f"ridge alpha {alpha:g}, ranking head: {'yes' if head else 'no'}"
    )
    print("| model given | top pick within 5% | points over configuration only | median regret |")
    print("| --- | ---: | ---: | ---: |")
    scores = {name: leave_task_out(data, alpha, head) for name, data in rows.items()}
    base = scores["configuration only"]["within_5pct"]
    for name, s in scores.items():
        gain = 100 * (s["within_5pct"] - base)
        print(f"| {name} | {s['within_5pct']:.1%} | {gain:+.1f} | {s['median_regret']:.4f} |")


if __name__ == "__main__":
    main()
