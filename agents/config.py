"""Typed, validated configuration of `lrgym train` (YAML file and/or flags)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lrgym.core.actions import LogLRAction
from lrgym.core.hyperparams import LR, HyperParamSet
from lrgym.core.signals import feature_indices
from lrgym.io import validate as check
from lrgym.io.validate import MAX_INITIAL_LR

MAX_SEED = 2**32 - 1
"""Largest seed (NumPy's legacy seeding, which SB3 uses, takes 32-bit seeds)."""

MAX_ENVS = 1024


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and what is allowed."""


@dataclass
class PPOConfig:
    """stable-baselines3 PPO hyperparameters (see ``stable_baselines3.PPO``)."""

    learning_rate: float = 3e-4
    n_steps: int = 16  # the shipped agent's recipe (a rollout of 16 x 72 = 1,152)
    batch_size: int = 64
    n_epochs: int = 10
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.005  # the shipped agent's recipe
    net_arch: list[int] = field(default_factory=lambda: [64, 64])


SHIPPED_ACTION: dict[str, Any] = {
    "base": "cosine",
    "base_floor": 0.01,
    "early_log2_step": 3.0,
    "early_decisions": 3,
    "guard": True,
}
"""The shipped recipe's action map (agents/recipes/broad.yaml), ``lrgym train``'s default."""

MAX_BATCHED = 4096
"""Most runs per task in one batched worker."""


@dataclass
class TrainConfig:
    """Everything `lrgym train` needs.

    The defaults are the shipped agent's recipe (agents/recipes/broad.yaml: batched runs,
    mixed validation cadences, the action map v2 with the harm guard) scaled to 30k
    decisions on the nine named meta-train tasks, a few minutes on 2 cores.

    Attributes:
        name: Agent name, recorded in its card.
        tasks: Meta-train task ids or ``"meta-train"``; held-out tasks are refused.
        total_timesteps: Environment steps (decisions) of meta-training.
        n_envs: Parallel environments (one subprocess each); 0 means one per CPU core.
            Part of the recipe: a rollout is ``ppo.n_steps × n_envs`` timesteps, so the
            default 2 (the shipped agent's) gives the same agent on any machine.
        decision_interval: Override every task's optimizer steps per decision.
        episode_steps: Override every task's optimizer steps per episode.
        seed: Seeds PPO, the task/seed/LR sampler and the environments.
        out: Output directory of the agent (and its checkpoints and logs).
        checkpoint_every: Save a resumable checkpoint every this many timesteps (the
            first comes a minute or so into a default run, so Ctrl-C loses little).
        eval_every: Score the validation slice every this many timesteps (model selection).
        val_lrs: Initial LRs of the validation slice's episodes (each task's default LR
            is always added).
        default_lr_share: Share of training episodes that start at the task's default LR
            (the rest start log-uniform over 1e-5..1e-1).
        drop_features: Observation features or groups (``lrgym.core.signals.FEATURE_GROUPS``)
            the agent does not see: they are zeroed in training and in the exported
            policy. For feature ablations.
        hparams: Hyperparameters the agent controls, one action dimension each, ``"lr"``
            first: ``["lr"]`` (default), ``["lr", "momentum", "weight_decay"]`` for torch
            tasks or ``["lr", "max_depth", "subsample"]`` for XGBoost tasks (see
            :data:`lrgym.core.hyperparams.HYPERPARAMS`). Every task must accept them.
        val_every: Validation cadences, one drawn per training episode: the agent sees
            a fresh validation at every n-th decision and the latest one in between (0:
            never), so that it works with however often its user validates. The
            default ``[1, 2, 4, 0]`` is the shipped recipe's; ``[1]`` (always fresh) is the
            environment's default. The validation slice cycles through them.
        batched: Runs per task in each worker, trained as one stacked computation
            (:class:`lrgym.vector.BatchedLRControlEnv`), 8 by default (the shipped
            recipe's); 0 keeps one run per worker
            (:class:`~lrgym.agents.meta_env.MetaTaskEnv`). Tasks that cannot be batched
            run their K runs one after another. The batched runs equal the per-run ones
            within float tolerance, but a resumed batched run does not replay the
            interrupted one exactly.
        batched_for: Runs per task for the tasks some names select (task ids, groups
            such as ``procedural-v2`` or the ``meta-train`` split), overriding ``batched``
            for them: ``{"meta-train": 24}`` gives the named tasks three times the
            experience of the others at ``batched: 8``. The first name that selects a
            task sets its runs. Needs ``batched``.
        compile: With ``batched``, compile each worker's stacked steps with
            ``torch.compile`` (about 10-30 s per task and worker at start, then faster
            steps; needs a C++ compiler, else a warning and the uncompiled path). It
            changes speed, not the run (within float tolerance). Empty (the default)
            compiles where a compiler is present and the run gives each task enough
            decisions to pay the compiling back
            (:func:`lrgym.vector.compile_policy.compile_pays_back`).
        init_from: An agent directory to continue training from (its training state,
            ``training.safetensors`` + ``training.json``, verified against its manifest;
            PPO keeps the agent's own settings, seeded by ``seed``) instead of a fresh PPO.
        backend: Where the environments run: ``"local"`` (worker processes here) or
            ``"ray"`` (Ray actors on a cluster, :mod:`lrgym.agents.ray_vec_env`; needs
            ``pip install "lrgym[ray]"``). Same seed and ``n_envs``, same agent.
        address: Ray cluster address (``HEAD:6379``) for ``backend: ray``; default
            ``RAY_ADDRESS``, else a new local Ray instance.
        cpus_per_env: CPUs each Ray environment actor reserves (``backend: ray``).
        gpus_per_env: GPUs each Ray environment actor reserves (``backend: ray``; Ray sets
            ``CUDA_VISIBLE_DEVICES`` for it).
        action: How an action moves the LR (:class:`~lrgym.core.actions.LogLRAction`'s
            fields: ``max_log2_step``, ``early_log2_step``, ``early_decisions``, ``base``,
            ``base_floor``, ``guard``, ``val_anneal``, ``slow_fall``, ``val_progress``,
            ``min_lr``, ``max_lr``). The default is the shipped
            recipe's (:data:`SHIPPED_ACTION`: a cosine base to 1%, an 8x range in the first
            3 decisions, the harm guard); ``{}`` is :class:`~lrgym.core.actions.LogLRAction`'s
            own default (one octave per decision, constant base, no guard). With
            ``init_from`` and no ``action`` given, the agent's own action map. Recorded in
            the card, so the deployed scheduler acts exactly as in training.
        ppo: PPO hyperparameters.
    """

    name: str = "my-agent"
    tasks: list[str] = field(default_factory=lambda: ["meta-train"])
    total_timesteps: int = 30_000
    n_envs: int = 2
    decision_interval: int | None = None
    episode_steps: int | None = None
    seed: int = 0
    out: str = "runs/agent"
    checkpoint_every: int = 2_000
    eval_every: int = 6_000
    val_lrs: list[float] = field(default_factory=lambda: [1e-4, 1e-3, 1e-2])
    default_lr_share: float = 0.0
    drop_features: list[str] = field(default_factory=list)
    hparams: list[str] = field(default_factory=lambda: [LR])
    val_every: list[int] = field(default_factory=lambda: [1, 2, 4, 0])
    batched: int = 8
    batched_for: dict[str, int] = field(default_factory=dict)
    compile: bool | None = None
    init_from: str | None = None
    backend: str = "local"
    address: str | None = None
    cpus_per_env: float = 1.0
    gpus_per_env: float = 0.0
    action: dict[str, Any] = field(default_factory=lambda: dict(SHIPPED_ACTION))
    ppo: PPOConfig = field(default_factory=PPOConfig)

    @property
    def action_map(self) -> LogLRAction:
        """The action mapping ``action`` describes."""
        return LogLRAction(**self.action)

    def __post_init__(self) -> None:
        # Every value is checked and put in its canonical type here, so a bad setting is
        # refused (naming its key) before any file is written or any worker starts.
        if isinstance(self.ppo, dict):
            self.ppo = _build(PPOConfig, self.ppo, "ppo.")
        elif not isinstance(self.ppo, PPOConfig):
            raise ConfigError(f"ppo must be a mapping of PPO settings, got {self.ppo!r}")
        _check_ppo(self.ppo)
        E = ConfigError
        self.name = check.text("name", self.name, E)
        self.out = check.text(
            "out", os.fspath(self.out) if isinstance(self.out, os.PathLike) else self.out, E
        )
        self.tasks = check.text_list("tasks", self.tasks, E, allow_empty=False)
        self.total_timesteps = check.whole_number(
            "total_timesteps", self.total_timesteps, 1, error=E
        )
        self.n_envs = check.whole_number("n_envs", self.n_envs, 0, MAX_ENVS, error=E)
        self.batched = check.whole_number("batched", self.batched, 0, MAX_BATCHED, error=E)
        if not isinstance(self.batched_for, dict):
            raise ConfigError(
                f"batched_for must map task names to runs per task, got {self.batched_for!r}"
            )
        if self.batched_for and not self.batched:
            raise ConfigError("batched_for needs batched runs: set batched (--batched K) too")
        self.batched_for = {
            check.text("batched_for key", name, E): check.whole_number(
                f"batched_for[{name!r}]", k, 1, MAX_BATCHED, error=E
            )
            for name, k in self.batched_for.items()
        }
        if self.compile is not None and not isinstance(self.compile, bool):
            raise ConfigError(f"compile must be true, false or empty, got {self.compile!r}")
        if self.compile and not self.batched:
            raise ConfigError("compile needs batched runs: pass --batched K (batched: K) too")
        if isinstance(self.val_every, int) and not isinstance(self.val_every, bool):
            self.val_every = [self.val_every]
        if not isinstance(self.val_every, list | tuple) or not self.val_every:
            raise ConfigError(
                f"val_every must be a list of validation cadences (0: never), "
                f"got {self.val_every!r}"
            )
        self.val_every = [
            check.whole_number(f"val_every[{i}]", n, 0, error=E)
            for i, n in enumerate(self.val_every)
        ]
        if self.init_from is not None:
            self.init_from = check.text("init_from", self.init_from, E)
        self._check_placement()
        for key in ("decision_interval", "episode_steps"):
            if getattr(self, key) is not None:
                setattr(self, key, check.whole_number(key, getattr(self, key), 1, error=E))
        self.seed = check.whole_number("seed", self.seed, 0, MAX_SEED, error=E)
        self.checkpoint_every = check.whole_number(
            "checkpoint_every", self.checkpoint_every, 1, error=E
        )
        self.eval_every = check.whole_number("eval_every", self.eval_every, 1, error=E)
        if isinstance(self.val_lrs, int | float | str) and not isinstance(self.val_lrs, bool):
            self.val_lrs = [self.val_lrs]
        if not isinstance(self.val_lrs, list | tuple) or not self.val_lrs:
            raise ConfigError(f"val_lrs must be a list of initial LRs, got {self.val_lrs!r}")
        self.val_lrs = [
            check.real_number(f"val_lrs[{i}]", x, above=0, maximum=MAX_INITIAL_LR, error=E)
            for i, x in enumerate(self.val_lrs)
        ]
        self.default_lr_share = check.real_number(
            "default_lr_share", self.default_lr_share, 0, 1, error=E
        )
        self.drop_features = check.text_list("drop_features", self.drop_features, E)
        self.hparams = check.text_list("hparams", self.hparams, E, allow_empty=False)
        self._check_action()
        if self.n_envs == 0:
            self.n_envs = os.cpu_count() or 1
        envs = self.n_envs * max(self.batched, 1)  # at least: one task per batched worker
        if self.ppo.n_steps * envs < 2:
            raise ConfigError(
                f"ppo.n_steps × n_envs must be at least 2 (PPO normalises advantages over "
                f"the rollout), got {self.ppo.n_steps} × {envs}; raise ppo.n_steps"
            )
        if self.ppo.batch_size > self.ppo.n_steps * envs:
            raise ConfigError(
                f"ppo.batch_size ({self.ppo.batch_size}) exceeds the rollout size "
                f"ppo.n_steps × n_envs = {self.ppo.n_steps * envs}; lower it"
            )
        try:
            feature_indices(self.drop_features)
        except ValueError as exc:
            raise ConfigError(f"drop_features: {exc}") from None
        try:
            HyperParamSet(self.hparams)
        except ValueError as exc:
            raise ConfigError(f"hparams: {exc}") from None

    def _check_action(self) -> None:
        """``action`` is a mapping of :class:`~lrgym.core.actions.LogLRAction` fields."""
        if not isinstance(self.action, dict):
            raise ConfigError(f"action must be a mapping of action settings, got {self.action!r}")
        known = {f.name for f in dataclasses.fields(LogLRAction)}
        unknown = sorted(set(self.action) - known)
        if unknown:
            raise ConfigError(f"unknown action setting(s) {unknown}; known: {sorted(known)}")
        try:
            LogLRAction(**self.action)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def _check_placement(self) -> None:
        """Check where the environments run (``backend`` and the Ray settings)."""
        from lrgym.backends.ray_backend import check_backend

        E = ConfigError
        self.backend = check_backend(check.text("backend", self.backend, E), None, E)
        if self.address is not None:
            self.address = check.text("address", self.address, E)
        self.cpus_per_env = check.real_number("cpus_per_env", self.cpus_per_env, above=0, error=E)
        self.gpus_per_env = check.real_number("gpus_per_env", self.gpus_per_env, 0, error=E)
        if self.backend == "local":
            defaults = {"address": None, "cpus_per_env": 1.0, "gpus_per_env": 0.0}
            ray_only = [key for key, value in defaults.items() if getattr(self, key) != value]
            if ray_only:
                raise ConfigError(
                    f"Ray settings without backend: ray ({', '.join(ray_only)}); pass "
                    "--backend ray (backend: ray) with them, or drop them"
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for YAML and the agent card)."""
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write as YAML (atomically)."""
        from lrgym.io._atomic import write_text_atomic

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


def _check_ppo(ppo: PPOConfig) -> None:
    """Check and canonicalise the PPO settings in place (keys named ``ppo.<name>``)."""
    E = ConfigError
    ppo.learning_rate = check.real_number("ppo.learning_rate", ppo.learning_rate, above=0, error=E)
    ppo.n_steps = check.whole_number("ppo.n_steps", ppo.n_steps, 1, error=E)
    # SB3 normalises advantages per minibatch: one sample has no spread
    ppo.batch_size = check.whole_number("ppo.batch_size", ppo.batch_size, 2, error=E)
    ppo.n_epochs = check.whole_number("ppo.n_epochs", ppo.n_epochs, 1, error=E)
    ppo.gamma = check.real_number("ppo.gamma", ppo.gamma, maximum=1, above=0, error=E)
    ppo.gae_lambda = check.real_number(
        "ppo.gae_lambda", ppo.gae_lambda, maximum=1, above=0, error=E
    )
    ppo.clip_range = check.real_number("ppo.clip_range", ppo.clip_range, above=0, error=E)
    ppo.ent_coef = check.real_number("ppo.ent_coef", ppo.ent_coef, error=E)
    arch = ppo.net_arch
    if isinstance(arch, int | str) and not isinstance(arch, bool):
        arch = [arch]
    if not isinstance(arch, list | tuple) or not arch:
        raise ConfigError(f"ppo.net_arch must be a list of layer widths, got {ppo.net_arch!r}")
    ppo.net_arch = [
        check.whole_number(f"ppo.net_arch[{i}]", w, 1, 4096, error=E) for i, w in enumerate(arch)
    ]


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file (optional) with flag overrides on top.

    ``overrides`` whose value is None are ignored; ``ppo`` overrides merge key by key.
    """
    values: dict[str, Any] = {}
    if path is not None:
        from lrgym.io.file_checks import read_text

        try:  # a regular, size-capped file: a FIFO here must not hang (lrgym.io.file_checks)
            loaded = yaml.safe_load(read_text(path, "config file", error=ConfigError)) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a directory; pass a YAML file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys to values")
        values.update(loaded)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "ppo":
            earlier = values.get("ppo") or {}
            for given in (earlier, value):
                if not isinstance(given, dict):
                    raise ConfigError(f"ppo must be a mapping of PPO settings, got {given!r}")
            values["ppo"] = {**earlier, **value}
        else:
            values[key] = value
    config = _build(TrainConfig, values)
    if config.init_from is not None and "action" not in values:  # validated: a path's text
        action = _agent_action(config.init_from)
        if action is not None:
            config = dataclasses.replace(config, action=action)
    return config


def _agent_action(agent_dir: str) -> dict[str, Any] | None:
    """The action map of the agent ``agent_dir`` continues from (None where its card cannot
    be read: the init_from check then names what is wrong with the folder)."""
    from lrgym.deploy.agent import AgentLoadError, load_card

    try:
        return dict(load_card(agent_dir).action)
    except (AgentLoadError, OSError):
        return None
