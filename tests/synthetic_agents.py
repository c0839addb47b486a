"""Synthetic agents for tests: NumPy policies whose behaviour is known by construction
(always ``value``, or ``tanh`` of a linear map that reads every feature)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import lrgym
from lrgym.core.signals import FEATURES, OBS_LAYOUT_VERSION
from lrgym.deploy.agent import Agent, AgentCard
from lrgym.deploy.policy_weights import PolicyWeights


def synthetic_card(**action) -> AgentCard:
    """An LR-only agent's card with the default action bounds, updated by ``action``."""
    return AgentCard(
        name="synthetic",
        lrgym_version=lrgym.__version__,
        obs_layout_version=OBS_LAYOUT_VERSION,
        features=list(FEATURES),
        action={"max_log2_step": 1.0, "min_lr": 1e-7, "max_lr": 10.0, **action},
        tasks=[],
        total_timesteps=0,
        seed=0,
        wall_seconds=0.0,
        command="",
    )


def linear_tanh(w: np.ndarray) -> PolicyWeights:
    """``tanh(obs @ w)`` (no normalisation, no clip): every feature moves the action."""
    w = np.asarray(w, dtype=np.float32)
    n_features, n_actions = w.shape
    return PolicyWeights(
        mean=np.zeros(n_features, np.float32),
        std=np.ones(n_features, np.float32),
        clip_obs=math.inf,
        layers=("linear", "tanh"),
        linear=((w.T, np.zeros(n_actions, np.float32)),),
    )


def constant(value: float) -> PolicyWeights:
    """Always ``value``, whatever the observation."""
    n = len(FEATURES)
    return PolicyWeights(
        mean=np.zeros(n, np.float32),
        std=np.ones(n, np.float32),
        clip_obs=math.inf,
        layers=("linear",),
        linear=((np.zeros((1, n), np.float32), np.array([value], np.float32)),),
    )


def constant_agent(value: float, **action) -> Agent:
    """An agent whose action is always ``value``, with the given action settings."""
    return Agent(Path("synthetic"), synthetic_card(**action), constant(value))
