"""The meta-init family contract: declared splits, episodes, and the class a family subclasses.

A family holds three labelled pools, one per split (``meta-train``, ``meta-val``,
``meta-test``), and draws *episodes* from them: an N-way task of ``k_shot`` support and
``n_query`` query examples per class. The pools are declared disjoint by their
``sources`` (the classes or domains they come from), and :meth:`InitFamily.pools` checks
it: no class or domain of a meta-test task ever appears in meta-training or meta-val.

The built-in families are in :mod:`lrgym.meta_init.families`, the registry in
:mod:`lrgym.meta_init.registry`. This module needs only NumPy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from lrgym.core.task import ArraySplits

MetaSplit = Literal["meta-train", "meta-val", "meta-test"]
META_SPLITS: tuple[MetaSplit, ...] = ("meta-train", "meta-val", "meta-test")
"""The three declared splits; a family's pools for them never share a source."""


class SplitHygieneError(ValueError):
    """Two splits of a family share a class or domain."""


@dataclass(frozen=True)
class ModelSpec:
    """The architecture every task of a family trains (see :mod:`lrgym.meta_init.models`).

    Attributes:
        kind: ``"mlp"`` (flat features) or ``"cnn"`` (images, channels first).
        input_shape: Shape of one example, e.g. ``(64,)`` or ``(3, 32, 32)``.
        n_out: Outputs (the number of ways).
        hidden: Hidden widths of the MLP, or channels of the CNN's conv layers.
    """

    kind: Literal["mlp", "cnn"]
    input_shape: tuple[int, ...]
    n_out: int
    hidden: tuple[int, ...] = (64, 64)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able fields."""
        return {**asdict(self), "input_shape": list(self.input_shape), "hidden": list(self.hidden)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_json`."""
        return cls(
            kind=data["kind"],
            input_shape=tuple(int(d) for d in data["input_shape"]),
            n_out=int(data["n_out"]),
            hidden=tuple(int(h) for h in data["hidden"]),
        )


@dataclass(frozen=True)
class FamilySettings:
    """How a family's episodes look and how its meta-test tasks are fine-tuned.

    Attributes:
        n_way: Classes per task.
        k_shot: Support (training) examples per class.
        n_query: Query examples per class in a meta-training episode.
        n_val: Validation examples per class of a fine-tuning task (the rest of the
            class, up to ``n_test``, is its test set).
        n_test: Test examples per class of a fine-tuning task.
        permute_labels: Draw a random class → label assignment per task (class-subset
            families); False when labels mean the same in every task (sentiment).
        model: The architecture.
        finetune_optimizer: Fine-tuning optimizer (an lrgym optimizer name): ``"sgd"``
            (momentum 0.9) by default, the inner loop's update with momentum.
        finetune_lr: Fine-tuning LR, the tasks' default LR; 0.01 with momentum 0.9 is
            the inner loop's step 0.1 once momentum has built up.
        finetune_steps: Fine-tuning budget in optimizer steps.
        decision_interval: Steps between evaluations (and scheduler decisions).
        target: Validation accuracy that counts as reaching the target; fixed in code
            before any meta-test number is seen.
    """

    n_way: int
    k_shot: int
    n_query: int
    n_val: int
    n_test: int
    permute_labels: bool
    model: ModelSpec
    finetune_optimizer: str = "sgd"
    finetune_lr: float = 1e-2
    finetune_steps: int = 100
    decision_interval: int = 10
    target: float = 0.9

    def __post_init__(self) -> None:
        if self.n_way < 2 or self.model.n_out != self.n_way:
            raise ValueError(
                f"need n_way >= 2 and a model with n_way outputs; got n_way={self.n_way}, "
                f"model.n_out={self.model.n_out}"
            )
        for name in ("k_shot", "n_query", "n_val", "n_test", "finetune_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.decision_interval <= self.finetune_steps:
            raise ValueError(
                f"need 1 <= decision_interval <= finetune_steps, got {self.decision_interval}"
            )
        if not (self.finetune_lr > 0 and 0 < self.target <= 1):
            raise ValueError(
                f"need finetune_lr > 0 and 0 < target <= 1, got {self.finetune_lr}, {self.target}"
            )


@dataclass(frozen=True)
class SplitPool:
    """The labelled examples one split draws its tasks from.

    Attributes:
        x: Features, one row per example (float32).
        y: Class ids (int64), in the family's global numbering.
        sources: What the examples come from (``"class:7"``, ``"domain:imdb"``); the
            pools of two splits must share none.
    """

    x: np.ndarray
    y: np.ndarray
    sources: frozenset[str]

    @property
    def classes(self) -> tuple[int, ...]:
        """The class ids present, sorted."""
        return tuple(int(c) for c in np.unique(self.y))


@dataclass(frozen=True)
class Episode:
    """One N-way task: support and query arrays (labels ``0 … n_way-1``).

    Attributes:
        x_support: ``(n_way·k_shot, …)`` features.
        y_support: Labels of the support set.
        x_query: ``(n_way·n_query, …)`` features.
        y_query: Labels of the query set.
        classes: The global class ids behind labels ``0 … n_way-1``.
        sources: The split pool's sources (for hygiene checks).
    """

    x_support: np.ndarray
    y_support: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    classes: tuple[int, ...]
    sources: frozenset[str] = field(default_factory=frozenset)


class InitFamily(ABC):
    """A family of tasks for meta-learning an initialization.

    Subclass it, set :attr:`name` and :attr:`settings`, and implement :meth:`load_split`
    (the one abstract method); register a factory with :func:`register_init_family`.

    Attributes:
        name: The registered name.
        settings: Episode shape, model and fine-tuning budget.
        description: One line for cards and listings.
    """

    name: str = "custom"
    settings: FamilySettings
    description: str = ""

    @abstractmethod
    def load_split(self, split: MetaSplit) -> SplitPool:
        """The labelled pool of ``split`` (called once per split and cached)."""

    @cached_property
    def _pools(self) -> dict[str, SplitPool]:
        pools = {s: self.load_split(s) for s in META_SPLITS}
        check_split_hygiene(pools, self.name)
        for split, pool in pools.items():
            counts = np.bincount(pool.y)
            small = [c for c in pool.classes if counts[c] < self.settings.k_shot + 1]
            if len(pool.classes) < self.settings.n_way or small:
                raise ValueError(
                    f"family {self.name!r}: the {split} pool has classes {pool.classes} "
                    f"(too few examples: {small}); an episode needs {self.settings.n_way} "
                    f"classes with more than k_shot={self.settings.k_shot} examples each"
                )
        return pools

    def pools(self) -> dict[str, SplitPool]:
        """Every split's pool, checked for hygiene (no shared class or domain)."""
        return self._pools

    def describe_splits(self) -> dict[str, dict[str, Any]]:
        """Sources, classes and sizes of each split (for the card)."""
        return {
            s: {"sources": sorted(p.sources), "classes": list(p.classes), "examples": len(p.y)}
            for s, p in self.pools().items()
        }

    def sample_episode(
        self, split: MetaSplit, rng: np.random.Generator, n_query: int | None = None
    ) -> Episode:
        """One N-way task from ``split``: classes, label assignment and examples from ``rng``."""
        pool = self.pools()[split]
        s = self.settings
        q = s.n_query if n_query is None else n_query
        classes = rng.choice(np.asarray(pool.classes), size=s.n_way, replace=False)
        if not s.permute_labels:
            classes = np.sort(classes)
        sup_x, sup_y, qry_x, qry_y = [], [], [], []
        for label, c in enumerate(classes):
            rows = np.flatnonzero(pool.y == c)
            take = min(len(rows), s.k_shot + q)
            chosen = rng.choice(rows, size=take, replace=False)
            sup_x.append(pool.x[chosen[: s.k_shot]])
            qry_x.append(pool.x[chosen[s.k_shot :]])
            sup_y.append(np.full(s.k_shot, label, dtype=np.int64))
            qry_y.append(np.full(take - s.k_shot, label, dtype=np.int64))
        return Episode(
            np.concatenate(sup_x),
            np.concatenate(sup_y),
            np.concatenate(qry_x),
            np.concatenate(qry_y),
            tuple(int(c) for c in classes),
            pool.sources,
        )

    def meta_test_task(
        self, index: int, split: MetaSplit = "meta-test"
    ) -> tuple[ArraySplits, Episode]:
        """Meta-test task ``index`` as train (support) / validation / test arrays.

        The task (classes, label assignment and examples) depends on ``index`` only, so
        every method and seed fine-tunes on the same tasks. ``split="meta-val"`` draws a
        task of the same shape from the meta-val pool instead (to fix a protocol, such as
        the target, before any meta-test number is seen).
        """
        if split not in ("meta-test", "meta-val"):
            raise ValueError(
                f"fine-tuning tasks come from 'meta-test' or 'meta-val', not {split!r}"
            )
        s = self.settings
        rng = np.random.default_rng(np.random.SeedSequence([7_919, int(index)]))
        ep = self.sample_episode(split, rng, n_query=s.n_val + s.n_test)
        val_rows, test_rows = [], []
        for label in range(s.n_way):
            rows = np.flatnonzero(ep.y_query == label)
            val_rows.append(rows[: s.n_val])
            test_rows.append(rows[s.n_val :])
        v, t = np.concatenate(val_rows), np.concatenate(test_rows)
        splits = ArraySplits(
            ep.x_support, ep.y_support, ep.x_query[v], ep.y_query[v], ep.x_query[t], ep.y_query[t]
        )
        return splits, ep


def check_split_hygiene(pools: dict[str, SplitPool], family: str = "family") -> None:
    """Raise :class:`SplitHygieneError` if two splits share a source (class or domain)."""
    missing = [s for s in META_SPLITS if s not in pools]
    if missing:
        raise SplitHygieneError(f"{family!r} declares no pool for {missing}")
    for i, a in enumerate(META_SPLITS):
        if not pools[a].sources:
            raise SplitHygieneError(f"{family!r}: the {a} pool declares no sources")
        for b in META_SPLITS[i + 1 :]:
            shared = pools[a].sources & pools[b].sources
            if shared:
                raise SplitHygieneError(
                    f"{family!r}: {a} and {b} share {sorted(shared)}; splits must be disjoint"
                )


__all__ = [
    "META_SPLITS",
    "Episode",
    "FamilySettings",
    "InitFamily",
    "MetaSplit",
    "ModelSpec",
    "SplitHygieneError",
    "SplitPool",
    "check_split_hygiene",
]
