"""Controllers are torch's own schedulers, driving real runs (torch and XGBoost alike).

Each static schedule is compared, step by step, with the torch class built *here* from
the parameters documented in :data:`lrgym.controllers.STATIC_SCHEDULES`, on a standalone
optimizer. A re-implementation, an off-by-one in stepping, or a drifted parameter shows
up as a different LR trace.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import xgboost as xgb
from torch.optim import lr_scheduler

import lrgym
from lrgym.controllers import (
    BASELINES,
    STATIC_SCHEDULES,
    PlateauSchedule,
    TorchSchedule,
    make_controller,
)
from lrgym.core.trainee import EvalReport
from lrgym.harness.compare import RunSpec, run_one

TORCH_TASK = "lrgym/DigitsMLP-v0"
XGB_TASK = "lrgym/BreastCancerXGB-v0"
LR0 = 1e-3
N = 48


def _cosine(opt, total):
    warmup = max(1, int(0.05 * total))
    return lr_scheduler.SequentialLR(
        opt,
        [
            lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warmup),
            lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup),
        ],
        milestones=[warmup],
    )


# The documented schedules, built directly from torch's classes.
REFERENCE = {
    "constant": lambda opt, total: lr_scheduler.LambdaLR(opt, lambda step: 1.0),
    "step": lambda opt, total: lr_scheduler.StepLR(opt, step_size=total // 3, gamma=0.1),
    "exponential": lambda opt, total: lr_scheduler.ExponentialLR(opt, gamma=0.01 ** (1 / total)),
    "cosine": _cosine,
    "cyclic": lambda opt, total: lr_scheduler.CyclicLR(
        opt,
        base_lr=opt.param_groups[0]["lr"] / 10,
        max_lr=opt.param_groups[0]["lr"],
        step_size_up=total // 8,
        cycle_momentum=False,
    ),
    "onecycle": lambda opt, total: lr_scheduler.OneCycleLR(
        opt, max_lr=opt.param_groups[0]["lr"], total_steps=total
    ),
}


def reference_trace(name: str, lr0: float, total: int) -> list[float]:
    """LR before each of ``total`` steps, and after the last, from the torch class."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    sched = REFERENCE[name](opt, total)
    trace = [opt.param_groups[0]["lr"]]
    for _ in range(total):
        opt.step()
        sched.step()
        trace.append(opt.param_groups[0]["lr"])
    return trace


def controlled_trace(task_id: str, name: str, lr0: float, total: int, chunk: int):
    """LR trace of a real run driven by ``make_controller(name)`` in chunks of ``chunk``."""
    trainee = lrgym.make_task(task_id).build(0, lr0)
    controller = make_controller(name)
    controller.start(trainee.optimizer, total, chunk)
    trace = [trainee.lr]
    losses = []

    def hook(loss: float) -> None:
        losses.append(loss)
        controller.step(loss)
        trace.append(trainee.lr)

    done = 0
    while done < total:
        report = trainee.train(min(chunk, total - done), on_step=hook)
        assert report.steps == min(chunk, total - done)
        done += report.steps
    trainee.close()
    return trace, losses


def test_reference_covers_every_static_schedule():
    assert set(REFERENCE) == set(STATIC_SCHEDULES)
    assert set(BASELINES) == {*STATIC_SCHEDULES, "plateau"}


@pytest.mark.parametrize("name", list(STATIC_SCHEDULES))
def test_static_schedule_is_the_torch_scheduler(name):
    trace, losses = controlled_trace(TORCH_TASK, name, LR0, N, chunk=16)
    expected = reference_trace(name, LR0, N)
    assert len(trace) == N + 1 and len(losses) == N
    assert all(math.isfinite(x) for x in losses)
    np.testing.assert_allclose(trace, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", list(STATIC_SCHEDULES))
def test_controller_wraps_a_torch_lr_scheduler(name):
    controller = make_controller(name)
    assert isinstance(controller, TorchSchedule)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR0)
    controller.start(opt, N, 8)
    assert isinstance(controller.scheduler, lr_scheduler.LRScheduler)
    assert controller.scheduler.optimizer is opt


def test_documented_shapes():
    """The traces have the shapes the docstring of STATIC_SCHEDULES promises."""
    total = 96
    constant = reference_trace("constant", LR0, total)
    assert constant == pytest.approx([LR0] * (total + 1))
    step = reference_trace("step", LR0, total)
    assert step[0] == pytest.approx(LR0)
    assert step[total // 3] == pytest.approx(LR0 * 0.1)
    assert step[-2] == pytest.approx(LR0 * 0.01)
    exponential = reference_trace("exponential", LR0, total)
    assert exponential[-1] == pytest.approx(LR0 * 0.01)
    cosine = reference_trace("cosine", LR0, total)
    assert cosine[0] == pytest.approx(LR0 * 0.01)
    assert max(cosine) == pytest.approx(LR0, rel=1e-3)
    assert cosine[-1] == pytest.approx(0.0, abs=1e-12)
    cyclic = reference_trace("cyclic", LR0, total)
    assert min(cyclic) == pytest.approx(LR0 / 10) and max(cyclic) == pytest.approx(LR0)
    onecycle = reference_trace("onecycle", LR0, total)
    assert max(onecycle) == pytest.approx(LR0, rel=1e-3)
    assert onecycle[0] < LR0 / 10 and onecycle[-2] < LR0 / 1000


def _eval(loss: float) -> EvalReport:
    return EvalReport(loss=loss, metric=0.5, metrics={"accuracy": 0.5})


def test_plateau_halves_after_patience_plus_one_bad_evaluations():
    controller = make_controller("plateau")
    assert isinstance(controller, PlateauSchedule)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR0)
    controller.start(opt, N, 8)
    assert isinstance(controller.scheduler, lr_scheduler.ReduceLROnPlateau)
    controller.step(1.0)  # per-step calls must not move a plateau schedule
    controller.observe(_eval(1.0))  # the first evaluation sets the best loss
    for _ in range(controller.patience):
        controller.observe(_eval(1.0))
        assert opt.param_groups[0]["lr"] == pytest.approx(LR0)
    controller.observe(_eval(1.1))  # patience + 1 non-improving evaluations
    assert opt.param_groups[0]["lr"] == pytest.approx(LR0 * 0.5)


def test_plateau_keeps_lr_while_improving():
    controller = make_controller("plateau")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR0)
    controller.start(opt, N, 8)
    for loss in np.linspace(1.0, 0.1, 10):
        controller.observe(_eval(float(loss)))
    assert opt.param_groups[0]["lr"] == pytest.approx(LR0)


def test_xgboost_follows_a_torch_schedule(monkeypatch):
    """With ``step`` on an XGBoost task, every round's eta is StepLR's LR for that round."""
    total, lr0 = 12, 0.3
    etas: list[float] = []  # the eta in force at each boosting round
    current: dict[str, float] = {}
    set_param, update = xgb.Booster.set_param, xgb.Booster.update

    def spy_set_param(self, params, value=None):
        if params == "eta":
            current["eta"] = float(value)
        return set_param(self, params, value)

    def spy_update(self, *args, **kwargs):
        etas.append(current["eta"])
        return update(self, *args, **kwargs)

    monkeypatch.setattr(xgb.Booster, "set_param", spy_set_param)
    monkeypatch.setattr(xgb.Booster, "update", spy_update)
    trainee = lrgym.make_task(XGB_TASK).build(0, lr0)
    controller = make_controller("step")
    controller.start(trainee.optimizer, total, total)
    report = trainee.train(total, on_step=controller.step)
    monkeypatch.undo()

    expected = reference_trace("step", lr0, total)[:total]  # LR in use at each round
    assert report.steps == total
    assert etas == pytest.approx(expected)
    assert len(set(etas)) == 3  # the schedule really moved eta

    # The booster is the one XGBoost's own per-round eta schedule would grow. Its
    # LearningRateScheduler sets the rate *after* round i (for round i + 1), so round 0
    # takes eta from the params.
    ref = xgb.train(
        {**trainee.params, "eta": expected[0]},
        trainee._dmatrix["train"],
        num_boost_round=total,
        callbacks=[xgb.callback.LearningRateScheduler(lambda i: expected[min(i + 1, total - 1)])],
    )
    x = trainee._dmatrix["val"]
    np.testing.assert_allclose(trainee.booster.predict(x), ref.predict(x), rtol=1e-6)
    const = xgb.train(trainee.params, trainee._dmatrix["train"], num_boost_round=total)
    assert not np.allclose(const.predict(x), ref.predict(x))  # eta schedule matters


def test_xgboost_eta_follows_chunked_schedule():
    """Across chunks (one train() call per decision) the proxy optimizer keeps its schedule."""
    total, lr0 = 12, 0.3
    trace, losses = controlled_trace(XGB_TASK, "exponential", lr0, total, chunk=4)
    np.testing.assert_allclose(trace, reference_trace("exponential", lr0, total), rtol=1e-12)
    assert len(losses) == total


@pytest.mark.parametrize("task_id", [XGB_TASK, "lrgym/TeacherStudentXGB-v0"])
def test_xgboost_runs_do_not_depend_on_the_decision_interval(task_id):
    """Rounds trained in chunks grow the same trees as rounds trained in one call."""
    task = lrgym.make_task(task_id)
    whole, chunked = task.build(0, 0.3), task.build(0, 0.3)
    losses = whole.train(24).losses
    chunked_losses = [loss for _ in range(4) for loss in chunked.train(6).losses]
    assert chunked_losses == list(losses)
    x = whole._dmatrix["val"]
    np.testing.assert_array_equal(whole.booster.predict(x), chunked.booster.predict(x))


def test_unknown_controller_names_close_match():
    with pytest.raises(ValueError, match="cosine"):
        make_controller("cosin")


@pytest.mark.parametrize("target_every", [None, 1])
def test_run_one_records_divergence_without_raising(target_every):
    spec = RunSpec("lrgym/FriedmanMLP-v0", "constant", 0, 1e3, target_every=target_every)
    result = run_one(spec, total_steps=50)
    assert result.row["diverged"] is True
    assert result.row["steps"] < 50
    assert result.row["reached_target"] is False
    assert result.row["steps_to_target"] == math.inf


def test_touching_the_target_then_diverging_is_not_reaching_it(forget_tasks):
    """A run reaches the target only if it ends at or above it without diverging."""
    base = lrgym.make_task("lrgym/WineMLP-v0")
    low = dataclasses.replace(base, info=dataclasses.replace(base.info, target=-1.0))
    lrgym.register_task("testlab/LowTarget-v0", lambda: low)
    diverging = run_one(RunSpec("testlab/LowTarget-v0", "constant", 0, 1e3), total_steps=50)
    assert diverging.row["diverged"] is True
    assert diverging.row["touched_target"] is True  # the first evaluation is above -1
    assert diverging.row["reached_target"] is False
    assert diverging.row["steps_to_target"] == math.inf
    healthy = run_one(RunSpec("testlab/LowTarget-v0", "constant", 0, 1e-3), total_steps=50)
    assert healthy.row["reached_target"] is True and healthy.row["steps_to_target"] == 0


def test_run_one_is_deterministic():
    spec = RunSpec("lrgym/IllConditionedRegression-v0", "cosine", 3, 5e-3)
    a = run_one(spec, total_steps=50)
    b = run_one(spec, total_steps=50)
    assert a.row["final_val_metric"] == b.row["final_val_metric"]
    assert a.row["final_test_metric"] == b.row["final_test_metric"]
    assert [c["val_loss"] for c in a.curve] == [c["val_loss"] for c in b.curve]
    assert [c["lr"] for c in a.curve] == [c["lr"] for c in b.curve]
    assert a.row["diverged"] is False and a.row["steps"] == 50
    other = run_one(RunSpec(spec.task, spec.scheduler, 4, spec.initial_lr), total_steps=50)
    assert other.row["final_val_metric"] != a.row["final_val_metric"]


def test_run_one_curve_follows_schedule():
    """The harness steps the controller once per optimizer step: each curve row's LR is
    the schedule's LR after that row's number of optimizer steps."""
    total = 50
    result = run_one(RunSpec("lrgym/IllConditionedRegression-v0", "step", 0, 1e-2), total)
    interval = lrgym.make_task("lrgym/IllConditionedRegression-v0").info.decision_interval
    expected = reference_trace("step", 1e-2, total)
    assert [r["step"] for r in result.curve] == list(range(0, total + 1, interval))
    for r in result.curve:
        assert r["lr"] == pytest.approx(expected[r["step"]])
    assert len({r["lr"] for r in result.curve}) > 1


@pytest.mark.parametrize("scheduler", ["constant", "learned:default"])
def test_target_checks_between_decisions_change_no_decision(forget_tasks, scheduler):
    """``target_every=1`` resolves steps to target to one step; the controller sees the
    same evaluations, so LRs, curves and final metrics are those of a plain run."""
    base = lrgym.make_task("lrgym/WineMLP-v0")
    mid = dataclasses.replace(base, info=dataclasses.replace(base.info, target=0.6))
    lrgym.register_task("testlab/MidTarget-v0", lambda: mid)
    plain = run_one(RunSpec("testlab/MidTarget-v0", scheduler, 0), total_steps=100)
    fine = run_one(RunSpec("testlab/MidTarget-v0", scheduler, 0, target_every=1), total_steps=100)
    interval = base.info.decision_interval
    for key in ("lr", "val_loss", "val_metric", "step"):
        assert [c[key] for c in fine.curve] == [c[key] for c in plain.curve]
    assert fine.row["final_test_metric"] == plain.row["final_test_metric"]
    coarse, exact = plain.row["steps_to_target"], fine.row["steps_to_target"]
    assert plain.row["reached_target"] and coarse % interval == 0
    assert coarse - interval < exact < coarse  # this target is crossed inside a chunk
    with pytest.raises(ValueError, match="target_every"):
        run_one(RunSpec("testlab/MidTarget-v0", scheduler, 0, target_every=0), total_steps=10)


def test_results_journal_keys_tell_target_resolutions_apart():
    """A run with target checks between decisions is another journal entry; a plain
    run's key is what earlier journals hold (no new field)."""
    import json

    from lrgym.harness.results_store import run_key

    plain = RunSpec("lrgym/WineMLP-v0", "constant", 0)
    fine = dataclasses.replace(plain, target_every=1)
    assert run_key(plain, None, {}) != run_key(fine, None, {})
    assert len(json.loads(run_key(plain, None, {}))) == 7
