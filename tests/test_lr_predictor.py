"""The LR predictor: its network, its training target, its decisions and its command.

Training data are built from hand-written ``runs``/``curves`` frames whose leader is known,
so the targets can be checked against the documented definition; decisions are checked
with a predictor whose output is a known constant.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from lrgym.cli import app
from lrgym.controllers.lr_predictor import (
    MAX_LOG10_CHANGE,
    PREDICTOR_FEATURES,
    LRPredictor,
    MetricHistory,
    PredictorLoadError,
    PredictorLR,
    PredictorTraining,
    load_predictor,
    lr_stability,
    make_network,
    train_predictor,
    training_data,
)
from lrgym.harness.compare import RunSpec, run_one

# These tests step the scheduler on scripted signals, without optimizer steps: torch's
# step-order warning (checked in test_scheduler_contract.py) does not apply here.
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler:UserWarning")

TASK = "lrgym/BreastCancerXGB-v0"  # meta-train, and the fastest task


def frames(split: str = "meta-train"):
    """One task, one seed, two constant-LR runs over 4 evaluations; 'fast' leads."""
    runs, curves = [], []
    scripted = {
        "slow": (1e-3, [1.0, 0.9, 0.8, 0.7]),
        "fast": (10**-2.5, [1.0, 0.6, 0.5, 0.4]),
    }
    for scheduler, (lr, vals) in scripted.items():
        runs.append(
            {"task": TASK, "split": split, "scheduler": scheduler, "seed": 0,
             "initial_lr": lr, "total_steps": 30}
        )  # fmt: skip
        for i, v in enumerate(vals):
            curves.append(
                {"task": TASK, "scheduler": scheduler, "seed": 0, "initial_lr": lr,
                 "step": 10 * i, "lr": lr, "train_loss": math.nan if i == 0 else v * 1.1,
                 "val_loss": v, "val_metric": 1 - v, "seconds": 0.0}
            )  # fmt: skip
    return pd.DataFrame(runs), pd.DataFrame(curves)


def constant_predictor(value: float) -> LRPredictor:
    """A predictor whose network always outputs ``value`` (zero weights, bias ``value``)."""
    net = make_network()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net[-1].bias.fill_(value)
    n = len(PREDICTOR_FEATURES)
    return LRPredictor(net, np.zeros(n, np.float32), np.ones(n, np.float32))


def test_network_is_two_hidden_layers_of_64_relu_and_a_linear_output():
    net = make_network()
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert (net[0].in_features, net[0].out_features) == (len(PREDICTOR_FEATURES), 64)
    assert (net[2].in_features, net[2].out_features) == (64, 64)
    assert (net[4].in_features, net[4].out_features) == (64, 1)


def test_targets_move_towards_the_leaders_lr():
    data = training_data(*frames())
    # 2 runs × 2 evaluations that have a next one (steps 10, 20); 'fast' leads at 20, 30
    assert data.x.shape == (4, len(PREDICTOR_FEATURES))
    targets = sorted(np.round(data.y, 6))
    assert targets == [0.0, 0.0, 0.5, 0.5]  # slow: log10(10^-2.5 / 1e-3); fast: stays


def test_targets_are_clipped_to_one_decade():
    runs, curves = frames()
    for frame in (runs, curves):
        frame.loc[frame["scheduler"] == "fast", "initial_lr"] = 1.0
    curves.loc[curves["scheduler"] == "fast", "lr"] = 1.0
    data = training_data(runs, curves)
    assert sorted(np.round(data.y, 6)) == [0.0, 0.0, MAX_LOG10_CHANGE, MAX_LOG10_CHANGE]


def test_diverged_rows_end_a_run():
    runs, curves = frames()
    curves.loc[(curves["scheduler"] == "slow") & (curves["step"] == 10), "val_loss"] = math.inf
    data = training_data(runs, curves)
    assert len(data.y) == 2  # only 'fast' contributes; 'slow' diverged at its first row


def test_held_out_runs_are_refused():
    with pytest.raises(ValueError, match="held-out"):
        training_data(*frames(split="held-out"))


def test_single_run_groups_are_refused():
    runs, curves = frames()
    keep = lambda f: f[f["scheduler"] == "slow"]  # noqa: E731
    with pytest.raises(ValueError, match="two runs"):
        training_data(keep(runs), keep(curves))


def test_features_follow_their_definitions():
    h = MetricHistory()
    h.reset(1e-3, val_loss=2.0, val_metric=0.5)
    f = dict(zip(PREDICTOR_FEATURES, h.features(2e-3, 1.0, 1.0, 0.7, 0.25), strict=True))
    assert f["log_lr"] == pytest.approx((math.log10(2e-3) + 3) / 2)
    assert f["log_lr_ratio"] == pytest.approx(math.log(2))
    assert f["last_lr_change"] == pytest.approx(math.log10(2))
    assert f["log_train_loss_ratio"] == pytest.approx(math.log(0.5))
    assert f["train_loss_slope"] == 0.0  # no previous interval
    assert f["log_val_loss_ratio"] == pytest.approx(math.log(0.5))
    assert f["val_loss_slope"] == pytest.approx(math.log(0.5))
    assert f["val_metric"] == pytest.approx(0.7) and f["val_metric_gap"] == 0.0
    assert f["progress"] == 0.25
    f = dict(zip(PREDICTOR_FEATURES, h.features(2e-3, 0.5, 1.5, 0.6, 0.5), strict=True))
    assert f["last_lr_change"] == 0.0
    assert f["train_loss_slope"] == pytest.approx(math.log(0.5))
    assert f["val_loss_slope"] == pytest.approx(math.log(1.5))
    assert f["val_metric_gap"] == pytest.approx(-0.1)


def scheduler(value: float, lr: float = 1e-3, **kwargs):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    return opt, PredictorLR(opt, constant_predictor(value), total_steps=100, **kwargs)


def feed(opt, sched, losses=(1.0, 0.9), val=(0.8, 0.5)):
    for x in losses:
        sched.step(loss=x)
    sched.observe_eval(*val)
    return opt.param_groups[0]["lr"]


def test_decisions_apply_the_predicted_change_at_each_validation():
    opt, sched = scheduler(0.25)
    sched.observe_eval(1.0, 0.3)  # before training: references only
    assert opt.param_groups[0]["lr"] == 1e-3
    assert feed(opt, sched) == pytest.approx(1e-3 * 10**0.25, rel=1e-6)
    assert feed(opt, sched) == pytest.approx(1e-3 * 10**0.5, rel=1e-6)
    assert sched.decisions == 2
    assert sched.lr_stability == pytest.approx(0.25, rel=1e-6)


def test_prediction_is_clipped_and_bounds_hold():
    opt, sched = scheduler(5.0, min_lr=1e-5, max_lr=0.5)
    sched.observe_eval(1.0, 0.3)
    assert feed(opt, sched) == pytest.approx(1e-2)  # at most ×10 per decision
    for _ in range(5):
        assert feed(opt, sched) <= 0.5
    assert opt.param_groups[0]["lr"] == 0.5
    opt, sched = scheduler(-5.0, min_lr=1e-5, max_lr=0.5)
    sched.observe_eval(1.0, 0.3)
    for _ in range(5):
        assert feed(opt, sched) >= 1e-5
    assert opt.param_groups[0]["lr"] == 1e-5


def test_non_finite_training_loss_holds_the_lr():
    opt, sched = scheduler(0.5)
    sched.observe_eval(1.0, 0.3)
    assert feed(opt, sched, losses=(1.0, math.nan)) == 1e-3
    assert sched.decisions == 0


def test_state_dict_is_plain_and_resumes_exactly():
    opt, sched = scheduler(0.1)
    sched.observe_eval(1.0, 0.3)
    feed(opt, sched)
    sched.step(loss=0.7)
    state = json.loads(json.dumps(sched.state_dict()))
    opt2, resumed = scheduler(0.1, lr=opt.param_groups[0]["lr"])
    resumed.load_state_dict(state)
    assert feed(opt2, resumed, losses=(0.6,)) == feed(opt, sched, losses=(0.6,))
    assert resumed.state_dict() == sched.state_dict()


def test_training_learns_a_simple_rule_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, len(PREDICTOR_FEATURES))).astype(np.float32)
    y = (0.5 * np.tanh(x[:, 0])).astype(np.float32)
    from lrgym.controllers.lr_predictor import TrainingData

    data = TrainingData(x, y, rng.integers(0, 10, size=600), (TASK,))
    settings = PredictorTraining(epochs=30, seed=1)
    a, b = train_predictor(data, settings), train_predictor(data, settings)
    assert a.info["validation_mse"] < 0.2 * a.info["validation_mse_keep_lr"]
    np.testing.assert_array_equal(a.predict(x[:20]), b.predict(x[:20]))


def test_save_and_load_round_trip(tmp_path):
    pred = constant_predictor(0.3)
    pred.info = {"tasks": [TASK]}
    path = pred.save(tmp_path / "p.pt")
    loaded = load_predictor(path)
    feats = np.zeros((3, len(PREDICTOR_FEATURES)), np.float32)
    np.testing.assert_allclose(loaded.predict(feats), pred.predict(feats))
    assert loaded.info == {"tasks": [TASK]}


def test_load_errors_say_what_to_do(tmp_path):
    with pytest.raises(PredictorLoadError, match="train-predictor"):
        load_predictor(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"format": "something else"}, bad)
    with pytest.raises(PredictorLoadError, match="not an lrgym LR predictor"):
        load_predictor(bad)


def test_lr_stability_is_mean_absolute_log10_change():
    curves = pd.DataFrame(
        {"task": TASK, "scheduler": ["a"] * 3 + ["b"] * 3, "seed": 0, "initial_lr": 1e-3,
         "step": [0, 10, 20] * 2, "lr": [1e-3, 1e-2, 1e-3, 1e-3, 1e-3, 1e-3]}
    )  # fmt: skip
    got = lr_stability(curves)
    assert got.loc[(TASK, "a", 0, 1e-3)] == pytest.approx(1.0)
    assert got.loc[(TASK, "b", 0, 1e-3)] == 0.0


def test_cli_trains_a_predictor_that_the_harness_runs(tmp_path):
    runs, curves = frames()
    data_dir = tmp_path / "logged"
    data_dir.mkdir()
    runs.to_csv(data_dir / "runs.csv", index=False)
    curves.to_csv(data_dir / "curves.csv", index=False)
    out = tmp_path / "pred.pt"
    result = CliRunner().invoke(
        app, ["train-predictor", "--runs", str(data_dir), "--out", str(out), "--epochs", "3"]
    )
    assert result.exit_code == 0, result.output
    assert load_predictor(out).info["tasks"] == [TASK]
    run = run_one(RunSpec(TASK, f"lr-predictor:{out}", 0), total_steps=30)
    assert len(run.curve) == 4 and all(1e-7 <= r["lr"] <= 1.0 for r in run.curve)


def test_cli_refuses_held_out_runs_and_missing_files(tmp_path):
    runs, curves = frames(split="held-out")
    runs.to_csv(tmp_path / "runs.csv", index=False)
    curves.to_csv(tmp_path / "curves.csv", index=False)
    cli = CliRunner()
    result = cli.invoke(app, ["train-predictor", "--runs", str(tmp_path)])
    assert result.exit_code == 2 and "held-out" in result.output
    result = cli.invoke(app, ["train-predictor", "--runs", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no runs.csv" in result.output
    result = cli.invoke(app, ["compare", "--schedulers", f"lr-predictor:{tmp_path}/x.pt"])
    assert result.exit_code == 2 and "train-predictor" in " ".join(result.output.split())
