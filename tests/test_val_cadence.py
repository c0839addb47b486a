"""Validation cadence: the agent sees fresh validation every n-th decision, or never.

Meta-training draws the cadence per episode (``lrgym train --val-every``) so that a
deployed agent does not depend on how often its user validates. These tests pin what the
agent sees at each cadence, that rewards never change with it, that the batched env and
the plain env agree, and that the deployed scheduler sees what a loop validating every n
decisions feeds it.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrgym
from lrgym.agents.config import ConfigError, load_config
from lrgym.agents.meta_env import MetaTaskEnv
from lrgym.agents.validation import validation_episodes
from lrgym.core.env import LRControlEnv
from lrgym.core.signals import FEATURE_GROUPS, feature_indices
from lrgym.vector import BatchedLRControlEnv

TASK = "lrgym/WineMLP-v0"
VAL = feature_indices(["validation"])
STEPS, K = 100, 10


def _episode(val_every: int) -> tuple[list[np.ndarray], list[float]]:
    env = LRControlEnv(TASK, decision_interval=K, total_steps=STEPS)
    obs, _ = env.reset(options={"initial_lr": 1e-2, "run_seed": 3, "val_every": val_every})
    observations, rewards = [obs], []
    done = False
    while not done:
        obs, reward, done, _, _ = env.step(np.array([0.3], dtype=np.float32))
        observations.append(obs)
        rewards.append(reward)
    return observations, rewards


def test_rewards_do_not_depend_on_the_cadence():
    _, every = _episode(1)
    for cadence in (3, 0):
        assert _episode(cadence)[1] == every


def test_never_hides_every_validation_feature():
    observations, _ = _episode(0)
    assert all(np.all(o[VAL] == 0) for o in observations)
    assert any(np.any(o[VAL] != 0) for o in _episode(1)[0])


def test_every_third_decision_shows_the_fresh_values_then_holds_them():
    every, _ = _episode(1)
    third, _ = _episode(3)
    ratio, slope, metric = (FEATURE_GROUPS["validation"][i] for i in range(3))
    i_ratio, i_slope, i_metric = feature_indices([ratio, slope, metric])
    for t, obs in enumerate(third):
        shown = t - t % 3  # the latest decision that showed validation
        assert obs[i_ratio] == pytest.approx(every[shown][i_ratio], abs=1e-6)
        assert obs[i_metric] == pytest.approx(every[shown][i_metric], abs=1e-6)
        if t % 3:  # the same value again: no change since the last one shown
            assert obs[i_slope] == 0
    # everything else is what the agent sees at cadence 1
    others = [i for i in range(len(every[0])) if i not in VAL]
    for a, b in zip(every, third, strict=True):
        np.testing.assert_array_equal(a[others], b[others])


def test_batched_slots_follow_their_cadence_like_the_single_env():
    venv = BatchedLRControlEnv(TASK, 2, K, STEPS)
    obs, _ = venv.reset(
        seed=0, options={"initial_lr": [1e-2, 1e-2], "run_seed": [3, 3], "val_every": [3, 0]}
    )
    single = {3: _episode(3)[0], 0: _episode(0)[0]}
    for t in range(STEPS // K):
        for slot, cadence in enumerate((3, 0)):
            np.testing.assert_allclose(obs[slot], single[cadence][t], rtol=1e-4, atol=1e-4)
        obs, *_ = venv.step(np.full((2, 1), 0.3, dtype=np.float32))


def test_the_scheduler_fed_every_third_decision_sees_what_the_env_shows():
    # A loop that validates after every third decision, before the agent decides: the
    # scheduler's observations equal the env's at cadence 3.
    task = lrgym.make_task(TASK)
    trainee = task.build(3, 1e-2)
    agent = lrgym.load_agent("default")
    seen: list[np.ndarray] = []
    act = agent.act
    agent.act = lambda obs: (seen.append(obs.copy()), act(obs))[1]
    scheduler = lrgym.PolicyScheduler(trainee.optimizer, agent, STEPS, K, eval_feedback=True)
    ev = trainee.evaluate("val")
    scheduler.observe_eval(ev.loss, ev.metric)
    last = (ev.loss, ev.metric)
    for decision in range(1, STEPS // K):
        trainee.train(K, on_step=lambda loss: scheduler.step(loss=loss))
        if decision % 3 == 0:
            ev = trainee.evaluate("val")
            last = (ev.loss, ev.metric)
        scheduler.observe_eval(*last)
    env = LRControlEnv(TASK, decision_interval=K, total_steps=STEPS, action_map=agent.action_map)
    obs, _ = env.reset(options={"initial_lr": 1e-2, "run_seed": 3, "val_every": 3})
    expected = [obs]
    for _ in range(len(seen) - 1):
        obs, *_ = env.step(act(expected[-1]))
        expected.append(obs)
    for a, b in zip(seen, expected, strict=True):
        np.testing.assert_allclose(a[VAL], b[VAL], rtol=1e-4, atol=1e-4)


def test_meta_env_draws_every_cadence_and_options_fix_one():
    env = MetaTaskEnv([TASK], total_steps=20, decision_interval=10, val_every=(1, 2, 4, 0))
    env.reset(seed=0)
    drawn = set()
    for _ in range(40):
        env.reset()
        drawn.add(env.current.path.val_every)
    assert drawn == {1, 2, 4, 0}
    env.reset(options={"val_every": 4})
    assert env.current.path.val_every == 4


def test_config_checks_cadences_and_the_validation_slice_cycles_them():
    assert load_config(None, val_every=["1", "4", "0"]).val_every == [1, 4, 0]
    assert load_config(None, val_every=2).val_every == [2]
    for bad in (["-1"], ["x"], []):
        with pytest.raises(ConfigError, match="val_every"):
            load_config(None, val_every=bad)
    config = load_config(None, val_every=[1, 0])
    cadences = [e["val_every"] for e in validation_episodes(["lrgym/WineMLP-v0"], config)]
    assert cadences == [1, 0, 1, 0]


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_a_bad_cadence_is_refused_with_its_name(bad):
    env = LRControlEnv(TASK, decision_interval=K, total_steps=STEPS)
    with pytest.raises(ValueError, match="val_every"):
        env.reset(options={"val_every": bad})
