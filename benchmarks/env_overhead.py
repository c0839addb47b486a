"""Env overhead: the same optimizer steps by a plain loop and through ``env.step``.

Both sides train the same run (same run seed, so the same model, data, optimizer and
batch order) for the same steps, switch to train mode once per chunk and evaluate
validation loss and accuracy every ``decision_interval`` steps, as a user's loop would;
the env additionally computes signals (gradient norm, update size), observations and
rewards. One torch thread. Runs alternate A/B ``--repeats`` times;
prints median throughputs and their ratio.

On a shared machine the A/B ratio swings by several percent from run to run, more than
the env's own work. So the script also times that work directly, on the same runs: timers
around each piece of ``env.step`` that the plain loop does not do (gradient norm, update
measure, action, observation, info, and the rest of ``step`` outside training and
validation), as a share of ``env.step``'s time. Macro-F1 is not among them: the env reads
only the accuracy, and the report computes macro-F1 when it is read.

    python benchmarks/env_overhead.py [--task lrgym/DigitsMLP-v0] [--repeats 7]

Target: env-only work <= 2% of ``env.step`` on lrgym/DigitsMLP-v0 with the default k.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator

import gymnasium
import numpy as np
import torch

import lrgym
from lrgym.backends import torch_trainee
from lrgym.backends.torch_trainee import TorchTrainee
from lrgym.core.decision import DecisionPath
from lrgym.core.env import LRControlEnv
from lrgym.core.signals import UpdateTracker

ENV_ONLY = {  # what env.step does beyond the plain loop, by the function that does it
    "gradient norm": (torch_trainee, "grad_norm"),
    "update measure": (UpdateTracker, "measure"),
    "action": (DecisionPath, "apply"),
    "observation": (DecisionPath, "observe"),
    "info": (LRControlEnv, "_info"),
}
SHARED = {"training": (TorchTrainee, "train"), "validation": (TorchTrainee, "evaluate")}


def plain_loop(task_id: str, seed: int) -> tuple[int, float]:
    """A hand-written loop over the same run: the task's model, optimizer, data and batch
    order for ``seed``; ``model.train()`` once per chunk and validation loss and accuracy
    every ``decision_interval`` steps, as the env does."""
    task = lrgym.make_task(task_id)
    info = task.info
    trainee = task.build(seed, info.default_lr)
    model, opt, loss_fn = trainee.model, trainee.optimizer, trainee.loss_fn
    x, y = trainee.tensors["train"]
    xv, yv = trainee.tensors["val"]
    gen = trainee.batch_generator  # the run's own batch order
    bs, order, cursor = trainee.batch_size, torch.empty(0, dtype=torch.long), 0
    start = time.perf_counter()
    for _ in range(info.total_steps // info.decision_interval):
        model.train()
        for _ in range(info.decision_interval):
            if cursor + bs > len(order):
                order, cursor = torch.randperm(len(x), generator=gen), 0
            idx = order[cursor : cursor + bs]
            cursor += bs
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.item()  # a user's loop logs the loss too
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            out = model(xv)
            loss_fn(out, yv).item()
            if yv.dtype == torch.long:
                (out.argmax(dim=1) == yv).float().mean().item()
    return info.total_steps // info.decision_interval * info.decision_interval, (
        time.perf_counter() - start
    )


def env_loop(task_id: str, seed: int) -> tuple[int, float]:
    """The same run (same run seed) driven through the Gymnasium env, holding the LR."""
    env = gymnasium.make(task_id).unwrapped
    env.reset(options={"initial_lr": env.task.info.default_lr, "run_seed": seed})
    action = np.zeros(1, dtype=np.float32)
    start = time.perf_counter()
    done = False
    while not done:
        _, _, done, _, info = env.step(action)
    return info["steps"], time.perf_counter() - start


@contextlib.contextmanager
def timers(targets: dict[str, tuple[object, str]]) -> Iterator[dict[str, float]]:
    """Seconds spent in each target function while the block runs (wrapped, then put back).

    Timers on a few functions, not cProfile: its hook on every call would slow the
    training steps whose share it is meant to measure.
    """
    spent: dict[str, float] = defaultdict(float)
    originals = {name: getattr(owner, attr) for name, (owner, attr) in targets.items()}

    def timed(name: str, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start

        return wrapper

    for name, (owner, attr) in targets.items():
        setattr(owner, attr, timed(name, originals[name]))
    try:
        yield spent
    finally:
        for name, (owner, attr) in targets.items():
            setattr(owner, attr, originals[name])


def timed_env_only(task_id: str, runs: int) -> None:
    """Print the env-only pieces' time per decision and as a share of ``env.step``."""
    targets = {"env.step": (LRControlEnv, "step"), **SHARED, **ENV_ONLY}
    with timers(targets) as spent:
        decisions = 0
        for seed in range(runs):
            env = gymnasium.make(task_id).unwrapped
            env.reset(options={"initial_lr": env.task.info.default_lr, "run_seed": seed})
            done = False
            while not done:
                _, _, done, _, _ = env.step(np.zeros(1, dtype=np.float32))
                decisions += 1
    # grad norm and update measure run inside training; everything else of env.step that
    # is neither training nor validation is the env's own (reward, divergence check, ...)
    inside_train = spent["gradient norm"] + spent["update measure"]
    rest = spent["env.step"] - spent["training"] - spent["validation"]
    rest -= spent["action"] + spent["observation"] + spent["info"]
    pieces = {name: spent[name] for name in ENV_ONLY} | {"rest of env.step": rest}
    total = spent["env.step"]
    print(f"timed env-only work, {runs} runs, {decisions} decisions:")
    for name, sec in pieces.items():
        print(f"  {name:18s} {1e6 * sec / decisions:7.1f} us/decision  {100 * sec / total:5.2f}%")
    env_only = sum(pieces.values())
    print(
        f"  {'total':18s} {1e6 * env_only / decisions:7.1f} us/decision  "
        f"{100 * env_only / total:5.2f}% of env.step "
        f"(training {100 * (spent['training'] - inside_train) / total:.1f}%, "
        f"validation {100 * spent['validation'] / total:.1f}%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="lrgym/DigitsMLP-v0")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--timed-runs", type=int, default=5, help="runs for the timed share")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread per process, as in every lrgym worker
    plain_loop(args.task, 0), env_loop(args.task, 0)  # warm-up: imports, allocator, caches
    plain, env = [], []
    for r in range(args.repeats):
        steps, sec = plain_loop(args.task, r)
        plain.append(steps / sec)
        steps, sec = env_loop(args.task, r)
        env.append(steps / sec)
    p, e = statistics.median(plain), statistics.median(env)
    # each pair ran back to back on the same run seed: the median of the pairs' ratios is
    # less exposed to a busy machine's drift than the ratio of the two medians
    pairs = sorted(ev / pv for ev, pv in zip(env, plain, strict=True))
    q1, q3 = pairs[len(pairs) // 4], pairs[(3 * len(pairs)) // 4]
    print(f"task {args.task}, torch threads {torch.get_num_threads()}, repeats {args.repeats}")
    print(f"plain loop : median {p:8.0f} steps/s  (runs: {', '.join(f'{v:.0f}' for v in plain)})")
    print(f"env.step   : median {e:8.0f} steps/s  (runs: {', '.join(f'{v:.0f}' for v in env)})")
    print(f"throughput ratio env/plain = {e / p:.3f}  (overhead {100 * (1 - e / p):.1f}%)")
    pair = statistics.median(pairs)
    print(
        f"paired ratio env/plain = {pair:.3f} (quartiles {q1:.3f}-{q3:.3f}; "
        f"overhead {100 * (1 - pair):.1f}%)"
    )
    timed_env_only(args.task, args.timed_runs)


if __name__ == "__main__":
    main()
