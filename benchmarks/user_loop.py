"""The learned scheduler in a user's plain loop, fed validation at three cadences.

The README's plain-loop snippet, not the env: every optimizer step calls
``scheduler.step(loss=loss)``; after every ``decision_interval`` steps the loop
validates and feeds ``scheduler.observe_eval(val_loss, val_metric)`` at every decision
(``every``), at every fourth (``every-4th``) or never (``never``). The same runs with a
constant LR are the yardstick. Prints, per task and cadence, the mean final validation
loss and metric over the seeds for the agent and for constant LR, and whether the agent
is at least as good on both (the issue's bar: in each mode, on each task).

    python benchmarks/user_loop.py --agent default --seeds 5 [--tasks held-out real]

Real tasks need their data (a Hugging Face dataset name or a local copy, see the
README's real-task section); a task whose data cannot be loaded is skipped with a note.
"""

from __future__ import annotations

import argparse
import math
import statistics

import torch

import lrgym
from lrgym.core.registration import make_task, select_tasks
from lrgym.tasks.sources import DataSourceError

CADENCES = {"every": 1, "every-4th": 4, "never": 0}
"""Validation fed every N decisions (0: never)."""


def run(task_id: str, seed: int, agent: lrgym.Agent | None, every: int) -> tuple[float, float]:
    """One run at the task's default LR; its final validation loss and metric."""
    task = make_task(task_id)
    info = task.info
    trainee = task.build(seed, info.default_lr)
    k = info.decision_interval
    scheduler = None
    if agent is not None:
        scheduler = lrgym.PolicyScheduler(trainee.optimizer, agent, info.total_steps, k)

    def after_step(loss: float) -> None:  # the snippet's `scheduler.step(loss=loss)`
        if scheduler is not None:
            scheduler.step(loss=loss)

    for decision in range(1, info.total_steps // k + 1):
        report = trainee.train(k, on_step=after_step)
        if report.steps < k:  # diverged
            return math.inf, -math.inf
        if scheduler is not None and every and decision % every == 0:
            ev = trainee.evaluate("val")
            scheduler.observe_eval(ev.loss, ev.metric)
    final = trainee.evaluate("val")
    trainee.close()
    return final.loss, final.metric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="default")
    parser.add_argument("--tasks", nargs="+", default=["held-out"])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    agent = lrgym.load_agent(args.agent)
    tasks = [t for t in select_tasks(args.tasks) if make_task(t).has_gradients]
    print(f"agent {args.agent}; {args.seeds} seeds; final validation loss / metric (means)")
    print(
        "| task | validation fed | agent loss | constant loss | agent metric | "
        "constant metric | agent ≥ constant |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    wins = total = 0
    for task_id in tasks:
        try:
            constant = [run(task_id, s, None, 0) for s in range(args.seeds)]
        except DataSourceError as exc:
            print(f"| {task_id} | skipped: {str(exc).splitlines()[0]} | | | | | |")
            continue
        c_loss = statistics.mean(v[0] for v in constant)
        c_metric = statistics.mean(v[1] for v in constant)
        for name, every in CADENCES.items():
            learned = [run(task_id, s, agent, every) for s in range(args.seeds)]
            a_loss = statistics.mean(v[0] for v in learned)
            a_metric = statistics.mean(v[1] for v in learned)
            ok = a_loss <= c_loss and a_metric >= c_metric
            wins, total = wins + ok, total + 1
            print(
                f"| {task_id} | {name} | {a_loss:.4f} | {c_loss:.4f} | {a_metric:.4f} | "
                f"{c_metric:.4f} | {'yes' if ok else 'no'} |"
            )
    print(f"\nagent at least as good as constant LR on loss and metric in {wins} of {total}")


if __name__ == "__main__":
    main()
