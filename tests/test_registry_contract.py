"""One contract test over the whole registry (like Gymnasium's ``tests/envs/test_envs.py``).

Every registered task must pass Gymnasium's ``check_env``, be deterministic under a seed,
leave the caller's global RNGs alone, and describe itself completely. Budgets are tiny
(``total_steps``/``decision_interval`` overrides) so the whole suite stays fast.
"""

from __future__ import annotations

import math
import random
import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import lrgym
from lrgym.core.env import LRControlEnv
from lrgym.core.registration import _ID_PATTERN
from lrgym.core.task import SPLITS

TASK_IDS = [  # superseded versions (TeacherStudent*-v0) stay registered: test them too
    *lrgym.task_ids("meta-train", superseded=True),
    *lrgym.task_ids("held-out", superseded=True),
]
"""The offline suite. Real tasks (split "real") fetch their data on demand; their
contract runs on small local files in tests/test_real_tasks.py."""
TOTAL_STEPS = 6
INTERVAL = 2


def make_env(task_id: str, total_steps: int = TOTAL_STEPS, interval: int = INTERVAL):
    return gymnasium.make(task_id, total_steps=total_steps, decision_interval=interval)


def same(a, b) -> bool:
    """Exact equality that treats NaN as equal to NaN (recursively for arrays/floats)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_check_env(task_id):
    env = make_env(task_id)
    # Any warning from the checker (or from the env while it is checked) is a failure:
    # the env declares float32 spaces and returns float32 observations, so Gymnasium's
    # precision/dtype warnings must not appear either.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_registered_as_gymnasium_env(task_id):
    env = make_env(task_id)
    assert isinstance(env.unwrapped, LRControlEnv)
    assert env.unwrapped.task_id == task_id
    assert env.unwrapped.total_steps == TOTAL_STEPS
    assert env.unwrapped.decision_interval == INTERVAL
    env.close()


def _rollout(task_id: str, seed: int, actions: list[float]):
    env = make_env(task_id, total_steps=8, interval=2)
    obs, info = env.reset(seed=seed)
    trace = [(obs, None, info)]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(np.array([a], dtype=np.float32))
        trace.append((obs, reward, info))
        if terminated or truncated:
            break
    env.close()
    return trace


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_deterministic_under_seed(task_id):
    actions = [0.5, -1.0, 0.0, 1.0]
    first = _rollout(task_id, 123, actions)
    second = _rollout(task_id, 123, actions)
    assert len(first) == len(second) == len(actions) + 1
    for (obs1, r1, info1), (obs2, r2, info2) in zip(first, second, strict=True):
        assert np.array_equal(obs1, obs2), (obs1, obs2)
        assert same(r1, r2)
        assert info1.keys() == info2.keys()
        for key in info1:
            assert same(info1[key], info2[key]), (key, info1[key], info2[key])
    # The run really moved: LR followed the actions and validation loss changed.
    lrs = [info["lr"] for _, _, info in first]
    assert lrs[1] == pytest.approx(lrs[0] * 2**0.5)
    assert lrs[2] == pytest.approx(lrs[1] / 2)
    assert len({info["val_loss"] for _, _, info in first}) > 1


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_different_seed_gives_different_start(task_id):
    env = make_env(task_id)
    _, info_a = env.reset(seed=1)
    _, info_b = env.reset(seed=2)
    assert (info_a["initial_lr"], info_a["run_seed"]) != (info_b["initial_lr"], info_b["run_seed"])
    lo, hi = lrgym.core.env.INITIAL_LR_RANGE
    for info in (info_a, info_b):
        assert lo <= info["initial_lr"] <= hi
    # With the initial LR fixed, the env seed still draws the run (split, init, order).
    fixed = {"initial_lr": 1e-3}
    _, info_c = env.reset(seed=1, options=fixed)
    _, info_d = env.reset(seed=2, options=fixed)
    assert info_c["run_seed"] != info_d["run_seed"]
    env.close()


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_reset_and_step_leave_global_rngs_alone(task_id):
    env = make_env(task_id)
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    env.reset(seed=7)
    env.step(np.array([0.0], dtype=np.float32))
    assert torch.equal(torch.get_rng_state(), torch_state)
    np_after = np.random.get_state()
    assert np_after[0] == np_state[0] and np.array_equal(np_after[1], np_state[1])
    assert np_after[2:] == np_state[2:]
    assert random.getstate() == py_state
    env.close()


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_task_info_complete(task_id):
    info = lrgym.make_task(task_id).info
    for field in ("domain", "model", "data", "metric"):
        value = getattr(info, field)
        assert isinstance(value, str) and value.strip(), field
    assert info.split in SPLITS
    assert math.isfinite(info.target)
    assert info.default_lr > 0 and math.isfinite(info.default_lr)
    assert 1 <= info.decision_interval <= info.total_steps
    assert _ID_PATTERN.match(task_id), "ids are versioned: 'ns/Name-vN'"


def test_suite_size_and_splits():
    ids = lrgym.task_ids()
    held_out = lrgym.task_ids("held-out")
    meta_train = lrgym.task_ids("meta-train")
    assert len(ids) >= 12
    assert len(held_out) >= 4
    assert meta_train, "no meta-train tasks"
    assert set(held_out).isdisjoint(meta_train)
    assert set(held_out) | set(meta_train) | set(lrgym.task_ids("real")) == set(ids)


def test_suite_covers_domains_and_xgboost():
    tasks = {i: lrgym.make_task(i) for i in lrgym.task_ids()}
    domains = {t.info.domain for t in tasks.values()}
    assert {"image classification", "tabular classification", "regression"} <= domains
    assert any(t.backend == "xgboost" for t in tasks.values())


def test_every_task_is_a_gymnasium_env():
    for task_id in lrgym.task_ids():
        assert task_id in gymnasium.registry
        assert gymnasium.spec(task_id).kwargs["task"] == task_id


def test_no_split_has_extreme_standardised_features():
    """A pixel constant in a run's training split must not explode in its other splits."""
    from lrgym.tasks.data import STANDARD_CLIP, sklearn_data

    for seed in range(200):
        splits = sklearn_data(np.random.default_rng(seed), "digits")
        for x in (splits.x_train, splits.x_val, splits.x_test):
            assert np.isfinite(x).all() and np.abs(x).max() <= STANDARD_CLIP


def test_standardisation_keeps_ordinary_data_sets_unchanged():
    """Below the clip nothing changes: breast cancer's splits equal plain standardisation."""
    from lrgym.tasks.data import _load_sklearn, sklearn_data

    x, _ = _load_sklearn("breast_cancer")
    for seed in range(20):
        splits = sklearn_data(np.random.default_rng(seed), "breast_cancer")
        order = np.random.default_rng(seed).permutation(len(x))
        train = x[order[: len(splits.x_train)]]
        want = (train - train.mean(0)) / (train.std(0) + 1e-6)
        np.testing.assert_array_equal(splits.x_train, want.astype(np.float32))
