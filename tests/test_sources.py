"""Data sources: every local format, splits, subsets, and fast, clear failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from lrgym.tasks import sources
from lrgym.tasks.columns import pick_column, to_numpy
from lrgym.tasks.sources import DataSourceError, load_source, load_splits

FRAME = pd.DataFrame({"text": [f"row {i}" for i in range(20)], "label": [i % 3 for i in range(20)]})


def write(frame: pd.DataFrame, path) -> str:
    """Write ``frame`` in the format named by ``path``'s suffix; return the path."""
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        path.write_text(json.dumps(frame.to_dict(orient="records")))
    return str(path)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".json", ".jsonl"])
def test_local_table_formats(tmp_path, suffix):
    ds = load_source(write(FRAME, tmp_path / f"data{suffix}"))
    assert len(ds) == 20
    assert list(to_numpy(ds, "label")) == list(FRAME["label"])
    assert list(to_numpy(ds, "text")) == list(FRAME["text"])


def test_headerless_tsv_with_read_kwargs(tmp_path):
    path = tmp_path / "sentences.txt"
    path.write_text("good film\t1\nbad film\t0\n")
    ds = load_source(str(path), delimiter="\t", column_names=["sentence", "label"])
    assert ds.column_names == ["sentence", "label"] and ds[1] == {
        "sentence": "bad film",
        "label": 0,
    }
    plain = load_source(str(path))  # no delimiter: one text column per line
    assert plain.column_names == ["text"] and len(plain) == 2


def test_npz_arrays_become_columns_with_their_dtype(tmp_path):
    x = np.arange(5 * 4 * 4 * 3, dtype=np.uint8).reshape(5, 4, 4, 3)
    y = np.array([0, 1, 2, 1, 0], dtype=np.uint8)
    np.savez(tmp_path / "images.npz", x=x, y=y, classes=np.array(["a", "b", "c"]))
    ds = load_source(str(tmp_path / "images.npz"))
    assert sorted(ds.column_names) == ["x", "y"]  # `classes` has no entry per row
    got = to_numpy(ds, "x")
    assert got.dtype == np.uint8 and np.array_equal(got, x)
    assert np.array_equal(to_numpy(ds, "y"), y)


def test_folder_of_split_files_and_aliases(tmp_path):
    for name, part in (("train", FRAME[:12]), ("dev", FRAME[12:16]), ("test", FRAME[16:])):
        write(part, tmp_path / f"{name}.csv")
    (tmp_path / "README.txt").write_text("not data")
    splits = load_splits(str(tmp_path))
    assert {k: len(v) for k, v in splits.items()} == {"train": 12, "validation": 4, "test": 4}
    assert len(load_source(str(tmp_path))) == 12  # default: train
    assert len(load_source(str(tmp_path), split="dev")) == 4
    with pytest.raises(DataSourceError, match="no split 'extra'.*'test', 'train'"):
        load_source(str(tmp_path), split="extra")


def test_folder_of_npz_splits(tmp_path):
    for name, n in (("train", 6), ("test", 3)):
        np.savez(tmp_path / f"{name}.npz", x=np.zeros((n, 2), np.float64), y=np.ones(n))
    assert len(load_source(str(tmp_path), split="test")) == 3


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    ds = load_source(str(tmp_path))
    images = to_numpy(ds, pick_column(ds, ("img", "image"), "image"))
    assert images.shape == (6, 8, 8, 3) and images.dtype == np.uint8
    assert sorted(to_numpy(ds, "label")) == [0, 0, 0, 1, 1, 1]


def test_subset_is_seeded_and_keeps_order(tmp_path):
    path = write(FRAME, tmp_path / "data.csv")
    a = to_numpy(load_source(path, subset=8, seed=1), "text")
    b = to_numpy(load_source(path, subset=8, seed=1), "text")
    c = to_numpy(load_source(path, subset=8, seed=2), "text")
    assert len(a) == 8 and list(a) == list(b) and list(a) != list(c)
    assert list(a) == sorted(a, key=lambda t: int(t.split()[1]))  # original order kept
    assert len(load_source(path, subset=100)) == 20  # larger than the data: everything


def test_single_file_has_only_a_train_split(tmp_path):
    path = write(FRAME, tmp_path / "data.csv")
    assert len(load_source(path, split="train")) == 20
    with pytest.raises(DataSourceError, match="no split 'test'"):
        load_source(path, split="test")


def test_bad_local_paths_say_what_to_do(tmp_path):
    with pytest.raises(DataSourceError, match="no such file or folder.*hub id"):
        load_source(str(tmp_path / "missing.csv"))
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    with pytest.raises(DataSourceError, match="unknown format '.xlsx'"):
        load_source(str(odd))
    with pytest.raises(DataSourceError, match="no column 'nope'"):
        to_numpy(load_source(write(FRAME, tmp_path / "d.csv")), "nope")
    with pytest.raises(DataSourceError, match="no label column.*label_column="):
        pick_column(load_source(str(tmp_path / "d.csv")), ("y", "target"), "label")


def test_is_local_tells_paths_from_hub_ids(tmp_path):
    assert not sources.is_local("uoft-cs/cifar10") and not sources.is_local("imdb")
    assert sources.is_local("./data") and sources.is_local("data/train.csv")
    assert sources.is_local(str(tmp_path)) and sources.is_local("/abs/path/x")


def test_unreachable_hub_fails_fast_with_a_clear_message(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(sources, "hub_unreachable", lambda timeout=2.0: "ConnectError: no route")
    start = time.perf_counter()
    with pytest.raises(DataSourceError) as info:
        load_source("someuser/nonexistent-dataset")
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "'someuser/nonexistent-dataset'" in message and "HF_HUB_OFFLINE=1" in message
    assert ".csv" in message and "local path" in message


def test_real_probe_on_this_machine_is_fast():
    """No network here: the real probe and load must fail in seconds, not retry for 20+ s."""
    start = time.perf_counter()
    try:
        load_source("someuser/nonexistent-dataset")
    except DataSourceError as exc:
        assert "someuser/nonexistent-dataset" in str(exc)
    else:  # pragma: no cover - only with network access, where the id must not exist
        pytest.fail("a non-existent hub data set loaded")
    assert time.perf_counter() - start < 5


def test_offline_mode_without_a_cached_copy():
    code = (
        "from lrgym.tasks.sources import load_source, DataSourceError\n"
        "try:\n    load_source('someuser/nonexistent-dataset')\n"
        "except DataSourceError as e:\n    print('ERR', e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert time.perf_counter() - start < 15  # interpreter + imports; no network wait
    assert out.stdout.startswith("ERR"), out.stderr[-2000:]
    assert "local cache" in out.stdout and "local path" in out.stdout


def test_missing_datasets_package_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets → ImportError
    with pytest.raises(DataSourceError, match=r'pip install "lrgym\[hf\]"'):
        load_source(write(FRAME, tmp_path / "data.csv"))


def test_npz_matrix_keeps_shape_and_dtype(tmp_path):
    x = np.arange(12, dtype=np.float64).reshape(6, 2)
    np.savez(tmp_path / "m.npz", x=x)
    got = to_numpy(load_source(str(tmp_path / "m.npz")), "x")
    assert got.dtype == np.float64 and np.array_equal(got, x)


def test_unreachable_url_fails_fast(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    url = "https://example.invalid/data/titanic.csv"
    assert sources.is_url(url) and not sources.is_local(url)
    start = time.perf_counter()
    with pytest.raises(DataSourceError, match="could not reach 'https://example.invalid.*local"):
        load_source(url)
    assert time.perf_counter() - start < 5


# --- issue 26: tables that cannot be a task say why ------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "the file is empty"),
        ("a,b,label\n", "no rows"),
        ("a,b,label\n1,2,0\n3,4,1,9\n5,6,0\n", "different numbers of fields"),
    ],
    ids=["empty", "header-only", "ragged"],
)
def test_unreadable_tables_say_what_is_wrong(tmp_path, text, words):
    path = tmp_path / "table.csv"
    path.write_text(text)
    with pytest.raises(DataSourceError, match=words) as info:
        load_source(path)
    assert str(path) in str(info.value)
    assert "An error occurred while generating the dataset" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_being_read(tmp_path):
    path = tmp_path / "table.csv"
    os.mkfifo(path)
    start = time.perf_counter()
    with pytest.raises(DataSourceError, match="named pipe"):
        load_source(path)
    assert time.perf_counter() - start < 5  # refused, not read (a read would block forever)


def _labelled(tmp_path, name: str, labels) -> str:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=len(labels)), "label": labels})
    path = tmp_path / f"{name}.csv"  # one file per table: tables are cached by path
    frame.to_csv(path, index=False)
    return str(path)


def test_an_id_or_regression_label_column_is_not_hundreds_of_classes(tmp_path):
    from lrgym.tasks.tabular import table_data

    rng = np.random.default_rng(1)
    ids = _labelled(tmp_path, "ids", np.arange(891))  # 891 values: 891 one-row "classes"
    with pytest.raises(DataSourceError, match="891 distinct values in 891 rows"):
        table_data(ids, "label")(rng)
    floats = _labelled(tmp_path, "floats", rng.normal(size=200))
    with pytest.raises(DataSourceError, match="fractional numbers.*regression"):
        table_data(floats, "label")(rng)
    whole = _labelled(tmp_path, "whole", rng.integers(0, 3, 200).astype(float))  # 0.0, 1.0, 2.0
    splits = table_data(whole, "label")(rng)
    assert set(np.unique(splits.y_train)) <= {0, 1, 2}
