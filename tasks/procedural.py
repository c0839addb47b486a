"""Procedural task families for meta-training: thousands of seeded, distinct torch tasks.

Four families, each registered under one id (split ``meta-train``) that draws
:data:`FAMILY_SIZE` tasks by index::

    lrgym.make_task("lrgym/ProceduralMLP-v0", index=17)   # = make_task("lrgym/ProceduralMLP-17-v0")
    draw_task(17, family="mlp")                            # the same task

======================  ============================================================
family                  architecture (drawn once per task)
======================  ============================================================
ProceduralMLP-v0        MLP, 1-4 layers of width 8-256 (constant, tapering or mixed)
                        or residual blocks with LayerNorm; 7 activations; on tabular
                        data (85%) or flattened synthetic images (15%)
ProceduralCNN-v0        1-3 conv blocks (4-64 channels, 3×3 or 5×5, max/avg/no
                        pooling), flatten or global-average head, optional hidden
                        layer; on synthetic images (1 or 3 channels, 8×8 to 16×16)
ProceduralAttention-v0  1-2 transformer blocks (width 16-64, 1-4 heads, pre/post
                        LayerNorm, learned positions or none, mean/last pooling); on
                        synthetic token or real-valued sequences (length 8-24)
ProceduralRNN-v0        GRU or LSTM (hidden 16-64, 1-2 layers, last/mean read-out),
                        written with ``nn.Linear`` gates; on synthetic sequences
                        (length 8-16)
======================  ============================================================

Data (fixed per task; a run's seed draws only its 60/20/20 split, stratified by class):
teacher networks (MLP, CNN, sequence teachers), scikit-learn's bundled
``load_breast_cancer`` and ``load_iris`` (random feature subsets), its generators
``make_classification``, ``make_regression``, ``make_moons``, ``make_circles``,
``make_blobs``, ``make_gaussian_quantiles``, ``make_hastie_10_2``,
``make_sparse_uncorrelated``, ``make_swiss_roll`` and ``make_s_curve``, synthetic images
(gratings, shapes, blob counts and positions) and sequences (majority, count modulo,
order, first-equals-last, token sums, sines, AR processes, trends); classification (2-8
classes, random class merges, label noise up to 20%) and regression (target noise). Up
to 16 pure-noise features are added to a quarter of the tabular tasks. See
:mod:`lrgym.tasks.procedural_data`; the architectures: :mod:`lrgym.tasks.procedural_archs`.

Training: SGD with momentum 0.9, Adam or AdamW (each a third; v2: six optimizers), a
default LR and weight decay per optimizer (:mod:`lrgym.tasks.procedural_optimizers`),
batch size 16-256 (at most half the
training split, and halved while a step would cost more than :data:`MAX_STEP_MACS`), a
step budget of 200-3,000 (log-uniform) and a decision interval giving 8-50 decisions per
run.

Exclusions (:data:`EXCLUDED_DATA`): nothing is built from the data of a held-out or real
task: no ``load_wine`` (WineMLP-v0), ``load_diabetes`` (DiabetesXGB-v0), ``load_digits``
(DigitsCNN-v0), ``make_friedman*`` (FriedmanMLP-v0), ill-conditioned linear data
(IllConditionedClassification-v0), and no downloaded data (the real tasks). Every drawn
task names its source in ``info.data``; the tests check it against the registry.

Targets: drawn tasks are not calibrated. Meta-training reads no target (the reward is
the drop in log validation loss, and model selection scores validation-slice returns),
so each drawn task's ``target`` is the trivial floor: chance accuracy ``1 / classes`` or
R² 0 (the mean predictor). Time-to-target on a drawn task is therefore no benchmark.

Batching: every family's models use only parameters (no buffers, batch-norm, dropout or
fused RNN modules), the architecture and data shapes are fixed per task and every
optimizer drawn (SGD, Adam, AdamW; in v2 also Nesterov SGD, RMSprop and Adagrad) has a
per-slot update rule in :mod:`lrgym.vector.slot_optim`, so
:class:`lrgym.vector.BatchedRuns` trains K runs of a drawn task as one computation
(:data:`BATCHABLE`).

Selection: ``select_tasks(["procedural"])`` (``lrgym train --tasks
meta-train,procedural``) gives :data:`SELECTED_PER_FAMILY` tasks of each family, indices
0 to 7 (32 tasks); ``procedural:N`` gives N tasks, the families taking turns, index by
index, up to index 999. Indices 1000-1999 are the validation family, selected by
``procedural-val`` (``procedural-val:N``) and refused by ``lrgym train``: agents are
chosen on drawn tasks no training run saw. Neither ``meta-train`` nor ``all`` includes
them. ``procedural-v2`` (``procedural-v2:N``) and ``procedural-v2-val``
(``procedural-v2-val:N``) select the same indices of the v2 families.

Versions: ``-v0`` ids are the original generator (kept registered and unchanged, so old
agents' cards resolve). ``-v1`` ids (what the selections draw) are the same tasks with
a per-decision compute cap: at most :data:`V1_MAX_INTERVAL` optimizer steps per decision
(v0: up to 375), a forward pass of at most :data:`V1_STEP_MACS` per minibatch (v0: 4M)
and at most :data:`V1_VAL_SIZE` validation samples. v0's decisions cost 0.1-2.3 s of
CPU per 8 batched runs against 23-75 ms for the named tasks; v1 keeps the dynamics (the
same data, optimizers, LRs and step budgets) at about a named task's cost per decision
(docs/results/benchmarks.md). ``-v2`` ids (:data:`FAMILIES_V2`) are v1's tasks with the
optimizer, default LR and weight decay drawn again from six optimizers
(:mod:`lrgym.tasks.procedural_optimizers`), from a generator of its own after every v1
draw, so v0's and v1's tasks stay byte-for-byte what they were. The selections
``procedural``/``procedural-val`` still draw v1 (with v2 registered, v1 counts as
superseded in ``task_ids``' listings, and Gymnasium warns that a v1 id is out of date
when ``lrgym.make``/``lrgym check`` makes its env; drawn tasks and training are
unaffected).
Changing what an index draws means a new id version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

import numpy as np

from lrgym.core.registration import drawn_id, register_family, register_group, spec
from lrgym.core.task import TaskInfo
from lrgym.tasks import procedural_data
from lrgym.tasks.procedural_archs import choice, draw_arch, macs, shrink
from lrgym.tasks.procedural_optimizers import V1_OPTIMIZERS, V2_OPTIMIZERS, draw_optimizer

if TYPE_CHECKING:
    from lrgym.backends.torch_trainee import TorchTask

FAMILIES_V0: dict[str, str] = {
    "mlp": "lrgym/ProceduralMLP-v0",
    "cnn": "lrgym/ProceduralCNN-v0",
    "attention": "lrgym/ProceduralAttention-v0",
    "rnn": "lrgym/ProceduralRNN-v0",
}
"""Family name → version-0 family id (kept registered, unchanged; superseded by v1)."""

FAMILIES: dict[str, str] = {f: i.replace("-v0", "-v1") for f, i in FAMILIES_V0.items()}
"""Family name → version-1 family id: what the ``procedural`` selections draw."""

FAMILIES_V2: dict[str, str] = {f: i.replace("-v0", "-v2") for f, i in FAMILIES_V0.items()}
"""Family name → version-2 family id (v1's tasks with six optimizers drawn): what the
``procedural-v2`` selections draw."""

VERSIONS: dict[int, dict[str, str]] = {0: FAMILIES_V0, 1: FAMILIES, 2: FAMILIES_V2}
"""Version → its family ids."""


FAMILY_SIZE = 2000
"""Tasks each family draws (indices 0 to 1999): 8,000 in all."""

SELECTED_PER_FAMILY = 8
"""Tasks of each family in the ``procedural`` selection (indices 0-7: 32 tasks)."""

VALIDATION_START = FAMILY_SIZE // 2
"""First index of the validation family: indices 1000-1999 of each family are drawn only
by the ``procedural-val`` selection, never by ``procedural``/``procedural:N``, so agents
are selected on drawn tasks no training run saw."""

BATCHABLE: dict[str, bool] = dict.fromkeys(FAMILIES, True)
"""Whether :class:`lrgym.vector.BatchedRuns` trains a family's tasks (all of them do, in
every version)."""

EXCLUDED_DATA: dict[str, str] = {
    "load_wine": "lrgym/WineMLP-v0 (held-out)",
    "load_diabetes": "lrgym/DiabetesXGB-v0 (held-out)",
    "load_digits": "lrgym/DigitsCNN-v0 (held-out)",
    "make_friedman1": "lrgym/FriedmanMLP-v0 (held-out)",
    "make_friedman2": "lrgym/FriedmanMLP-v0 (held-out; same family of generators)",
    "make_friedman3": "lrgym/FriedmanMLP-v0 (held-out; same family of generators)",
    "ill-conditioned": "lrgym/IllConditionedClassification-v0 (held-out)",
    "downloaded data": "every real task (CIFAR-10, MNIST, Fashion-MNIST, Titanic, ETTh1, "
    "AG News, IMDB, SST-2)",
}
"""Data no procedural task uses, and the held-out or real task that uses it."""

MAX_STEP_MACS = 4_000_000
"""Most multiply-accumulates of one forward pass over a minibatch: a drawn task whose
step would cost more gets a smaller batch (down to 16), then a narrower model."""

V1_STEP_MACS = 250_000
"""Version 1's cap on the multiply-accumulates of one forward pass over a minibatch (v0:
:data:`MAX_STEP_MACS`); the batch, then the model, shrinks as in v0."""

V1_MAX_INTERVAL = 20
"""Version 1's most optimizer steps per decision (v0: up to 375). With
:data:`V1_STEP_MACS` it caps a decision's compute at 25 steps of at most 1M MACs each
(forward), as cheap as a named task's; the run keeps v0's step budget, so v1's runs
are v0's runs (same data, model up to the shrink, optimizer, LR, budget) decided more
often, which keeps the broad dynamics (plateaus near the floor, slow starts, noisy
targets, three optimizers) at a fraction of the cost per decision."""

V1_VAL_SIZE = 256
"""Version 1's most validation samples per run (an even, class-stratified subsample of
the 20% split): every decision validates, so this caps evaluation's cost too."""

_FAMILY_CODES = {"mlp": 1, "cnn": 2, "attention": 3, "rnn": 4}
_V2_STREAM = 2
"""Appended to a task's seed words for the generator of v2's optimizer draws."""


# --- drawing ----------------------------------------------------------------------------------


def draw_spec(index: int, family: str = "mlp", seed: int = 0, version: int = 0) -> dict[str, Any]:
    """Everything that defines drawn task ``index`` of ``family``, as plain data.

    Deterministic in ``(family, index, seed, version)``, in any process; cheap (no data
    is made). ``seed`` selects another universe of tasks (the registered ids use 0);
    ``version`` 0 is the original generator, 1 caps a decision's compute (see
    :data:`V1_MAX_INTERVAL`) and draws nothing else, 2 is v1 with the optimizer, default
    LR and weight decay drawn again from six optimizers
    (:func:`~lrgym.tasks.procedural_optimizers.draw_optimizer`).
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {', '.join(map(str, VERSIONS))}, got {version!r}")
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; use one of {', '.join(FAMILIES)}")
    index = int(index)
    if not 0 <= index < FAMILY_SIZE:
        raise ValueError(f"index must be in [0, {FAMILY_SIZE}), got {index}")
    words = [int(seed), _FAMILY_CODES[family], index]
    rng = np.random.default_rng(np.random.SeedSequence(words))
    if family == "mlp":
        kind = "image" if rng.uniform() < 0.15 else "tabular"
    elif family == "cnn":
        kind = "image"
    else:
        kind = "tokens" if rng.uniform() < (0.6 if family == "attention" else 0.5) else "series"
    data = procedural_data.draw_data(rng, kind, max_length=16 if family == "rnn" else 24)
    arch = draw_arch(rng, family, data)

    optimizer, default_lr, weight_decay = draw_optimizer(rng, data["task"], V1_OPTIMIZERS)
    n_train = _train_size(data)
    batch = int(choice(rng, (16, 32, 64, 128, 256)))
    while batch > 16 and batch > n_train // 2:
        batch //= 2
    n_out = max(data["classes"], 1)
    while macs(family, arch, data, n_out) * batch > MAX_STEP_MACS:
        if batch > 16:
            batch //= 2
        elif not shrink(family, arch):
            break
    total_steps = int(round(math.exp(rng.uniform(math.log(200), math.log(3000))) / 10) * 10)
    decisions = int(rng.integers(8, 51))
    interval = max(5, total_steps // decisions)
    if version >= 1:  # no new draws: v1's tasks are v0's, capped per decision
        while macs(family, arch, data, n_out) * batch > V1_STEP_MACS:
            if batch > 16:
                batch //= 2
            elif not shrink(family, arch):
                break
        interval = min(interval, V1_MAX_INTERVAL)
    if version >= 2:  # after every v1 draw, from a generator of its own: v0/v1 unchanged
        v2_rng = np.random.default_rng(np.random.SeedSequence([*words, _V2_STREAM]))
        optimizer, default_lr, weight_decay = draw_optimizer(v2_rng, data["task"], V2_OPTIMIZERS)
    return {
        "family": family,
        "index": index,
        "seed": int(seed),
        "data": data,
        "arch": arch,
        "optimizer": optimizer,
        "default_lr": default_lr,
        "weight_decay": weight_decay,
        "batch_size": batch,
        "total_steps": total_steps,
        "decision_interval": interval,
        "version": version,
    }


def _train_size(data: Mapping[str, Any]) -> int:
    """Size of every run's training split (the stratified split keeps it fixed)."""
    if data["task"] == "regression":
        return int(0.6 * data["n"])
    # at least: each class loses under one sample to rounding
    return int(0.6 * data["n"]) - max(data["classes"], 1)


@lru_cache(maxsize=256)
def _full_data(family: str, index: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A drawn task's whole data set, made once per process (kept for 256 tasks)."""
    x, y = procedural_data.generate(draw_spec(index, family, seed)["data"])
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _run_data(
    rng: np.random.Generator, family: str, index: int, seed: int, version: int = 0
) -> procedural_data.ArraySplits:
    x, y = _full_data(family, index, seed)
    classification = draw_spec(index, family, seed, 0)["data"]["task"] == "classification"
    splits = procedural_data.split(x, y, rng, classification)
    if version >= 1 and len(splits.y_val) > V1_VAL_SIZE:
        # evenly spaced over the split, which is ordered by class: stratified, no draw
        keep = np.linspace(0, len(splits.y_val) - 1, V1_VAL_SIZE).round().astype(int)
        splits = replace(splits, x_val=splits.x_val[keep], y_val=splits.y_val[keep])
    return splits


def _model(
    n_in: int,
    n_out: int,
    rng: np.random.Generator,
    family: str,
    arch: Mapping[str, Any],
    data: Mapping[str, Any],
):
    from lrgym.tasks.procedural_nets import build_model

    return build_model(family, arch, data, n_in, max(n_out, data["classes"], 1))


def describe(spec: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(domain, model, data)`` strings of a drawn task's :class:`~lrgym.core.task.TaskInfo`."""
    data, arch, family = spec["data"], spec["arch"], spec["family"]
    task = data["task"]
    kind = {"tabular": "tabular", "image": "image", "tokens": "sequence", "series": "sequence"}
    if task == "regression":
        domain = "regression" if data["kind"] == "tabular" else f"{kind[data['kind']]} regression"
    else:
        domain = f"{kind[data['kind']]} classification"
    if family == "mlp" and arch["style"] == "residual":
        model = f"residual MLP {arch['width']}x{arch['blocks']} blocks ({arch['activation']})"
    elif family == "mlp":
        model = f"MLP {'-'.join(map(str, arch['hidden']))} ({arch['activation']})"
    elif family == "cnn":
        convs = "-".join(
            f"{c}{'' if p == 'none' else p[0]}"
            for c, p in zip(arch["channels"], arch["pools"], strict=True)
        )
        head = "global-average" if arch["head"] == "gap" else "flatten"
        fc = f", fc {arch['fc']}" if arch["fc"] else ""
        model = f"CNN conv{convs} k{arch['kernel']}, {head} head{fc} ({arch['activation']})"
    elif family == "attention":
        model = (
            f"attention {arch['layers']}x(d{arch['dim']}, {arch['heads']} heads, "
            f"{arch['norm']}-LN), {arch['pool']} pool"
            + ("" if arch["positions"] else ", no positions")
        )
    else:
        model = f"{arch['cell'].upper()} {arch['hidden']}x{arch['layers']} ({arch['readout']})"
    source = data["source"]
    if source in ("load_breast_cancer", "load_iris"):
        text = f"scikit-learn bundled ({source})"
    elif source.startswith("make_"):
        text = f"scikit-learn {source} (seeded)"
    elif data["kind"] == "image":
        text = f"synthetic images ({source}, {'x'.join(map(str, data['shape']))})"
    elif data["kind"] in ("tokens", "series"):
        what = (
            f"vocab {data['vocab']}" if data["kind"] == "tokens" else f"{data['features']} features"
        )
        text = f"synthetic sequences ({source}, length {data['length']}, {what})"
    else:
        text = f"teacher MLP (depth {data['depth']}, width {data['width']})"
    details = [f"n={data['n']}"]
    if data["kind"] == "tabular":
        details.append(f"{data['features_kept']} features")
        if data["noise_features"]:
            details.append(f"+{data['noise_features']} noise features")
    if task == "classification":
        merged = " (merged)" if data["classes"] < data["raw_classes"] else ""
        details.append(f"{data['classes']} classes{merged}")
        if data["label_noise"]:
            details.append(f"label noise {data['label_noise']:g}")
    elif data["target_noise"]:
        details.append(f"target noise {data['target_noise']:g}")
    return domain, model, f"procedural: {text}; {', '.join(details)}"


def draw_task(index: int = 0, family: str = "mlp", seed: int = 0, version: int = 0) -> TorchTask:
    """Drawn task ``index`` of ``family`` (``mlp``, ``cnn``, ``attention`` or ``rnn``).

    The architecture, data set, optimizer, batch size, budget and decision interval are
    fixed by ``(family, index, seed, version)``; a run's seed draws its split,
    initialisation and minibatch order, as for every task. Entry point of the
    ``lrgym/Procedural*-v0`` ids (``version`` 0), the ``-v1`` ids (``version`` 1) and the
    ``-v2`` ids (``version`` 2).
    """
    from lrgym.backends.torch_trainee import TorchTask

    spec = draw_spec(index, family, seed, version)
    data = spec["data"]
    domain, model, source = describe(spec)
    classification = data["task"] == "classification"
    info = TaskInfo(
        domain,
        model,
        source,
        "accuracy" if classification else "r2",
        "meta-train",
        target=1.0 / data["classes"] if classification else 0.0,
        default_lr=spec["default_lr"],
        total_steps=spec["total_steps"],
        decision_interval=spec["decision_interval"],
    )
    return TorchTask(
        info,
        data=partial(
            _run_data, family=family, index=spec["index"], seed=spec["seed"], version=version
        ),
        model=partial(_model, family=family, arch=spec["arch"], data=data),
        loss="cross_entropy" if classification else "mse",
        optimizer=spec["optimizer"],
        batch_size=spec["batch_size"],
        weight_decay=spec["weight_decay"],
    )


def selection(
    count: int | None = None, start: int = 0, name: str = "procedural", version: int = 1
) -> list[str]:
    """Ids of the ``procedural`` selection: :data:`SELECTED_PER_FAMILY` tasks of each
    family (``count`` None), or ``count`` tasks with the families taking turns, from index
    ``start`` (the training half ends where the validation family starts), of the
    families of ``version`` (1; ``procedural-v2`` is version 2)."""
    families = VERSIONS[version]
    total = len(families) * VALIDATION_START
    n = len(families) * SELECTED_PER_FAMILY if count is None else int(count)
    if not 1 <= n <= total:
        raise ValueError(
            f"{name}:N draws 1 to {total} tasks (indices {start}-{start + VALIDATION_START - 1}"
            f" of each family), got {n}"
        )
    ids = list(families.values())
    return [drawn_id(ids[i % len(ids)], start + i // len(ids)) for i in range(n)]


def validation_selection(count: int | None = None, version: int = 1) -> list[str]:
    """Ids of the ``procedural-val`` selection: like :func:`selection`, from index
    :data:`VALIDATION_START` (drawn tasks no ``procedural`` selection reaches); version 2's
    is ``procedural-v2-val``."""
    name = "procedural-val" if version == 1 else f"procedural-v{version}-val"
    return selection(count, start=VALIDATION_START, name=name, version=version)


def drawn_version(task_id: str) -> int | None:
    """The version of a drawn procedural task (``lrgym/ProceduralMLP-17-v1`` → 1), None for
    any other task."""
    family = spec(task_id).family
    return next((v for v, ids in VERSIONS.items() if family in ids.values()), None)


def is_validation_draw(task_id: str) -> bool:
    """True for a drawn task of the validation family (index >= :data:`VALIDATION_START`)
    of any version."""
    return drawn_version(task_id) is not None and spec(task_id).kwargs["index"] >= VALIDATION_START


for _version, _ids in VERSIONS.items():
    for _family, _id in _ids.items():
        register_family(
            _id,
            "lrgym.tasks.procedural:draw_task",
            size=FAMILY_SIZE,
            kwargs={"family": _family, "version": _version},
        )
register_group("procedural", selection)
register_group("procedural-val", validation_selection)
register_group("procedural-v2", partial(selection, name="procedural-v2", version=2))
register_group("procedural-v2-val", partial(validation_selection, version=2))
