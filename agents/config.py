"""Typed, validated configuration of `lrgym train` (YAML file and/or flags)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lrgym.hyperparams import LR, HyperParamSet
from lrgym.signals import feature_indices


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and what is allowed."""


@dataclass
class PPOConfig:
    """stable-baselines3 PPO hyperparameters (see ``stable_baselines3.PPO``)."""

    learning_rate: float = 3e-4
    n_steps: int = 128
    batch_size: int = 64
    n_epochs: int = 10
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    net_arch: list[int] = field(default_factory=lambda: [64, 64])


@dataclass
class TrainConfig:
    """Everything `lrgym train` needs.

    Attributes:
        name: Agent name, recorded in its card.
        tasks: Meta-train task ids or ``"meta-train"``; held-out tasks are refused.
        total_timesteps: Environment steps (decisions) of meta-training.
        n_envs: Parallel environments (one subprocess each); 0 means one per CPU core.
        decision_interval: Override every task's optimizer steps per decision.
        episode_steps: Override every task's optimizer steps per episode.
        seed: Seeds PPO, the task/seed/LR sampler and the environments.
        out: Output directory of the agent (and its checkpoints and logs).
        checkpoint_every: Save a resumable checkpoint every this many timesteps.
        eval_every: Score the validation slice every this many timesteps (model selection).
        val_lrs: Initial LRs of the validation slice's episodes (each task's default LR
            is always added).
        default_lr_share: Share of training episodes that start at the task's default LR
            (the rest start log-uniform over 1e-5..1e-1).
        drop_features: Observation features or groups (``lrgym.signals.FEATURE_GROUPS``)
            the agent does not see: they are zeroed in training and in the exported
            policy. For feature ablations.
        hparams: Hyperparameters the agent controls, one action dimension each, ``"lr"``
            first: ``["lr"]`` (default), ``["lr", "momentum", "weight_decay"]`` for torch
            tasks or ``["lr", "max_depth", "subsample"]`` for XGBoost tasks (see
            :data:`lrgym.hyperparams.HYPERPARAMS`). Every task must accept them.
        ppo: PPO hyperparameters.
    """

    name: str = "my-agent"
    tasks: list[str] = field(default_factory=lambda: ["meta-train"])
    total_timesteps: int = 30_000
    n_envs: int = 0
    decision_interval: int | None = None
    episode_steps: int | None = None
    seed: int = 0
    out: str = "runs/agent"
    checkpoint_every: int = 10_000
    eval_every: int = 10_000
    val_lrs: list[float] = field(default_factory=lambda: [1e-4, 1e-3, 1e-2])
    default_lr_share: float = 0.0
    drop_features: list[str] = field(default_factory=list)
    hparams: list[str] = field(default_factory=lambda: [LR])
    ppo: PPOConfig = field(default_factory=PPOConfig)

    def __post_init__(self) -> None:
        if isinstance(self.ppo, dict):
            self.ppo = _build(PPOConfig, self.ppo, "ppo.")
        if self.n_envs == 0:
            self.n_envs = os.cpu_count() or 1
        positive = {
            "total_timesteps": self.total_timesteps,
            "n_envs": self.n_envs,
            "checkpoint_every": self.checkpoint_every,
            "eval_every": self.eval_every,
            "ppo.n_steps": self.ppo.n_steps,
            "ppo.batch_size": self.ppo.batch_size,
            "ppo.n_epochs": self.ppo.n_epochs,
            "ppo.learning_rate": self.ppo.learning_rate,
        }
        for key in ("decision_interval", "episode_steps"):
            if getattr(self, key) is not None:
                positive[key] = getattr(self, key)
        for key, value in positive.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{key} must be a positive number, got {value!r}")
        if not 0 < self.ppo.gamma <= 1 or not 0 < self.ppo.gae_lambda <= 1:
            raise ConfigError("ppo.gamma and ppo.gae_lambda must be in (0, 1]")
        if self.ppo.batch_size > self.ppo.n_steps * self.n_envs:
            raise ConfigError(
                f"ppo.batch_size ({self.ppo.batch_size}) exceeds the rollout size "
                f"ppo.n_steps × n_envs = {self.ppo.n_steps * self.n_envs}; lower it"
            )
        if isinstance(self.tasks, str):
            self.tasks = [self.tasks]
        if not self.tasks:
            raise ConfigError("tasks is empty; pass meta-train task ids or 'meta-train'")
        if not self.val_lrs or any(
            not (isinstance(x, int | float) and x > 0) for x in self.val_lrs
        ):
            raise ConfigError(f"val_lrs must be positive numbers, got {self.val_lrs!r}")
        if not 0 <= self.default_lr_share <= 1:
            raise ConfigError(f"default_lr_share must be in [0, 1], got {self.default_lr_share}")
        if isinstance(self.drop_features, str):
            self.drop_features = [self.drop_features]
        try:
            feature_indices(self.drop_features)
        except ValueError as exc:
            raise ConfigError(f"drop_features: {exc}") from None
        if isinstance(self.hparams, str):
            self.hparams = [self.hparams]
        try:
            HyperParamSet(self.hparams)
        except ValueError as exc:
            raise ConfigError(f"hparams: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for YAML and the agent card)."""
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write as YAML (atomically)."""
        from lrgym._atomic import write_text_atomic

        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"valid keys: {', '.join(prefix + n for n in sorted(names))}"
        )
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"invalid config: {exc}") from None


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file (optional) with flag overrides on top.

    ``overrides`` whose value is None are ignored; ``ppo`` overrides merge key by key.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys to values")
        values.update(loaded)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "ppo":
            values["ppo"] = {**values.get("ppo", {}), **value}
        else:
            values[key] = value
    return _build(TrainConfig, values)
