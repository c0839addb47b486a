"""The validation slice: what model selection scores, and how.

A fixed set of episodes (:func:`validation_episodes`) on the meta-train tasks at run
seeds training never draws, with drawn procedural tasks replaced by draws of the
procedural validation family (:func:`validation_tasks`), scored by the policy as it
ships (the exported policy's ``forward``). :class:`ValidationCallback` is the one small callback of
ours that scores it during training (SB3's ``EvalCallback`` draws fresh episodes each
time and saves no normalisation statistics with its best model, so it cannot do
fixed-episode selection); :func:`validation_table` is the card's table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from lrgym.agents.checkpoints import BEST_FILES, SCORE
from lrgym.agents.config import TrainConfig
from lrgym.agents.meta_env import VALIDATION_SEEDS
from lrgym.agents.ppo_state import save_training_state
from lrgym.core.registration import make_task, spec
from lrgym.deploy.agent import TRAINING
from lrgym.deploy.policy_weights import PolicyWeights, export_policy
from lrgym.harness.report import md_table
from lrgym.io import manifest
from lrgym.io._atomic import write_text_atomic
from lrgym.io.file_checks import read_json
from lrgym.tasks import procedural

VALIDATION_DRAWS = 32
"""Most drawn tasks of the procedural validation family in a validation slice."""


def validation_tasks(tasks: list[str], draws: int | None = None) -> list[str]:
    """The tasks the validation slice scores: the named training tasks (on run seeds
    training never draws) and, in place of drawn procedural tasks, as many drawn tasks of
    the procedural validation family (at most :data:`VALIDATION_DRAWS`), which no
    training run sees. ``draws`` sets their number instead (a larger slice for offline
    comparisons)."""
    drawn: dict[int, int] = {}  # version → drawn training tasks of that version
    kept = []
    for t in tasks:
        version = procedural.drawn_version(t)
        if version is None:
            kept.append(t)
        else:
            drawn[version] = drawn.get(version, 0) + 1
    for version, count in sorted(drawn.items()):
        n = min(count, VALIDATION_DRAWS) if draws is None else draws
        kept += procedural.validation_selection(n, version=version)
    return kept


def validation_episodes(
    tasks: list[str], config: TrainConfig, repeats: int = 1
) -> list[dict[str, Any]]:
    """The fixed validation slice: every meta-train task × (its default LR and ``val_lrs``),
    on run seeds training never draws. A task drawn from a procedural family gets one
    episode, the drawn tasks taking those LRs in turn (so `--tasks procedural` adds one
    episode per drawn task, not four). Episodes take ``config.val_every``'s cadences in
    turn. ``repeats`` > 1 runs each (task, LR) on that many run seeds (a larger slice for
    offline comparisons; training selects on ``repeats=1``)."""
    rng = np.random.default_rng(config.seed + 12345)
    episodes: list[dict[str, Any]] = []
    drawn = 0
    for t in tasks:
        lrs = [make_task(t).info.default_lr, *config.val_lrs]
        if spec(t).family:
            lrs = [lrs[drawn % len(lrs)]]
            drawn += 1
        for lr in [lr for lr in lrs for _ in range(repeats)]:
            seed = int(rng.integers(*VALIDATION_SEEDS))
            cadence = config.val_every[len(episodes) % len(config.val_every)]
            episodes.append(
                {"task": t, "initial_lr": float(lr), "run_seed": seed, "val_every": cadence}
            )
    return episodes


def run_episode(act, env: gym.Env, options: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """One episode of ``act(obs) -> action`` from ``reset(options=...)``: its return and
    its last ``info``."""
    obs, info = env.reset(options=dict(options))
    done, total = False, 0.0
    while not done:
        obs, reward, done, _, info = env.step(act(obs))
        total += reward
    return total, info


def score_policy(
    act, env: gym.Env, episodes: list[dict[str, Any]]
) -> tuple[float, dict[str, float]]:
    """Mean return of ``act(obs) -> action`` over fixed episodes, and per task."""
    per_task: dict[str, list[float]] = {}
    for options in episodes:
        total, _ = run_episode(act, env, options)
        per_task.setdefault(options["task"], []).append(total)
    means = {t: float(np.mean(v)) for t, v in per_task.items()}
    return float(np.mean([r for v in per_task.values() for r in v])), means


class ValidationCallback(BaseCallback):
    """Every ``eval_every`` timesteps, score the validation slice; keep the best agent.

    The policy is scored as it would ship (exported, run in NumPy; see
    :func:`~lrgym.deploy.policy_weights.export_policy`), so the selected model's score is
    the card's validation table: a run on the slice can turn on float rounding (one
    diverging episode moves the mean by several hundredths), and SB3's forward pass rounds
    otherwise than the exported one. Saves the training state of that moment
    (:mod:`lrgym.agents.training_state`) in ``best_dir``, with ``score.json`` (read back on
    resume) and a manifest of their digests (checked before the state is read again).
    """

    def __init__(
        self,
        env: gym.Env,
        episodes: list[dict],
        eval_every: int,
        best_dir: Path,
        dropped: list[int] | None = None,
    ):
        super().__init__()
        self.env = env
        self.episodes = episodes
        self.eval_every = eval_every
        self.best_dir = best_dir
        self.dropped = dropped or []
        score_file = best_dir / SCORE
        # a regular, size-capped file (lrgym.io.file_checks): a FIFO here must not hang a resume
        exists = score_file.exists() or score_file.is_symlink()
        self.best = read_json(score_file, "score")["score"] if exists else -math.inf
        self._next = eval_every

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next:
            return True
        self._next = self.num_timesteps + self.eval_every
        norm = self.model.get_vec_normalize_env()
        policy = export_policy(self.model, norm, self.dropped)
        score, _ = score_policy(policy.forward, self.env, self.episodes)
        self.logger.record("validation/mean_return", score)
        if score > self.best:
            self.best = score
            self.best_dir.mkdir(parents=True, exist_ok=True)
            save_training_state(self.best_dir, TRAINING, self.model, norm)
            payload = {"score": score, "timesteps": self.num_timesteps}
            write_text_atomic(self.best_dir / SCORE, json.dumps(payload))
            manifest.record(self.best_dir, BEST_FILES)
        return True


def validation_table(policy: PolicyWeights, env: gym.Env, episodes: list[dict[str, Any]]) -> str:
    """Markdown: mean return (log L0/LT of val loss) per task, agent vs. constant LR
    (and constant other hyperparameters)."""
    agent_mean, agent = score_policy(policy.forward, env, episodes)
    hold = np.zeros(env.action_space.shape, np.float32)
    const_mean, const = score_policy(lambda obs: hold, env, episodes)
    rows = [[t, f"{agent[t]:.3f}", f"{const[t]:.3f}"] for t in agent]
    rows.append(["**mean**", f"**{agent_mean:.3f}**", f"**{const_mean:.3f}**"])
    return md_table(["task", "learned", "constant LR"], rows, align="lrr")


__all__ = [
    "VALIDATION_DRAWS",
    "ValidationCallback",
    "run_episode",
    "score_policy",
    "validation_episodes",
    "validation_tasks",
    "validation_table",
]
