"""Optimizer-steps per second: DACBench's SGD environment vs lrgym's envs, same model and data.

Measured side by side in one run, in one process with one torch thread (so on the same
core), interleaved within every repeat so that a change in machine load hits every path:

* **DACBench** 0.5.6 ``SGDEnv`` (``dacbench.benchmarks.SGDBenchmark``'s environment) in its
  two modes: *epoch mode* (one decision per epoch; ``run_epoch`` trains a full epoch) and
  *step mode* (one decision per optimizer step; ``forward_backward`` draws each batch);
* **lrgym** ``LRControlEnv`` (one run) and ``BatchedLRControlEnv`` (K runs as one stacked
  computation), each with the decision interval of the DACBench mode it is compared with:
  one epoch (the number of training batches) for epoch mode, 1 optimizer step for step
  mode, and the same number of optimizer steps per episode.

Same problem on both sides: scikit-learn's digits (lrgym's ``DigitsMLP-v0`` split of run
seed 0: 1,078 train / 359 val / 360 test rows, standardised), a 64-64 ReLU MLP
(``lrgym.tasks.models.mlp``; DACBench's env needs log-probabilities for its ``NLLLoss``, so
its copy ends in ``LogSoftmax``, where lrgym's ``CrossEntropyLoss`` does the same inside),
batch size 64 (DACBench's ``drop_last`` loader and lrgym's sampler both give 16 batches an
epoch), ``torch.optim.AdamW`` with torch's defaults (LR 1e-3, weight decay 0.01: DACBench's
env always builds AdamW, so lrgym's task here is DigitsMLP with ``optimizer="adamw"``), and
the LR held at 1e-3 (DACBench action 1e-3; lrgym action 0, and autoresets at the task's
default LR). A model-step is one optimizer step of one run; resets between episodes are
inside the timed loops on both sides.

Not the same work per decision, each env as shipped: lrgym evaluates the whole validation
split (359 rows; loss, accuracy and, single-run, macro-F1) at every decision; DACBench
evaluates one shuffled batch of 64 validation rows (its 10% rule; the whole split only at
an episode's end, when it also evaluates the test split). In step mode, with a decision
every optimizer step, this validation is most of lrgym's per-step work (batched K=64:
about half of ``step``'s time, as much as training), so step mode is the harder bar.

What is stubbed or replaced on the DACBench side (nothing else is touched; its env, its
``run_epoch``/``forward_backward``/``test`` and its ``DataLoader`` use run as shipped):

* ``torchvision``: DACBench imports it at module level (``sgd_utils``: ``datasets``,
  ``transforms``) only to download and transform MNIST/CIFAR. It is not installed here
  (DACBench's own ``all`` extra pins ``torch<=2.10`` and ``torchvision<=0.25``); without
  it, ``import dacbench`` fails outright whenever torch is installed. If it does not import, this
  script puts a stub package in ``sys.modules`` before importing DACBench: modules
  ``torchvision``, ``torchvision.datasets`` (``MNIST``/``CIFAR10``/``FashionMNIST``
  classes with a ``download`` attribute that raise if instantiated) and
  ``torchvision.transforms`` (``Compose``/``ToTensor``/``Normalize`` that do nothing).
  A working torchvision is used as is.
* ``dacbench.envs.sgd.random_torchvision_loader`` (the download at every reset) is
  replaced the way DACBench's own tests do it (``tests/envs/test_sgd.py`` patches it with
  ``tests/helpers.py:tiny_sgd_loader``): it returns in-memory ``TensorDataset`` s of the
  digits split above, in ``DataLoader`` s built with the arguments the real loader uses
  (train: batch 64, ``shuffle=True, drop_last=True``; val: batch 64, ``shuffle=True``;
  test: batch 64). This favours DACBench: its real loader reads a torchvision data set
  from disk at every reset and transforms every sample from a PIL image in ``__getitem__``.
* The instance set is one ``SGDInstance`` (this model, AdamW defaults, batch 64) instead
  of the CIFAR-10 CSV; the cutoff is set so that an episode has the same number of
  optimizer steps as lrgym's.

Noticed in DACBench 0.5.6 (checked by this script where it says so):

* ``gymnasium.utils.env_checker.check_env`` fails on ``SGDEnv``: ``reset`` returns a dict
  with keys ``step, loss, validation_loss, validation_accuracy, done[, average_loss]``
  while the observation space is a ``Dict`` of ``step, loss, validationLoss, crashed``
  (the script runs ``check_env`` and prints the error);
* step mode calls ``next(iter(train_loader))`` at every step: a fresh shuffled iterator
  (a ``randperm`` of the whole train set) per batch, and every batch is gathered sample
  by sample and collated; validation after every step uses 10% of the validation set
  (at least one batch), and the full one only when ``cutoff % len(train_loader) == 0``
  (it tests the constant ``n_steps``, not the current step);
* the instance's ``optimizer_type`` (SGD, Adam, RMSprop in its CSVs) is ignored: the env
  always builds ``torch.optim.AdamW``; a 2-element action also sets Adam's beta1 even with
  ``use_momentum`` off; the first step-mode step calls ``optimizer.step()`` before any
  gradient exists (reset does no forward/backward pass, despite its docstring).

Prints the medians over ``--repeats`` and every lrgym path's ratio to the DACBench mode it
matches. The issue's bar: batched lrgym at least 5x DACBench in both modes.

    pip install -e '.[dacbench]'   # dacbench with all its dependencies (jupyter, ...), or
    # lean: only what ``import dacbench`` and its SGD env need beyond lrgym's own
    pip install 'dacbench==0.5.6' --no-deps && pip install configspace seaborn ioh
    python benchmarks/vs_dacbench.py --ks 16 64 --seconds 3 --repeats 3 [--compile]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.machinery
import os
import statistics
import sys
import time
import types
import warnings

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lrgym
from lrgym.backends.torch_trainee import TorchTask
from lrgym.core.env import LRControlEnv
from lrgym.harness.report import md_table
from lrgym.tasks import models
from lrgym.vector.env import BatchedLRControlEnv

TASK = "lrgym/DigitsMLP-v0"
LR, BATCH, DATA_SEED = 1e-3, 64, 0


# --- DACBench setup --------------------------------------------------------------------------


def _stub_torchvision() -> bool:
    """Put a stub ``torchvision`` in ``sys.modules`` unless a real one imports; True if stubbed."""
    try:
        import torchvision  # noqa: F401

        return False
    except Exception:  # not installed, or built for another torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]

    class _NoDataSet:
        download = None  # sgd_utils reads ``datasets.CIFAR10.download`` at import

        def __init__(self, *args, **kwargs):
            raise RuntimeError("torchvision is stubbed by benchmarks/vs_dacbench.py")

    class _NoOpTransform:
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, x):
            return x

    def module(name: str, **attrs) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)  # find_spec() sees it
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
        return mod

    datasets = module(
        "torchvision.datasets", MNIST=_NoDataSet, CIFAR10=_NoDataSet, FashionMNIST=_NoDataSet
    )
    transforms = module(
        "torchvision.transforms",
        Compose=_NoOpTransform,
        ToTensor=_NoOpTransform,
        Normalize=_NoOpTransform,
    )
    module("torchvision", datasets=datasets, transforms=transforms)
    return True


def _import_dacbench():
    """``(dacbench, SGDBenchmark, SGDInstance, sgd module, stubbed)``; quiet about its extras."""
    stubbed = _stub_torchvision()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CMA-ES/DACBO Benchmark not installed"
        import dacbench
        import dacbench.envs.sgd as sgd
        from dacbench.benchmarks.sgd_benchmark import SGDBenchmark
    return dacbench, SGDBenchmark, sgd.SGDInstance, sgd, stubbed


def _in_memory_loader(tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]):
    """A stand-in for ``random_torchvision_loader``: the digits split, in memory, in
    ``DataLoader`` s with the real loader's arguments (as DACBench's tests patch it)."""

    def loader(*args, **kwargs):
        train, val, test = (TensorDataset(*tensors[s]) for s in ("train", "val", "test"))
        loaders = (
            DataLoader(train, batch_size=BATCH, drop_last=True, shuffle=True),
            DataLoader(val, batch_size=BATCH, shuffle=True),
            DataLoader(test, batch_size=64),
        )
        return (train, test), loaders

    return loader


def _dac_model(n_in: int, n_out: int):
    def make() -> nn.Module:
        return nn.Sequential(models.mlp(n_in, n_out, np.random.default_rng()), nn.LogSoftmax(1))

    return make


def dacbench_env(dac, tensors, epoch_mode: bool, cutoff: int):
    """DACBench's ``SGDEnv`` on the digits MLP, in epoch or step mode, ``cutoff`` env steps."""
    _, sgd_benchmark, sgd_instance, sgd, _ = dac
    sgd.random_torchvision_loader = _in_memory_loader(tensors)
    n_in, n_out = tensors["train"][0].shape[1], int(tensors["train"][1].max()) + 1
    instance = sgd_instance(
        model=_dac_model(n_in, n_out),
        optimizer_type="AdamW",
        optimizer_params={},  # torch's AdamW defaults: lr 1e-3, weight decay 0.01
        dataset_path="",
        dataset_name="digits",
        batch_size=BATCH,
        fraction_of_dataset=1.0,
        train_validation_ratio=None,
        seed=DATA_SEED,
    )
    bench = sgd_benchmark()
    bench.config.epoch_mode = epoch_mode
    bench.config.cutoff = cutoff
    bench.config.instance_set = {0: instance}
    bench.config.instance_update_func = "no_progression"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its float64 Box action space, cast to float32
        return bench.get_environment()


def check_dacbench_env(dac, tensors) -> str:
    """Run gymnasium's ``check_env`` on DACBench's env; one line saying what happened."""
    from gymnasium.utils.env_checker import check_env

    env = dacbench_env(dac, tensors, epoch_mode=False, cutoff=4)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_env(env, skip_render_check=True)
    except Exception as exc:  # report whatever it raises
        return f"fails: {type(exc).__name__}: {' '.join(str(exc).split())}"
    return "passes"


# --- rates -----------------------------------------------------------------------------------


def dacbench_rate(env, steps_per_env_step: int, seconds: float) -> float:
    """Optimizer steps/s of DACBench's env with the LR held at ``LR``, resets included."""
    env.reset(seed=0)
    env.step(LR)  # warm-up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(LR)
        steps += steps_per_env_step
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def lrgym_rate(env: LRControlEnv, seconds: float) -> float:
    """Optimizer steps/s of one ``LRControlEnv`` holding the LR, resets included."""
    env.reset(seed=0, options={"initial_lr": LR})
    action = np.zeros(1, dtype=np.float32)
    env.step(action)  # warm-up
    env.reset(options={"initial_lr": LR})
    done_before, steps, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, _, info = env.step(action)
        steps += info["steps"] - done_before
        done_before = info["steps"]
        if terminated:
            env.reset(options={"initial_lr": LR})
            done_before = 0
    return steps / (time.perf_counter() - start)


def batched_rate(env: BatchedLRControlEnv, seconds: float) -> float:
    """Model-steps/s of a ``BatchedLRControlEnv`` holding every LR (autoreset at ``LR``)."""
    k = env.num_envs
    env.reset(seed=0, options={"initial_lr": [LR] * k})
    actions = np.zeros((k, 1), dtype=np.float32)
    env.step(actions)  # warm-up (and compiling, with --compile)
    env.reset(options={"initial_lr": [LR] * k})
    done_before = np.zeros(k, dtype=np.int64)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, _, infos = env.step(actions)
        after = np.asarray(infos["steps"], dtype=np.int64)
        steps += int((after - done_before).sum())
        done_before = np.where(terminated, 0, after)
    return steps / (time.perf_counter() - start)


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--budget", type=int, default=1000, help="optimizer steps per episode")
    parser.add_argument("--seconds", type=float, default=3.0, help="per path and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--compile", action="store_true", help="also time each K with torch.compile'd steps"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    dac = _import_dacbench()
    base = lrgym.make_task(TASK)
    assert isinstance(base, TorchTask)
    task = dataclasses.replace(base, optimizer="adamw", weight_decay=1e-2, batch_size=BATCH)
    tensors = task.build(DATA_SEED, LR).tensors
    per_epoch = tensors["train"][0].shape[0] // BATCH
    epochs = max(1, round(args.budget / per_epoch))
    # (DACBench mode, its env steps per episode, optimizer steps per env step)
    modes = {"epoch": (epochs, per_epoch), "step": (args.budget, 1)}

    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for mode, (cutoff, interval) in modes.items():
            total = cutoff * interval
            env = dacbench_env(dac, tensors, epoch_mode=mode == "epoch", cutoff=cutoff)
            rates.setdefault((mode, "DACBench SGDEnv"), []).append(
                dacbench_rate(env, interval, args.seconds)
            )
            env.close()
            single = LRControlEnv(task, interval, total)
            rates.setdefault((mode, "lrgym LRControlEnv"), []).append(
                lrgym_rate(single, args.seconds)
            )
            single.close()
            for k in args.ks:
                for compile in (False, True) if args.compile else (False,):
                    venv = BatchedLRControlEnv(
                        task, k, interval, total, default_lr_share=1.0, compile=compile
                    )
                    assert venv.batched, getattr(venv, "not_batched_because", "")
                    name = f"lrgym BatchedLRControlEnv K={k}{', compiled' if compile else ''}"
                    rates.setdefault((mode, name), []).append(batched_rate(venv, args.seconds))
                    venv.close()

    dacbench, stubbed = dac[0], dac[4]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"DACBench {dacbench.__version__} (torchvision {'stubbed' if stubbed else 'real'}), "
        f"torch {torch.__version__}, 1 thread, 1 process, {cores} cores visible; digits "
        f"64-64 MLP, AdamW, batch {BATCH}, {per_epoch} batches/epoch; episodes of "
        f"{epochs * per_epoch} (epoch mode) and {args.budget} (step mode) optimizer steps"
    )
    print(f"DACBench SGDEnv under gymnasium check_env: {check_dacbench_env(dac, tensors)}")
    print()
    rows = []
    for mode, (_, interval) in modes.items():
        ref = statistics.median(rates[(mode, "DACBench SGDEnv")])
        for (m, name), values in rates.items():
            if m != mode:
                continue
            value = statistics.median(values)
            every = f"{interval} step{'s' if interval > 1 else ''}"
            rows.append([mode, name, every, f"{value:,.0f}", f"{value / ref:.2f}"])
    headers = [
        "DACBench mode",
        "env",
        "decision every",
        f"optimizer-steps/s (median of {args.repeats})",
        "× DACBench",
    ]
    print(md_table(headers, rows, align="llrrr"))


if __name__ == "__main__":
    main()
