"""Meta-train a PPO agent across tasks (what `lrgym train` runs).

Plain SB3: a ``SubprocVecEnv`` of :class:`~lrgym.agents.meta_env.MetaTaskEnv` workers
(:mod:`lrgym.agents.workers`) behind ``VecNormalize``,
verified, exactly resumable checkpoints (:mod:`lrgym.agents.checkpoints`) and training
states that are data, not pickles (:mod:`lrgym.agents.training_state`), and model
selection on a fixed validation slice of the meta-train tasks
(:mod:`lrgym.agents.validation`).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from lrgym._version import __version__
from lrgym.agents.checkpoints import (
    BEST,
    BEST_FILES,
    CHECKPOINTS,
    CONFIG,
    SCORE,
    CheckpointSaver,
    RunFolderError,
    check_best,
    check_resume_config,
    clear_run_dir,
    find_checkpoint,
    prepare_run_dir,
    remove_temp_files,
    restore_run,
)
from lrgym.agents.config import ConfigError, TrainConfig, load_config
from lrgym.agents.ensemble import write_ensemble
from lrgym.agents.meta_env import VALIDATION_SEEDS
from lrgym.agents.ppo_state import build_model, build_normalize, save_training_state
from lrgym.agents.sb3_files import check_init_from, load_for_training, make_ppo, write_sb3_model
from lrgym.agents.train_report import TrainReporter, cli_command
from lrgym.agents.training_state import (
    TrainingState,
    TrainingStateError,
    read_training_state,
    state_files,
)
from lrgym.agents.validation import (
    ValidationCallback,
    validation_episodes,
    validation_table,
    validation_tasks,
)
from lrgym.agents.workers import make_vec_env, meta_env
from lrgym.core.hyperparams import HyperParamSet
from lrgym.core.registration import make_task, select_tasks
from lrgym.core.signals import OBS_LAYOUT_VERSION, feature_indices
from lrgym.deploy.agent import TRAINING, AgentCard, AgentLoadError, load_card
from lrgym.deploy.policy_weights import export_policy
from lrgym.io import manifest
from lrgym.io._atomic import atomic_path
from lrgym.io.file_checks import read_json
from lrgym.tasks import procedural


def meta_train_tasks(config: TrainConfig) -> list[str]:
    """The config's tasks, expanded; held-out and real tasks, and tasks that cannot take the
    config's ``hparams``, are refused."""
    tasks = select_tasks(config.tasks)
    validation = [t for t in tasks if procedural.is_validation_draw(t)]
    if validation:
        raise ConfigError(
            f"{', '.join(validation[:3])}{' ...' if len(validation) > 3 else ''}: drawn tasks "
            "of the procedural validation family (indices 1000-1999) are kept for model "
            "selection and never trained on; train on `procedural`, `procedural:N`, "
            "`procedural-v2` or `procedural-v2:N`"
        )
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
        info = make_task(task).info
        k = config.decision_interval or info.decision_interval
        steps = config.episode_steps or info.total_steps
        if k > steps:
            key = "decision_interval" if config.decision_interval else "episode_steps"
            raise ConfigError(
                f"{key}: {task} would decide every {k} steps in episodes of {steps} steps; "
                "decision_interval must be at most episode_steps"
            )
    return tasks


def latest_checkpoint(out: Path) -> tuple[Path, Path] | None:
    """The newest checkpoint's (tensors, JSON) files in ``out/checkpoints`` that match
    their manifest (see :func:`lrgym.agents.checkpoints.find_checkpoint`)."""
    found = find_checkpoint(Path(out))
    if found is None:
        return None
    tensors, meta = state_files(found.stem)
    return found.folder / tensors, found.folder / meta


def train(
    config: TrainConfig,
    resume: bool = False,
    progress_bar: bool = True,
    command: str = "",
    overwrite: bool = False,
    reporter: TrainReporter | None = None,
) -> Path:
    """Meta-train, select on the validation slice, export and write the agent directory.

    Everything is checked before anything is written: the settings against the tasks,
    the output directory, and on resume the checkpoint (its SHA-256 manifest) and the
    run's saved settings.

    Args:
        config: The validated configuration.
        resume: Continue from the newest checkpoint in ``config.out`` that verifies; the
            continuation is identical to an uninterrupted run.
        progress_bar: Show SB3's progress bar (when there is no ``reporter``).
        command: The command line to record in the card (default: this process's, as
            ``lrgym train ...`` when it is the CLI).
        overwrite: Replace an earlier run in ``config.out`` (a new run otherwise needs an
            empty or missing directory).
        reporter: Prints a header, progress and phase lines (`lrgym train`'s output).

    Returns:
        The agent directory (``config.out``), loadable with :func:`lrgym.load_agent`.

    Raises:
        ConfigError: a setting is invalid (the message names it), ``config.out`` is not
            usable as asked, or no checkpoint verifies (:class:`RunFolderError`).
    """
    members = [] if config.init_from is None or resume else _ensemble_members(config.init_from)
    if members:  # an ensemble trains further as its members, joined again
        return _train_ensemble(config, members, progress_bar, overwrite)
    tasks = meta_train_tasks(config)
    check_init_from(config)
    if config.backend == "ray":  # Ray installed and the cluster reachable, or a clear error
        from lrgym.backends.ray_backend import connect

        connect(config.address)
    out = Path(config.out)
    prepare_run_dir(out, resume, overwrite)
    state = None
    if resume:
        checkpoint = find_checkpoint(out)
        if checkpoint is None:  # before any file is written or worker process starts
            raise ConfigError(f"--resume: no checkpoint found in {out / CHECKPOINTS}")
        state = checkpoint.read()  # data only; a damaged state is refused here
        if (out / CONFIG).is_file():  # where and how fast the envs run does not change it
            saved = load_config(out / CONFIG)
            placement = ("backend", "address", "cpus_per_env", "gpus_per_env", "compile")
            saved = replace(saved, **{k: getattr(config, k) for k in placement})
            check_resume_config(saved, config)
    elif overwrite:
        clear_run_dir(out)
    threads = torch.get_num_threads()
    # The workers keep every core busy; a multi-threaded parent (PPO updates, validation
    # episodes) would oversubscribe them and slow everything down many times over.
    torch.set_num_threads(1)
    try:
        return _train(config, tasks, state, progress_bar, command, reporter)
    finally:
        torch.set_num_threads(threads)


def _train(
    config: TrainConfig,
    tasks: list[str],
    state: TrainingState | None,
    progress_bar: bool,
    command: str,
    reporter: TrainReporter | None = None,
) -> Path:
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    remove_temp_files(out)
    config.save(out / CONFIG)
    if state is not None:
        check_best(out / BEST)  # a best model whose write was interrupted is dropped
    started = time.perf_counter()
    venv = make_vec_env(tasks, config)
    try:
        model, env = _start(config, venv, state, str(out / "tb"))
    except BaseException:
        venv.close()  # no worker outlives a refused start
        raise
    if reporter is not None:
        reporter.start(config, tasks, model.num_timesteps, model.n_steps * model.n_envs)
    val_tasks = validation_tasks(tasks)
    val_env = meta_env(val_tasks, config, VALIDATION_SEEDS)
    episodes = validation_episodes(val_tasks, config)
    dropped = feature_indices(config.drop_features)
    validation = ValidationCallback(val_env, episodes, config.eval_every, out / BEST, dropped)
    if state is not None:
        validation._next = int(state.run.get("next_eval", validation._next))
    bar = reporter.callback(validation) if reporter is not None else None
    callbacks = CallbackList(
        [
            *([bar] if bar is not None else []),  # first: it sees validation coming
            CheckpointSaver(
                out / CHECKPOINTS,
                config.checkpoint_every,
                extra=lambda: {"next_eval": validation._next},
                envs=not config.batched,  # batched runs cannot replay an episode
            ),
            validation,
        ]
    )
    remaining = config.total_timesteps - model.num_timesteps
    if remaining > 0:
        model.learn(
            remaining,
            callback=callbacks,
            progress_bar=progress_bar and reporter is None,
            reset_num_timesteps=state is None,
            tb_log_name="ppo",
        )
    trained_steps = model.num_timesteps
    venv.close()

    if reporter is not None:
        reporter.phase(f"Trained {trained_steps:,} steps; exporting the best validated model …")
    best = out / BEST
    selected = trained_steps
    if (best / SCORE).exists():  # model selection: the best validation score wins
        try:
            manifest.verify(best, BEST_FILES)
            best_state = read_training_state(best, TRAINING)
            env = build_normalize(best_state, DummyVecEnv([lambda: val_env]), training=False)
            model = build_model(best_state, env, device="cpu")
        except (manifest.ManifestError, TrainingStateError) as exc:
            raise RunFolderError(f"the selected model is not loaded: {exc}") from None
        selected = read_json(best / SCORE, "score")["timesteps"]
        for name in state_files(TRAINING):  # the selected state, as it was saved
            with atomic_path(out / name) as tmp:
                shutil.copyfile(best / name, tmp)
        manifest.record(out, state_files(TRAINING))
    else:
        save_training_state(out, TRAINING, model, env)
    env.training = False
    policy = export_policy(model, env, dropped)
    policy.save(out)  # policy.safetensors, atomically; its structure goes in the card

    if reporter is not None:
        reporter.phase(f"Scoring the agent and a constant LR on {len(episodes)} episodes …")
    table = validation_table(policy, val_env, episodes)
    hparams = HyperParamSet(config.hparams)
    card = AgentCard(
        name=config.name,
        lrgym_version=__version__,
        obs_layout_version=OBS_LAYOUT_VERSION,
        features=hparams.features,
        action=dict(vars(val_env.unwrapped.current.action_map)),
        tasks=tasks,
        total_timesteps=int(trained_steps),
        selected_timesteps=int(selected),
        seed=config.seed,
        wall_seconds=round(time.perf_counter() - started, 1),
        command=command or cli_command(),
        config=config.to_dict(),
        evaluation={"validation slice (meta-train tasks, unseen seeds)": table},
        hparams=list(hparams.names),
        hparam_specs=hparams.specs(),
        policy=policy.spec(),
    )
    card.save(out)  # its presence marks a complete agent directory
    write_sb3_model(out)  # ppo.zip, for SB3 users (lrgym trains from the training state)
    val_env.close()
    return out


def _start(
    config: TrainConfig, venv: VecEnv, state: TrainingState | None, tensorboard_log: str
) -> tuple[Any, VecNormalize]:
    """The model and its ``VecNormalize`` on ``venv``: resumed from ``state`` (a checkpoint,
    read as data), continued from ``config.init_from``, or new."""
    if state is not None:
        try:
            env = build_normalize(state, venv)
            model = build_model(
                state,
                env,
                tensorboard_log=tensorboard_log,
                resume=True,
                rollout=state.run.get("envs") is not None,  # else fresh episodes
            )
        except TrainingStateError as exc:
            raise RunFolderError(str(exc)) from None
        restore_run(model, env, state)  # replays each env's episode, then the RNGs
        return model, env
    if config.init_from is not None:  # checked by check_init_from before anything ran
        return load_for_training(config.init_from, venv, tensorboard_log, config.seed)
    env = VecNormalize(venv, norm_obs=True, norm_reward=True, gamma=config.ppo.gamma)
    return make_ppo(env, config, tensorboard_log=tensorboard_log), env


def _ensemble_members(path: str) -> list[str]:
    """The members of the ensemble at ``path`` ([] for anything else: a plain agent, or a
    folder :func:`check_init_from` will refuse with its reason)."""
    try:
        return load_card(path).members
    except AgentLoadError:
        return []


def _train_ensemble(
    config: TrainConfig, members: list[str], progress_bar: bool, overwrite: bool
) -> Path:
    """Continue each member of the ensemble ``config.init_from`` with ``config`` (member
    i with seed ``config.seed + i``; its run in ``<out>.members/<member>``, resumable
    there with ``--resume``), then join the results as the ensemble ``config.out``."""
    out = Path(config.out)
    runs = out.with_name(f"{out.name}.members")
    if overwrite:
        shutil.rmtree(out, ignore_errors=True)
    elif out.exists():
        raise ConfigError(f"{out} already exists; choose a new --out or pass --overwrite")
    paths = [
        train(
            replace(
                config,
                init_from=str(Path(config.init_from) / member),
                out=str(runs / member),
                seed=config.seed + i,
            ),
            progress_bar=progress_bar,
            overwrite=overwrite,
        )
        for i, member in enumerate(members)
    ]
    return write_ensemble(out, paths, name=config.name)


__all__ = ["TrainConfig", "load_config", "train"]
