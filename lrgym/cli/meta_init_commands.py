"""`lrgym meta-init`: meta-train an initialization (FOMAML, Reptile or multi-task)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lrgym.cli import _check_out_dir, _fail, _folder, _help, _split_values, app, console


@app.command(
    "meta-init",
    help=_help(
        "Meta-train an initialization for a task family; write init.safetensors and card.json.",
        "Tasks are drawn from the family's meta-train split only; the init kept is the one "
        "that scores best on fixed meta-val tasks; meta-test tasks are used only to fine-tune "
        "and report (random init vs this init, with each --eval-schedulers scheduler). "
        "Families: digits (offline), cifar10, uci-sentiment and uci-sentiment-relabel (need "
        "--data), and any "
        "registered with lrgym.meta_init.register_init_family (load it with --import).",
    ),
)
def meta_init(
    family: Annotated[
        str,
        typer.Option(
            help="Task family: digits, cifar10, uci-sentiment, uci-sentiment-relabel or your own."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder.", parser=_folder)],
    algorithm: Annotated[
        str, typer.Option(metavar="fomaml|reptile|anil|multitask", help="Meta-learning algorithm.")
    ] = "fomaml",
    data: Annotated[
        str | None,
        typer.Option(help="The family's data: a local path or a Hugging Face data set name."),
    ] = None,
    cache_dir: Annotated[
        str | None, typer.Option(help="Cache folder for text embeddings (uci-sentiment*).")
    ] = None,
    meta_iterations: Annotated[int, typer.Option(min=1, help="Outer updates.")] = 300,
    meta_batch: Annotated[int, typer.Option(min=1, help="Tasks per outer update.")] = 8,
    inner_steps: Annotated[int, typer.Option(min=1, help="Inner-loop SGD steps.")] = 5,
    inner_lr: Annotated[float, typer.Option(min=0.0, help="Inner-loop SGD LR.")] = 0.1,
    inner_momentum: Annotated[
        float, typer.Option(min=0.0, max=0.999, help="Inner-loop SGD momentum.")
    ] = 0.0,
    meta_lr: Annotated[
        float | None,
        typer.Option(help="Outer step size (default: Adam 1e-3; Reptile's ε 0.5)."),
    ] = None,
    val_every: Annotated[int, typer.Option(min=1, help="Meta-val scoring interval.")] = 50,
    val_tasks: Annotated[int, typer.Option(min=1, help="Meta-val tasks scored.")] = 20,
    seed: Annotated[int, typer.Option(min=0, help="Seeds every random draw.")] = 0,
    eval_tasks: Annotated[
        int, typer.Option(min=0, help="Meta-test tasks fine-tuned for the card (0: none).")
    ] = 20,
    eval_schedulers: Annotated[
        list[str],
        typer.Option(metavar="NAME,...", help="Schedulers of the card's fine-tuning runs."),
    ] = ["constant", "learned:default"],  # noqa: B006 - typer reads list defaults this way
    overwrite: Annotated[bool, typer.Option(help="Replace an init already in --out.")] = False,
) -> None:
    """Meta-train an initialization (see the help text above)."""
    import torch

    from lrgym.harness.finetune import (
        RANDOM_INIT,
        TARGET_EVERY,
        FinetuneSpec,
        finetune,
        markdown_table,
        summarize,
    )
    from lrgym.meta_init import UnknownFamilyError
    from lrgym.meta_init.algorithms import MetaInitConfig, meta_train
    from lrgym.meta_init.checkpoint import CARD, PATH_OPTIONS, WEIGHTS, InitCard, save_init
    from lrgym.meta_init.tasks import loaded_family
    from lrgym.tasks.sources import DataSourceError

    if (out / CARD).exists() and not overwrite:
        raise _fail(f"{out / CARD} exists; pass --overwrite to replace it, or another --out")
    # the options given (None: the family's default), as the card and the tasks keep them
    given = {k: v for k, v in {"data": data, "cache_dir": cache_dir}.items() if v is not None}
    try:
        config = MetaInitConfig(
            algorithm=algorithm,  # type: ignore[arg-type]
            meta_iterations=meta_iterations,
            meta_batch=meta_batch,
            inner_steps=inner_steps,
            inner_lr=inner_lr,
            inner_momentum=inner_momentum,
            meta_lr=meta_lr,
            val_every=val_every,
            val_tasks=val_tasks,
            seed=seed,
        )
        fam = loaded_family(family, **given)
        splits = fam.describe_splits()
    except UnknownFamilyError as exc:
        raise _fail(str(exc)) from None
    except (ValueError, TypeError, ImportError, OSError, DataSourceError) as exc:
        message = str(exc)
        raise _fail(message if family in message else f"family {family!r}: {message}") from None
    _check_out_dir(out)
    torch.set_num_threads(1)
    for name in ("meta-train", "meta-val", "meta-test"):
        console.print(escape(f"{name}: {', '.join(splits[name]['sources'])}"))
    console.print(
        f"{config.algorithm} on {family}: {meta_iterations} meta-iterations × {meta_batch} "
        f"tasks, {inner_steps} inner steps at LR {inner_lr:g}"
    )
    result = meta_train(fam, config)
    console.print(
        f"meta-trained in {result.wall_seconds:.1f} s (CPU {result.cpu_seconds:.1f} s); "
        f"selected iteration {result.selected_iteration} on meta-val"
    )
    s = fam.settings
    card = InitCard(
        family=family,
        # paths never go into a card (a card must not choose where lrgym reads or
        # writes); the card's `command` records them
        family_options={k: v for k, v in given.items() if k not in PATH_OPTIONS},
        model=s.model.to_json(),
        splits=splits,
        algorithm=config.algorithm,
        config=config.to_json(),
        selected_iteration=result.selected_iteration,
        val_history=[[it, acc] for it, acc in result.val_history],
        wall_seconds=round(result.wall_seconds, 2),
        cpu_seconds=round(result.cpu_seconds, 2),
        finetune={
            "optimizer": s.finetune_optimizer,
            "lr": s.finetune_lr,
            "steps": s.finetune_steps,
            "eval_interval": s.decision_interval,
            "target_accuracy": s.target,
            "target_every": TARGET_EVERY,
            "k_shot": s.k_shot,
            "n_way": s.n_way,
        },
        command=shlex.join(["lrgym", *sys.argv[1:]]),
        lrgym_version=__import__("lrgym").__version__,
    )
    save_init(out, result.state, card)
    if eval_tasks:
        schedulers = tuple(_split_values(eval_schedulers))
        spec = FinetuneSpec(
            family,
            {RANDOM_INIT: None, config.algorithm: str(out)},
            schedulers,
            tasks=eval_tasks,
            seeds=(0,),
            family_options=tuple(sorted(given.items())),
        )
        try:
            summary = summarize(finetune(spec))
        except (ValueError, ImportError) as exc:
            raise _fail(f"fine-tuning the meta-test tasks: {exc}") from None
        card.evaluation = summary.to_dict("records")
        card.save(out)
        console.print(
            f"fine-tuning {eval_tasks} meta-test tasks ({s.finetune_steps} steps of "
            f"{s.finetune_optimizer} at LR {s.finetune_lr:g}, target accuracy {s.target:g}):"
        )
        typer.echo(markdown_table(summary))
    console.print(escape(f"wrote {out / WEIGHTS} and {out / CARD}"))
    data_option = f" --init-data {shlex.quote(data)}" if data is not None else ""
    console.print(
        escape(
            f"next: lrgym compare --tasks meta-init-{family} --schedulers "
            f"constant,learned:default --init {out}{data_option} --out results/meta-init-{family}"
        )
    )
