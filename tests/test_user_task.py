"""A user's own task: registered by id or through the ``lrgym.tasks`` entry-point group."""

from __future__ import annotations

import importlib
import warnings
from importlib.metadata import EntryPoint

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from user_tasks_example import PLUGIN_ID, TINY_ID, make_tiny

import lrgym
from lrgym.backends.torch_trainee import TorchTask
from lrgym.core.env import LRControlEnv
from lrgym.harness.compare import RunSpec, run_one

registry_module = importlib.import_module("lrgym.core.registration")


def _forget(task_id: str) -> None:
    registry_module.registry.pop(task_id, None)
    gymnasium.registry.pop(task_id, None)


@pytest.fixture
def clean_registry():
    """Removes every task a test adds, from lrgym's registry and Gymnasium's."""
    before = set(registry_module.registry)
    yield
    for task_id in set(registry_module.registry) - before:
        _forget(task_id)
    for task_id in (TINY_ID, PLUGIN_ID):
        _forget(task_id)


@pytest.fixture
def tiny(clean_registry):
    lrgym.register_task(id=TINY_ID, entry_point="user_tasks_example:make_tiny")
    return TINY_ID


def test_registered_task_is_a_gymnasium_env(tiny):
    env = gymnasium.make(tiny, total_steps=10, decision_interval=5)
    assert isinstance(env.unwrapped, LRControlEnv)
    assert isinstance(env.unwrapped.task, TorchTask)
    obs, info = env.reset(seed=0, options={"initial_lr": 0.05})
    assert info["task"] == tiny and info["lr"] == pytest.approx(0.05)
    _, _, terminated, _, info = env.step(np.array([0.0], dtype=np.float32))
    assert not terminated and info["steps"] == 5
    _, _, terminated, _, info = env.step(np.array([0.0], dtype=np.float32))
    assert terminated and info["steps"] == 10
    env.close()


def test_registered_task_passes_check_env(tiny):
    env = lrgym.make(tiny, total_steps=10, decision_interval=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_registered_task_is_listed_and_selected(tiny):
    assert tiny in lrgym.task_ids()
    assert tiny in lrgym.task_ids("held-out")
    assert tiny not in lrgym.task_ids("meta-train")
    held_out = lrgym.select_tasks(["held-out"])
    assert tiny in held_out
    assert lrgym.select_tasks([tiny, "held-out"]).count(tiny) == 1


def test_run_one_on_user_task(tiny):
    result = run_one(RunSpec(tiny, "cosine", 0), total_steps=20)
    row = result.row
    assert row["task"] == tiny and row["split"] == "held-out"
    assert row["initial_lr"] == pytest.approx(0.05) and row["default_lr"] is True
    assert row["steps"] == 20 and row["diverged"] is False
    assert result.curve[-1]["val_loss"] < result.curve[0]["val_loss"]  # it learned
    assert row["final_val_metric"] > 0.5  # R² of a noisy linear problem, fitted linearly


def test_register_with_a_callable_entry_point(clean_registry):
    from user_tasks_example import make_tiny

    lrgym.register_task(id="testuser/TinyCallable-v0", entry_point=make_tiny)
    assert lrgym.make_task("testuser/TinyCallable-v0").info.split == "held-out"


def test_entry_point_must_return_a_task(clean_registry):
    lrgym.register_task(id="testuser/NotATask-v0", entry_point=lambda: object())
    with pytest.raises(TypeError, match="not an lrgym Task"):
        lrgym.make_task("testuser/NotATask-v0")


def test_reregistering_warns(tiny):
    with pytest.warns(UserWarning) as record:  # Gymnasium warns about its own copy too
        lrgym.register_task(id=tiny, entry_point=make_tiny)  # a different spec
    assert any("overriding the already registered task" in str(w.message) for w in record)
    assert lrgym.make_task(tiny).info.split == "held-out"


def test_registering_the_same_spec_again_is_silent(tiny):
    """A module that registers its tasks may be imported twice (e.g. by a worker that
    received the spec and then imports the entry point's module)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lrgym.register_task(id=tiny, entry_point="user_tasks_example:make_tiny")


@pytest.mark.parametrize("bad_id", ["Tiny", "bad id-v0", "testuser/Tiny", "testuser/Tiny-v"])
def test_invalid_ids_raise(clean_registry, bad_id):
    with pytest.raises(ValueError, match="versioned"):
        lrgym.register_task(id=bad_id, entry_point="user_tasks_example:make_tiny")
    assert bad_id not in registry_module.registry
    assert bad_id not in gymnasium.registry


def _fake_entry_points(eps: list[EntryPoint]):
    def entry_points(*, group: str):
        return [ep for ep in eps if ep.group == group]

    return entry_points


def _ep(name: str, value: str, group: str = registry_module.ENTRY_POINT_GROUP) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=group)


def test_plugin_entry_point_registers_tasks(clean_registry, monkeypatch):
    eps = [
        _ep("x", "user_tasks_example:register_all"),
        _ep("other", "user_tasks_example:broken_plugin", group="some.other.group"),
    ]
    monkeypatch.setattr(registry_module, "entry_points", _fake_entry_points(eps))
    monkeypatch.setattr(registry_module, "_plugins_loaded", False)
    assert PLUGIN_ID not in registry_module.registry
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only the named group is loaded: no broken plugin
        assert PLUGIN_ID in lrgym.task_ids()
    assert lrgym.spec(PLUGIN_ID).id == PLUGIN_ID
    assert PLUGIN_ID in lrgym.select_tasks(["held-out"])
    env = gymnasium.make(PLUGIN_ID, total_steps=5, decision_interval=5)
    env.reset(seed=0)
    env.close()


def test_plugins_load_once(clean_registry, monkeypatch):
    calls = []

    def entry_points(*, group: str):
        calls.append(group)
        return [_ep("x", "user_tasks_example:register_all")]

    monkeypatch.setattr(registry_module, "entry_points", entry_points)
    monkeypatch.setattr(registry_module, "_plugins_loaded", False)
    lrgym.task_ids()
    lrgym.task_ids()
    lrgym.spec(PLUGIN_ID)
    assert calls == [registry_module.ENTRY_POINT_GROUP]


def test_unknown_id_loads_plugins_first(clean_registry, monkeypatch):
    """``spec`` of a plugin's id works even when nothing listed tasks before."""
    eps = [_ep("x", "user_tasks_example:register_all")]
    monkeypatch.setattr(registry_module, "entry_points", _fake_entry_points(eps))
    monkeypatch.setattr(registry_module, "_plugins_loaded", False)
    assert lrgym.spec(PLUGIN_ID).entry_point == "user_tasks_example:make_tiny"


@pytest.mark.parametrize(
    "value",
    ["user_tasks_example:broken_plugin", "user_tasks_example:missing", "no_such_module_xyz"],
)
def test_broken_plugin_only_warns(clean_registry, monkeypatch, value):
    eps = [_ep("broken", value), _ep("good", "user_tasks_example:register_all")]
    monkeypatch.setattr(registry_module, "entry_points", _fake_entry_points(eps))
    monkeypatch.setattr(registry_module, "_plugins_loaded", False)
    with pytest.warns(UserWarning, match="'broken' failed to load"):
        ids = lrgym.task_ids()
    assert PLUGIN_ID in ids  # the good plugin still loads after the broken one
    assert "lrgym/DigitsMLP-v0" in ids
