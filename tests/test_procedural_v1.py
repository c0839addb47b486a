"""Procedural families, version 1: v0's tasks with a per-decision compute cap.

v0 stays registered and unchanged; v1 draws nothing new (same data, optimizer, LR, step
budget), caps the decision interval, the minibatch forward pass and the validation
split, and is what the ``procedural`` selections draw.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrgym
from lrgym.core.registration import drawn_id, select_tasks, task_ids
from lrgym.tasks import procedural
from lrgym.tasks.procedural import (
    FAMILIES,
    FAMILIES_V0,
    V1_MAX_INTERVAL,
    V1_STEP_MACS,
    V1_VAL_SIZE,
    draw_spec,
)
from lrgym.tasks.procedural_archs import macs

N = 40


@pytest.mark.parametrize("family", list(FAMILIES))
def test_v1_is_v0_capped_per_decision(family):
    for i in range(N):
        v0, v1 = draw_spec(i, family, version=0), draw_spec(i, family, version=1)
        same = ("data", "optimizer", "default_lr", "weight_decay", "total_steps")
        assert {k: v1[k] for k in same} == {k: v0[k] for k in same}
        assert v1["decision_interval"] == min(v0["decision_interval"], V1_MAX_INTERVAL)
        assert v1["batch_size"] <= v0["batch_size"]
        n_out = max(v1["data"]["classes"], 1)
        step = macs(family, v1["arch"], v1["data"], n_out) * v1["batch_size"]
        # at the cap, or already as small as the family's models and batches go
        assert step <= V1_STEP_MACS or v1["batch_size"] == 16
        assert (v0["version"], v1["version"]) == (0, 1)


def test_v0_draws_are_unchanged_by_v1():
    spec = draw_spec(3, "cnn")  # the default stays version 0, for old callers
    assert spec == draw_spec(3, "cnn", version=0) and spec["decision_interval"] > V1_MAX_INTERVAL
    with pytest.raises(ValueError, match="version must be one of 0, 1, 2"):
        draw_spec(3, "cnn", version=3)


def test_both_versions_are_registered_and_the_selections_draw_v1():
    for family, v0 in FAMILIES_V0.items():
        v1 = FAMILIES[family]
        assert v1 == v0.replace("-v0", "-v1")
        a, b = lrgym.make_task(drawn_id(v0, 2)), lrgym.make_task(drawn_id(v1, 2))
        assert b.info.decision_interval == min(a.info.decision_interval, V1_MAX_INTERVAL)
        assert b.info.total_steps == a.info.total_steps
    chosen = select_tasks(["procedural"])
    assert len(chosen) == 32 and all(t.endswith("-v1") for t in chosen)
    assert all(t.endswith("-v1") for t in procedural.validation_selection(8))
    ids = task_ids(variants=True)  # v2 supersedes v1 in listings; the selections draw v1
    assert not (set(FAMILIES_V0.values()) | set(FAMILIES.values())) & set(ids)
    every = set(task_ids(variants=True, superseded=True))
    assert set(FAMILIES_V0.values()) | set(FAMILIES.values()) <= every


def test_v1_validation_is_a_stratified_slice_of_v0s():
    v0_id, v1_id = drawn_id(FAMILIES_V0["rnn"], 1), drawn_id(FAMILIES["rnn"], 1)
    a = lrgym.make_task(v0_id).build(5, 1e-3)
    b = lrgym.make_task(v1_id).build(5, 1e-3)
    x0, y0 = (t.numpy() for t in a.tensors["val"])
    x1, y1 = (t.numpy() for t in b.tensors["val"])
    assert len(y0) > V1_VAL_SIZE == len(y1)
    keep = np.linspace(0, len(y0) - 1, V1_VAL_SIZE).round().astype(int)
    np.testing.assert_array_equal(x1, x0[keep])
    assert set(np.unique(y1)) == set(np.unique(y0))  # every class kept
    for split in ("train", "test"):  # the rest of the run is v0's
        for t0, t1 in zip(a.tensors[split], b.tensors[split], strict=True):
            assert np.array_equal(t0.numpy(), t1.numpy())
    a.close()
    b.close()
