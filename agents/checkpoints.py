"""Run folders of `lrgym train`: verified checkpoints and an exact resume.

A checkpoint is one training state (:mod:`lrgym.agents.training_state`) in
``OUT/checkpoints``, written at the start of a rollout (after the previous PPO update)
every ``checkpoint_every`` timesteps and when training ends:

* ``checkpoint_<N>_steps.safetensors``: policy and value networks, Adam state,
  ``VecNormalize`` statistics and running returns, the last observation, the torch and
  NumPy RNG states;
* ``checkpoint_<N>_steps.json``: PPO's settings and counters, the Python RNG state, and
  under ``run`` each environment's sampler state and the actions of its episode in
  progress (replayed on resume, so the run continues mid-episode exactly) and when
  validation runs next.

Nothing in a run folder is a pickle: resuming reads numbers and JSON only. The folder's
``manifest.json`` (and ``OUT/best/manifest.json``) list the SHA-256 of each file
(:mod:`lrgym.io.manifest`) as an integrity check: a damaged newest checkpoint (e.g.
truncated by a kill) is skipped for the newest one that verifies. Run folders of earlier
lrgym versions (``rl_model_*.zip`` pickles) are refused with the command that converts
them once: ``lrgym convert-agent OUT``.

With this state a resumed run is identical to an uninterrupted one with the same
settings and seed, for one environment and for several (each worker replays its own
episode); only the TensorBoard curves and the Monitor's episode counters restart at the
resume. Batched runs (``batched > 0``) cannot replay an episode: their resume starts
fresh episodes from the restored RNG and policy, so it continues the run but not
identically.
"""

from __future__ import annotations

import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecNormalize

from lrgym.agents.config import ConfigError, TrainConfig
from lrgym.agents.ppo_state import restore_global_rng, save_training_state
from lrgym.agents.training_state import (
    TrainingState,
    TrainingStateError,
    read_training_state,
    state_files,
)
from lrgym.deploy.agent import CONVERT_COMMAND, LEGACY_SB3_FILES, TRAINING
from lrgym.io import manifest
from lrgym.io._atomic import UnsafePathError, is_temp_name, refuse_links, remove_stale_temp_files

CHECKPOINTS = "checkpoints"
BEST = "best"
CONFIG = "config.yaml"
SCORE = "score.json"
_STEM = re.compile(r"^checkpoint_(\d+)_steps\.json$")
_LEGACY = "rl_model_*_steps.zip"

RUN_ENTRIES = frozenset(
    {
        CHECKPOINTS,
        BEST,
        CONFIG,
        "tb",
        "card.json",
        "policy.safetensors",
        *state_files(TRAINING),
        *LEGACY_SB3_FILES,  # an earlier lrgym's run, which --overwrite may replace
        manifest.MANIFEST,
    }
)
"""What `lrgym train` writes into its ``--out`` directory (``--overwrite`` removes these)."""

BEST_FILES = (*state_files(TRAINING), SCORE)
"""The selected model in ``best/``, listed in its manifest."""


class RunFolderError(ConfigError):
    """A run folder cannot be used as asked (not empty, not verifiable, settings differ)."""


def checkpoint_stem(steps: int) -> str:
    """The training-state stem of the checkpoint at ``steps`` timesteps."""
    return f"checkpoint_{steps}_steps"


def checkpoint_names(steps: int) -> tuple[str, str]:
    """File names of the checkpoint at ``steps`` timesteps: tensors, then JSON."""
    return state_files(checkpoint_stem(steps))


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: its timesteps, folder and training-state stem."""

    steps: int
    folder: Path
    stem: str

    def read(self) -> TrainingState:
        """The checkpoint's training state (verified against the manifest again)."""
        try:
            return read_training_state(self.folder, self.stem)
        except (manifest.ManifestError, TrainingStateError) as exc:
            raise RunFolderError(f"checkpoint {self.steps}: {exc}") from None


def legacy_error(folder: Path, what: str) -> RunFolderError:
    """The error for a folder in the pickle format of earlier lrgym versions."""
    return RunFolderError(
        f"{folder} holds {what} in the pickle format of earlier lrgym versions "
        f"({', '.join(LEGACY_SB3_FILES)}, rl_model_*.zip), which lrgym no longer loads "
        f"because loading a pickle can run code; convert the folder once with "
        f"`{CONVERT_COMMAND} {folder}` (it loads those pickles: only for folders you "
        "trust), then run the command again"
    )


# --- the run folder -------------------------------------------------------------------


def prepare_run_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an unusable ``out`` before anything is written.

    A new run needs an empty (or missing) directory; ``overwrite`` accepts one that holds
    an earlier run (only lrgym's run files), which :func:`clear_run_dir` then removes.
    A symbolic link among the run's files (or in its folders) is refused, so nothing is
    written or removed outside ``out``.
    """
    from lrgym.io.validate import writable_dir

    writable_dir("--out", out, RunFolderError)
    if out.is_dir():  # checkpoints, best/ and the agent's files are written in place
        try:
            refuse_links(out, *sorted(RUN_ENTRIES))
        except UnsafePathError as exc:
            raise RunFolderError(str(exc)) from None
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
        RunFolderError: checkpoints exist but none verifies, or the folder holds only
            checkpoints of the old pickle format (the message names the converter).
    """
    folder = out / CHECKPOINTS
    found = sorted(
        (
            int(m.group(1))
            for p in folder.glob("checkpoint_*_steps.json")
            if (m := _STEM.match(p.name))
        ),
        reverse=True,
    )
    if not found and any(folder.glob(_LEGACY)):
        raise legacy_error(out, "checkpoints")
    problems = []
    for steps in found:
        try:
            manifest.verify(folder, checkpoint_names(steps))
        except manifest.ManifestError as exc:
            problems.append(f"checkpoint {steps}: {exc}")
            continue
        if problems:
            warnings.warn(
                f"skipped {len(problems)} newer checkpoint(s) that do not verify "
                f"({problems[0]}); resuming from {steps} timesteps",
                stacklevel=2,
            )
        return Checkpoint(steps, folder, checkpoint_stem(steps))
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

    Raises:
        RunFolderError: ``best/`` is in the old pickle format (names the converter).
    """
    if not best.exists():
        return False
    if not (best / state_files(TRAINING)[1]).exists() and any(
        (best / name).exists() for name in LEGACY_SB3_FILES
    ):
        raise legacy_error(best.parent, "a selected model (best/)")
    try:
        manifest.verify(best, BEST_FILES)
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


def restore_run(model, env: VecNormalize, state: TrainingState) -> None:
    """Replay each environment's episode in progress, then restore the global RNGs.

    Call it on the model :func:`~lrgym.agents.ppo_state.build_model` rebuilt with
    ``resume=True``; a state with ``run["envs"] = None`` (batched runs) starts fresh
    episodes instead.
    """
    if state.num_timesteps != model.num_timesteps:
        raise RunFolderError(f"{state.source}: its counters do not belong to its model")
    envs = state.run.get("envs")
    if envs is not None:
        if not isinstance(envs, list) or len(envs) != env.num_envs:
            count = len(envs) if isinstance(envs, list) else envs
            raise RunFolderError(
                f"the checkpoint has {count} environment(s), the run {env.num_envs}"
            )
        for i, env_state in enumerate(envs):
            env.venv.env_method("restore_resume_state", env_state, indices=[i])
    try:
        restore_global_rng(state)
    except TrainingStateError as exc:
        raise RunFolderError(str(exc)) from None


class CheckpointSaver(BaseCallback):
    """Save a verified checkpoint at rollout starts every ``every`` timesteps and at the end.

    Args:
        folder: ``OUT/checkpoints``.
        every: Timesteps between checkpoints.
        extra: Called at each save; returns more JSON-able state to record (e.g. when
            validation runs next).
        envs: Record the environments' replayable state (environments that cannot
            replay, e.g. batched runs, record ``None``: a resume starts fresh episodes).
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
        """Write the checkpoint of this moment (atomically, then its manifest entries)."""
        steps = self.num_timesteps
        self.folder.mkdir(parents=True, exist_ok=True)
        norm = self.model.get_vec_normalize_env()
        envs = norm.venv.env_method("resume_state") if self.envs else None
        run: dict[str, Any] = {"envs": envs, **self.extra()}
        save_training_state(self.folder, checkpoint_stem(steps), self.model, norm, run=run)
        self._last = steps


__all__ = [
    "BEST",
    "BEST_FILES",
    "CHECKPOINTS",
    "CONFIG",
    "Checkpoint",
    "CheckpointSaver",
    "ResumableMonitor",
    "RunFolderError",
    "check_best",
    "check_resume_config",
    "checkpoint_names",
    "clear_run_dir",
    "find_checkpoint",
    "legacy_error",
    "prepare_run_dir",
    "restore_run",
]
