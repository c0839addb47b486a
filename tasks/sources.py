"""Where real tasks get their data: a Hugging Face hub id or a local file/folder.

One entry point, :func:`load_source`, returns a ``datasets.Dataset`` whatever the origin:

- a hub id such as ``"uoft-cs/cifar10"`` (``datasets.load_dataset``, with its cache);
- an ``http(s)://`` URL of one file in a format below (downloaded once, then cached);
- a local file: ``.csv``, ``.tsv`` (tab-separated), ``.parquet``, ``.json``/``.jsonl``,
  ``.txt`` (one ``text`` column, or a delimited table when ``delimiter=`` is given), or
  ``.npz`` (each array with one entry per row becomes a column);
- a local folder: split files (``train.csv``/``dev.tsv``/``test.parquet`` ...; the split
  follows the file name, other files are ignored; without such names each file is a
  split named after it), an image folder (``label/xxx.png``, read by
  the ``imagefolder`` builder), or ``train.npz``/``test.npz``.

``datasets`` itself is imported lazily (``pip install "lrgym[hf]"``). When the hub cannot
be reached (or a URL's host), a two-second probe fails fast with :class:`DataSourceError` instead of
``datasets``' own 20-odd seconds of retries. What a task then takes from the data set
(columns, pools, checks) is in :mod:`lrgym.tasks.columns`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lrgym.io.file_checks import check_regular_file

if TYPE_CHECKING:
    import datasets

HF_EXTRA_HINT = 'pip install "lrgym[hf]"'
PROBE_TIMEOUT_S = 2.0
"""Seconds the hub reachability probe waits before the load is given up."""

LOCAL_FORMATS = ".csv, .tsv, .parquet, .json, .jsonl, .txt, .npz or an image folder"
_BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".txt": "text",
}
_SPLIT_ALIASES = {"dev": "validation", "valid": "validation", "val": "validation"}
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


class DataSourceError(ValueError):
    """A data source could not be read; the message says what failed and how to fix it."""


def _datasets():
    try:
        import datasets
    except ImportError as exc:
        raise DataSourceError(
            f"loading real-task data needs the Hugging Face `datasets` package: {HF_EXTRA_HINT}"
        ) from exc
    return datasets


def is_url(source: str | os.PathLike) -> bool:
    """True if ``source`` is an ``http://`` or ``https://`` URL."""
    return os.fspath(source).lower().startswith(("http://", "https://"))


def is_local(source: str | os.PathLike) -> bool:
    """True if ``source`` names a local path (existing, or path-like), not a hub id or URL."""
    text = os.fspath(source)
    if is_url(text):
        return False
    path = Path(text).expanduser()
    if path.exists():
        return True
    return (
        not _HUB_ID.match(text)
        or text.startswith((".", "~"))
        or path.suffix.lower() in (*_BUILDERS, ".npz")
    )


def load_source(
    source: str | os.PathLike,
    *,
    split: str | None = None,
    config: str | None = None,
    subset: int | None = None,
    seed: int = 0,
    **read_kwargs: Any,
) -> datasets.Dataset:
    """Load one split of a hub data set or a local file/folder as a ``datasets.Dataset``.

    Args:
        source: Hub id (``"uoft-cs/cifar10"``) or a local file or folder (see the module
            docstring for the formats).
        split: Split to return. ``None`` takes ``"train"`` (or the only split). ``"dev"``,
            ``"valid"`` and ``"val"`` mean ``"validation"``. A single local file has one
            split, ``"train"``; asking it for another is an error.
        config: Hub configuration name (e.g. ``"plain_text"``); ignored for local data.
        subset: Keep a random sample of this many rows (order preserved); ``None`` keeps all.
        seed: Seeds the ``subset`` sample.
        **read_kwargs: Passed to ``datasets.load_dataset`` (``column_names``,
            ``delimiter``, ``cache_dir``, ``revision`` ...).

    Raises:
        DataSourceError: Missing file, unknown format or split, unreachable hub with
            nothing cached, or ``datasets`` not installed.
    """
    splits = load_splits(source, config=config, **read_kwargs)
    name = _SPLIT_ALIASES.get(split, split) if split is not None else None
    if name is None:
        name = "train" if "train" in splits or len(splits) != 1 else next(iter(splits))
    if name not in splits:
        raise DataSourceError(
            f"{os.fspath(source)!r} has no split {split!r}; its splits are {sorted(splits)}"
        )
    return take_subset(splits[name], subset, seed)


def load_splits(
    source: str | os.PathLike, *, config: str | None = None, **read_kwargs: Any
) -> dict[str, datasets.Dataset]:
    """Every split of ``source`` by name (``"train"``, ``"validation"``, ``"test"`` ...).

    Tasks use it to take the source's own splits when it has them and to split
    ``"train"`` themselves otherwise. Arguments as in :func:`load_source`.
    """
    ds = _datasets()
    text = os.fspath(source)
    if is_url(text):
        loaded = _load_url(ds, text, read_kwargs)
    elif is_local(text):
        loaded = _load_local(ds, Path(text).expanduser(), read_kwargs)
    else:
        loaded = _load_hub(ds, text, config, read_kwargs)
    return {str(k): v for k, v in loaded.items()}


def take_subset(dataset: datasets.Dataset, subset: int | None, seed: int = 0) -> datasets.Dataset:
    """A seeded random sample of ``subset`` rows in their original order (all if ``None``)."""
    if subset is None or subset >= len(dataset):
        return dataset
    if subset < 1:
        raise DataSourceError(f"subset must be a positive number of rows, got {subset}")
    rows = np.sort(np.random.default_rng(seed).choice(len(dataset), subset, replace=False))
    return dataset.select(rows)


def _load_local(ds, path: Path, read_kwargs: dict[str, Any]) -> dict[str, datasets.Dataset]:
    if not path.exists():
        raise DataSourceError(
            f"no such file or folder: {str(path)!r}. Pass an existing local path "
            f"({LOCAL_FORMATS}) or a Hugging Face hub id such as 'uoft-cs/cifar10'."
        )
    if not path.is_dir():  # a FIFO or a device would hang the reader or never end
        check_regular_file(path, "data file", max_bytes=None, error=DataSourceError)
    try:
        if path.is_dir():
            return _load_folder(ds, path, read_kwargs)
        suffix = path.suffix.lower()
        if suffix == ".npz":
            return {"train": _read_npz(ds, path)}
        builder, kwargs = _builder_for(path, suffix, read_kwargs)
        return dict(ds.load_dataset(builder, data_files={"train": str(path)}, **kwargs))
    except DataSourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - every reader error becomes one clear message
        raise DataSourceError(f"could not read {str(path)!r}: {_reader_problem(exc)}") from exc


def _reader_problem(exc: BaseException) -> str:
    """What went wrong in a ``datasets`` reader, in words: its own message ("An error
    occurred while generating the dataset") hides the cause, which is the last exception
    of the chain (pandas' parser error, an empty file ...)."""
    import pandas as pd

    chain = [exc]
    while chain[-1].__cause__ is not None or chain[-1].__context__ is not None:
        nxt = chain[-1].__cause__ or chain[-1].__context__
        if nxt in chain or len(chain) > 20:
            break
        chain.append(nxt)
    for error in chain:
        if isinstance(error, pd.errors.EmptyDataError):
            return "the file is empty (no header line, no rows); pass a table with a header, rows"
        if isinstance(error, pd.errors.ParserError):
            detail = str(error).strip().splitlines()[-1] if str(error).strip() else ""
            return (
                f"its rows have different numbers of fields ({detail}); every row needs one "
                "value per header column (quote values that contain the delimiter)"
            )
        if "corresponds to no data" in str(error):
            return "it has no rows (a header line only, or nothing); pass a table with rows"
    root = chain[-1]
    return str(root) or type(root).__name__


def _builder_for(
    path: Path, suffix: str, read_kwargs: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The ``datasets`` builder reading files ending in ``suffix``, and its arguments."""
    if suffix not in _BUILDERS:
        raise DataSourceError(
            f"cannot read {str(path)!r}: unknown format {suffix or '(no suffix)'!r}; "
            f"use {LOCAL_FORMATS}"
        )
    builder, kwargs = _BUILDERS[suffix], dict(read_kwargs)
    delimited = bool({"sep", "delimiter"} & kwargs.keys())
    if suffix in (".tsv", ".tab") and not delimited:
        kwargs["sep"] = "\t"
    if suffix == ".txt" and delimited:
        builder = "csv"
    return builder, kwargs


def _load_folder(ds, path: Path, read_kwargs: dict[str, Any]) -> dict[str, datasets.Dataset]:
    """Split files (``train.csv`` ...), ``*.npz`` files, or an image folder."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    npz = [p for p in files if p.suffix.lower() == ".npz"]
    if npz:
        return {_split_name(p.stem): _read_npz(ds, p) for p in npz}
    tables = [p for p in files if p.suffix.lower() in _BUILDERS]
    named = [p for p in tables if _split_name(p.stem) in ("train", "validation", "test")]
    tables = named or tables  # with split files present, README.txt & co. are not data
    if tables:
        suffixes = {p.suffix.lower() for p in tables}
        if len(suffixes) > 1:
            raise DataSourceError(
                f"{str(path)!r} mixes file formats {sorted(suffixes)}; keep one format "
                "per folder (one file per split: train, validation/dev, test)"
            )
        builder, kwargs = _builder_for(tables[0], tables[0].suffix.lower(), read_kwargs)
        data_files: dict[str, list[str]] = {}
        for p in tables:
            data_files.setdefault(_split_name(p.stem), []).append(str(p))
        return dict(ds.load_dataset(builder, data_files=data_files, **kwargs))
    if any(p.is_dir() for p in path.iterdir()):
        return dict(ds.load_dataset("imagefolder", data_dir=str(path), **read_kwargs))
    raise DataSourceError(
        f"found nothing to read in {str(path)!r}: expected split files ({LOCAL_FORMATS}) "
        "or an image folder (one sub-folder of images per class)"
    )


def _split_name(stem: str) -> str:
    stem = stem.lower()
    return _SPLIT_ALIASES.get(stem, stem)


def _read_npz(ds, path: Path) -> datasets.Dataset:
    """Arrays with one entry per row (the longest first axis) become columns."""
    with np.load(path, allow_pickle=False) as arrays:
        columns = {k: arrays[k] for k in arrays.files if arrays[k].ndim >= 1}
    if not columns:
        raise DataSourceError(f"{str(path)!r} holds no arrays with rows")
    n = max(len(a) for a in columns.values())
    columns = {k: a for k, a in columns.items() if len(a) == n}
    features = {}
    for name, array in columns.items():
        if array.ndim == 1:
            features[name] = ds.Value(str(array.dtype))
        elif array.ndim == 2:
            features[name] = ds.List(ds.Value(str(array.dtype)), length=array.shape[1])
        elif array.ndim <= 5:
            array_type = getattr(ds, f"Array{array.ndim - 1}D")
            features[name] = array_type(shape=array.shape[1:], dtype=str(array.dtype))
        else:
            raise DataSourceError(f"{str(path)!r}: array {name!r} has too many axes")
    return ds.Dataset.from_dict(columns, features=ds.Features(features))


def _load_hub(ds, repo_id: str, config: str | None, read_kwargs: dict[str, Any]):
    offline = bool(ds.config.HF_HUB_OFFLINE)
    if not offline:
        problem = hub_unreachable()
        if problem:
            raise DataSourceError(
                f"could not reach the Hugging Face hub to load {repo_id!r} ({problem}). "
                f"Pass a local path instead ({LOCAL_FORMATS}), or set HF_HUB_OFFLINE=1 to "
                "use a copy already in the local datasets cache."
            )
    try:
        return ds.load_dataset(repo_id, config, **read_kwargs)
    except ds.exceptions.DatasetNotFoundError as exc:
        raise DataSourceError(
            f"no data set {repo_id!r} on the Hugging Face hub (or it is gated/private: log "
            f"in with `hf auth login`). Check the id, or pass a local path ({LOCAL_FORMATS})."
        ) from exc
    except (ConnectionError, FileNotFoundError) as exc:
        where = "in the local cache (HF_HUB_OFFLINE is set)" if offline else "on the hub"
        raise DataSourceError(
            f"could not load {repo_id!r} {where}: {exc}. Pass a local path instead "
            f"({LOCAL_FORMATS})"
            + ("." if offline else ", or set HF_HUB_OFFLINE=1 to use a cached copy.")
        ) from exc
    except ValueError as exc:  # e.g. a missing or unknown config name
        raise DataSourceError(f"could not load {repo_id!r}: {exc}") from exc


def _load_url(ds, url: str, read_kwargs: dict[str, Any]) -> dict[str, datasets.Dataset]:
    suffix = Path(url.split("?", 1)[0]).suffix.lower()
    builder, kwargs = _builder_for(Path(url), suffix, read_kwargs)
    if not ds.config.HF_HUB_OFFLINE:
        problem = unreachable(url)
        if problem:
            raise DataSourceError(
                f"could not reach {url!r} ({problem}). Download it and pass the local "
                f"path instead ({LOCAL_FORMATS}), or set HF_HUB_OFFLINE=1 to use a copy "
                "already in the local datasets cache."
            )
    try:
        return dict(ds.load_dataset(builder, data_files={"train": url}, **kwargs))
    except Exception as exc:  # noqa: BLE001 - every download/reader error, one message
        raise DataSourceError(
            f"could not load {url!r}: {exc}. Download it and pass the local path instead."
        ) from exc


def unreachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why ``url`` cannot be reached within ``timeout`` seconds, or ``None`` if it can.

    One ``HEAD`` request through ``huggingface_hub``'s HTTP session (so proxies and
    certificates are honoured); any HTTP answer, even an error status, counts as reached.
    """
    from huggingface_hub import get_session

    try:
        get_session().head(url, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"
    return None


def hub_unreachable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the hub (``HF_ENDPOINT``) cannot be reached within ``timeout`` s, or ``None``.

    ``datasets`` would retry an unreachable hub five times with back-off (about 23 s);
    this one probe replaces that wait.
    """
    from huggingface_hub import constants

    return unreachable(constants.ENDPOINT, timeout)
