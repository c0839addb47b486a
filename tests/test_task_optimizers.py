"""``TorchTask(optimizer=...)`` takes a name, any torch optimizer class or a factory."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import torch
from user_tasks_example import make_tiny

import lrgym
from lrgym.backends.torch_trainee import OPTIMIZERS, optimizer_name
from lrgym.core.env import LRControlEnv

NESTEROV = functools.partial(torch.optim.SGD, momentum=0.95, nesterov=True)


@pytest.mark.parametrize(
    ("optimizer", "cls"),
    [
        ("nesterov", torch.optim.SGD),
        ("rmsprop", torch.optim.RMSprop),
        ("adagrad", torch.optim.Adagrad),
        (torch.optim.RMSprop, torch.optim.RMSprop),
        (torch.optim.Adagrad, torch.optim.Adagrad),
        (NESTEROV, torch.optim.SGD),
    ],
)
def test_a_task_trains_with_any_optimizer(optimizer, cls):
    task = dataclasses.replace(make_tiny(), optimizer=optimizer)
    env = LRControlEnv(task, total_steps=20, decision_interval=5)
    env.reset(seed=0, options={"initial_lr": 0.01})
    opt = env.trainee.optimizer
    assert type(opt) is cls
    if optimizer is NESTEROV or optimizer == "nesterov":
        assert opt.param_groups[0]["nesterov"]
    losses = []
    terminated = False
    while not terminated:
        _, _, terminated, _, info = env.step(np.zeros(1, np.float32))
        losses.append(info["val_loss"])
    assert np.isfinite(losses).all() and losses[-1] < env.initial_val_loss


def test_every_named_optimizer_builds():
    params = [torch.nn.Parameter(torch.zeros(2))]
    for name, factory in OPTIMIZERS.items():
        assert isinstance(factory(params, lr=1e-3, weight_decay=0.0), torch.optim.Optimizer), name


def test_optimizer_names_read_well():
    assert optimizer_name("adam") == "adam"
    assert optimizer_name(torch.optim.RMSprop) == "RMSprop"
    assert optimizer_name(NESTEROV) == "SGD(momentum=0.95, nesterov=True)"


@pytest.mark.parametrize("bad", ["lion", 3, None])
def test_an_unknown_optimizer_is_refused_when_the_task_is_made(bad):
    with pytest.raises(ValueError, match="optimizer"):
        dataclasses.replace(make_tiny(), optimizer=bad)


def test_a_factory_that_returns_no_optimizer_is_refused():
    task = dataclasses.replace(make_tiny(), optimizer=lambda params, **kw: object())
    with pytest.raises(ValueError, match="not a torch.optim.Optimizer"):
        task.build(0, 0.01)


@pytest.mark.parametrize("cls", [torch.optim.Adagrad, torch.optim.RMSprop, torch.optim.Adam])
def test_every_static_schedule_runs_with_any_optimizer(cls):
    """OneCycle cycles momentum only where there is one (torch refuses Adagrad's)."""
    from lrgym.controllers.static import STATIC_SCHEDULES

    for name, factory in STATIC_SCHEDULES.items():
        opt = cls([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = factory(opt, 10)
        for _ in range(10):
            opt.step()
            scheduler.step()
        assert 0 <= opt.param_groups[0]["lr"] <= 0.1 + 1e-12, name  # cosine ends at 0


def test_the_grid_leaves_out_controllers_that_cannot_drive_the_optimizer():
    """Hypergradient descent has rules for SGD and Adam only: tasks trained with Adagrad,
    RMSprop or Nesterov SGD are left out of its runs, not crashed into."""
    from lrgym.harness.compare import grid

    tasks = ["lrgym/SparseParityNesterov-v0", "lrgym/NoisyLinearAdagrad-v0"]
    tasks += ["lrgym/SineFitRMSprop-v0", "lrgym/TwoSpiralsAdamW-v0"]
    specs = grid(tasks, ["hypergradient", "feedback-rule"], [0])
    pairs = {(s.task, s.scheduler) for s in specs}
    assert {t for t, s in pairs if s == "hypergradient"} == {"lrgym/TwoSpiralsAdamW-v0"}
    assert {t for t, s in pairs if s == "feedback-rule"} == set(tasks)


@pytest.mark.parametrize(
    "scheduler", ["constant", "onecycle", "plateau", "feedback-rule", "prodigy", "learned:default"]
)
def test_every_controller_runs_a_task_trained_with_adagrad(scheduler):
    from lrgym.harness.compare import RunSpec, run_one

    result = run_one(RunSpec("lrgym/NoisyLinearAdagrad-v0", scheduler, 0), total_steps=50)
    assert result.row["steps"] == 50 and np.isfinite(result.row["final_val_metric"])


def test_split_selections_take_the_newest_version_of_a_task():
    """TeacherStudent*-v1 supersede -v0 in ``meta-train``; -v0 stays makeable."""
    meta = lrgym.task_ids("meta-train")
    assert "lrgym/TeacherStudentRegression-v1" in meta
    assert "lrgym/TeacherStudentRegression-v0" not in meta
    assert "lrgym/TeacherStudentRegression-v0" in lrgym.task_ids("meta-train", superseded=True)
    assert lrgym.select_tasks(["meta-train"]) == meta
    assert lrgym.make_task("lrgym/TeacherStudentRegression-v0").info.split == "meta-train"
