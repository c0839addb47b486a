"""`lrgym train`, `lrgym train-predictor` and `lrgym convert-agent`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lrgym.cli import (
    _fail,
    _folder,
    _help,
    _split_values,
    app,
    console,
)

TRAIN_DEFAULTS = {
    "tasks": "meta-train",
    "total_timesteps": "30000",
    "n_envs": "2",
    "decision_interval": "each task's",
    "episode_steps": "each task's",
    "seed": "0",
    "out": "runs/agent",
    "name": "my-agent",
    "learning_rate": "0.0003",
    "n_steps": "16",
    "batch_size": "64",
    "val_every": "1,2,4,0",
    "batched": "8",
    "ent_coef": "0.005",
    "gamma": "0.99",
    "eval_every": "6000",
    "checkpoint_every": "2000",
    "default_lr_share": "0.0",
    "hparams": "lr",
    "drop_features": "none",
    "backend": "local",
    "cpus_per_env": "1.0",
    "gpus_per_env": "0.0",
}
"""`lrgym train`'s defaults as `--help` shows them (the flags default to None so that a
--config file can set them); tests/test_first_hour.py checks them against TrainConfig."""


def _train_option(name: str, help: str, *decls: str, **kwargs) -> typer.models.OptionInfo:
    default = f" \\[default: {TRAIN_DEFAULTS[name]}]"  # escaped: help text is rich markup
    return typer.Option(*decls, help=help + default, show_default=False, **kwargs)


@app.command(
    help=_help(
        "Meta-train a PPO agent on the meta-train tasks and write an agent folder.",
        "The defaults are the shipped agent's recipe (batched runs, mixed validation "
        "cadences, a cosine base with a wide early range and the harm guard) scaled to "
        "30k decisions on the nine named tasks, a few minutes on 2 cores; the shipped agents' "
        "recipes are YAML files in agents/recipes/ (--config agents/recipes/broad.yaml "
        "--seed 1 retrains "
        'trained_agents/default). Needs the training extra: pip install "lrgym\\[train]".',
    )
)
def train(
    config: Annotated[Path | None, typer.Option(help="YAML config (flags override it).")] = None,
    tasks: Annotated[
        list[str] | None,
        _train_option(
            "tasks",
            "Comma-separated meta-train task ids, meta-train, and/or procedural (32 drawn "
            "tasks; procedural:N for N).",
            "--tasks",
            metavar="TASK,...",
        ),
    ] = None,
    total_timesteps: Annotated[
        int | None, _train_option("total_timesteps", "Env steps (agent decisions) to train.")
    ] = None,
    n_envs: Annotated[
        int | None,
        _train_option(
            "n_envs",
            "Environment worker processes (0: one per core). Part of the recipe: a rollout "
            "is n-steps × n-envs.",
        ),
    ] = None,
    decision_interval: Annotated[
        int | None, _train_option("decision_interval", "Optimizer steps per decision.")
    ] = None,
    episode_steps: Annotated[
        int | None, _train_option("episode_steps", "Optimizer steps per episode.")
    ] = None,
    seed: Annotated[int | None, _train_option("seed", "Seed of everything random.")] = None,
    out: Annotated[
        Path | None, _train_option("out", "Agent output folder.", parser=_folder)
    ] = None,
    name: Annotated[str | None, _train_option("name", "Agent name for its card.")] = None,
    learning_rate: Annotated[
        float | None, _train_option("learning_rate", "PPO learning rate.")
    ] = None,
    n_steps: Annotated[int | None, _train_option("n_steps", "PPO rollout steps per env.")] = None,
    batch_size: Annotated[int | None, _train_option("batch_size", "PPO minibatch size.")] = None,
    ent_coef: Annotated[float | None, _train_option("ent_coef", "PPO entropy coefficient.")] = None,
    gamma: Annotated[float | None, _train_option("gamma", "PPO discount factor.")] = None,
    eval_every: Annotated[
        int | None,
        _train_option("eval_every", "Score the validation slice every N steps (model selection)."),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        _train_option("checkpoint_every", "Save a resumable checkpoint every N steps."),
    ] = None,
    default_lr_share: Annotated[
        float | None,
        _train_option("default_lr_share", "Share of episodes starting at the task's default LR."),
    ] = None,
    hparams: Annotated[
        list[str] | None,
        _train_option(
            "hparams",
            "Comma-separated hyperparameters to control, lr first (e.g. "
            "lr,momentum,weight_decay or lr,max_depth,subsample).",
            "--hparams",
            metavar="NAME,...",
        ),
    ] = None,
    drop_features: Annotated[
        list[str] | None,
        _train_option(
            "drop_features",
            "Comma-separated feature groups or features to hide (ablations).",
            "--drop-features",
            metavar="NAME,...",
        ),
    ] = None,
    val_every: Annotated[
        list[str] | None,
        _train_option(
            "val_every",
            "Comma-separated validation cadences drawn per episode: the agent sees a fresh "
            "validation every N-th decision (0: never), e.g. 1,2,4,0.",
            "--val-every",
            metavar="N,...",
        ),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Continue training from this agent directory's PPO and normalisation "
            "(e.g. trained_agents/default) instead of a fresh PPO."
        ),
    ] = None,
    batched: Annotated[
        int | None,
        _train_option(
            "batched",
            "Runs per task in each worker, trained as one stacked computation (0: one run "
            "per worker, the path whose resume replays a run exactly).",
        ),
    ] = None,
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="With batched runs: compile each worker's stacked steps with torch.compile "
            "(10-30 s per task and worker at start, then faster; needs a C++ compiler). "
            "Default: where a compiler is present and each task gets 5,000+ decisions.",
        ),
    ] = None,
    backend: Annotated[
        str | None,
        _train_option(
            "backend",
            "Where the environments run: local (worker processes here) or ray (Ray actors on "
            'a Ray cluster; pip install "lrgym\\[ray]"). Same seed and --n-envs, same agent.',
            metavar="local|ray",
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            metavar="HOST:PORT",
            help="Ray cluster address (what `ray start --head` printed); default "
            "RAY_ADDRESS, else a new local Ray instance. Needs --backend ray.",
        ),
    ] = None,
    cpus_per_env: Annotated[
        float | None,
        _train_option("cpus_per_env", "CPUs each Ray environment actor reserves."),
    ] = None,
    gpus_per_env: Annotated[
        float | None,
        _train_option("gpus_per_env", "GPUs each Ray environment actor reserves."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue the interrupted run in this folder (its --out)."),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace an earlier run in --out (a new run needs an empty --out)."),
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Meta-train a PPO agent (see the help text above)."""
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        raise _fail(
            "`lrgym train` needs the training extra (stable-baselines3, TensorBoard): "
            'pip install "lrgym[train]"'
        ) from None
    from lrgym.agents.config import ConfigError, load_config
    from lrgym.agents.train import CONFIG
    from lrgym.agents.train import train as run_training
    from lrgym.agents.train_report import TrainReporter, cli_command
    from lrgym.backends.ray_backend import RayBackendError
    from lrgym.core.registration import UnknownTaskError
    from lrgym.deploy.agent import load_card

    reporter = TrainReporter(console, progress=progress)

    ppo = {
        k: v
        for k, v in dict(
            learning_rate=learning_rate,
            n_steps=n_steps,
            batch_size=batch_size,
            ent_coef=ent_coef,
            gamma=gamma,
        ).items()
        if v is not None
    }
    if resume is not None:
        if overwrite:
            raise _fail("--resume continues a run and --overwrite replaces it: pass one")
        if not (resume / CONFIG).is_file():
            raise _fail(f"--resume {resume}: no {CONFIG} there; pass the --out of the run")
        config = resume / CONFIG
        out = resume
    try:
        cfg = load_config(
            config,
            tasks=_split_values(tasks) if tasks else None,
            total_timesteps=total_timesteps,
            n_envs=n_envs,
            decision_interval=decision_interval,
            episode_steps=episode_steps,
            seed=seed,
            out=str(out) if out else None,
            name=name,
            default_lr_share=default_lr_share,
            eval_every=eval_every,
            checkpoint_every=checkpoint_every,
            drop_features=_split_values(drop_features) if drop_features else None,
            hparams=_split_values(hparams) if hparams else None,
            val_every=_split_values(val_every) if val_every else None,
            batched=batched,
            compile=compile,
            init_from=str(init_from) if init_from else None,
            backend=backend,
            address=address,
            cpus_per_env=cpus_per_env,
            gpus_per_env=gpus_per_env,
            ppo=ppo or None,
        )
        path = run_training(
            cfg,
            resume=resume is not None,
            progress_bar=progress,
            overwrite=overwrite,
            command=cli_command(),
            reporter=reporter,
        )
    except (ConfigError, UnknownTaskError, ValueError, RayBackendError) as exc:
        reporter.close()
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        run_dir = Path(reporter.out or out or TRAIN_DEFAULTS["out"])
        reporter.interrupted(run_dir, _newest_checkpoint(run_dir))
        raise typer.Exit(code=130) from None
    reporter.summary(path, load_card(path))


def _newest_checkpoint(out: Path) -> int | None:
    """Timesteps of the newest checkpoint `--resume` would load, or None."""
    try:
        from lrgym.agents.checkpoints import find_checkpoint

        found = find_checkpoint(out)
    except Exception:  # noqa: BLE001 - only a hint after Ctrl-C
        return None
    return None if found is None else found.steps


@app.command(
    "convert-agent",
    help=_help(
        "Convert an agent or run folder of an earlier lrgym once: policy.pt (TorchScript) "
        "to policy.safetensors, and the SB3 pickles (ppo.zip, vecnormalize.pkl, "
        "checkpoints/rl_model_*) to training.safetensors + training.json.",
        "This LOADS AND RUNS the old files (TorchScript and pickles can execute code): "
        "convert only folders you trust. Each conversion is checked before the old "
        "files are removed: the policy within 1e-6 on 10,000 seeded observations, the "
        "training state tensor for tensor with the same actions. In place, or into "
        "--out (the source is then left as it is).",
    ),
)
def convert_agent(
    directory: Annotated[
        Path,
        typer.Argument(help="Agent or run folder with policy.pt and/or ppo.zip, etc."),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Write the converted folder here (default: in place).")
    ] = None,
) -> None:
    """Convert an agent or run folder of an earlier lrgym (see the help text above)."""
    from lrgym.deploy.agent import LEGACY_POLICY, AgentLoadError
    from lrgym.deploy.agent_convert import convert_agent as run_conversion
    from lrgym.deploy.agent_convert import legacy_training_files
    from lrgym.deploy.policy_weights import POLICY

    old_policy = (directory / LEGACY_POLICY).is_file()
    if not old_policy and (directory / POLICY).is_file() and not legacy_training_files(directory):
        raise _fail(
            f"{directory} is already in the current format ({POLICY}, and no SB3 pickles); "
            "nothing to convert"
        )
    try:
        if old_policy or not legacy_training_files(directory):
            done = run_conversion(directory, out)
            console.print(
                f"converted {directory} -> {done.path}: max |action difference| "
                f"{done.max_abs_diff:.3g} on {done.observations} observations",
                markup=False,  # paths may hold [brackets]
            )
            directory, out = done.path, None
        if legacy_training_files(directory):
            try:
                from lrgym.agents.legacy_sb3 import convert_training_files
            except ImportError:
                raise _fail(
                    "converting ppo.zip / vecnormalize.pkl needs the training extra "
                    '(stable-baselines3): pip install "lrgym[train]"'
                ) from None
            result = convert_training_files(directory, out)
            console.print(
                f"converted the SB3 pickles in {directory} -> {result.path}: "
                f"{', '.join(result.converted)} (same tensors, same actions on "
                f"{result.observations} observations); the pickles were removed",
                markup=False,
            )
    except AgentLoadError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write the converted folder: {exc.strerror or exc}") from None


@app.command(
    "ensemble",
    help=_help(
        "Join agents of one recipe (its training seeds) into one agent that acts with "
        "their mean action.",
        "Each member's agent files (card, policy, training state; not its checkpoints or "
        "logs) are copied into --out, so each stays loadable and trainable alone (e.g. "
        "learned:OUT/seed1); they must share features, hyperparameters and "
        "action mapping. Use the ensemble like any agent: learned:OUT, "
        "lrgym.load_agent(OUT).",
    ),
)
def ensemble(
    members: Annotated[list[Path], typer.Argument(help="Agent folders (at least two).")],
    out: Annotated[Path, typer.Option(help="The ensemble folder to create.")],
    name: Annotated[str | None, typer.Option(help="Name on the card (default: OUT's).")] = None,
) -> None:
    """Join agents into an ensemble (see the help text above)."""
    from lrgym.agents.ensemble import write_ensemble
    from lrgym.deploy.agent import AgentLoadError

    try:
        path = write_ensemble(out, members, name)
    except AgentLoadError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write the ensemble: {exc.strerror or exc}") from None
    console.print(f"wrote {path}: mean action of {len(members)} agents", markup=False)


@app.command(
    "train-predictor",
    help=_help(
        "Train the LR predictor (a 2×64 ReLU MLP) on the runs logged by `lrgym compare`.",
        "Use the result as `--schedulers lr-predictor:OUT`.",
    ),
)
def train_predictor(
    runs: Annotated[
        list[Path],
        typer.Option(
            "--runs",
            metavar="DIR",
            help="Output folder of an `lrgym compare` on meta-train tasks; repeat --runs "
            "for several.",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Predictor file to write.")] = Path(
        "runs/lr_predictor.pt"
    ),
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 40,
    seed: Annotated[int, typer.Option(help="Seed of the split, init and batch order.")] = 0,
) -> None:
    """Train the LR predictor (see the help text above)."""
    import pandas as pd

    from lrgym.controllers.lr_predictor import PredictorTraining, training_data
    from lrgym.controllers.lr_predictor import train_predictor as fit

    frames: dict[str, list[pd.DataFrame]] = {"runs.csv": [], "curves.csv": []}
    for directory in runs:
        for name, found in frames.items():
            path = directory / name
            if not path.is_file():
                raise _fail(f"--runs {directory}: no {name} there; pass an `lrgym compare --out`")
            found.append(pd.read_csv(path))
    if out.exists() and out.is_dir():
        raise _fail(f"--out {out} is a directory; pass a file path such as {out}/lr_predictor.pt")
    try:
        data = training_data(pd.concat(frames["runs.csv"]), pd.concat(frames["curves.csv"]))
        predictor = fit(data, PredictorTraining(epochs=epochs, seed=seed))
        path = predictor.save(out)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write --out {out}: {exc.strerror or exc}") from None
    info = predictor.info
    console.print(
        f"trained on {info['rows']} decisions from {len(info['tasks'])} tasks; validation MSE "
        f"{info['validation_mse']:.4f} (keeping the LR: {info['validation_mse_keep_lr']:.4f})"
    )
    console.print(  # a path is text, not rich markup
        f"predictor written to {path} (use it as --schedulers lr-predictor:{path})", markup=False
    )
