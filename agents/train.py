"""Meta-train a PPO agent across tasks (what `lrgym train` runs).

Plain SB3: a ``SubprocVecEnv`` of :class:`MetaTaskEnv` workers behind ``VecNormalize``,
``CheckpointCallback`` for resumable checkpoints, and one small callback of ours that
scores a fixed validation slice of the meta-train tasks for model selection (SB3's
``EvalCallback`` draws fresh episodes each time and saves no normalisation statistics
with its best model, so it cannot do fixed-episode selection).
"""

from __future__ import annotations

import json
import math
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

import lrgym
from lrgym._atomic import atomic_path, write_text_atomic
from lrgym.agent import SB3_MODEL, VECNORMALIZE, AgentCard, PolicyWeights, export_policy
from lrgym.agents.config import ConfigError, TrainConfig, load_config
from lrgym.agents.meta_env import TRAIN_SEEDS, VALIDATION_SEEDS, MetaTaskEnv, zero_features
from lrgym.hyperparams import HyperParamSet
from lrgym.registration import make_task, select_tasks
from lrgym.signals import OBS_LAYOUT_VERSION, feature_indices

CHECKPOINTS = "checkpoints"
BEST = "best"
CONFIG = "config.yaml"


def meta_train_tasks(config: TrainConfig) -> list[str]:
    """The config's tasks, expanded; held-out and real tasks, and tasks that cannot take the
    config's ``hparams``, are refused."""
    tasks = select_tasks(config.tasks)
    held_out = [t for t in tasks if make_task(t).info.split != "meta-train"]
    if held_out:
        raise ConfigError(
            f"held-out and real tasks cannot be trained on: {', '.join(held_out)}; "
            "pass meta-train tasks (see `lrgym tasks --split meta-train`)"
        )
    hparams = HyperParamSet(config.hparams)
    for task in tasks:
        try:
            hparams.check_backend(make_task(task).backend, task)
        except ValueError as exc:
            raise ConfigError(f"hparams: {exc}; train torch and XGBoost tasks apart") from None
    return tasks


def _make_env(tasks: list[str], config: TrainConfig, rank: int):
    def factory() -> Monitor:
        torch.set_num_threads(1)  # one core per worker; PPO's update runs in the parent
        env = meta_env(tasks, config, TRAIN_SEEDS)
        env.reset(seed=config.seed + rank)
        return Monitor(env)

    return factory


def meta_env(tasks: list[str], config: TrainConfig, seeds: tuple[int, int]) -> gym.Env:
    """A :class:`MetaTaskEnv` over ``tasks`` as ``config`` sets it up (features dropped)."""
    env = MetaTaskEnv(
        tasks,
        seeds,
        config.decision_interval,
        config.episode_steps,
        config.default_lr_share,
        config.hparams,
    )
    return zero_features(env, config.drop_features) if config.drop_features else env


def make_vec_env(tasks: list[str], config: TrainConfig) -> VecEnv:
    """``n_envs`` meta-task workers (subprocesses when more than one)."""
    fns = [_make_env(tasks, config, rank) for rank in range(config.n_envs)]
    return SubprocVecEnv(fns) if config.n_envs > 1 else DummyVecEnv(fns)


def validation_episodes(tasks: list[str], config: TrainConfig) -> list[dict[str, Any]]:
    """The fixed validation slice: every meta-train task × (its default LR and ``val_lrs``),
    on run seeds training never draws."""
    rng = np.random.default_rng(config.seed + 12345)
    return [
        {"task": t, "initial_lr": float(lr), "run_seed": int(rng.integers(*VALIDATION_SEEDS))}
        for t in tasks
        for lr in [make_task(t).info.default_lr, *config.val_lrs]
    ]


def score_policy(
    act, env: gym.Env, episodes: list[dict[str, Any]]
) -> tuple[float, dict[str, float]]:
    """Mean return of ``act(obs) -> action`` over fixed episodes, and per task."""
    per_task: dict[str, list[float]] = {}
    for options in episodes:
        obs, _ = env.reset(options=dict(options))
        done, total = False, 0.0
        while not done:
            obs, reward, done, _, _ = env.step(act(obs))
            total += reward
        per_task.setdefault(options["task"], []).append(total)
    means = {t: float(np.mean(v)) for t, v in per_task.items()}
    return float(np.mean([r for v in per_task.values() for r in v])), means


class ValidationCallback(BaseCallback):
    """Every ``eval_every`` timesteps, score the validation slice; keep the best agent.

    Saves the PPO model and the ``VecNormalize`` statistics of that moment together in
    ``best_dir``, with ``score.json`` (read back on resume).
    """

    def __init__(self, env: gym.Env, episodes: list[dict], eval_every: int, best_dir: Path):
        super().__init__()
        self.env = env
        self.episodes = episodes
        self.eval_every = eval_every
        self.best_dir = best_dir
        score_file = best_dir / "score.json"
        self.best = (
            json.loads(score_file.read_text())["score"] if score_file.exists() else -math.inf
        )
        self._next = eval_every

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next:
            return True
        self._next = self.num_timesteps + self.eval_every
        norm = self.model.get_vec_normalize_env()

        def act(obs: np.ndarray) -> np.ndarray:
            action, _ = self.model.predict(norm.normalize_obs(obs), deterministic=True)
            return action

        score, _ = score_policy(act, self.env, self.episodes)
        self.logger.record("validation/mean_return", score)
        if score > self.best:
            self.best = score
            self.best_dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.best_dir / SB3_MODEL) as tmp:
                self.model.save(tmp)
            with atomic_path(self.best_dir / VECNORMALIZE) as tmp:
                norm.save(tmp)
            payload = {"score": score, "timesteps": self.num_timesteps}
            write_text_atomic(self.best_dir / "score.json", json.dumps(payload))
        return True


def latest_checkpoint(out: Path) -> tuple[Path, Path] | None:
    """The newest (model, VecNormalize) checkpoint pair in ``out/checkpoints``."""
    found = []
    for model in (out / CHECKPOINTS).glob("rl_model_*_steps.zip"):
        steps = int(re.search(r"_(\d+)_steps", model.name).group(1))
        stats = out / CHECKPOINTS / f"rl_model_vecnormalize_{steps}_steps.pkl"
        if stats.exists():
            found.append((steps, model, stats))
    if not found:
        return None
    _, model, stats = max(found)
    return model, stats


def train(
    config: TrainConfig, resume: bool = False, progress_bar: bool = True, command: str = ""
) -> Path:
    """Meta-train, select on the validation slice, export and write the agent directory.

    Args:
        config: The validated configuration.
        resume: Continue from the newest checkpoint in ``config.out``.
        progress_bar: Show SB3's progress bar.
        command: The command line to record in the card.

    Returns:
        The agent directory (``config.out``), loadable with :func:`lrgym.load_agent`.
    """
    tasks = meta_train_tasks(config)
    threads = torch.get_num_threads()
    # The workers keep every core busy; a multi-threaded parent (PPO updates, validation
    # episodes) would oversubscribe them and slow everything down many times over.
    torch.set_num_threads(1)
    try:
        return _train(config, tasks, resume, progress_bar, command)
    finally:
        torch.set_num_threads(threads)


def _train(
    config: TrainConfig, tasks: list[str], resume: bool, progress_bar: bool, command: str
) -> Path:
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / CONFIG)
    checkpoint = latest_checkpoint(out) if resume else None
    if resume and checkpoint is None:  # before any worker process starts
        raise ConfigError(f"--resume: no checkpoint found in {out / CHECKPOINTS}")
    started = time.perf_counter()
    venv = make_vec_env(tasks, config)
    if checkpoint is not None:
        env = VecNormalize.load(str(checkpoint[1]), venv)
        model = PPO.load(checkpoint[0], env=env, tensorboard_log=str(out / "tb"))
    else:
        env = VecNormalize(venv, norm_obs=True, norm_reward=True, gamma=config.ppo.gamma)
        ppo = config.ppo
        model = PPO(
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
            tensorboard_log=str(out / "tb"),
            seed=config.seed,
            verbose=0,
        )
    val_env = meta_env(tasks, config, VALIDATION_SEEDS)
    episodes = validation_episodes(tasks, config)
    callbacks = CallbackList(
        [
            CheckpointCallback(
                save_freq=max(1, config.checkpoint_every // config.n_envs),
                save_path=str(out / CHECKPOINTS),
                save_vecnormalize=True,
            ),
            ValidationCallback(val_env, episodes, config.eval_every, out / BEST),
        ]
    )
    remaining = config.total_timesteps - model.num_timesteps
    if remaining > 0:
        model.learn(
            remaining,
            callback=callbacks,
            progress_bar=progress_bar,
            reset_num_timesteps=checkpoint is None,
            tb_log_name="ppo",
        )
    trained_steps = model.num_timesteps
    venv.close()

    best = out / BEST
    selected = trained_steps
    if (best / SB3_MODEL).exists():  # model selection: the best validation score wins
        selected = json.loads((best / "score.json").read_text())["timesteps"]
        model = PPO.load(best / SB3_MODEL, device="cpu")
        env = VecNormalize.load(str(best / VECNORMALIZE), DummyVecEnv([lambda: val_env]))
    env.training = False
    policy = export_policy(model, env, feature_indices(config.drop_features))
    with atomic_path(out / SB3_MODEL) as tmp:
        model.save(tmp)
    with atomic_path(out / VECNORMALIZE) as tmp:
        env.save(tmp)
    policy.save(out)  # policy.safetensors, atomically; its structure goes in the card

    table = validation_table(policy, val_env, episodes)
    hparams = HyperParamSet(config.hparams)
    card = AgentCard(
        name=config.name,
        lrgym_version=lrgym.__version__,
        obs_layout_version=OBS_LAYOUT_VERSION,
        features=hparams.features,
        action=dict(vars(val_env.unwrapped.current.action_map)),
        tasks=tasks,
        total_timesteps=int(trained_steps),
        selected_timesteps=int(selected),
        seed=config.seed,
        wall_seconds=round(time.perf_counter() - started, 1),
        command=command or " ".join(shlex.quote(a) for a in sys.argv),
        config=config.to_dict(),
        evaluation={"validation slice (meta-train tasks, unseen seeds)": table},
        hparams=list(hparams.names),
        hparam_specs=hparams.specs(),
        policy=policy.spec(),
    )
    card.save(out)  # written last: its presence marks a complete agent directory
    val_env.close()
    return out


def validation_table(policy: PolicyWeights, env: gym.Env, episodes: list[dict[str, Any]]) -> str:
    """Markdown: mean return (log L0/LT of val loss) per task, agent vs. constant LR
    (and constant other hyperparameters)."""

    def act(obs: np.ndarray) -> np.ndarray:
        return policy.forward(np.asarray(obs, dtype=np.float32).reshape(-1))

    agent_mean, agent = score_policy(act, env, episodes)
    hold = np.zeros(env.action_space.shape, np.float32)
    const_mean, const = score_policy(lambda obs: hold, env, episodes)
    lines = [
        "| task | learned | constant LR |",
        "| --- | ---: | ---: |",
        *(f"| {t} | {agent[t]:.3f} | {const[t]:.3f} |" for t in agent),
        f"| **mean** | **{agent_mean:.3f}** | **{const_mean:.3f}** |",
    ]
    return "\n".join(lines)


__all__ = ["TrainConfig", "load_config", "train"]
