"""The procedural task families: determinism, distinctness, split hygiene, batching, CLI.

* Determinism: an index always draws the same task, data and model initialisation (in
  this process and in a fresh one).
* Distinctness: many indices draw many different architectures and data sets.
* Split hygiene: no drawn task is a held-out or real task or uses their data (checked
  against the live registry, and by making every source's data with the held-out
  loaders replaced by ones that fail).
* Each family passes ``lrgym check``, the batched engine takes every family marked
  batchable, and ``lrgym train --tasks meta-train,procedural --batched 4`` runs.
* Version 2: v1's tasks with six optimizers drawn (v0's and v1's draws unchanged), each
  batchable, with its own selections, whose validation draws training refuses.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import lrgym
from lrgym.agents.config import ConfigError, load_config
from lrgym.agents.train import meta_train_tasks
from lrgym.agents.validation import validation_episodes, validation_tasks
from lrgym.cli import app
from lrgym.core.registration import UnknownTaskError, drawn_id, select_tasks
from lrgym.harness.check import check_task
from lrgym.tasks import procedural, procedural_data, procedural_sources
from lrgym.tasks import procedural_optimizers as opt
from lrgym.tasks.procedural import (
    BATCHABLE,
    EXCLUDED_DATA,
    FAMILIES,
    FAMILIES_V0,
    FAMILIES_V2,
    FAMILY_SIZE,
    SELECTED_PER_FAMILY,
    VALIDATION_START,
    draw_spec,
    draw_task,
    is_validation_draw,
)
from lrgym.tasks.procedural_optimizers import V2_OPTIMIZERS
from lrgym.vector import BatchedLRControlEnv, BatchedRuns, check_batchable

N_DRAWS = 300
"""Indices per family drawn (specs only: cheap) for distinctness and hygiene."""


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _spec_key(spec: dict) -> str:
    return json.dumps({k: v for k, v in spec.items() if k != "index"}, sort_keys=True)


# --- registration and selection ------------------------------------------------------------


def test_families_registered_but_not_in_split_selections():
    for family_id in [*FAMILIES.values(), *FAMILIES_V2.values()]:
        assert lrgym.spec(family_id).is_family
        assert lrgym.spec(family_id).size == FAMILY_SIZE
        # v1 is listed among superseded versions since v2 exists (the selections draw v1)
        assert family_id in lrgym.task_ids(variants=True, superseded=True)
        assert family_id not in lrgym.task_ids()
    assert set(FAMILIES_V2.values()) <= set(lrgym.task_ids(variants=True))
    for name in ("meta-train", "all"):
        assert not any("Procedural" in t for t in lrgym.select_tasks([name]))


def test_drawn_ids_resolve_to_the_indexed_task():
    task = lrgym.make_task("lrgym/ProceduralMLP-17-v0")
    same = lrgym.make_task("lrgym/ProceduralMLP-v0", index=17)
    assert task.info == same.info == draw_task(17, "mlp").info
    assert lrgym.spec("lrgym/ProceduralMLP-17-v0").family == "lrgym/ProceduralMLP-v0"
    assert drawn_id("lrgym/ProceduralCNN-v0", 5) == "lrgym/ProceduralCNN-5-v0"
    with pytest.raises(UnknownTaskError, match="0 to 1999"):
        lrgym.spec(f"lrgym/ProceduralMLP-{FAMILY_SIZE}-v0")
    with pytest.raises(UnknownTaskError):
        lrgym.spec("lrgym/ProceduralMLP-017-v0")  # one spelling per index
    env = lrgym.make("lrgym/ProceduralRNN-3-v0", total_steps=4, decision_interval=2)
    assert env.unwrapped.task_id == "lrgym/ProceduralRNN-3-v0"
    env.reset(seed=0)
    assert env.step(np.zeros(1, np.float32))[2] is False
    env.close()


def test_a_users_family_reaches_worker_processes():
    """A family registered only in this process travels to workers with its drawn ids."""
    from lrgym.core.registration import ensure_registered, portable_specs, registry

    family = "testlab/Drawn-v0"
    lrgym.register_family(family, "lrgym.tasks.procedural:draw_task", 10, {"family": "cnn"})
    try:
        specs = portable_specs(["testlab/Drawn-3-v0", "testlab/Drawn-4-v0"])
        assert [s.id for s in specs] == [family] and specs[0].size == 10
        assert lrgym.make_task("testlab/Drawn-3-v0").info == draw_task(3, "cnn").info
        registry.pop(family)  # a fresh worker process knows nothing of it
        gymnasium.registry.pop(family)
        ensure_registered(specs)  # what a worker does
        assert lrgym.spec("testlab/Drawn-9-v0").family == family
        with pytest.raises(UnknownTaskError):
            lrgym.spec("testlab/Drawn-10-v0")
    finally:
        registry.pop(family, None)
        gymnasium.registry.pop(family, None)


def test_procedural_selection():
    chosen = lrgym.select_tasks(["procedural"])
    assert len(chosen) == len(FAMILIES) * SELECTED_PER_FAMILY == 32
    expected = {drawn_id(f, i) for f in FAMILIES.values() for i in range(SELECTED_PER_FAMILY)}
    assert set(chosen) == expected
    assert len(lrgym.select_tasks(["procedural:10"])) == 10
    assert len(lrgym.select_tasks(["procedural:2000"])) == 2000  # thousands, by name
    mixed = lrgym.select_tasks(["meta-train", "procedural"])
    assert mixed[: len(lrgym.task_ids("meta-train"))] == lrgym.task_ids("meta-train")
    assert len(mixed) == len(lrgym.task_ids("meta-train")) + 32
    for bad in ("procedural:0", "procedural:x", f"procedural:{4 * VALIDATION_START + 1}"):
        with pytest.raises(ValueError):
            lrgym.select_tasks([bad])


def test_the_validation_family_is_disjoint_from_every_training_selection(tmp_path):
    """``procedural-val`` draws indices 1000-1999, which no ``procedural:N`` reaches and
    ``lrgym train`` refuses, so selection on it scores drawn tasks no run trained on."""
    val = lrgym.select_tasks(["procedural-val"])
    assert len(val) == 32 and all(is_validation_draw(t) for t in val)
    widest = lrgym.select_tasks([f"procedural:{4 * VALIDATION_START}"])
    assert not set(widest) & set(lrgym.select_tasks([f"procedural-val:{4 * VALIDATION_START}"]))
    assert not any(is_validation_draw(t) for t in widest)
    cfg = load_config(None, tasks=["lrgym/DigitsMLP-v0", val[0]], out=str(tmp_path / "a"))
    with pytest.raises(ConfigError, match="validation family"):
        meta_train_tasks(cfg)


def test_meta_train_accepts_procedural_and_validates_each_drawn_task_once(tmp_path):
    config = load_config(None, tasks=["meta-train", "procedural"], out=str(tmp_path / "a"))
    tasks = meta_train_tasks(config)
    named = len(lrgym.task_ids("meta-train"))
    assert len(tasks) == named + 32
    episodes = validation_episodes(tasks, config)
    assert len(episodes) == named * (1 + len(config.val_lrs)) + 32
    drawn_lrs = {e["initial_lr"] for e in episodes if "Procedural" in e["task"]}
    assert set(config.val_lrs) <= drawn_lrs  # the LRs take turns over the drawn tasks
    scored = validation_tasks(tasks)  # what training selects on: validation draws instead
    assert scored[:named] == tasks[:named] and len(scored) == named + 32
    assert all(is_validation_draw(t) for t in scored[named:])


def test_each_versions_drawn_tasks_are_scored_on_that_versions_validation_draws():
    tasks = select_tasks(["lrgym/DigitsMLP-v0", "procedural:3", "procedural-v2:2"])
    scored = validation_tasks(tasks)
    assert scored[0] == "lrgym/DigitsMLP-v0" and len(scored) == 6
    assert [t.rsplit("-", 1)[1] for t in scored[1:]] == ["v1"] * 3 + ["v2"] * 2
    assert all(is_validation_draw(t) for t in scored[1:])


def test_a_larger_slice_for_offline_comparisons(tmp_path):
    """draws= and repeats= enlarge the slice; the defaults leave training's as it is."""
    config = load_config(None, tasks=["lrgym/DigitsMLP-v0", "procedural:3"], out=str(tmp_path))
    tasks = meta_train_tasks(config)
    larger = validation_tasks(tasks, draws=40)
    assert len(larger) == 41 and all(is_validation_draw(t) for t in larger[1:])
    assert larger[:4] == validation_tasks(tasks)  # the first draws are training's
    base = validation_episodes(validation_tasks(tasks), config)
    assert validation_episodes(validation_tasks(tasks), config, repeats=1) == base
    twice = validation_episodes(validation_tasks(tasks), config, repeats=2)
    assert len(twice) == 2 * len(base)
    pairs = list(zip(twice[::2], twice[1::2], strict=True))
    assert all(a["task"] == b["task"] and a["initial_lr"] == b["initial_lr"] for a, b in pairs)
    assert len({e["run_seed"] for e in twice}) > len(base)  # new run seeds, not copies


# --- determinism and distinctness ----------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
def test_same_index_same_task_data_and_init(family):
    assert draw_spec(11, family) == draw_spec(11, family)
    a, b = draw_task(11, family), draw_task(11, family)
    assert a.info == b.info
    run_a, run_b = a.build(5, a.info.default_lr), b.build(5, b.info.default_lr)
    for split in ("train", "val", "test"):
        for x, y in zip(run_a.tensors[split], run_b.tensors[split], strict=True):
            assert torch.equal(x, y)
    state_a, state_b = run_a.model.state_dict(), run_b.model.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    # another run of the same task: same architecture and split sizes, another split/init
    other = a.build(6, a.info.default_lr)
    shapes = [p.shape for p in other.model.parameters()]
    assert shapes == [p.shape for p in run_a.model.parameters()]
    assert other.tensors["train"][0].shape == run_a.tensors["train"][0].shape
    assert not torch.equal(other.tensors["val"][0], run_a.tensors["val"][0])  # its own split
    params = zip(other.model.parameters(), run_a.model.parameters(), strict=True)
    assert not all(torch.equal(p, q) for p, q in params)  # and its own initialisation
    # a different generator seed draws a different universe of tasks
    assert draw_spec(11, family, seed=1) != draw_spec(11, family)


def test_data_is_the_same_in_a_fresh_process():
    """No hash-seeded or global randomness: another interpreter draws the same data."""
    picks = [(family, 3) for family in FAMILIES]
    here = [_digest(*procedural_data.generate(draw_spec(i, f)["data"])) for f, i in picks]
    code = (
        "import hashlib, numpy as np\n"
        "from lrgym.tasks.procedural import draw_spec\n"
        "from lrgym.tasks.procedural_data import generate\n"
        "def digest(*arrays):\n"
        "    h = hashlib.sha256()\n"
        "    for a in arrays: h.update(np.ascontiguousarray(a).tobytes())\n"
        "    return h.hexdigest()\n"
        f"for f, i in {picks!r}: print(digest(*generate(draw_spec(i, f)['data'])))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    ).stdout.split()
    assert out == here


@pytest.mark.parametrize("family", list(FAMILIES))
def test_many_indices_draw_many_distinct_tasks(family):
    specs = [draw_spec(i, family) for i in range(N_DRAWS)]
    assert len({_spec_key(s) for s in specs}) == N_DRAWS
    # the model: architecture and the input and output it is built for
    inputs = ("kind", "shape", "features_kept", "noise_features", "length", "vocab", "features")
    models = {
        json.dumps([s["arch"], [s["data"].get(k) for k in inputs], s["data"]["classes"]])
        for s in specs
    }
    assert len(models) >= 0.9 * N_DRAWS
    assert len({json.dumps(s["arch"], sort_keys=True) for s in specs}) >= 40
    assert len({json.dumps(s["data"], sort_keys=True) for s in specs}) == N_DRAWS
    # the stated ranges
    assert {s["optimizer"] for s in specs} == {"sgd", "adam", "adamw"}
    assert all(16 <= s["batch_size"] <= 256 for s in specs)
    assert all(200 <= s["total_steps"] <= 3000 for s in specs)
    assert all(1 <= s["decision_interval"] <= s["total_steps"] for s in specs)
    tasks = {s["data"]["task"] for s in specs}
    assert tasks == {"classification", "regression"}


def test_every_source_is_drawn():
    sources = {draw_spec(i, f)["data"]["source"] for f in FAMILIES for i in range(N_DRAWS)}
    assert sources == set(procedural_data.SOURCES)


# --- split hygiene -------------------------------------------------------------------------

_DATA_NAME = re.compile(r"\b(?:load|make|fetch)_\w+")


def _protected_tasks() -> dict[str, lrgym.TaskInfo]:
    ids = lrgym.task_ids("held-out") + lrgym.task_ids("real")
    return {i: lrgym.make_task(i).info for i in ids}


def test_no_drawn_task_is_or_uses_a_held_out_or_real_task():
    protected = _protected_tasks()
    assert {"lrgym/WineMLP-v0", "lrgym/DigitsCNN-v0", "lrgym/DiabetesXGB-v0"} <= set(protected)
    # every scikit-learn data set a protected task names is excluded by the generator
    protected_names = {m for info in protected.values() for m in _DATA_NAME.findall(info.data)}
    assert protected_names, "the held-out tasks name their scikit-learn data"
    assert protected_names <= set(EXCLUDED_DATA)
    assert not protected_names & set(procedural_data.SOURCES)
    assert not set(EXCLUDED_DATA) & set(procedural_data.SOURCES)
    protected_data = {info.data for info in protected.values()}
    for family in FAMILIES:
        for i in range(0, FAMILY_SIZE, FAMILY_SIZE // 100):  # 100 per family, all over
            info = draw_task(i, family).info
            assert info.split == "meta-train"
            assert info.data not in protected_data
            assert not set(_DATA_NAME.findall(info.data)) & set(EXCLUDED_DATA), info.data
            assert "ill-conditioned" not in info.data
            assert info.data.startswith("procedural: ")  # each drawn task names its source


def test_sources_never_touch_excluded_loaders(monkeypatch):
    """Make one task of every source with the excluded loaders made to fail."""
    import sklearn.datasets

    def refuse(*args, **kwargs):
        raise AssertionError("a procedural task loaded held-out data")

    for name in EXCLUDED_DATA:
        if hasattr(sklearn.datasets, name):
            monkeypatch.setattr(sklearn.datasets, name, refuse)
    first: dict[str, tuple[str, int]] = {}
    for family in FAMILIES:
        for i in range(N_DRAWS):
            first.setdefault(draw_spec(i, family)["data"]["source"], (family, i))
    assert set(first) == set(procedural_data.SOURCES)
    for family, i in first.values():
        data = draw_spec(i, family)["data"]
        x, y = procedural_data.generate(data)
        assert len(x) == len(y) == data["n"]
        assert np.isfinite(x).all() and np.isfinite(y).all()
        if data["task"] == "classification":
            assert np.bincount(y).size == data["classes"]
    modules = (procedural, procedural_data, procedural_sources)
    code = "".join(Path(m.__file__).read_text() for m in modules)
    calls = re.findall(r"\b(load_wine|load_diabetes|load_digits|make_friedman\d?)\s*\(", code)
    assert calls == []


# --- contract, batching, training ----------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_passes_lrgym_check(family, version):
    task_id = drawn_id(procedural.VERSIONS[version][family], 1)
    results = check_task(task_id, steps=10)
    failed = [(r.name, r.detail) for r in results if not r.passed]
    if version == 1:  # Gymnasium warns that a v1 id is out of date beside v2's: only that
        stale = r"\S*WARN: The environment \S+ is out of date\.[^;]*"
        failed = [(n, d) for n, d in failed if not re.fullmatch(stale, d)]
    assert not failed


@pytest.mark.parametrize("family", [f for f, ok in BATCHABLE.items() if ok])
def test_batched_engine_takes_the_family(family):
    for index in range(3):
        check_batchable(draw_task(index, family))
    task = draw_task(0, family)
    runs = BatchedRuns(task, 2)
    lr = task.info.default_lr
    for slot in range(2):
        runs.load(slot, 40 + slot, lr)
    reports = runs.train(5)
    for slot in range(2):
        single = task.build(40 + slot, lr)
        losses = single.train(5).losses
        np.testing.assert_allclose(reports[slot].losses, losses, rtol=1e-4)
        assert runs.evaluate("val", [slot])[0].loss == pytest.approx(
            single.evaluate("val").loss, rel=1e-4
        )


def test_selected_cnns_train_as_grouped_convolutions():
    """Every CNN of the ``procedural`` selection takes the grouped-convolution path
    (:mod:`lrgym.vector.stacked`) and each slot equals its run alone."""
    for index in range(SELECTED_PER_FAMILY):
        task = draw_task(index, "cnn")
        runs = BatchedRuns(task, 2)
        lr = task.info.default_lr
        for slot in range(2):
            runs.load(slot, 60 + slot, lr)
        assert runs.path == "grouped", index
        reports = runs.train(4)
        single = task.build(61, lr)
        np.testing.assert_allclose(reports[1].losses, single.train(4).losses, rtol=1e-4)
        assert runs.evaluate("val", [1])[0].loss == pytest.approx(
            single.evaluate("val").loss, rel=1e-4
        )


def test_train_named_and_procedural_batched_end_to_end(tmp_path):
    """A named task beside one drawn task of each family (``procedural:4``), 4 runs each.

    (``--tasks meta-train,procedural`` takes the same path with 41 tasks; its expansion
    and validation slice are checked above, without the minutes of training.)"""
    out = tmp_path / "agent"
    result = CliRunner().invoke(
        app,
        [
            "train", "--tasks", "lrgym/DigitsMLP-v0,procedural:4", "--total-timesteps", "32",
            "--n-envs", "1", "--batched", "4", "--episode-steps", "20",
            "--decision-interval", "10", "--n-steps", "4", "--batch-size", "16",
            "--eval-every", "100000", "--out", str(out), "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    card = lrgym.load_agent(out).card
    assert card.config["batched"] == 4
    assert card.tasks == ["lrgym/DigitsMLP-v0"] + [drawn_id(f, 0) for f in FAMILIES.values()]
    table = next(iter(card.evaluation.values()))  # scored on validation draws instead
    assert all(task in table for task in validation_tasks(card.tasks))
    assert not any(task in table for task in card.tasks[1:])


# --- version 2: six optimizers -------------------------------------------------------------

N_V2 = 200
"""Indices per family whose specs the v2 tests draw."""


@pytest.mark.parametrize("family", list(FAMILIES))
def test_v0_and_v1_keep_their_optimizers(family):
    """v2's draws come after v1's, from a generator of their own: v0 and v1 still draw
    SGD, Adam or AdamW, the same per index."""
    drawn = set()
    for i in range(N_V2):
        v0, v1 = draw_spec(i, family, version=0), draw_spec(i, family, version=1)
        same = ("optimizer", "default_lr", "weight_decay")
        assert {k: v1[k] for k in same} == {k: v0[k] for k in same}
        drawn.add(v1["optimizer"])
    assert drawn == {"sgd", "adam", "adamw"}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_v2_is_v1_with_six_optimizers(family):
    drawn = set()
    for i in range(N_V2):
        v1, v2 = draw_spec(i, family, version=1), draw_spec(i, family, version=2)
        redrawn = ("optimizer", "default_lr", "weight_decay", "version")
        assert {k: v for k, v in v2.items() if k not in redrawn} == {
            k: v for k, v in v1.items() if k not in redrawn
        }
        optimizer, lr, wd = v2["optimizer"], v2["default_lr"], v2["weight_decay"]
        assert v2["version"] == 2 and optimizer in V2_OPTIMIZERS
        if optimizer in ("sgd", "nesterov"):
            lrs = opt.SGD_LRS
            if v2["data"]["task"] == "regression":
                lrs = opt.SGD_REGRESSION_LRS
        else:
            lrs = opt.ADAGRAD_LRS if optimizer == "adagrad" else opt.ADAM_LRS
        assert lr in lrs
        assert (1e-4 <= wd <= 5e-2) if optimizer == "adamw" else wd in (0.0, 1e-5, 1e-4, 5e-4)
        drawn.add(optimizer)
    assert drawn == set(V2_OPTIMIZERS)  # every optimizer, in every family
    assert draw_spec(7, family, version=2) == draw_spec(7, family, version=2)
    with pytest.raises(ValueError, match="version must be one of 0, 1, 2"):
        draw_spec(7, family, version=3)


V2_CLASSES = {
    "sgd": torch.optim.SGD,
    "nesterov": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}


def _first_v2_draws() -> list[tuple[str, int]]:
    """One (family, index) per optimizer: the first index drawing it, families in turn."""
    found: dict[str, tuple[str, int]] = {}
    families = list(FAMILIES)
    for n in range(4 * N_V2):
        family, index = families[n % len(families)], n // len(families)
        found.setdefault(draw_spec(index, family, version=2)["optimizer"], (family, index))
        if len(found) == len(V2_OPTIMIZERS):
            break
    return [found[o] for o in V2_OPTIMIZERS]


@pytest.mark.parametrize(
    ("optimizer", "drawn"), list(zip(V2_OPTIMIZERS, _first_v2_draws(), strict=True))
)
def test_v2_tasks_build_batch_and_decide(optimizer, drawn):
    family, index = drawn
    task_id = drawn_id(FAMILIES_V2[family], index)
    task = lrgym.make_task(task_id)
    assert task.info == draw_task(index, family, version=2).info
    assert task.optimizer == optimizer
    check_batchable(task)
    runs = BatchedRuns(task, 2)
    lr = task.info.default_lr
    for slot in range(2):
        runs.load(slot, 40 + slot, lr)
    reports = runs.train(5)
    single = task.build(41, lr)
    assert type(single.optimizer) is V2_CLASSES[optimizer]
    assert single.optimizer.param_groups[0].get("nesterov", False) == (optimizer == "nesterov")
    np.testing.assert_allclose(reports[1].losses, single.train(5).losses, rtol=1e-4)
    single.close()
    venv = BatchedLRControlEnv(task_id, 2)  # one decision of the batched env
    assert venv.batched
    venv.reset(seed=0)
    obs, rewards, *_ = venv.step(np.zeros((2, 1), np.float32))
    assert np.isfinite(obs).all() and np.isfinite(rewards).all()
    venv.close()


def test_v2_selections_and_their_validation_draws(tmp_path):
    chosen = lrgym.select_tasks(["procedural-v2"])
    expected = {drawn_id(f, i) for f in FAMILIES_V2.values() for i in range(SELECTED_PER_FAMILY)}
    assert len(chosen) == 32 and set(chosen) == expected
    assert lrgym.select_tasks(["procedural-v2:6"]) == [
        drawn_id(FAMILIES_V2[f], i) for i, f in [(0, "mlp"), (0, "cnn"), (0, "attention"),
                                                 (0, "rnn"), (1, "mlp"), (1, "cnn")]
    ]  # fmt: skip
    val = lrgym.select_tasks(["procedural-v2-val"])
    assert len(val) == 32 and all(is_validation_draw(t) and t.endswith("-v2") for t in val)
    assert len(lrgym.select_tasks(["procedural-v2-val:5"])) == 5
    widest = lrgym.select_tasks([f"procedural-v2:{4 * VALIDATION_START}"])
    assert not any(is_validation_draw(t) for t in widest)
    with pytest.raises(ValueError, match="procedural-v2-val:N draws 1 to 4000"):
        lrgym.select_tasks([f"procedural-v2-val:{4 * VALIDATION_START + 1}"])
    # the v1 selections are unchanged
    assert all(t.endswith("-v1") for t in lrgym.select_tasks(["procedural", "procedural-val"]))
    assert lrgym.select_tasks(["procedural:3"]) == [drawn_id(FAMILIES[f], 0) for f in FAMILIES][:3]
    assert is_validation_draw(drawn_id(FAMILIES_V0["mlp"], VALIDATION_START))
    for tasks in (["procedural-v2-val:2"], ["procedural-v2", val[5]]):
        cfg = load_config(None, tasks=tasks, out=str(tmp_path / "a"))
        with pytest.raises(ConfigError, match="validation family"):
            meta_train_tasks(cfg)
    cfg = load_config(None, tasks=["procedural-v2:4"], out=str(tmp_path / "b"))
    assert meta_train_tasks(cfg) == lrgym.select_tasks(["procedural-v2:4"])
