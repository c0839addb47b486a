"""First-order MAML, Reptile and the multi-task baseline on ``torch.func``.

Every algorithm adapts a copy of the parameters to each task of a meta-batch with plain
SGD steps on the task's support set, all tasks at once: ``torch.func.vmap`` over the
meta-batch of ``torch.func.grad`` of a ``functional_call`` loss. Then

* **FOMAML** (first-order MAML, Finn et al. 2017): the meta-gradient is the query-set
  gradient at the adapted parameters, averaged over tasks; an Adam step on the init.
* **Reptile** (Nichol et al. 2018): the adapted parameters (support and query together
  as the task's data) pull the init: ``θ ← θ + ε · mean(φ_i − θ)``.
* **ANIL** (Raghu et al. 2020; :mod:`lrgym.meta_init.anil`): the inner loop adapts the
  head only, on the body's features; the query loss after it, back-propagated through the
  head steps (second order), trains body and head init with Adam.
* **multitask**: the honest pre-training baseline, not meta-learning: one classifier
  trained with Adam on the pooled meta-train classes; its body is the init and its head
  restarts at zero for a new task (kept when labels mean the same in every task).

Model selection uses meta-val tasks only: every ``val_every`` iterations the current init
is adapted to fixed meta-val episodes and scored on their query sets; the best is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from lrgym.meta_init.contract import Episode, InitFamily
from lrgym.meta_init.models import HEAD_PREFIX, build_model, seeded_model

Algorithm = Literal["fomaml", "reptile", "anil", "multitask"]
ALGORITHMS: tuple[str, ...] = ("fomaml", "reptile", "anil", "multitask")

DEFAULT_META_LR = {"fomaml": 1e-3, "reptile": 0.5, "anil": 1e-3, "multitask": 1e-3}
"""Outer step size by algorithm: Adam's LR (FOMAML, multitask), ε (Reptile)."""


@dataclass(frozen=True)
class MetaInitConfig:
    """Settings of one meta-training run.

    Attributes:
        algorithm: ``"fomaml"``, ``"reptile"``, ``"anil"`` or ``"multitask"``.
        meta_iterations: Outer updates.
        meta_batch: Tasks per outer update (multitask: batches of that many tasks' data).
        inner_steps: SGD steps of the inner loop (and of meta-val adaptation).
        inner_lr: SGD LR of the inner loop.
        inner_momentum: SGD momentum of the inner loop (and of meta-val adaptation);
            0.9 with ``inner_lr=0.01`` is the first ``inner_steps`` of the families'
            fine-tuning (SGD, momentum 0.9, LR 0.01).
        meta_lr: Outer step size; None takes :data:`DEFAULT_META_LR`.
        val_every: Meta-val scoring every this many iterations (and at the end).
        val_tasks: Fixed meta-val episodes scored each time.
        seed: Seeds the init, the task draws and the meta-val episodes.
    """

    algorithm: Algorithm = "fomaml"
    meta_iterations: int = 300
    meta_batch: int = 8
    inner_steps: int = 5
    inner_lr: float = 0.1
    inner_momentum: float = 0.0
    meta_lr: float | None = None
    val_every: int = 50
    val_tasks: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; use one of {ALGORITHMS}")
        for name in ("meta_iterations", "meta_batch", "inner_steps", "val_every", "val_tasks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        for name in ("inner_lr", "meta_lr"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not 0 <= self.inner_momentum < 1:
            raise ValueError(f"inner_momentum must be in [0, 1), got {self.inner_momentum!r}")

    @property
    def outer_lr(self) -> float:
        """``meta_lr``, or the algorithm's default."""
        return DEFAULT_META_LR[self.algorithm] if self.meta_lr is None else float(self.meta_lr)

    def to_json(self) -> dict:
        """Plain fields, with the outer LR resolved."""
        return {**asdict(self), "meta_lr": self.outer_lr}


@dataclass
class MetaInitResult:
    """What a meta-training run produced.

    Attributes:
        state: The selected init, ``{name: tensor}``.
        config: The settings.
        selected_iteration: The iteration whose init scored best on meta-val.
        val_history: ``(iteration, meta-val query accuracy)`` at each scoring.
        wall_seconds: Wall time of meta-training (scoring included).
        cpu_seconds: CPU time of this process during meta-training.
    """

    state: dict[str, torch.Tensor]
    config: MetaInitConfig
    selected_iteration: int
    val_history: list[tuple[int, float]] = field(default_factory=list)
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0


def _stack(episodes: list[Episode]) -> tuple[torch.Tensor, ...]:
    """Support/query tensors of same-shaped episodes, stacked on a leading task axis."""
    return tuple(
        torch.as_tensor(np.stack([getattr(e, name) for e in episodes]))
        for name in ("x_support", "y_support", "x_query", "y_query")
    )


class _Functional:
    """Loss, inner-loop adaptation and accuracy of one model, as pure functions."""

    def __init__(
        self, model: torch.nn.Module, inner_steps: int, inner_lr: float, momentum: float = 0.0
    ) -> None:
        self.model = model
        self.inner_steps = inner_steps
        self.inner_lr = inner_lr
        self.momentum = momentum
        self._grad = grad(self.loss)

    def loss(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
        logits = functional_call(self.model, params, (x,))
        return torch.nn.functional.cross_entropy(logits, y)

    def adapt(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor):
        """``inner_steps`` SGD steps (momentum as torch's SGD) on ``(x, y)`` from ``params``."""
        buf: dict[str, torch.Tensor] | None = None
        for _ in range(self.inner_steps):
            g = self._grad(params, x, y)
            buf = g if buf is None else {k: self.momentum * buf[k] + g[k] for k in g}
            params = {k: p - self.inner_lr * buf[k] for k, p in params.items()}
        return params

    def fomaml_grad(self, params, xs, ys, xq, yq):
        """First-order MAML: the query gradient at the adapted parameters."""
        return self._grad(self.adapt(params, xs, ys), xq, yq)

    def reptile_delta(self, params, xs, ys, xq, yq):
        """Reptile: adapted minus initial parameters (support and query as task data)."""
        x, y = torch.cat([xs, xq]), torch.cat([ys, yq])
        adapted = self.adapt(params, x, y)
        return {k: adapted[k] - params[k] for k in params}

    def adapted_accuracy(self, params, xs, ys, xq, yq):
        """Query accuracy after adapting on the support set."""
        adapted = self.adapt(params, xs, ys)
        logits = functional_call(self.model, adapted, (xq,))
        return (logits.argmax(-1) == yq).float().mean()


def _detached(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in params.items()}


def meta_val_score(
    family: InitFamily,
    state: dict[str, torch.Tensor],
    episodes: list[Episode],
    inner_steps: int,
    inner_lr: float,
    inner_momentum: float = 0.0,
) -> float:
    """Mean query accuracy on ``episodes`` after ``inner_steps`` SGD steps from ``state``."""
    model = build_model(family.settings.model)
    fn = _Functional(model, inner_steps, inner_lr, inner_momentum)
    batch = _stack(episodes)
    params = {k: v.detach() for k, v in state.items()}
    with torch.no_grad():
        acc = vmap(fn.adapted_accuracy, in_dims=(None, 0, 0, 0, 0))(params, *batch)
    return float(acc.mean())


class _MetaValSelection:
    """Model selection: scores candidate inits on fixed meta-val episodes, keeps the best,
    and times the run from ``started`` (``perf_counter``, ``process_time``). The init
    before any outer step is scored first, as iteration 0."""

    def __init__(
        self,
        family: InitFamily,
        config: MetaInitConfig,
        episodes: list[Episode],
        initial: dict[str, torch.Tensor],
        started: tuple[float, float],
    ) -> None:
        self.family, self.config, self.episodes = family, config, episodes
        self.history: list[tuple[int, float]] = []
        self.best: tuple[float, int, dict[str, torch.Tensor]] = (-math.inf, 0, initial)
        self.wall0, self.cpu0 = started
        self.score(0, initial)

    def score(self, iteration: int, state: dict[str, torch.Tensor]) -> None:
        """Score ``state`` (an init after ``iteration`` outer steps); keep it if best."""
        c = self.config
        acc = meta_val_score(
            self.family, state, self.episodes, c.inner_steps, c.inner_lr, c.inner_momentum
        )
        self.history.append((iteration, acc))
        if acc > self.best[0]:
            self.best = (acc, iteration, state)

    def result(self) -> MetaInitResult:
        """The best init so far, with the scoring history and the time spent."""
        return MetaInitResult(
            self.best[2],
            self.config,
            self.best[1],
            self.history,
            time.perf_counter() - self.wall0,
            time.process_time() - self.cpu0,
        )


def meta_train(family: InitFamily, config: MetaInitConfig) -> MetaInitResult:
    """Meta-train an initialization for ``family``'s tasks (deterministic under ``seed``).

    Meta-training draws tasks from the ``meta-train`` pool only; model selection scores
    fixed ``meta-val`` episodes; ``meta-test`` is never read here.
    """
    started = time.perf_counter(), time.process_time()
    seeds = np.random.SeedSequence([int(config.seed), 1_013])
    init_seq, task_seq, val_seq = seeds.spawn(3)
    task_rng = np.random.default_rng(task_seq)
    val_rng = np.random.default_rng(val_seq)
    val_episodes = [family.sample_episode("meta-val", val_rng) for _ in range(config.val_tasks)]
    model = seeded_model(family.settings.model, int(init_seq.generate_state(1)[0]))
    params = {k: p.detach().clone() for k, p in model.named_parameters()}
    if config.algorithm == "multitask":
        return _multitask(family, config, params, task_rng, val_episodes, started)
    if config.algorithm == "anil":
        return _anil(family, config, model, params, task_rng, val_episodes, started)

    fn = _Functional(model, config.inner_steps, config.inner_lr, config.inner_momentum)
    leaves = [torch.nn.Parameter(p) for p in params.values()]
    names = list(params)
    if config.algorithm == "fomaml":
        outer = torch.optim.Adam(leaves, lr=config.outer_lr)
        per_task = vmap(fn.fomaml_grad, in_dims=(None, 0, 0, 0, 0))
    else:
        outer = torch.optim.SGD(leaves, lr=config.outer_lr)
        per_task = vmap(fn.reptile_delta, in_dims=(None, 0, 0, 0, 0))

    def current() -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in zip(names, leaves, strict=True)}

    selection = _MetaValSelection(family, config, val_episodes, _detached(current()), started)
    for it in range(1, config.meta_iterations + 1):
        episodes = [family.sample_episode("meta-train", task_rng) for _ in range(config.meta_batch)]
        batch = _stack(episodes)
        with torch.no_grad():
            out = per_task(current(), *batch)
        for n, p in zip(names, leaves, strict=True):
            mean = out[n].mean(0)
            # Reptile's pseudo-gradient: θ - mean(φ), so that SGD moves θ towards mean(φ)
            p.grad = mean if config.algorithm == "fomaml" else -mean
        outer.step()
        if it % config.val_every == 0 or it == config.meta_iterations:
            selection.score(it, _detached(current()))
    return selection.result()


def _anil(
    family: InitFamily,
    config: MetaInitConfig,
    model: torch.nn.Module,
    params: dict[str, torch.Tensor],
    rng: np.random.Generator,
    val_episodes: list[Episode],
    started: tuple[float, float],
) -> MetaInitResult:
    """ANIL: head-only inner loop, body (and head init) trained through it with Adam.

    When a task draws its label assignment (``permute_labels``) no head init can favour a
    class, so the head starts at zero in every task (as multitask's does) and only the body
    is learned; otherwise the head init is learned too. Meta-val scoring adapts the whole
    network, as fine-tuning does."""
    from lrgym.meta_init.anil import anil_step

    zero_head = family.settings.permute_labels
    leaves = {
        k: torch.zeros_like(p) if zero_head and k.startswith(HEAD_PREFIX) else torch.nn.Parameter(p)
        for k, p in params.items()
    }
    trained = [p for p in leaves.values() if isinstance(p, torch.nn.Parameter)]
    outer = torch.optim.Adam(trained, lr=config.outer_lr)
    selection = _MetaValSelection(family, config, val_episodes, _detached(leaves), started)
    body = model.get_submodule("body")
    for it in range(1, config.meta_iterations + 1):
        episodes = [family.sample_episode("meta-train", rng) for _ in range(config.meta_batch)]
        loss = anil_step(
            body, leaves, episodes, config.inner_steps, config.inner_lr, config.inner_momentum
        )
        outer.zero_grad(set_to_none=True)
        loss.backward()
        outer.step()
        if it % config.val_every == 0 or it == config.meta_iterations:
            selection.score(it, _detached(leaves))
    return selection.result()


def _multitask(
    family: InitFamily,
    config: MetaInitConfig,
    params: dict[str, torch.Tensor],
    rng: np.random.Generator,
    val_episodes: list[Episode],
    started: tuple[float, float],
) -> MetaInitResult:
    """Pre-train one classifier on every meta-train class at once; body → init."""
    s = family.settings
    pool = family.pools()["meta-train"]
    classes = np.asarray(pool.classes)
    label_of = {int(c): i for i, c in enumerate(classes)}
    y_all = np.asarray([label_of[int(c)] for c in pool.y], dtype=np.int64)
    x_all = torch.as_tensor(pool.x)
    y_all = torch.as_tensor(y_all)
    wide = replace(s.model, n_out=len(classes))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**31)))
        net = build_model(wide)
    with torch.no_grad():  # the same body init as the meta-learners start from
        for k, p in net.named_parameters():
            if not k.startswith(HEAD_PREFIX):
                p.copy_(params[k])
    opt = torch.optim.Adam(net.parameters(), lr=config.outer_lr)
    batch = config.meta_batch * s.n_way * (s.k_shot + s.n_query)
    keep_head = not s.permute_labels and len(classes) == s.n_way

    def as_init() -> dict[str, torch.Tensor]:
        state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if not keep_head:
            for k in params:
                if k.startswith(HEAD_PREFIX):
                    state[k] = torch.zeros_like(params[k])
        return state

    selection = _MetaValSelection(family, config, val_episodes, as_init(), started)

    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    for it in range(1, config.meta_iterations + 1):
        idx = torch.randint(len(y_all), (batch,), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(x_all[idx]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % config.val_every == 0 or it == config.meta_iterations:
            selection.score(it, as_init())
    return selection.result()
