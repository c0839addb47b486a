"""Run folders of `lrgym train`: verified checkpoints and an exact resume.

A checkpoint is three files in ``OUT/checkpoints``, written at the start of a rollout
(after the previous PPO update) every ``checkpoint_every`` timesteps and when training
ends:

* ``rl_model_<N>_steps.zip``: the SB3 PPO model (policy, optimizer, counters, last
  observation);
* ``rl_model_vecnormalize_<N>_steps.pkl``: the ``VecNormalize`` statistics;
* ``rl_model_state_<N>_steps.json``: what SB3 does not save, as plain JSON: the global
  RNG states (torch, NumPy, Python), ``VecNormalize``'s running returns, each
  environment's sampler state and the actions of its episode in progress (replayed on
  resume, so the run continues mid-episode exactly), and when validation runs next.

``OUT/checkpoints/manifest.json`` (and ``OUT/best/manifest.json``) list the SHA-256 of
each file (:mod:`lrgym.manifest`); nothing is unpickled unless it matches. A damaged
newest checkpoint (e.g. truncated by a kill) is skipped for the newest one that verifies.

With this state a resumed run is identical to an uninterrupted one with the same
settings and seed, for one environment and for several (each worker replays its own
episode); only the TensorBoard curves and episode statistics restart at the resume.
Batched runs (``batched > 0``) cannot replay an episode: their resume starts fresh
episodes from the restored RNG and policy, so it continues the run but not identically.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecNormalize

from lrgym import manifest
from lrgym._atomic import atomic_path, is_temp_name, remove_stale_temp_files, write_text_atomic
from lrgym.agents.config import ConfigError, TrainConfig

CHECKPOINTS = "checkpoints"
BEST = "best"
CONFIG = "config.yaml"
STATE_FORMAT = 1
_MODEL = re.compile(r"^rl_model_(\d+)_steps\.zip$")

RUN_ENTRIES = frozenset(
    {
        CHECKPOINTS,
        BEST,
        CONFIG,
        "tb",
        "card.json",
        "policy.safetensors",
        "ppo.zip",
        "vecnormalize.pkl",
        manifest.MANIFEST,
    }
)
"""What `lrgym train` writes into its ``--out`` directory (``--overwrite`` removes these)."""


class RunFolderError(ConfigError):
    """A run folder cannot be used as asked (not empty, not verifiable, settings differ)."""


def checkpoint_names(steps: int) -> tuple[str, str, str]:
    """File names of the checkpoint at ``steps`` timesteps: model, statistics, state."""
    return (
        f"rl_model_{steps}_steps.zip",
        f"rl_model_vecnormalize_{steps}_steps.pkl",
        f"rl_model_state_{steps}_steps.json",
    )


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: its timesteps and its three files."""

    steps: int
    model: Path
    stats: Path
    state: Path


# --- the run folder -------------------------------------------------------------------


def prepare_run_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an unusable ``out`` before anything is written.

    A new run needs an empty (or missing) directory; ``overwrite`` accepts one that holds
    an earlier run (only lrgym's run files), which :func:`clear_run_dir` then removes.
    """
    from lrgym.validate import writable_dir

    writable_dir("--out", out, RunFolderError)
    if resume or not out.is_dir():
        return
    entries = sorted(p.name for p in out.iterdir() if not is_temp_name(p.name))
    if not entries:
        return
    foreign = [name for name in entries if name not in RUN_ENTRIES]
    if overwrite and not foreign:
        return
    if overwrite:
        raise RunFolderError(
            f"--out {out} holds files that are not an lrgym run ({', '.join(foreign[:5])}); "
            "--overwrite only replaces an earlier run: pass another --out"
        )
    raise RunFolderError(
        f"--out {out} is not empty ({', '.join(entries[:5])}{', …' * (len(entries) > 5)}): "
        f"pass --resume {out} to continue the run there, --overwrite to replace it, or an "
        "empty --out"
    )


def clear_run_dir(out: Path) -> None:
    """Remove an earlier run's files from ``out`` (those in :data:`RUN_ENTRIES` only)."""
    for name in RUN_ENTRIES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def remove_temp_files(out: Path) -> None:
    """Remove temporary files an interrupted run left behind (its ``.*.tmp*`` files)."""
    for folder in (out, out / CHECKPOINTS, out / BEST):
        remove_stale_temp_files(folder)


def check_resume_config(saved: TrainConfig, new: TrainConfig) -> None:
    """Refuse a resume whose settings differ from the run's (beyond its length and name).

    A resumed run must continue the same training: only ``total_timesteps`` (to train
    longer), ``name``, ``eval_every`` and ``checkpoint_every`` may change.
    """
    free = {"total_timesteps", "name", "eval_every", "checkpoint_every", "out"}
    old, now = saved.to_dict(), new.to_dict()
    changed = [k for k in old if k not in free and old[k] != now.get(k)]
    if changed:
        details = "; ".join(f"{k}: {old[k]!r} in the run, {now.get(k)!r} now" for k in changed)
        raise RunFolderError(
            f"--resume continues a run with its own settings, but {details}. Drop those "
            "flags, or start a new run with another --out"
        )


# --- verified loading -----------------------------------------------------------------


def find_checkpoint(out: Path) -> Checkpoint | None:
    """The newest checkpoint in ``out/checkpoints`` whose files match the manifest.

    Newer checkpoints that do not verify (damaged, changed, or written without a
    manifest) are skipped with a warning naming the reason; ``None`` if there are none
    at all.

    Raises:
        RunFolderError: checkpoints exist but none verifies.
    """
    folder = out / CHECKPOINTS
    found = sorted(
        (
            int(m.group(1))
            for p in folder.glob("rl_model_*_steps.zip")
            if (m := _MODEL.match(p.name))
        ),
        reverse=True,
    )
    problems = []
    for steps in found:
        names = checkpoint_names(steps)
        try:
            manifest.verify(folder, names)
        except manifest.ManifestError as exc:
            problems.append(f"checkpoint {steps}: {exc}")
            continue
        if problems:
            warnings.warn(
                f"skipped {len(problems)} newer checkpoint(s) that do not verify "
                f"({problems[0]}); resuming from {steps} timesteps",
                stacklevel=2,
            )
        return Checkpoint(steps, *(folder / n for n in names))
    if problems:
        raise RunFolderError(
            f"no checkpoint in {folder} verifies, so none is loaded ({problems[0]}); "
            "start a new run (--overwrite) or restore the run folder from a copy"
        )
    return None


def check_best(best: Path) -> bool:
    """True if ``best/`` holds a verifying selected model; an unverifiable one is removed.

    A kill while the best model was being replaced leaves it unverifiable: model
    selection then restarts from the resumed run's validation scores (with a warning).
    """
    from lrgym.agent import SB3_MODEL, VECNORMALIZE

    if not best.exists():
        return False
    try:
        manifest.verify(best, (SB3_MODEL, VECNORMALIZE, "score.json"))
    except manifest.ManifestError as exc:
        warnings.warn(f"{best} is not used and was removed: {exc}", stacklevel=2)
        shutil.rmtree(best)
        return False
    return True


# --- what SB3 does not checkpoint ---------------------------------------------------


class ResumableMonitor(Monitor):
    """SB3's ``Monitor`` that can report and restore its environment's resume state.

    The wrapped environment (a :class:`~lrgym.agents.meta_env.MetaTaskEnv`, possibly
    behind observation wrappers) records its sampler state at each reset and the actions
    of the episode in progress; :meth:`restore_resume_state` puts the sampler back and
    replays that episode through every wrapper, which re-trains the run to exactly where
    it was (runs are deterministic in their seed and actions).
    """

    def resume_state(self) -> dict[str, Any]:
        return self.unwrapped.resume_state()

    def restore_resume_state(self, state: dict[str, Any]) -> None:
        env = self.unwrapped
        env.set_sampler_state(state["rng"])
        if state.get("actions") is None:  # no episode had started
            return
        self.reset(options=state.get("options"))
        for action in state["actions"]:
            *_, terminated, truncated, _ = self.step(np.asarray(action, dtype=np.float32))
            if terminated or truncated:
                raise RunFolderError("checkpoint state replays past its episode's end")


def capture_state(
    model, env: VecNormalize, extra: dict[str, Any], envs: bool = True
) -> dict[str, Any]:
    """Everything a checkpoint needs beyond SB3's zip and ``VecNormalize``'s pickle.

    ``envs=False`` (environments that cannot replay, e.g. batched runs) records no
    environment state: a resume then starts fresh episodes (``"envs": None``).
    """
    np_state = np.random.get_state()
    return {
        "format": STATE_FORMAT,
        "num_timesteps": int(model.num_timesteps),
        "torch_rng": torch.get_rng_state().tolist(),
        "numpy_rng": [np_state[0], np_state[1].tolist(), *map(_plain, np_state[2:])],
        "python_rng": _plain(random.getstate()),
        "returns": env.returns.tolist(),
        "envs": env.venv.env_method("resume_state") if envs else None,
        **extra,
    }


def restore_state(model, env: VecNormalize, state: dict[str, Any]) -> None:
    """Put back what :func:`capture_state` recorded (after ``PPO.load``)."""
    if state.get("format") != STATE_FORMAT or state.get("num_timesteps") != model.num_timesteps:
        raise RunFolderError("checkpoint state does not belong to its model; it is not used")
    envs = state["envs"]
    if envs is not None:
        if len(envs) != env.num_envs:
            raise RunFolderError(
                f"the checkpoint has {len(envs)} environment(s), the run {env.num_envs}"
            )
        for i, env_state in enumerate(envs):
            env.venv.env_method("restore_resume_state", env_state, indices=[i])
        env.returns = np.asarray(state["returns"], dtype=np.float64)
    name, keys, *rest = state["numpy_rng"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    random.setstate(_tuples(state["python_rng"]))
    torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class CheckpointSaver(BaseCallback):
    """Save a verified checkpoint at rollout starts every ``every`` timesteps and at the end.

    Args:
        folder: ``OUT/checkpoints``.
        every: Timesteps between checkpoints.
        extra: Called at each save; returns more JSON-able state to record (e.g. when
            validation runs next).
        envs: Record the environments' replayable state (see :func:`capture_state`).
    """

    def __init__(self, folder: Path, every: int, extra, envs: bool = True) -> None:
        super().__init__()
        self.folder = folder
        self.every = every
        self.extra = extra
        self.envs = envs
        self._last = None

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_rollout_start(self) -> None:
        if self.num_timesteps - self._last >= self.every:
            self.save()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if self.num_timesteps != self._last:
            self.save()

    def save(self) -> None:
        steps = self.num_timesteps
        model_name, stats_name, state_name = checkpoint_names(steps)
        self.folder.mkdir(parents=True, exist_ok=True)
        norm = self.model.get_vec_normalize_env()
        state = capture_state(self.model, norm, self.extra(), self.envs)
        with atomic_path(self.folder / model_name) as tmp:
            self.model.save(tmp)
        with atomic_path(self.folder / stats_name) as tmp:
            norm.save(tmp)
        write_text_atomic(self.folder / state_name, json.dumps(state))
        manifest.record(self.folder, (model_name, stats_name, state_name))
        self._last = steps


def load_state_file(checkpoint: Checkpoint) -> dict[str, Any]:
    """The (verified) state JSON of ``checkpoint``."""
    return json.loads(checkpoint.state.read_text(encoding="utf-8"))


__all__ = [
    "BEST",
    "CHECKPOINTS",
    "CONFIG",
    "Checkpoint",
    "CheckpointSaver",
    "ResumableMonitor",
    "RunFolderError",
    "capture_state",
    "check_best",
    "check_resume_config",
    "clear_run_dir",
    "find_checkpoint",
    "prepare_run_dir",
    "restore_state",
]
