"""The shipped agents are complete: loadable, evaluable and trainable further.

Each ships its training state (``training.safetensors`` + ``training.json``, converted
once from the SB3 pickles it shipped with); the model rebuilt from it must act exactly
as the policy, and ``lrgym train --init-from`` must continue training from it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from shipped import shipped_agent_dirs
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv
from typer.testing import CliRunner

import lrgym
from lrgym.agents.config import ConfigError, load_config
from lrgym.agents.ppo_state import build_model, build_normalize
from lrgym.agents.sb3_files import (
    SB3_MODEL,
    TRAINING_FILES,
    check_init_from,
    rebuild_training_state,
    spaces_only,
)
from lrgym.agents.training_state import read_training_state
from lrgym.cli import app
from lrgym.core.signals import OBS_BOUND
from lrgym.deploy.agent import CARD, LEGACY_SB3_FILES, TRAINING, resolve_agent
from lrgym.deploy.policy_weights import POLICY
from lrgym.io import manifest

AGENTS = [str(path) for path in shipped_agent_dirs()]
SHIPPED = Path(AGENTS[0])


@pytest.mark.parametrize("name", AGENTS)
def test_shipped_agent_directory_is_complete_verifies_and_has_no_pickles(name):
    """Everything to load, evaluate and train further; the only SB3 file is ppo.zip,
    stable-baselines3's own copy for its users, which lrgym never reads."""
    path = resolve_agent(name)
    for file in (CARD, POLICY, *TRAINING_FILES, SB3_MODEL):
        assert (path / file).is_file(), file
    manifest.verify(path, [*TRAINING_FILES, SB3_MODEL])
    assert not [p for p in path.iterdir() if p.name in LEGACY_SB3_FILES and p.name != SB3_MODEL]
    assert not [p for p in path.iterdir() if p.suffix in (".pkl", ".pt")]
    assert lrgym.load_agent("default").card.notes  # says how the training state was made


@pytest.mark.parametrize("name", AGENTS)
def test_shipped_ppo_zip_loads_in_sb3_and_acts_as_the_policy(name):
    path = resolve_agent(name)
    agent = lrgym.load_agent(name)
    model = PPO.load(path / SB3_MODEL, device="cpu")
    weights = agent.policy
    obs = np.random.default_rng(1).uniform(-3, 3, (500, len(agent.card.features)))
    obs = obs.astype(np.float32)
    normalized = np.clip((obs - weights.mean) / weights.std, -weights.clip_obs, weights.clip_obs)
    actions, _ = model.predict(normalized, deterministic=True)
    assert np.max(np.abs(actions - agent.policy(obs))) <= 1e-5


@pytest.mark.parametrize("name", AGENTS)
def test_shipped_training_state_acts_as_the_policy(name):
    path = resolve_agent(name)
    state = read_training_state(path, TRAINING)
    agent = lrgym.load_agent(name)
    n_obs, n_actions = len(agent.card.features), len(agent.card.hparams)
    norm = build_normalize(state, spaces_only(n_obs, n_actions), training=False)
    model = build_model(state, norm, device="cpu")
    assert model.num_timesteps == 0  # a new run starts from it
    assert state.num_timesteps == agent.card.selected_timesteps
    obs = np.random.default_rng(0).uniform(-3, 3, (1000, n_obs)).astype(np.float32)
    actions, _ = model.predict(norm.normalize_obs(obs), deterministic=True)
    assert np.max(np.abs(actions - agent.policy(obs))) <= 1e-5


def test_training_continues_from_the_shipped_agent(tmp_path):
    out = tmp_path / "continued"
    result = CliRunner().invoke(
        app,
        [
            "train", "--init-from", str(SHIPPED), "--tasks", "lrgym/DigitsMLP-v0",
            "--total-timesteps", "128", "--n-envs", "1", "--episode-steps", "40",
            "--decision-interval", "10", "--eval-every", "128", "--out", str(out),
            "--batched", "0", "--val-every", "1", "--n-steps", "128", "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    agent = lrgym.load_agent(out)
    assert agent.card.config["init_from"] == str(SHIPPED)
    assert agent.card.total_timesteps >= 128


def test_the_shipped_ensemble_trains_further_as_its_members(tmp_path):
    """`--init-from trained_agents/default` continues every member and joins them again."""
    out = tmp_path / "continued"
    result = CliRunner().invoke(
        app,
        [
            "train", "--init-from", str(resolve_agent("default")), "--tasks",
            "lrgym/DigitsMLP-v0", "--total-timesteps", "32", "--n-envs", "1",
            "--episode-steps", "40", "--decision-interval", "10", "--eval-every", "32",
            "--out", str(out), "--batched", "0", "--val-every", "1", "--n-steps", "32",
            "--batch-size", "32", "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    agent = lrgym.load_agent(out)
    shipped = lrgym.load_agent("default")
    assert agent.card.members == shipped.card.members
    for member, before in zip(agent.members, shipped.members, strict=True):
        assert member.card.config["init_from"] == str(before.path)
        assert member.card.total_timesteps >= 32
    manifest.verify(out, [SB3_MODEL])  # the joined ensemble is one SB3 model again


def test_init_from_is_checked_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="controls"):
        check_init_from(load_config(None, init_from=str(SHIPPED), hparams=["lr", "momentum"]))
    with pytest.raises(ConfigError, match="action map"):  # the v1 map: it would act otherwise
        check_init_from(load_config(None, init_from=str(SHIPPED), action={}))
    continued = load_config(None, init_from=str(SHIPPED))  # no action given: the agent's
    assert continued.action == lrgym.load_agent(SHIPPED).card.action
    bare = tmp_path / "bare"
    shutil.copytree(SHIPPED, bare)
    (bare / TRAINING_FILES[0]).unlink()
    with pytest.raises(ConfigError, match="rebuild_training_state"):
        check_init_from(load_config(None, init_from=str(bare)))


def test_a_lost_training_state_is_rebuilt_from_the_policy(tmp_path):
    """rebuild_training_state: the actor and observation statistics exactly, the rest fresh."""
    bare = tmp_path / "bare"
    shutil.copytree(SHIPPED, bare)
    for name in TRAINING_FILES:
        (bare / name).unlink()
    rebuild_training_state(bare)
    manifest.verify(bare, TRAINING_FILES)
    check_init_from(load_config(None, init_from=str(bare)))
    state = read_training_state(bare, TRAINING)
    assert not any(k.startswith("optimizer.state.") for k in state.tensors)  # fresh Adam
    agent = lrgym.load_agent(bare)
    n_obs = len(agent.card.features)
    norm = build_normalize(state, spaces_only(n_obs, 1), training=False)
    model = build_model(state, norm, device="cpu")
    obs = np.random.default_rng(1).uniform(-3, 3, (1000, n_obs)).astype(np.float32)
    actions, _ = model.predict(norm.normalize_obs(obs), deterministic=True)
    assert np.max(np.abs(actions - agent.policy(obs))) <= 1e-5


class _RandomEnv(gym.Env):
    """Random observations in the agent's box and a reward that prefers small actions."""

    def __init__(self, n_obs: int) -> None:
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (n_obs,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.t = 0

    def _obs(self) -> np.ndarray:
        return self.np_random.uniform(-3, 3, self.observation_space.shape).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), -float(np.abs(action).sum()), self.t >= 8, False, {}


def test_the_shipped_ensembles_ppo_zip_acts_as_the_ensemble_and_trains():
    """The ensemble folder's own ppo.zip: SB3 loads it, it acts as the ensemble from raw
    observations, and PPO trains it further."""
    path = resolve_agent("default")
    manifest.verify(path, [SB3_MODEL])
    agent = lrgym.load_agent("default")
    model = PPO.load(path / SB3_MODEL, device="cpu")
    n_obs = len(agent.card.features)
    obs = np.random.default_rng(2).uniform(-3, 3, (500, n_obs)).astype(np.float32)
    actions, _ = model.predict(obs, deterministic=True)
    expected = np.array([agent.act(x) for x in obs]).reshape(actions.shape)
    assert np.max(np.abs(actions - expected)) <= 1e-5
    before = [p.detach().clone() for p in model.policy.parameters()]
    env = DummyVecEnv([lambda: _RandomEnv(n_obs)])
    model = PPO.load(path / SB3_MODEL, env=env, device="cpu", n_steps=32, batch_size=16)
    model.learn(64)
    assert model.num_timesteps >= 64
    after = list(model.policy.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
