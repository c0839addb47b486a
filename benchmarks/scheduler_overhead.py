"""Scheduler overhead: the same training loop with and without ``PolicyScheduler``.

Both sides train the task's own model, optimizer and data (from ``task.build(seed, lr)``)
with an identical hand-written loop, the same seed, batches and step count (the task's
``total_steps``); neither evaluates. The scheduler side adds ``sched.step(loss=loss)`` after
every ``optimizer.step()`` (``eval_feedback=False``, the task's decision interval), which
converts the loss to a float (``loss.item()``: a sync the plain loop does not do; it is
counted as the scheduler's cost) and every ``decision_interval`` steps measures gradient
norm and update size and runs the policy. Runs alternate A/B ``--repeats`` times; prints
median throughputs, their ratio and the overhead, then, from one extra instrumented run,
the time spent inside ``sched.step()`` (low-noise, but blind to the decisions' knock-on
cost on later steps).

    python benchmarks/scheduler_overhead.py [--agent PATH] [--task lrgym/DigitsMLP-v0]
                                            [--repeats 7] [--threads 1]

The agent defaults to the shipped ``default``.

Target: overhead <= 2% on lrgym/DigitsMLP-v0 with the default decision interval.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import lrgym

TARGET_OVERHEAD = 0.02


def run_loop(
    task_id: str, seed: int, agent: lrgym.Agent | None, inside: list[float] | None = None
) -> tuple[int, float]:
    """Train ``total_steps`` steps; with ``agent``, step a PolicyScheduler after each.

    With ``inside``, appends the seconds each ``sched.step()`` call took (instrumented
    diagnostic run only: the timer calls are not part of the A/B comparison).
    """
    task = lrgym.make_task(task_id)
    info = task.info
    trainee = task.build(seed, info.default_lr)  # only to get the same model/data/optimizer
    model, opt, loss_fn = trainee.model, trainee.optimizer, trainee.loss_fn
    x, y = trainee._data["train"]
    sched = None
    if agent is not None:
        sched = lrgym.PolicyScheduler(
            opt, agent, total_steps=info.total_steps, decision_interval=info.decision_interval
        )
    gen = torch.Generator().manual_seed(seed)
    bs, order, cursor = trainee.batch_size, torch.randperm(len(x), generator=gen), 0
    model.train()
    start = time.perf_counter()
    for _ in range(info.total_steps):
        if cursor + bs > len(order):
            order, cursor = torch.randperm(len(x), generator=gen), 0
        idx = order[cursor : cursor + bs]
        cursor += bs
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        if sched is not None and inside is None:
            sched.step(loss=loss)  # loss.item() inside: the sync counts as overhead
        elif sched is not None:
            t0 = time.perf_counter()
            sched.step(loss=loss)
            inside.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - start
    trainee.close()
    return info.total_steps, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="default", help="agent name or directory")
    parser.add_argument("--task", default="lrgym/DigitsMLP-v0")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)"
    )
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    agent = lrgym.load_agent(args.agent)
    source = f"agent {args.agent!r} ({agent.path})"
    run_loop(args.task, 0, None), run_loop(args.task, 0, agent)  # warm-up
    plain, sched = [], []
    for r in range(args.repeats):
        steps, sec = run_loop(args.task, r, None)
        plain.append(steps / sec)
        steps, sec = run_loop(args.task, r, agent)
        sched.append(steps / sec)
    inside: list[float] = []
    run_loop(args.task, 0, agent, inside)  # diagnostic: time spent inside sched.step()

    info = lrgym.make_task(args.task).info
    p, s = statistics.median(plain), statistics.median(sched)
    overhead = 1 - s / p
    print(
        f"task {args.task}, {info.total_steps} steps, decision interval "
        f"{info.decision_interval}, torch threads {torch.get_num_threads()}, "
        f"repeats {args.repeats}"
    )
    print(f"policy: {source}")
    print(
        f"plain loop      : median {p:8.0f} steps/s  (runs: {', '.join(f'{v:.0f}' for v in plain)})"
    )
    print(
        f"+ sched.step()  : median {s:8.0f} steps/s  (runs: {', '.join(f'{v:.0f}' for v in sched)})"
    )
    print(
        f"throughput ratio sched/plain = {s / p:.3f}  (overhead {100 * overhead:.1f}%, "
        f"{1e6 * (1 / s - 1 / p):.1f} µs/step; target <= {100 * TARGET_OVERHEAD:.0f}%: "
        f"{'met' if overhead <= TARGET_OVERHEAD else 'NOT met'})"
    )
    k = info.decision_interval
    decisions = [t for i, t in enumerate(inside) if (i + 1) % k == 0]
    others = [t for i, t in enumerate(inside) if (i + 1) % k != 0]
    mean = sum(inside) / len(inside)
    print(
        f"inside sched.step() (one instrumented run): decision median "
        f"{1e6 * statistics.median(decisions):.0f} µs, other steps median "
        f"{1e6 * statistics.median(others):.2f} µs; mean {1e6 * mean:.1f} µs/step = "
        f"{100 * mean * p:.1f}% of a plain step (the rest of the overhead: cache "
        f"effects on the steps after a decision, and noise)"
    )


if __name__ == "__main__":
    main()
