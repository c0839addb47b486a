"""The shipped agent is complete: loadable, evaluable and trainable further.

Its ``ppo.zip`` and ``vecnormalize.pkl`` were rebuilt from its policy
(:mod:`lrgym.agents.sb3_files`); the rebuilt SB3 model must act exactly as the policy,
and ``lrgym train --init-from`` must continue training from it.
"""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
from stable_baselines3 import PPO
from typer.testing import CliRunner

import lrgym
from lrgym import manifest
from lrgym.agent import CARD, SB3_MODEL, VECNORMALIZE, resolve_agent
from lrgym.agents.config import ConfigError, load_config
from lrgym.agents.sb3_files import SB3_FILES, check_init_from
from lrgym.cli import app
from lrgym.policy_weights import POLICY

SHIPPED = resolve_agent("default")


def test_shipped_agent_directory_is_complete_and_verifies():
    for name in (CARD, POLICY, SB3_MODEL, VECNORMALIZE):
        assert (SHIPPED / name).is_file(), name
    manifest.verify(SHIPPED, SB3_FILES)
    assert lrgym.load_agent("default").card.notes  # says how the SB3 files were made


def test_shipped_sb3_model_acts_as_the_policy():
    manifest.verify(SHIPPED, SB3_FILES)  # only then unpickle
    model = PPO.load(SHIPPED / SB3_MODEL, device="cpu")
    with open(SHIPPED / VECNORMALIZE, "rb") as f:
        normalize = pickle.load(f)
    agent = lrgym.load_agent("default")
    obs = np.random.default_rng(0).uniform(-3, 3, (1000, len(agent.card.features)))
    obs = obs.astype(np.float32)
    actions, _ = model.predict(normalize.normalize_obs(obs), deterministic=True)
    want = np.array([agent.act(o) for o in obs])
    assert np.max(np.abs(actions[:, 0] - want)) <= 1e-5


def test_training_continues_from_the_shipped_agent(tmp_path):
    out = tmp_path / "continued"
    result = CliRunner().invoke(
        app,
        [
            "train", "--init-from", str(SHIPPED), "--tasks", "lrgym/DigitsMLP-v0",
            "--total-timesteps", "128", "--n-envs", "1", "--episode-steps", "40",
            "--decision-interval", "10", "--eval-every", "128", "--out", str(out),
            "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    agent = lrgym.load_agent(out)
    assert agent.card.config["init_from"] == str(SHIPPED)
    assert agent.card.total_timesteps >= 128


def test_init_from_is_checked_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="controls"):
        check_init_from(load_config(None, init_from=str(SHIPPED), hparams=["lr", "momentum"]))
    bare = tmp_path / "bare"
    shutil.copytree(SHIPPED, bare)
    (bare / SB3_MODEL).unlink()
    with pytest.raises(ConfigError, match="rebuild_sb3_files"):
        check_init_from(load_config(None, init_from=str(bare)))


@pytest.mark.parametrize(
    ("name", "hparams"),
    [
        ("multi-hp", ["lr", "momentum", "weight_decay"]),
        ("multi-hp-xgb", ["lr", "max_depth", "subsample"]),
    ],
)
def test_multi_hp_agents_are_complete_and_drive_their_hyperparameters(name, hparams):
    path = resolve_agent(name)
    for file in (CARD, POLICY, SB3_MODEL, VECNORMALIZE):
        assert (path / file).is_file(), file
    manifest.verify(path, SB3_FILES)
    agent = lrgym.load_agent(name)
    assert agent.card.hparams == hparams and agent.card.notes
    obs = np.random.default_rng(0).uniform(-3, 3, (50, len(agent.card.features)))
    actions = np.array([agent.act(o.astype(np.float32)) for o in obs])
    assert actions.shape == (50, 3) and np.all(np.abs(actions) <= 1)
    assert np.ptp(actions, axis=0).min() > 0  # every dimension responds to the run
