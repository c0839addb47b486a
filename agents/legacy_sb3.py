"""The one place lrgym unpickles: converting the SB3 pickles of earlier lrgym versions.

Agent and run folders written before the training-state format
(:mod:`lrgym.agents.training_state`) hold SB3 pickles: ``ppo.zip`` and
``vecnormalize.pkl`` in an agent folder and in its ``best/``, and checkpoints
``checkpoints/rl_model_<N>_steps.zip`` + ``rl_model_vecnormalize_<N>_steps.pkl`` +
``rl_model_state_<N>_steps.json``. lrgym no longer loads them anywhere else.
:func:`convert_training_files` (``lrgym convert-agent DIR``, asked for explicitly) loads
each group **with SB3's own loaders, which run whatever code the pickles hold: convert
only folders you trust**, after checking them against the folder's manifest. It writes
the same state as a training state, reads that back through the pickle-free path, checks
that the rebuilt model equals the loaded one (every network and optimizer tensor, the
normalisation statistics, the counters and the last observation, and the same
deterministic actions on seeded observations), and only then removes the pickles.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from lrgym.agents.checkpoints import BEST, CHECKPOINTS, checkpoint_stem
from lrgym.agents.ppo_state import build_model, build_normalize, capture
from lrgym.agents.sb3_files import spaces_only
from lrgym.agents.training_state import (
    TrainingState,
    TrainingStateError,
    read_training_state,
    state_files,
    write_state,
)
from lrgym.deploy.agent import LEGACY_SB3_FILES, TRAINING, AgentLoadError
from lrgym.deploy.agent_convert import check_observations, legacy_training_files
from lrgym.io import manifest

_OLD_CHECKPOINT = re.compile(r"^rl_model_(\d+)_steps\.zip$")


@dataclass(frozen=True)
class _Group:
    """Old files that become one training state."""

    folder: Path
    model: str
    stats: str
    state: str | None  # a checkpoint's JSON of RNG and replay state
    stem: str


@dataclass(frozen=True)
class TrainingConversion:
    """What :func:`convert_training_files` did.

    Attributes:
        path: The converted folder.
        converted: The training states written, as paths relative to ``path`` without
            suffix (e.g. ``training``, ``best/training``, ``checkpoints/checkpoint_64_steps``).
        observations: Seeded observations each conversion's actions were compared on.
    """

    path: Path
    converted: tuple[str, ...]
    observations: int


def _groups(root: Path) -> list[_Group]:
    groups = [
        _Group(folder, *LEGACY_SB3_FILES, None, TRAINING)
        for folder in (root, root / BEST)
        if any((folder / name).is_file() for name in LEGACY_SB3_FILES)
        and not (folder / f"{TRAINING}.json").is_file()  # ppo.zip beside it: SB3's copy
    ]
    for path in sorted((root / CHECKPOINTS).glob("rl_model_*_steps.zip")):
        if m := _OLD_CHECKPOINT.match(path.name):
            steps = int(m.group(1))
            groups.append(
                _Group(
                    path.parent,
                    path.name,
                    f"rl_model_vecnormalize_{steps}_steps.pkl",
                    f"rl_model_state_{steps}_steps.json",
                    checkpoint_stem(steps),
                )
            )
    return groups


def _old_rng(state: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A checkpoint JSON's RNG states (earlier format) as :func:`global_rng` gives them."""
    name, keys, pos, has_gauss, cached = state["numpy_rng"]
    return (
        {
            "rng.torch": np.asarray(state["torch_rng"], dtype=np.uint8),
            "rng.numpy": np.asarray(keys, dtype=np.uint32),
        },
        {
            "numpy": {
                "name": str(name),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached),
            },
            "python": state["python_rng"],
        },
    )


def _load_old(group: _Group) -> tuple[PPO, VecNormalize, TrainingState]:
    """Unpickle a group (this runs its code) and capture it as a training state."""
    names = [group.model, group.stats] + ([group.state] if group.state else [])
    try:
        manifest.verify(group.folder, names)
    except manifest.ManifestError as exc:
        raise AgentLoadError(f"not converted: {exc}") from None
    model = PPO.load(group.folder / group.model, device="cpu")
    n_obs, n_actions = model.observation_space.shape[0], model.action_space.shape[0]
    norm = VecNormalize.load(str(group.folder / group.stats), spaces_only(n_obs, n_actions))
    returns, rng, run = None, None, None
    if group.state:
        old = json.loads((group.folder / group.state).read_text(encoding="utf-8"))
        if old.get("num_timesteps") != model.num_timesteps:
            raise AgentLoadError(
                f"{group.folder / group.state} does not belong to {group.model}; not converted"
            )
        returns = np.asarray(old["returns"], dtype=np.float64)
        rng = _old_rng(old)
        known = {"format", "num_timesteps", "torch_rng", "numpy_rng", "python_rng", "returns"}
        run = {k: v for k, v in old.items() if k not in known}
    return model, norm, capture(model, norm, returns, rng, run)


def _check_same(old: PPO, old_norm: VecNormalize, group: _Group) -> int:
    """Read the written state back (no pickle), rebuild it and compare with ``old``."""
    state = read_training_state(group.folder, group.stem)
    n_obs, n_actions = old.observation_space.shape[0], old.action_space.shape[0]
    venv = spaces_only(n_obs, n_actions, n_envs=old.n_envs)
    norm = build_normalize(state, venv, training=False)
    new = build_model(state, norm, resume=True, device="cpu")
    problems = []
    a, b = old.get_parameters(), new.get_parameters()
    for key, value in a["policy"].items():
        if not torch.equal(value, b["policy"][key]):
            problems.append(f"policy {key}")
    sa, sb = a["policy.optimizer"], b["policy.optimizer"]
    for index, values in sa["state"].items():
        for key, value in values.items():
            if not torch.equal(value, sb["state"][index][key]):
                problems.append(f"optimizer {index}.{key}")
    if json.loads(json.dumps(sa["param_groups"])) != sb["param_groups"]:
        problems.append("optimizer param_groups")
    for attr in ("mean", "var", "count"):
        for rms in ("obs_rms", "ret_rms"):
            if not np.array_equal(
                getattr(getattr(old_norm, rms), attr), getattr(getattr(norm, rms), attr)
            ):
                problems.append(f"{rms}.{attr}")
    if new.num_timesteps != old.num_timesteps:
        problems.append("num_timesteps")
    if old._last_obs is not None and not np.array_equal(old._last_obs, new._last_obs):
        problems.append("last observation")
    obs = check_observations(n_obs)
    old_norm.training = False
    want, _ = old.predict(old_norm.normalize_obs(obs), deterministic=True)
    got, _ = new.predict(norm.normalize_obs(obs), deterministic=True)
    if not np.array_equal(want, got):
        problems.append("deterministic actions")
    if problems:
        raise AgentLoadError(
            f"{group.folder / group.stem}: the converted state differs from the pickles in "
            f"{', '.join(problems[:5])}; the pickles were kept"
        )
    return len(obs)


def convert_training_files(
    directory: str | Path, out: str | Path | None = None
) -> TrainingConversion:
    """Convert the SB3 pickles of an agent or run folder into training states.

    **This loads the pickles with SB3, which runs code they hold: convert only folders
    you trust.** Each group is checked against the folder's manifest first, converted,
    read back and compared (see the module docstring); its pickles are then removed and
    the manifest lists the new files instead.

    Args:
        directory: The agent or run folder.
        out: Write the converted folder here (an empty or new directory; the whole folder
            is copied there first and the source is left as it is); default: in place.

    Raises:
        AgentLoadError: nothing to convert, a non-empty ``out``, files that do not match
            their manifest, or a conversion that does not give the same model.
    """
    src = Path(directory)
    if not legacy_training_files(src):
        raise AgentLoadError(
            f"{src} holds no SB3 pickles ({', '.join(LEGACY_SB3_FILES)}, "
            "checkpoints/rl_model_*.zip); nothing to convert"
        )
    root = src
    if out is not None and Path(out).resolve() != src.resolve():
        root = Path(out)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise AgentLoadError(f"--out {root} exists and is not an empty directory")
        shutil.copytree(src, root, dirs_exist_ok=True)
    converted, observations = [], 0
    for group in _groups(root):
        old, old_norm, state = _load_old(group)
        names = state_files(group.stem)
        try:
            write_state(group.folder, group.stem, state)
            manifest.record(group.folder, names)
            observations = _check_same(old, old_norm, group)
        except (TrainingStateError, manifest.ManifestError, KeyError, ValueError) as exc:
            for name in names:  # the pickles stay; the failed conversion goes
                (group.folder / name).unlink(missing_ok=True)
            manifest.record(group.folder, (), forget=names)
            if isinstance(exc, AgentLoadError):
                raise
            raise AgentLoadError(f"{group.folder / group.model} not converted: {exc}") from None
        old_names = [group.model, group.stats] + ([group.state] if group.state else [])
        for name in old_names:
            (group.folder / name).unlink()
        manifest.record(group.folder, names, forget=old_names)
        converted.append(str((group.folder / group.stem).relative_to(root)))
    return TrainingConversion(root, tuple(converted), observations)


__all__ = ["TrainingConversion", "convert_training_files"]
