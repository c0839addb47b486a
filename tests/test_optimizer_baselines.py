"""Schedule-free AdamW and Prodigy as optimizer-level baselines in the harness.

They must replace the task's optimizer over the same parameters with the run's initial
LR, schedule-free must train in train mode and be evaluated in eval mode (the harness's
every evaluation, the final test included), XGBoost tasks are left out cleanly, and a
missing package names the extra to install.
"""

from __future__ import annotations

import sys

import pytest
import torch

from lrgym.controllers import BASELINES, CONTROLLERS, make_controller, register_controller
from lrgym.controllers.optimizer_baselines import OPTIM_INSTALL, ProdigyBaseline, ScheduleFreeAdamW
from lrgym.core.registration import make_task
from lrgym.harness.compare import RunSpec, grid, run_one

schedulefree = pytest.importorskip("schedulefree")
prodigyopt = pytest.importorskip("prodigyopt")

TORCH_TASK = "lrgym/WineMLP-v0"  # AdamW, weight decay 0.01, default LR 1e-3
XGB_TASK = "lrgym/DiabetesXGB-v0"


def build(controller, lr: float = 1e-3):
    inner = make_task(TORCH_TASK).build(0, lr)
    params = list(inner.params)
    return inner, params, controller.wrap(inner)


def test_names_are_registered_but_not_static_baselines():
    assert {"schedulefree-adamw", "prodigy"} <= set(CONTROLLERS)
    assert not {"schedulefree-adamw", "prodigy"} & set(BASELINES)
    assert isinstance(make_controller("schedulefree-adamw"), ScheduleFreeAdamW)
    assert isinstance(make_controller("prodigy"), ProdigyBaseline)


def test_schedulefree_replaces_the_optimizer_over_the_same_params():
    inner, params, trainee = build(ScheduleFreeAdamW(), lr=3e-3)
    opt = trainee.optimizer
    assert isinstance(opt, schedulefree.AdamWScheduleFree)
    assert inner.optimizer is opt  # the inner trainee now steps it
    assert [p for g in opt.param_groups for p in g["params"]] == params
    assert opt.param_groups[0]["lr"] == 3e-3
    assert opt.param_groups[0]["weight_decay"] == 1e-2  # the task's


def test_schedulefree_switches_modes_around_training_and_evaluation():
    _, params, trainee = build(ScheduleFreeAdamW())
    group = trainee.optimizer.param_groups[0]
    trainee.train(5)
    assert group["train_mode"] is True
    y = [p.detach().clone() for p in params]
    trainee.evaluate("val")
    assert group["train_mode"] is False
    x = [p.detach().clone() for p in params]
    assert any(not torch.equal(a, b) for a, b in zip(x, y, strict=True))  # evaluated at x
    trainee.train(1)  # back to y before the step
    assert group["train_mode"] is True


class ModeSpy(ScheduleFreeAdamW):
    """Records the optimizer's mode whenever the harness calls the controller."""

    log: list[tuple[str, bool]] = []

    def start(self, optimizer, total_steps, decision_interval):
        super().start(optimizer, total_steps, decision_interval)
        self.optimizer = optimizer
        ModeSpy.log.append(("warmup", optimizer.param_groups[0]["warmup_steps"]))

    def step(self, loss):
        ModeSpy.log.append(("step", self.optimizer.param_groups[0]["train_mode"]))

    def observe(self, report):
        ModeSpy.log.append(("eval", self.optimizer.param_groups[0]["train_mode"]))


def test_harness_trains_in_train_mode_and_evaluates_in_eval_mode():
    register_controller("test-mode-spy", ModeSpy)
    try:
        ModeSpy.log = []
        result = run_one(RunSpec(TORCH_TASK, "test-mode-spy", 0), total_steps=60)
    finally:
        del CONTROLLERS["test-mode-spy"]
    assert ModeSpy.log[0] == ("warmup", 3)  # 5% of 60 steps
    steps = [mode for kind, mode in ModeSpy.log if kind == "step"]
    evals = [mode for kind, mode in ModeSpy.log if kind == "eval"]
    assert len(steps) == 60 and all(steps)
    assert len(evals) == len(result.curve) and not any(evals)
    assert result.row["final_test_metric"] > 0.5


def test_prodigy_runs_as_recommended_and_reports_its_step_size():
    inner, params, trainee = build(ProdigyBaseline(), lr=2e-3)
    opt = trainee.optimizer
    assert isinstance(opt, prodigyopt.Prodigy)
    assert [p for g in opt.param_groups for p in g["params"]] == params
    group = opt.param_groups[0]
    assert group["lr"] == 1.0 and group["d0"] == 1e-6  # Prodigy's own d0, not the run's LR
    assert trainee.lr == pytest.approx(1e-6)  # effective step size d · lr
    trainee.train(30)
    assert trainee.lr == pytest.approx(group["d"] * group["lr"]) and trainee.lr > 1e-6


@pytest.mark.parametrize("name", ["schedulefree-adamw", "prodigy"])
def test_runs_in_the_harness(name):
    result = run_one(RunSpec(TORCH_TASK, name, 0), total_steps=60)
    assert not result.row["diverged"]
    assert result.row["steps"] == 60


def test_xgboost_tasks_are_left_out_of_the_grid():
    specs = grid([TORCH_TASK, XGB_TASK], ["constant", "schedulefree-adamw", "prodigy"], [0, 1])
    pairs = {(s.task, s.scheduler) for s in specs}
    assert (XGB_TASK, "constant") in pairs
    assert (XGB_TASK, "schedulefree-adamw") not in pairs
    assert (XGB_TASK, "prodigy") not in pairs
    assert (TORCH_TASK, "prodigy") in pairs


@pytest.mark.parametrize("controller", [ScheduleFreeAdamW, ProdigyBaseline])
def test_wrapping_a_non_torch_trainee_is_a_clear_error(controller):
    trainee = make_task(XGB_TASK).build(0, 0.3)
    with pytest.raises(TypeError, match="torch tasks only"):
        controller().wrap(trainee)


@pytest.mark.parametrize(
    ("name", "module"), [("schedulefree-adamw", "schedulefree"), ("prodigy", "prodigyopt")]
)
def test_missing_package_names_the_extra(monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ImportError, match=f"{module} is not installed.*lrgym\\[optim\\]"):
        make_controller(name)
    assert OPTIM_INSTALL == 'pip install "lrgym[optim]"'
