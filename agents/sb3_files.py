"""An agent directory's SB3 files (``ppo.zip``, ``vecnormalize.pkl``): continuing
training from them, and rebuilding them from the policy.

:func:`load_for_training` is what ``lrgym train --init-from DIR`` starts from (files
verified against the directory's manifest before anything is unpickled).
:func:`rebuild_sb3_files` is the inverse of :func:`~lrgym.policy_weights.export_policy`
(which folds a PPO actor and its ``VecNormalize`` statistics into ``policy.safetensors``),
for an agent directory whose SB3 files were lost: the shipped ``default`` agent was
trained on a lent machine from which only the policy and card came back. The actor and
the observation statistics are restored exactly (tested: the rebuilt model's
deterministic action equals the policy's); what the export never kept starts fresh: the
value network, the action log-std (0, SB3's initial value) and the reward-normalisation
statistics. Training continued from a rebuilt directory (``lrgym train --init-from DIR``)
therefore re-learns its critic first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from lrgym import manifest
from lrgym._atomic import atomic_path
from lrgym.agent import SB3_MODEL, VECNORMALIZE, AgentLoadError, load_agent, load_card
from lrgym.agents.config import ConfigError, TrainConfig
from lrgym.signals import OBS_BOUND

VECNORMALIZE_EPSILON = 1e-8
"""SB3's default ``VecNormalize`` epsilon: exported std = sqrt(var + epsilon)."""


SB3_FILES = (SB3_MODEL, VECNORMALIZE)


def check_init_from(config: TrainConfig) -> None:
    """Raise :class:`ConfigError` unless ``config.init_from`` is an agent directory whose
    SB3 files verify and whose observations and actions are the config's."""
    if config.init_from is None:
        return
    path = Path(config.init_from)
    try:
        card = load_card(path)
    except AgentLoadError as exc:
        raise ConfigError(f"init_from: {exc}") from None
    try:
        manifest.verify(path, SB3_FILES)
    except manifest.ManifestError as exc:
        raise ConfigError(
            f"init_from: {exc}; an agent directory without SB3 files gets them from "
            f"lrgym.agents.sb3_files.rebuild_sb3_files (on a copy)"
        ) from None
    if list(card.hparams) != list(config.hparams):
        raise ConfigError(
            f"init_from: the agent controls {card.hparams}, the config {config.hparams}; "
            "pass --hparams to match"
        )


def load_for_training(agent_dir: str | Path, venv: Any, tensorboard_log: str) -> tuple:
    """``(PPO, VecNormalize)`` of an agent directory on ``venv``, ready to learn on.

    Call :func:`check_init_from` first: it verifies the files before they are unpickled.
    """
    agent_dir = Path(agent_dir)
    manifest.verify(agent_dir, SB3_FILES)  # again, right before unpickling
    env = VecNormalize.load(str(agent_dir / VECNORMALIZE), venv)
    env.training, env.norm_reward = True, True
    model = PPO.load(agent_dir / SB3_MODEL, env=env, tensorboard_log=tensorboard_log)
    return model, env


def make_ppo(env: VecEnv, config: TrainConfig, tensorboard_log: str | None = None) -> PPO:
    """A fresh SB3 PPO with ``config.ppo``'s settings on ``env``."""
    ppo = config.ppo
    return PPO(
        "MlpPolicy",
        env,
        learning_rate=ppo.learning_rate,
        n_steps=ppo.n_steps,
        batch_size=ppo.batch_size,
        n_epochs=ppo.n_epochs,
        gamma=ppo.gamma,
        gae_lambda=ppo.gae_lambda,
        clip_range=ppo.clip_range,
        ent_coef=ppo.ent_coef,
        policy_kwargs={"net_arch": list(ppo.net_arch)},
        tensorboard_log=tensorboard_log,
        seed=config.seed,
        verbose=0,
    )


class _SpacesOnly(gym.Env):
    """An env with an agent's spaces and nothing else (SB3 needs one to build a model)."""

    def __init__(self, n_obs: int, n_actions: int) -> None:
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (n_obs,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n_actions,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action: np.ndarray):
        raise NotImplementedError("a spaces-only env does not step")


def rebuild_sb3_files(agent_dir: str | Path) -> None:
    """Write ``ppo.zip``, ``vecnormalize.pkl`` and their manifest into ``agent_dir``.

    Raises:
        ValueError: the policy's structure is not the card's PPO ``net_arch`` MLP.
    """
    agent_dir = Path(agent_dir)
    agent = load_agent(agent_dir)
    card = load_card(agent_dir)
    config = TrainConfig(**{**card.config, "out": str(agent_dir)})
    weights = agent.policy
    n_obs, n_actions = len(card.features), len(card.hparams)
    vecnormalize = VecNormalize(
        DummyVecEnv([lambda: _SpacesOnly(n_obs, n_actions)]),
        gamma=config.ppo.gamma,
        clip_obs=float(weights.clip_obs),
        epsilon=VECNORMALIZE_EPSILON,
    )
    std = np.asarray(weights.std, dtype=np.float64)
    vecnormalize.obs_rms.mean = np.asarray(weights.mean, dtype=np.float64)
    vecnormalize.obs_rms.var = std**2 - VECNORMALIZE_EPSILON
    vecnormalize.training = False
    model = make_ppo(vecnormalize, config)
    policy = model.policy
    actor = [*policy.mlp_extractor.policy_net, policy.action_net]
    linears = [m for m in actor if isinstance(m, torch.nn.Linear)]
    if len(linears) != len(weights.linear) or [tuple(m.weight.shape) for m in linears] != [
        w.shape for w, _ in weights.linear
    ]:
        raise ValueError(
            f"{agent_dir}: the policy's layers do not match PPO net_arch "
            f"{config.ppo.net_arch}; it cannot be rebuilt as an SB3 model"
        )
    with torch.no_grad():
        for module, (weight, bias) in zip(linears, weights.linear, strict=True):
            module.weight.copy_(torch.tensor(weight))
            module.bias.copy_(torch.tensor(bias))
    with atomic_path(agent_dir / SB3_MODEL) as tmp:
        model.save(tmp)
    with atomic_path(agent_dir / VECNORMALIZE) as tmp:
        vecnormalize.save(tmp)
    manifest.record(agent_dir, SB3_FILES)
