"""`lrgym suggest`: the knob contract, probes, the meta-model and the search backends.

Fast by construction: a tiny in-memory user task, a random-weight suggester for the
determinism checks, synthetic log frames for training, budgets of a few hundred steps.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import lrgym
from lrgym import ArraySplits, Task, TaskInfo, TorchTask
from lrgym.cli import app
from lrgym.suggester import (
    PLAN_SPACE,
    BudgetError,
    Knob,
    LogSettings,
    NoKnobsError,
    ProbeSettings,
    SearchSpace,
    Suggester,
    TrainSettings,
    generate_logs,
    load_suggester,
    read_logs,
    reprobe_logs,
    suggest,
    train_suggester,
    tunable,
)
from lrgym.suggester.knobs import knob_mlp
from lrgym.suggester.model import CONFIG_FEATURES, design, interval
from lrgym.suggester.probes import feature_names, probe_task, range_slot, run_config
from lrgym.suggester.search import GRID_LR_POINTS, startup_trials
from lrgym.suggester.training import training_set

torch.set_num_threads(1)

INFO = TaskInfo(
    domain="tabular classification",
    model="MLP",
    data="synthetic",
    metric="accuracy",
    split="held-out",
    target=math.inf,
    default_lr=1e-2,
    total_steps=40,
    decision_interval=10,
)


def tiny_data(rng: np.random.Generator) -> ArraySplits:
    x = rng.standard_normal((240, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return ArraySplits(x[:160], y[:160], x[160:200], y[160:200], x[200:], y[200:])


@dataclass
class UserTask(Task):
    """A user's task that declares its own knobs: an LR range and a hidden width."""

    info: TaskInfo = INFO
    backend = "torch"
    search_space = SearchSpace(
        (
            Knob("lr", default=1e-2, low=1e-3, high=1e-1),
            Knob("width", default=8, choices=(4, 8, 16)),
            Knob("optimizer", default="adam", choices=("sgd", "adam")),
        )
    )

    def build(self, seed: int, lr: float):
        return self.build_config(seed, {"lr": lr, "width": 8, "optimizer": "adam"})

    def build_config(self, seed: int, config):
        width = int(config["width"])  # dropout 0.5: training draws from torch's global RNG
        task = TorchTask(
            self.info,
            data=tiny_data,
            model=lambda n_in, n_out, rng: knob_mlp(n_in, n_out, 1, width, 0.5),
            optimizer=str(config["optimizer"]),
            batch_size=32,
        )
        return task.build(seed, float(config["lr"]))


def random_suggester() -> Suggester:
    probe = ProbeSettings(2, 10)
    names = feature_names(probe)
    dim = design(np.zeros(len(names)), np.zeros((1, len(CONFIG_FEATURES)))).shape[1]
    rng = np.random.default_rng(0)
    return Suggester(
        probe=probe,
        feature_names=names,
        x_mean=np.zeros(dim),
        x_std=np.ones(dim),
        members=rng.normal(scale=0.01, size=(4, dim + 1)),
        resid_std=0.05,
        alpha=10.0,
        final_steps=40,
    )


def test_plan_space_is_the_plans():
    assert PLAN_SPACE.names == ("lr", "batch_size", "layers", "units", "dropout", "optimizer")
    assert (PLAN_SPACE["lr"].low, PLAN_SPACE["lr"].high) == (1e-4, 1e-1)
    assert PLAN_SPACE["batch_size"].choices == (32, 64, 128)
    assert PLAN_SPACE["layers"].choices == (2, 3, 4)
    assert PLAN_SPACE["units"].choices == (64, 128, 256)
    assert PLAN_SPACE["dropout"].choices == (0.1, 0.3, 0.5)
    assert PLAN_SPACE["optimizer"].choices == ("sgd", "adam")
    with pytest.raises(ValueError, match="takes a number in"):
        PLAN_SPACE.validate({"lr": 1.0})
    with pytest.raises(ValueError, match="unknown knobs"):
        PLAN_SPACE.validate({"momentum": 0.9})


def test_user_task_knob_contract():
    tt = tunable(UserTask())
    assert tt.kind == "user" and tt.space.names == ("lr", "width", "optimizer")
    trainee = tt.build(0, {"width": 16})  # missing knobs take their defaults
    assert trainee.model[1].out_features == 16 and trainee.lr == pytest.approx(1e-2)
    out = run_config(tt, {"lr": 0.05, "width": 4}, seed=0, steps=20)
    assert out.steps == 20 and 0.0 <= out.test_metric <= 1.0
    with pytest.raises(ValueError, match="width"):
        tt.build(0, {"width": 5})


def test_builtin_tasks_accept_the_knobs_that_fit():
    wine = tunable(lrgym.make_task("lrgym/WineMLP-v0"))
    assert wine.space.names == PLAN_SPACE.names
    trainee = wine.build(0, {"layers": 3, "units": 128, "dropout": 0.5, "optimizer": "sgd"})
    linears = [m for m in trainee.model if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears[:-1]] == [128] * 3
    assert isinstance(trainee.optimizer, torch.optim.SGD)
    assert tunable(lrgym.make_task("lrgym/IllConditionedClassification-v0")).space.names == (
        "lr",
        "batch_size",
        "optimizer",
    )
    xgb = tunable(lrgym.make_task("lrgym/DiabetesXGB-v0"))
    assert xgb.space.names == ("lr", "max_depth", "subsample", "rounds")
    assert xgb.steps({"rounds": 50}, 999) == 50
    # the task's own build(seed, lr) is untouched
    assert lrgym.make_task("lrgym/WineMLP-v0").build(0, 1e-3).batch_size == 16


def test_real_image_cnn_accepts_the_cnn_knobs(tmp_path):
    from lrgym.tasks.vision import cifar10_small_cnn

    rng = np.random.default_rng(0)
    y = (np.arange(40) % 4).astype(np.uint8)
    x = np.clip(y[:, None, None, None] * 50 + rng.integers(0, 50, (40, 16, 16, 3)), 0, 255)
    np.savez(tmp_path / "tiny.npz", x=x.astype(np.uint8), y=y)
    task = cifar10_small_cnn(
        str(tmp_path / "tiny.npz"), image_size=16, subset=None, eval_size=16, val_size=8
    )
    knobs = tunable(task)
    assert knobs.kind == "cnn" and knobs.space.names == PLAN_SPACE.names
    trainee = knobs.build(0, {"layers": 3, "units": 64, "batch_size": 32, "optimizer": "adam"})
    convs = [m for m in trainee.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and convs[0].in_channels == 3
    assert trainee.train(2).steps == 2


def test_task_without_knobs_is_a_clear_error():
    task = TorchTask(
        INFO, data=tiny_data, model=lambda n_in, n_out, rng: torch.nn.Linear(n_in, n_out)
    )
    with pytest.raises(NoKnobsError, match="declares no knobs.*search_space.*build_config"):
        tunable(task)
    with pytest.raises(NoKnobsError):
        suggest(task, budget=1000, suggester=random_suggester())


def test_budget_smaller_than_the_probes_names_the_minimum():
    with pytest.raises(BudgetError, match="pass --budget 30 or more"):  # probes 20 + 10 steps
        suggest(UserTask(), budget=29, suggester=random_suggester())
    with pytest.raises(BudgetError, match="pass --budget 60 or more"):  # probes 20 + final 40
        suggest(UserTask(), budget=59, suggester=random_suggester(), train=True, final_steps=40)


def test_final_run_fits_the_budget_or_says_why():
    model = random_suggester()
    short = suggest(UserTask(), budget=50, suggester=model)  # the task's run is 40 steps
    assert short.final_steps == 30 and short.probe_steps + short.final_steps <= short.budget
    assert any("to fit the budget" in n and "--budget 60" in n for n in short.notes)
    assert short.command().endswith("# train 30 steps")
    full = suggest(UserTask(), budget=1000, suggester=model)
    assert full.final_steps == 40 and not any("budget" in n for n in full.notes)
    trained = suggest(UserTask(), budget=50, suggester=model, train=True)
    assert trained.final.steps == 30 and trained.steps_used == 50
    asked = suggest(UserTask(), budget=50, suggester=model, final_steps=100)  # asked for more
    assert asked.final_steps == 100
    assert any("--steps 100 was asked for" in n and "--budget 120" in n for n in asked.notes)


@dataclass
class RoundsTask(UserTask):
    """A user task whose run length is a knob (as XGBoost's boosting rounds)."""

    search_space = SearchSpace((*UserTask.search_space.knobs, Knob("rounds", 20, choices=(20, 40))))


def test_rounds_knob_respects_the_budget():
    model = random_suggester()
    fits = suggest(RoundsTask(), budget=20 + 30, suggester=model)
    assert fits.config["rounds"] == 20 and fits.final_steps == 20 and not fits.notes
    roomy = suggest(RoundsTask(), budget=20 + 40, suggester=model)
    assert roomy.final_steps <= 40
    tight = suggest(RoundsTask(), budget=20 + 10, suggester=model)  # no rounds choice fits
    assert tight.config["rounds"] == 20
    assert any("rounds=20" in n and "--budget 40" in n for n in tight.notes)


def test_predictions_and_intervals_stay_in_the_metric_range():
    model = random_suggester()
    model.members[:, 0] = 0.4  # intercept: every config predicted 0.4 above the anchor
    model.members[:, 1:] = 0.0
    t = np.zeros(len(model.feature_names))
    configs = [{"lr": 1e-3}, {"lr": 1e-2}]
    pred = model.predict(t, 0.9, configs, metric="accuracy")
    assert np.all(pred.score > 1.0)  # the raw score runs past 100%; what is shown does not
    assert np.all(pred.mean == 1.0)
    assert np.all((0.0 <= pred.low) & (pred.low < pred.mean) & (pred.high <= 1.0))
    assert np.allclose(pred.low, 1.0 - pred.std, atol=2e-3)  # one std below, on that side
    r2 = model.predict(t, -0.95, configs, metric="r2")  # -0.55: inside R²'s range [-1, 1]
    assert np.all((-1.0 <= r2.low) & (r2.low < r2.mean) & (r2.mean < r2.high) & (r2.high <= 1))
    free = model.predict(t, 0.9, configs, metric="loss_drop")  # unbounded: mean ± std
    assert np.allclose(free.high - free.mean, free.std) and np.allclose(free.mean, 1.3)


def test_interval_is_symmetric_on_the_logit_scale():
    mean = np.array([0.999, 0.5, 0.02])
    low, high = interval(mean, np.array([0.137, 0.1, 0.05]), "accuracy")
    assert np.all((0 < low) & (low < mean) & (mean < high) & (high < 1))
    logit = lambda q: np.log(q / (1 - q))  # noqa: E731
    assert np.allclose(logit(mean) - logit(low), logit(high) - logit(mean))
    assert low[0] == pytest.approx(0.999 - 0.137) and high[2] == pytest.approx(0.07)
    assert (low[1], high[1]) == (pytest.approx(0.4), pytest.approx(0.6))


def test_suggestion_is_deterministic_under_a_seed():
    model = random_suggester()
    a = suggest(UserTask(), budget=100, seed=3, suggester=model, train=True)
    torch.manual_seed(12345)  # the caller's global RNG state does not matter
    torch.rand(7)
    b = suggest(UserTask(), budget=100, seed=3, suggester=model, train=True)
    assert a.config == b.config and a.predicted_val == b.predicted_val
    assert a.final == replace(b.final, wall_seconds=a.final.wall_seconds)
    assert a.steps_used == 20 + 40 <= a.budget
    assert set(a.config) == {"lr", "width", "optimizer"}
    assert a.config["width"] == 8  # a knob the meta-model does not know stays at its default
    assert math.isfinite(a.predicted_std) and a.predicted_std > 0
    assert a.command().startswith("task.build_config(seed, {")  # not a registered id
    registered = replace(a, task_id="lrgym/WineMLP-v0").command("learned:default")
    assert registered.startswith("lrgym train-config lrgym/WineMLP-v0 --config '{")
    assert registered.endswith("--steps 40 --scheduler learned:default")


def test_probe_features_have_the_suggesters_layout():
    settings = ProbeSettings(2, 10)
    probe = probe_task(tunable(UserTask()), 0, settings)
    assert probe.features.shape == (len(feature_names(settings)),)
    assert np.all(np.isfinite(probe.features)) and probe.steps == 20


def _logs(split_of: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic logs: each task's best LR sits where its probe feature says."""
    probe = ProbeSettings(2, 10)
    names = feature_names(probe)
    rng = np.random.default_rng(0)
    runs, probes = [], []
    for i, (task, split) in enumerate(split_of.items()):
        best = -3.5 + 0.5 * i
        probes.append(
            {
                "task": task, "split": split, "seed": 0, "anchor": 0.5,
                "n_probes": 2, "probe_steps": 10, "final_steps": 40,
                **{n: (best if n == "p0_log_loss_ratio" else 0.0) for n in names},
            }
        )  # fmt: skip
        for _ in range(20):
            lr = float(10 ** rng.uniform(-4, -1))
            val = 0.9 - 0.1 * (math.log10(lr) - best) ** 2
            runs.append(
                {
                    "task": task, "split": split, "seed": 0, "config": json.dumps({"lr": lr}),
                    "final_val_metric": val, "final_test_metric": val, "total_steps": 40,
                }
            )  # fmt: skip
    return pd.DataFrame(runs), pd.DataFrame(probes)


def test_train_suggester_learns_and_round_trips(tmp_path):
    runs, probes = _logs({f"lrgym/T{i}-v0": "meta-train" for i in range(4)})
    model = train_suggester(runs, probes, TrainSettings(alphas=(10.0, 100.0), members=4))
    assert model.card["tasks"] == [f"lrgym/T{i}-v0" for i in range(4)]
    assert model.card["cross_validation"]["chosen"]["median_regret"] < 0.05
    loaded = load_suggester(model.save(tmp_path / "s"))
    assert json.loads((tmp_path / "s" / "card.json").read_text())["runs"] == len(runs)
    t = probes.loc[0, list(model.feature_names)].to_numpy(dtype=float)
    configs = [{"lr": 1e-4}, {"lr": 10**-3.5}, {"lr": 1e-2}]
    assert np.allclose(loaded.predict(t, 0.5, configs).mean, model.predict(t, 0.5, configs).mean)
    assert int(np.argmax(loaded.predict(t, 0.5, configs).mean)) == 1


@pytest.mark.parametrize("split", ["held-out", "real"])
def test_training_refuses_held_out_and_real_runs(split):
    runs, probes = _logs({"lrgym/A-v0": "meta-train", "lrgym/B-v0": "meta-train", "x/C-v0": split})
    with pytest.raises(ValueError, match=r"held-out or real tasks \['x/C-v0'\]"):
        train_suggester(runs, probes)


def test_train_suggester_cli_refuses_held_out(tmp_path):
    runs, probes = _logs({"lrgym/A-v0": "meta-train", "lrgym/WineMLP-v0": "held-out"})
    runs.to_csv(tmp_path / "runs.csv", index=False)
    probes.to_csv(tmp_path / "probes.csv", index=False)
    result = CliRunner().invoke(
        app, ["train-suggester", "--runs", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "WineMLP" in result.output


def test_cli_budget_error():
    result = CliRunner().invoke(app, ["suggest", "lrgym/WineMLP-v0", "--budget", "10"])
    assert result.exit_code == 2 and "cannot pay for the probes" in result.output
    assert "--budget 160 or more" in result.output.replace("\n", " ")


def test_shipped_suggester_is_meta_train_only():
    model = load_suggester()
    assert model.card["splits"] == ["meta-train"]
    held = set(lrgym.task_ids("held-out")) | set(lrgym.task_ids("real"))
    assert not held & set(model.card["tasks"])
    assert model.probe.cost < 200


def test_optuna_searches_stay_within_budget():
    pytest.importorskip("optuna")
    tt = tunable(UserTask())
    for method in ("tpe", "random", "grid"):
        a = suggest(UserTask(), budget=130, seed=1, search=method)
        b = suggest(UserTask(), budget=130, seed=1, search=method)
        assert a.steps_used == 120 and len(a.search.trials) == 3  # 3 runs of 40 steps fit
        assert a.config == b.config and tt.space.validate(a.config) == a.config
        if method == "grid":  # grid search tries points of the knobs' grids only
            axes = tt.space.grid_axes(GRID_LR_POINTS)
            assert all(t.config[k] in axes[k] for t in a.search.trials for k in axes)
    with pytest.raises(BudgetError, match="pass --budget 40"):
        suggest(UserTask(), budget=39, search="tpe")


def test_range_test_features_locate_the_usable_lrs():
    settings = ProbeSettings(1, 10, range_steps=40)
    tt = tunable(UserTask())
    probe = probe_task(tt, 0, settings)
    names = feature_names(settings)
    assert probe.features.shape == (len(names),) and np.all(np.isfinite(probe.features))
    assert probe.steps == 10 + 2 * 40  # one range test per optimizer (adam, sgd)
    assert settings.cost_for(tt) == probe.steps
    feats = dict(zip(names, probe.features, strict=True))
    for slot in ("default", "other"):  # steepest descent comes before the lowest loss
        assert feats[f"rt_{slot}_lr_steepest"] <= feats[f"rt_{slot}_lr_min"]
        assert -4.0 <= feats[f"rt_{slot}_lr_min"] <= 0.0  # within the ramp 1e-4 … 1
        assert feats[f"rt_{slot}_log_loss_drop"] <= 0.0
    assert range_slot(tt, {"optimizer": "adam"}) == 0 and range_slot(tt, {"optimizer": "sgd"}) == 1


def _range_logs(n_tasks: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic logs whose best LR sits a decade below each task's range-test minimum."""
    probe = ProbeSettings(1, 10, range_steps=40)
    names = feature_names(probe)
    rng = np.random.default_rng(1)
    runs, probes = [], []
    for i in range(n_tasks):
        lr_min = rng.uniform(-3.0, 0.0)  # log10 of the LR of lowest range-test loss
        feats = {n: 0.0 for n in names}
        for slot in ("default", "other"):
            feats[f"rt_{slot}_lr_steepest"] = lr_min - 0.5
            feats[f"rt_{slot}_lr_min"] = lr_min
            feats[f"rt_{slot}_lr_blowup"] = lr_min + 0.5
        task = f"lrgym/R{i}-v0"
        probes.append(
            {
                "task": task, "split": "meta-train", "seed": 0, "anchor": 0.5,
                "n_probes": 1, "probe_steps": 10, "range_steps": 40,
                "default_optimizer": "adam", **feats,
            }
        )  # fmt: skip
        for _ in range(16):
            lr = float(10 ** rng.uniform(-4, -1))
            val = 0.9 - 0.2 * (math.log10(lr) - (lr_min - 1.0)) ** 2
            runs.append(
                {
                    "task": task, "split": "meta-train", "seed": 0, "total_steps": 40,
                    "config": json.dumps({"lr": lr, "optimizer": "adam"}),
                    "final_val_metric": val, "final_test_metric": val,
                }
            )  # fmt: skip
    return pd.DataFrame(runs), pd.DataFrame(probes)


def test_range_test_probes_beat_the_configuration_only_model():
    runs, probes = _range_logs(8)
    model = train_suggester(runs, probes, TrainSettings(alphas=(0.1, 1.0, 10.0), members=4))
    cv = model.card["cross_validation"]
    assert cv["chosen"]["within_5pct"] >= cv["without_probe_features"]["within_5pct"] + 0.25
    assert cv["probe_gain_within_5pct_points"] >= 25
    assert cv["chosen"]["median_regret"] < cv["without_probe_features"]["median_regret"]
    assert "descriptors_only" in cv and model.probe.range_steps == 40
    assert "8 tasks" in model.card["trained_on"] and "LR range test" in model.card["trained_on"]
    fixed = model.card["best_fixed"]  # what a probe-free suggester recommends everywhere
    assert PLAN_SPACE.validate(fixed["plan"]) == fixed["plan"]
    t = probes.loc[0, list(model.feature_names)].to_numpy(dtype=float)
    lrs = [10**e for e in np.arange(-4.0, -0.9, 0.25)]
    pred = model.predict(t, 0.5, [{"lr": lr, "optimizer": "adam"} for lr in lrs])
    best = math.log10(lrs[int(np.argmax(pred.score))])  # the probes move the suggested LR
    assert abs(best - (t[model.feature_names.index("rt_default_lr_min")] - 1.0)) <= 0.5


def test_reprobe_keeps_the_runs_and_adds_range_tests(tmp_path):
    settings = LogSettings(n_configs=2, seeds=(0,), final_steps=20, probe=ProbeSettings(1, 10))
    runs, probes = generate_logs(["lrgym/WineMLP-v0"], tmp_path, settings)
    assert not any(c.startswith("rt_") for c in probes.columns)
    new = reprobe_logs(tmp_path, ProbeSettings(1, 10, range_steps=20))
    again_runs, again = read_logs(tmp_path)
    assert again_runs.equals(runs) and list(again.columns) == list(new.columns)
    assert int(again["range_steps"].iloc[0]) == 20 and "rt_other_lr_min" in again.columns
    assert again["default_optimizer"].iloc[0] == "adam"


def test_shared_configs_complete_a_log_and_average_over_seeds(tmp_path):
    """``shared_configs`` runs each seed's draws on every seed: a log written without it
    gains only the runs it lacks (its probes and runs kept), and training counts each
    configuration with its mean over seeds."""
    probe = ProbeSettings(1, 10)
    plain = LogSettings(n_configs=2, seeds=(0, 1), final_steps=20, probe=probe)
    runs, probes = generate_logs(["lrgym/WineMLP-v0"], tmp_path, plain)
    assert len(runs) == 4 and set(runs.groupby("seed")["config"].nunique()) == {2}
    shared = LogSettings(
        n_configs=2, seeds=(0, 1), final_steps=20, probe=probe, shared_configs=True
    )
    more, again = generate_logs(["lrgym/WineMLP-v0"], tmp_path, shared)
    assert again.equals(probes) and more.iloc[:4].equals(runs) and len(more) == 8
    per_seed = more.groupby("seed")["config"].apply(set)
    assert per_seed[0] == per_seed[1] and len(per_seed[0]) == 4
    spread = more.groupby("config")["final_val_metric"].agg(lambda v: v.max() - v.min())
    assert spread.max() > 0  # the seeds disagree somewhere: the mean is not a copy
    mean = more.groupby("config")["final_val_metric"].transform("mean")
    ts = training_set(more, again, feature_names(probe))
    assert sorted(ts.val) == pytest.approx(sorted(mean))
    assert len(generate_logs(["lrgym/WineMLP-v0"], tmp_path, shared)[0]) == 8  # nothing left


def test_tpe_startup_fits_the_budget():
    assert [startup_trials(n) for n in (1, 2, 3, 9, 30, 100)] == [1, 1, 1, 3, 10, 10]


def test_cli_output_is_in_range_and_within_budget(tmp_path):
    random_suggester().save(tmp_path / "s")
    result = CliRunner().invoke(
        app, ["suggest", "lrgym/WineMLP-v0", "--budget", "200", "--suggester", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "steps used 20 of 200" in text and "--steps 180" in text
    assert "note: the final run is 180 steps, not the task's default 600" in text
    low, high = (float(v) for v in text.split("one-std interval ")[1].split(",")[0].split(" to "))
    value = float(text.split("predicted validation accuracy ")[1].split()[0])
    assert 0.0 <= low <= value <= high <= 1.0
    assert "±" not in text  # every prediction shown as an in-range interval


def test_shipped_suggester_tells_wine_from_digits():
    wine = suggest("lrgym/WineMLP-v0", budget=400)
    digits = suggest("lrgym/DigitsCNN-v0", budget=400)
    assert wine.config != digits.config
    for s in (wine, digits):
        assert 0.0 <= s.predicted_low <= s.predicted_val <= s.predicted_high <= 1.0
        assert s.probe_steps + s.final_steps <= s.budget
    card = load_suggester().card
    assert card["runs"] > 0 and card["tasks"] and "probes:" in card["trained_on"]


@dataclass
class NoLRTask(UserTask):
    """A user task whose only knob is the width: the range test still ramps the LR."""

    search_space = SearchSpace((Knob("width", default=8, choices=(4, 8, 16)),))

    def build_config(self, seed: int, config):
        return super().build_config(seed, {**config, "lr": 1e-2, "optimizer": "adam"})


def test_range_test_runs_without_an_lr_knob():
    settings = ProbeSettings(1, 10, range_steps=20)
    probe = probe_task(tunable(NoLRTask()), 0, settings)
    assert probe.steps == 10 + 20 and np.all(np.isfinite(probe.features))
