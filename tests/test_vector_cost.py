"""Cost-balanced workers: tasks dealt by estimated cost per decision, deterministically."""

from __future__ import annotations

import numpy as np
import pytest

from lrgym.agents.config import ConfigError, TrainConfig
from lrgym.agents.workers import deal_tasks, make_vec_env, runs_per_task
from lrgym.core.registration import drawn_id
from lrgym.tasks.procedural import FAMILIES
from lrgym.vector.cost import balance, decision_cost

MLP, XGB = "lrgym/DigitsMLP-v0", "lrgym/BreastCancerXGB-v0"
RNN, ATTENTION = drawn_id(FAMILIES["rnn"], 1), drawn_id(FAMILIES["attention"], 2)


def test_balance_evens_the_totals_longest_first():
    costs = [9.0, 1.0, 1.0, 8.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    groups = balance(costs, 2)
    assert sorted(i for g in groups for i in g) == list(range(len(costs)))
    totals = [sum(costs[i] for i in g) for g in groups]
    assert totals == [12.0, 12.0] and groups == [[0, 2, 5, 7], [1, 3, 4, 6, 8]]
    assert balance(costs, 2) == groups  # no randomness
    assert balance([1.0], 3) == [[0], [0], [0]]  # more workers than tasks, as round-robin


def test_deal_tasks_by_cost_or_round_robin():
    tasks = ["a", "b", "c", "d"]
    assert deal_tasks(tasks, 2) == [["a", "c"], ["b", "d"]]
    assert deal_tasks(tasks, 2, [10.0, 1.0, 1.0, 1.0]) == [["a"], ["b", "c", "d"]]
    with pytest.raises(ValueError, match="one cost per task"):
        deal_tasks(tasks, 2, [1.0])


def test_decision_cost_ranks_tasks_and_is_repeatable():
    mlp, rnn = decision_cost(MLP), decision_cost(RNN)
    assert rnn > mlp > 0  # a GRU/LSTM of hundreds of small ops costs more per step
    assert decision_cost(RNN) == rnn
    assert decision_cost(MLP, decision_interval=50) > decision_cost(MLP, decision_interval=5)
    assert decision_cost(XGB) > 0  # not a torch task: estimated per boosting round


def test_mixed_cost_workers_are_deterministic_for_a_seed_and_worker_count():
    config = TrainConfig(
        tasks=[MLP, RNN, ATTENTION, XGB], n_envs=2, batched=2, seed=3, compile=False,
        episode_steps=20, decision_interval=5,
    )  # fmt: skip

    def trace() -> list[np.ndarray]:
        venv = make_vec_env(config.tasks, config)
        try:
            out = [venv.reset()]
            rng = np.random.default_rng(0)
            for _ in range(4):  # to the first episode end (4 decisions)
                actions = rng.uniform(-1, 1, (venv.num_envs, 1)).astype(np.float32)
                obs, rewards, dones, infos = venv.step(actions)
                out += [obs, rewards, dones.astype(float)]
            out.append(np.array([len(info) for info in infos], dtype=float))
            return out
        finally:
            venv.close()

    first, second = trace(), trace()
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[-2].all()  # every run ended and reset in the last step


def test_batched_for_gives_the_tasks_it_names_more_runs():
    config = TrainConfig(
        tasks=[MLP, XGB, RNN], n_envs=1, batched=2, batched_for={"meta-train": 3},
        compile=False, episode_steps=20, decision_interval=5, ppo={"batch_size": 8},
    )  # fmt: skip
    assert runs_per_task(config.tasks, config) == [3, 3, 2]  # RNN is a drawn task
    venv = make_vec_env(config.tasks, config)
    try:
        assert venv.num_envs == 3 + 3 + 2
    finally:
        venv.close()


def test_a_worker_dealt_none_of_the_named_tasks_keeps_batched_runs():
    """batched_for is checked over all the training tasks, not over each worker's share."""
    config = TrainConfig(
        tasks=[MLP, RNN], n_envs=2, batched=1, batched_for={MLP: 2}, compile=False,
        episode_steps=20, decision_interval=5, ppo={"batch_size": 8},
    )  # fmt: skip
    venv = make_vec_env(config.tasks, config)
    try:
        assert venv.num_envs == 2 + 1
    finally:
        venv.close()


@pytest.mark.parametrize(
    ("batched_for", "batched", "match"),
    [
        ({"meta-train": 0}, 2, r"batched_for\['meta-train'\]"),
        ({"meta-train": 3}, 0, "needs batched runs"),
        (["meta-train"], 2, "must map task names"),
    ],
)
def test_bad_batched_for_is_refused_by_the_config(batched_for, batched, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(tasks=[MLP], batched=batched, batched_for=batched_for)


def test_batched_for_naming_no_training_task_is_refused():
    config = TrainConfig(tasks=[MLP], batched=2, batched_for={"held-out": 3})
    with pytest.raises(ConfigError, match="selects none of the training tasks"):
        runs_per_task(config.tasks, config)
    config = TrainConfig(tasks=[MLP], batched=2, batched_for={"no-such-group": 3})
    with pytest.raises(ConfigError, match="batched_for"):
        runs_per_task(config.tasks, config)
