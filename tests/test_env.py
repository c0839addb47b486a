"""Behaviour of :class:`lrgym.core.env.LRControlEnv`: starting state, actions, episode end."""

from __future__ import annotations

import math
import warnings

import gymnasium
import numpy as np
import pytest
import torch

import lrgym
from lrgym.core.actions import LogLRAction

FAST = "lrgym/IllConditionedRegression-v0"  # linear model, SGD: the cheapest task
DIVERGING = "lrgym/FriedmanMLP-v0"  # SGD+momentum MLP: blows up (inf loss) at LR 1e3


def act(a: float) -> np.ndarray:
    return np.array([a], dtype=np.float32)


@pytest.fixture
def env():
    e = gymnasium.make(FAST, total_steps=40, decision_interval=4)
    yield e
    e.close()


def test_initial_lr_from_options(env):
    obs, info = env.reset(seed=0, options={"initial_lr": 3e-3})
    assert info["lr"] == pytest.approx(3e-3)
    assert info["initial_lr"] == pytest.approx(3e-3)
    assert env.unwrapped.trainee.lr == pytest.approx(3e-3)
    assert env.unwrapped.trainee.optimizer.param_groups[0]["lr"] == pytest.approx(3e-3)
    assert obs[0] == pytest.approx((math.log10(3e-3) + 3) / 2)  # log_lr feature


def test_run_seed_from_options(env):
    _, a = env.reset(seed=0, options={"run_seed": 42})
    _, b = env.reset(seed=1, options={"run_seed": 42})
    assert a["run_seed"] == b["run_seed"] == 42
    assert a["val_loss"] == b["val_loss"]  # same run, whatever the env seed


@pytest.mark.parametrize(("action", "factor"), [(1.0, 2.0), (-1.0, 0.5), (0.0, 1.0)])
def test_action_scales_lr(env, action, factor):
    env.reset(seed=0, options={"initial_lr": 1e-3})
    _, _, _, _, info = env.step(act(action))
    assert info["lr"] == pytest.approx(1e-3 * factor)
    _, _, _, _, info = env.step(act(action))
    assert info["lr"] == pytest.approx(1e-3 * factor**2)


def test_action_outside_box_is_clipped(env):
    env.reset(seed=0, options={"initial_lr": 1e-3})
    _, _, _, _, info = env.step(act(5.0))
    assert info["lr"] == pytest.approx(2e-3)
    _, _, _, _, info = env.step(act(-5.0))
    assert info["lr"] == pytest.approx(1e-3)


def test_lr_clamped_to_action_bounds():
    bounds = LogLRAction(min_lr=1e-4, max_lr=1e-2)
    env = gymnasium.make(FAST, total_steps=40, decision_interval=4, action_map=bounds)
    env.reset(seed=0, options={"initial_lr": 8e-3})
    _, _, _, _, info = env.step(act(1.0))
    assert info["lr"] == pytest.approx(1e-2)
    _, _, _, _, info = env.step(act(1.0))
    assert info["lr"] == pytest.approx(1e-2)
    env.reset(seed=0, options={"initial_lr": 1.5e-4})
    _, _, _, _, info = env.step(act(-1.0))
    assert info["lr"] == pytest.approx(1e-4)
    env.close()


def test_lr_clamped_to_default_min(env):
    default = LogLRAction()
    env.reset(seed=0, options={"initial_lr": default.min_lr * 1.5})
    _, _, _, _, info = env.step(act(-1.0))
    assert info["lr"] == pytest.approx(default.min_lr)


def test_log_lr_action_bounds():
    m = LogLRAction(max_log2_step=2.0, min_lr=1e-6, max_lr=1.0)
    assert m.apply(1e-3, 1.0) == pytest.approx(4e-3)
    assert m.apply(1e-3, -0.5) == pytest.approx(5e-4)
    assert m.apply(0.9, 1.0) == 1.0
    assert m.apply(2e-6, -1.0) == 1e-6


@pytest.mark.parametrize(("total", "interval", "decisions"), [(12, 3, 4), (10, 4, 3)])
def test_episode_ends_when_budget_spent(total, interval, decisions):
    env = gymnasium.make(FAST, total_steps=total, decision_interval=interval)
    _, info = env.reset(seed=0, options={"initial_lr": 1e-3})
    assert info["steps"] == 0
    for i in range(decisions):
        _, _, terminated, truncated, info = env.step(act(0.0))
        assert not truncated
        assert terminated == (i == decisions - 1), (i, info["steps"])
        assert not info["diverged"]
    assert info["steps"] == total
    env.close()


def test_episode_return_telescopes(env):
    """Rewards are drops in log validation loss, so they sum to log(L_0 / L_T)."""
    _, info = env.reset(seed=3, options={"initial_lr": 1e-3})
    first_val, total, terminated = info["val_loss"], 0.0, False
    while not terminated:
        _, reward, terminated, _, info = env.step(act(0.0))
        total += reward
    assert total == pytest.approx(math.log(first_val / info["val_loss"]), rel=1e-6)
    assert total > 0  # a sane LR on a linear problem lowers validation loss


def test_divergence_ends_episode_with_penalty():
    env = gymnasium.make(DIVERGING, total_steps=40, decision_interval=4)
    env.reset(seed=0, options={"initial_lr": 1e3})
    _, reward, terminated, truncated, info = env.step(act(0.0))
    assert info["diverged"] is True
    assert terminated and not truncated
    assert info["steps"] < 40
    assert reward == -env.unwrapped.divergence_penalty
    env.close()


def test_divergence_never_raises_even_with_warnings_as_errors():
    """An inf training loss must not surface as a numpy RuntimeWarning (CI runs -W error)."""
    env = gymnasium.make(DIVERGING, total_steps=40, decision_interval=4)
    env.reset(seed=0, options={"initial_lr": 1e3})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        obs, _, terminated, _, info = env.step(act(0.0))
    assert info["diverged"] and terminated
    assert math.isinf(info["train_loss"]) or math.isnan(info["train_loss"])
    assert env.observation_space.contains(obs)
    env.close()


def test_divergence_penalty_is_configurable():
    env = gymnasium.make(FAST, total_steps=40, decision_interval=4, divergence_penalty=7.5)
    env.reset(seed=0, options={"initial_lr": 1e3})
    _, reward, terminated, _, info = env.step(act(1.0))
    assert info["diverged"] and terminated
    assert reward == -7.5
    env.close()


@pytest.mark.parametrize("bad", [0, -1, 0.0, float("nan"), float("inf"), "abc", None])
def test_invalid_initial_lr_raises(env, bad):
    with pytest.raises(ValueError, match="initial LR"):
        env.reset(seed=0, options={"initial_lr": bad})


def test_unknown_task_names_close_match():
    with pytest.raises(lrgym.UnknownTaskError) as excinfo:
        lrgym.make("lrgym/DigitsMLPP-v0")
    assert "lrgym/DigitsMLP-v0" in str(excinfo.value)
    assert "lrgym/DigitsMLPP-v0" in str(excinfo.value)
    assert isinstance(excinfo.value, KeyError)


def test_lrgym_make_returns_env():
    env = lrgym.make(FAST, total_steps=8, decision_interval=4)
    assert isinstance(env.unwrapped, lrgym.core.env.LRControlEnv)
    env.close()


def test_bad_budget_raises():
    with pytest.raises(ValueError, match="decision_interval"):
        gymnasium.make(FAST, total_steps=4, decision_interval=8)


def test_step_before_reset_raises():
    env = gymnasium.make(FAST, total_steps=8, decision_interval=4).unwrapped
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(act(0.0))


@pytest.mark.parametrize(
    ("task_id", "initial_lr"),
    [(FAST, 1e-5), (FAST, 0.5), ("lrgym/DigitsMLP-v0", 0.1), ("lrgym/DiabetesXGB-v0", 1.0)],
)
def test_observations_stay_in_space(task_id, initial_lr):
    env = gymnasium.make(task_id, total_steps=40, decision_interval=4)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0, options={"initial_lr": initial_lr})
    assert env.observation_space.contains(obs), obs
    terminated = truncated = False
    steps = 0
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert env.observation_space.contains(obs), obs
        assert math.isfinite(reward)
    assert steps <= 10
    env.close()


def test_reset_leaves_global_torch_rng_alone(env):
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    expected = torch.rand(3)
    torch.set_rng_state(before)
    env.reset(seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(("n", "classes"), [(1, 2), (7, 10), (359, 10), (1000, 3)])
def test_classification_metrics_match_sklearn(n, classes):
    """Accuracy is torch's float32 mean of hits; macro-F1 is scikit-learn's over the
    classes present in predictions or labels."""
    from sklearn.metrics import f1_score

    from lrgym.backends.torch_trainee import classification_metrics

    g = torch.Generator().manual_seed(n)
    pred = torch.randint(0, classes, (n,), generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    metrics = classification_metrics(pred, y, classes)
    assert metrics["accuracy"] == float((pred == y).float().mean())
    expected = f1_score(y.numpy(), pred.numpy(), average="macro", zero_division=0)
    assert metrics["macro_f1"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_update_tracker_matches_direct_computation(dtype, monkeypatch):
    """``|Δθ| / |θ|`` and the cosine of consecutive updates, through the NumPy views
    (CPU float parameters) and through torch (what GPU parameters take), against the
    textbook formulas on flattened copies."""
    from lrgym.core import signals

    g = torch.Generator().manual_seed(0)
    params = [torch.randn(4, 3, generator=g, dtype=dtype), torch.randn(5, generator=g, dtype=dtype)]
    for numpy_path in (True, False):
        if not numpy_path:
            monkeypatch.setattr(signals, "_numpy_views", lambda tensors: None)
        tracker = signals.UpdateTracker(params)
        snapshots = [torch.cat([p.reshape(-1) for p in params]).clone()]
        results = []
        for _ in range(3):
            for p in params:
                p.add_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.1)
            snapshots.append(torch.cat([p.reshape(-1) for p in params]).clone())
            results.append(tracker.measure())
        updates = [b - a for a, b in zip(snapshots[:-1], snapshots[1:], strict=True)]
        for i, (ratio, cosine) in enumerate(results):
            assert ratio == pytest.approx(float(updates[i].norm() / snapshots[i].norm()), rel=1e-5)
            if i == 0:
                assert math.isnan(cosine)
            else:
                expected = torch.nn.functional.cosine_similarity(updates[i], updates[i - 1], dim=0)
                assert cosine == pytest.approx(float(expected), rel=1e-4)


def test_eval_report_computes_macro_f1_when_read():
    """The env's per-decision validation computes accuracy only; macro-F1 is computed
    on first read, equals ``classification_metrics`` (checked against scikit-learn above),
    and the metrics are a dict."""
    import json
    import pickle

    from lrgym.backends.torch_trainee import classification_metrics

    env = gymnasium.make("lrgym/DigitsMLP-v0")
    env.reset(seed=0)
    trainee = env.unwrapped.trainee
    report = trainee.evaluate("val")
    assert callable(report._metrics)  # not computed yet
    x, y = trainee.tensors["val"]
    with torch.no_grad():
        pred = trainee.model(x).argmax(dim=1)
    expected = classification_metrics(pred, y, int(y.max()) + 1)
    assert report.metrics == expected and report.metric == expected["accuracy"]
    assert json.loads(json.dumps(report.metrics)) == expected
    assert report == trainee.evaluate("val")
    lazy = trainee.evaluate("val")  # a report crosses processes before it is read
    assert pickle.loads(pickle.dumps(lazy)).metrics == expected


def test_update_tracker_reports_a_diverged_run_without_numpy_warnings():
    """Parameters blown up to ~1e200 overflow the float64 dot products: the ratio is
    infinite (the run ends as diverged), and no RuntimeWarning reaches the user."""
    from lrgym.core.signals import UpdateTracker

    p = torch.nn.Parameter(torch.ones(8, dtype=torch.float64))
    tracker = UpdateTracker([p])
    with torch.no_grad():
        p.fill_(1e200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ratio, _ = tracker.measure()
    assert math.isinf(ratio)
