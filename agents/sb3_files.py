"""An agent directory's training state: continuing training from it, and rebuilding it
from the policy.

:func:`load_for_training` is what ``lrgym train --init-from DIR`` starts from: the
directory's ``training.safetensors`` + ``training.json``
(:mod:`lrgym.agents.training_state`), verified against the directory's manifest and read
as data (no pickle). :func:`rebuild_training_state` is the inverse of
:func:`~lrgym.deploy.policy_weights.export_policy` (which folds a PPO actor and its
``VecNormalize`` statistics into ``policy.safetensors``), for an agent directory whose
training state was lost: the shipped ``default`` agent was trained on a lent machine from
which only the policy and card came back. The actor and the observation statistics are
restored exactly (tested: the rebuilt model's deterministic action equals the policy's);
what the export never kept starts fresh: the value network, the action log-std (0, SB3's
initial value), the optimizer and the reward-normalisation statistics. Training
continued from a rebuilt directory therefore re-learns its critic first.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from lrgym.agents.config import ConfigError, TrainConfig
from lrgym.agents.ppo_state import build_model, build_normalize, capture
from lrgym.agents.training_state import (
    TrainingStateError,
    read_training_state,
    state_files,
    write_state,
)
from lrgym.core.actions import LogLRAction
from lrgym.core.signals import OBS_BOUND
from lrgym.deploy.agent import (
    CONVERT_COMMAND,
    LEGACY_SB3_FILES,
    TRAINING,
    AgentLoadError,
    load_agent,
    load_card,
)
from lrgym.io import manifest
from lrgym.io._atomic import atomic_path

VECNORMALIZE_EPSILON = 1e-8
"""SB3's default ``VecNormalize`` epsilon: exported std = sqrt(var + epsilon)."""

TRAINING_FILES = state_files(TRAINING)
"""An agent directory's training state: ``training.safetensors``, ``training.json``."""


def check_init_from(config: TrainConfig) -> None:
    """Raise :class:`ConfigError` unless ``config.init_from`` is an agent directory whose
    training state verifies and whose observations and actions are the config's."""
    if config.init_from is None:
        return
    path = Path(config.init_from)
    try:
        card = load_card(path)
    except AgentLoadError as exc:
        raise ConfigError(f"init_from: {exc}") from None
    if card.members:
        raise ConfigError(
            f"init_from: {path} is an ensemble of {len(card.members)} agents acting with "
            f"their mean action, which has no training state of its own; continue training "
            f"one member (--init-from {path / card.members[0]}), or every member and join "
            f"them again (what `lrgym train --init-from {path}` does)"
        )
    if not (path / TRAINING_FILES[1]).exists() and any(
        (path / name).exists() for name in LEGACY_SB3_FILES
    ):
        raise ConfigError(
            f"init_from: {path} holds its training state in the pickle format of earlier "
            f"lrgym versions ({', '.join(LEGACY_SB3_FILES)}), which lrgym no longer loads "
            f"because loading a pickle can run code; convert it once with "
            f"`{CONVERT_COMMAND} {path}` (it loads those pickles: only for agents you trust)"
        )
    try:
        manifest.verify(path, TRAINING_FILES)
    except manifest.ManifestError as exc:
        raise ConfigError(
            f"init_from: {exc}; an agent directory without a training state gets one from "
            f"lrgym.agents.sb3_files.rebuild_training_state (on a copy)"
        ) from None
    if list(card.hparams) != list(config.hparams):
        raise ConfigError(
            f"init_from: the agent controls {card.hparams}, the config {config.hparams}; "
            "pass --hparams to match"
        )
    if LogLRAction(**card.action) != config.action_map:
        raise ConfigError(
            f"init_from: the agent acts through the action map {card.action}, the config "
            f"through {config.action}; its policy would act differently. Set the config's "
            f"action: to the agent's (a YAML file passed with --config; action: {{}} for "
            f"agents trained before the action map v2)"
        )


def load_for_training(
    agent_dir: str | Path, venv: VecEnv, tensorboard_log: str, seed: int | None = None
) -> tuple[PPO, VecNormalize]:
    """``(PPO, VecNormalize)`` of an agent directory on ``venv``, ready to learn on.

    The agent's networks, optimizer state, normalisation statistics and PPO settings
    carry over; the run starts at 0 timesteps with PPO seeded by ``seed`` (default: the
    agent's). Call :func:`check_init_from` first for errors that name the setting.

    Raises:
        ConfigError: the training state does not verify or does not fit ``venv``.
    """
    agent_dir = Path(agent_dir)
    try:
        state = read_training_state(agent_dir, TRAINING)
        env = build_normalize(state, venv, training=True)
        model = build_model(state, env, seed=seed, tensorboard_log=tensorboard_log)
    except (manifest.ManifestError, TrainingStateError) as exc:
        raise ConfigError(f"init_from: {exc}") from None
    return model, env


def make_ppo(
    env: VecEnv,
    config: TrainConfig,
    tensorboard_log: str | None = None,
    policy: str | type = "MlpPolicy",
    **policy_kwargs: Any,
) -> PPO:
    """A fresh SB3 PPO with ``config.ppo``'s settings on ``env`` (``policy`` and extra
    ``policy_kwargs``: another SB3 policy class, e.g. an ensemble's)."""
    ppo = config.ppo
    return PPO(
        policy,
        env,
        learning_rate=ppo.learning_rate,
        n_steps=ppo.n_steps,
        batch_size=ppo.batch_size,
        n_epochs=ppo.n_epochs,
        gamma=ppo.gamma,
        gae_lambda=ppo.gae_lambda,
        clip_range=ppo.clip_range,
        ent_coef=ppo.ent_coef,
        policy_kwargs={"net_arch": list(ppo.net_arch), **policy_kwargs},
        tensorboard_log=tensorboard_log,
        seed=config.seed,
        verbose=0,
    )


class SpacesOnly(gym.Env):
    """An env with an agent's spaces and nothing else (SB3 needs one to build a model)."""

    def __init__(self, n_obs: int, n_actions: int) -> None:
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (n_obs,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n_actions,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """A zero observation."""
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action: np.ndarray):
        """Not supported: the env only carries spaces."""
        raise NotImplementedError("a spaces-only env does not step")


SB3_MODEL = "ppo.zip"
"""The agent's PPO in stable-baselines3's own format (``PPO.load``), for SB3 users."""


def write_sb3_model(agent_dir: str | Path) -> Path:
    """Write ``ppo.zip`` into ``agent_dir`` from its training state, and record it in the
    manifest.

    It is for users of stable-baselines3 (``PPO.load(dir / "ppo.zip")``; the observation
    normalisation is in ``policy.safetensors`` and the training state). SB3's format
    holds cloudpickled entries, so lrgym never reads it: ``lrgym train --init-from`` and
    ``--resume`` load ``training.safetensors``/``training.json``, and ``lrgym
    convert-agent`` leaves a ``ppo.zip`` beside them alone.
    """
    model, _ = load_sb3_model(agent_dir)
    return save_sb3_model(model, agent_dir)


def load_sb3_model(agent_dir: str | Path) -> tuple[PPO, VecNormalize]:
    """The PPO of an agent directory's training state (on a spaces-only env) and its
    frozen ``VecNormalize``, for acting."""
    card = load_card(agent_dir)
    state = read_training_state(Path(agent_dir), TRAINING)
    norm = build_normalize(state, spaces_only(len(card.features), len(card.hparams)))
    norm.training = False
    return build_model(state, norm, device="cpu"), norm


def save_sb3_model(model: PPO, agent_dir: str | Path) -> Path:
    """Save ``model`` as ``agent_dir/ppo.zip`` atomically and record it in the manifest."""
    agent_dir = Path(agent_dir)
    buffer = io.BytesIO()
    model.save(buffer)
    with atomic_path(agent_dir / SB3_MODEL) as tmp:
        tmp.write_bytes(buffer.getvalue())
    manifest.record(agent_dir, [SB3_MODEL])
    return agent_dir / SB3_MODEL


def spaces_only(n_obs: int, n_actions: int, n_envs: int = 1) -> DummyVecEnv:
    """``n_envs`` :class:`SpacesOnly` environments as a ``DummyVecEnv``."""
    return DummyVecEnv([lambda: SpacesOnly(n_obs, n_actions)] * n_envs)


def rebuild_training_state(agent_dir: str | Path) -> None:
    """Write ``training.safetensors``, ``training.json`` and their manifest into ``agent_dir``.

    Raises:
        ValueError: the policy's structure is not the card's PPO ``net_arch`` MLP.
    """
    agent_dir = Path(agent_dir)
    agent = load_agent(agent_dir)
    card = load_card(agent_dir)
    config = TrainConfig(**{"action": card.action, **card.config, "out": str(agent_dir)})
    weights = agent.policy
    vecnormalize = VecNormalize(
        spaces_only(len(card.features), len(card.hparams)),
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
    names = write_state(agent_dir, TRAINING, capture(model, vecnormalize))
    manifest.record(agent_dir, names)
