"""The Ray backend on a local 2-CPU Ray cluster: the same agent and the same comparison
results as the local backend, a killed worker's run retried, PBT, and the errors for a
missing extra and an unreachable cluster."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_agent_training import tiny_config as training_config
from typer.testing import CliRunner

ray = pytest.importorskip("ray")

from lrgym.agents.config import ConfigError  # noqa: E402
from lrgym.agents.ray_vec_env import check_capacity  # noqa: E402
from lrgym.agents.train import train  # noqa: E402
from lrgym.backends.ray_backend import (  # noqa: E402
    INSTALL_HINT,
    RayBackendError,
    connect,
    run_grid_on_ray,
)
from lrgym.cli import app  # noqa: E402
from lrgym.controllers import make_controller  # noqa: E402
from lrgym.core.registration import make_task  # noqa: E402
from lrgym.harness.compare import RunSpec, grid, run_grid, run_one, write_frames  # noqa: E402

runner = CliRunner()
TASKS = ["lrgym/WineMLP-v0", "lrgym/DiabetesXGB-v0"]  # an MLP and an XGBoost task, fast
CLOCKS = {"wall_seconds", "seconds_to_target", "seconds"}  # differ between any two runs


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """A local Ray cluster of 2 CPUs for this module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def flat(text: str) -> str:
    return " ".join(text.split())


def no_clocks(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in frame.columns if c in CLOCKS])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- meta-training ----------------------------------------------------------------------


def tiny_config(out: Path, **overrides):
    """test_agent_training's tiny run with two envs and a 32-step budget."""
    values = dict(
        tasks=["lrgym/DigitsMLP-v0"],
        total_timesteps=32,
        n_envs=2,
        episode_steps=40,
        eval_every=32,
        checkpoint_every=32,
        ppo={"n_steps": 16, "batch_size": 16, "n_epochs": 2},
    )
    return training_config(out, **{**values, **overrides})


def policy_parameters(agent: Path) -> torch.Tensor:
    from lrgym.agents.training_state import read_training_state

    tensors = read_training_state(agent, "training").tensors
    return torch.cat(
        [torch.from_numpy(v).flatten() for k, v in tensors.items() if k.startswith("policy.")]
    )


def test_train_on_ray_gives_the_local_agent(tmp_path):
    local = train(tiny_config(tmp_path / "local"), progress_bar=False)
    on_ray = train(tiny_config(tmp_path / "ray", backend="ray"), progress_bar=False)
    assert torch.equal(policy_parameters(local), policy_parameters(on_ray))
    assert (on_ray / "card.json").is_file() and (on_ray / "checkpoints").is_dir()


def test_batched_train_on_ray_gives_the_local_agent(tmp_path):
    config = dict(n_envs=1, batched=2, ppo={"n_steps": 8, "batch_size": 16, "n_epochs": 1})
    local = train(tiny_config(tmp_path / "local", **config), progress_bar=False)
    on_ray = train(tiny_config(tmp_path / "ray", backend="ray", **config), progress_bar=False)
    assert torch.equal(policy_parameters(local), policy_parameters(on_ray))


def test_placement_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="backend must be one of local, ray"):
        tiny_config(tmp_path, backend="slurm")
    with pytest.raises(ConfigError, match="--backend ray"):
        tiny_config(tmp_path, address="10.0.0.1:6379")
    with pytest.raises(ConfigError, match="cpus_per_env"):
        tiny_config(tmp_path, backend="ray", cpus_per_env=0)
    with pytest.raises(RayBackendError, match="--cpus-per-env 0.5"):  # 4 actors on 2 CPUs
        check_capacity(ray, 4, 1.0, 0.0)


# --- comparison grids ---------------------------------------------------------------------


def test_compare_on_ray_writes_the_local_results(tmp_path):
    args = ["--tasks", ",".join(TASKS), "--schedulers", "constant,cosine", "--seeds", "1"]
    out = tmp_path / "ray"
    args += ["--total-steps", "20", "--out", str(out), "--backend", "ray"]
    result = runner.invoke(app, ["compare", *args])
    assert result.exit_code == 0, result.output
    assert len((out / "runs.jsonl").read_text().splitlines()) == 4  # recorded one by one
    local = run_grid(grid(TASKS, ["constant", "cosine"], [0]), total_steps=20)
    write_frames(tmp_path / "local", *local)
    for name in ("runs.csv", "curves.csv"):
        here, on_ray = (no_clocks(pd.read_csv(tmp_path / b / name)) for b in ("local", "ray"))
        pd.testing.assert_frame_equal(here, on_ray)


def test_a_killed_worker_is_retried_and_the_grid_completes(tmp_path):
    specs = grid(TASKS, ["constant"], [0])
    victim, attempts = specs[0], tmp_path / "attempts"

    def dies_once(spec: RunSpec, total_steps: int | None):
        if spec == victim:
            with open(attempts, "a") as f:
                f.write("attempt\n")
            if len(attempts.read_text().splitlines()) == 1:
                os._exit(1)  # the worker process dies mid-grid, as on a lost node
        return run_one(spec, total_steps)

    finished = []
    results = run_grid_on_ray(specs, dies_once, 20, lambda s, r: finished.append(s))
    assert len(attempts.read_text().splitlines()) == 2  # it died once, then was run again
    assert sorted(map(str, finished)) == sorted(map(str, specs))
    for spec, result in zip(specs, results, strict=True):
        expected = {k: v for k, v in run_one(spec, 20).row.items() if k not in CLOCKS}
        assert {k: v for k, v in result.row.items() if k not in CLOCKS} == expected


# --- pbt ----------------------------------------------------------------------------------


def test_pbt_runs_in_a_ray_task():
    spec = RunSpec("lrgym/WineMLP-v0", "pbt:2:2", 0)
    runs, curves = run_grid([spec], total_steps=40, backend="ray")  # Tune inside a Ray task
    row = runs.iloc[0]
    assert row["steps"] == 40 and not row["diverged"] and 0 < row["final_test_metric"] <= 1
    assert list(curves["step"]) == [0, 20, 40]  # population steps: 2 members × 10, × 20
    assert not make_controller("pbt").applies_to(make_task(TASKS[1]))  # XGBoost
    with pytest.raises(ValueError, match="pbt:P:I"):
        make_controller("pbt:two")


# --- errors -------------------------------------------------------------------------------


def test_missing_ray_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    with pytest.raises(RayBackendError, match='pip install "lrgym\\[ray\\]"'):
        connect()
    result = runner.invoke(app, ["compare", "--backend", "ray", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and INSTALL_HINT in flat(result.output)
    result = runner.invoke(
        app, ["train", "--backend", "ray", "--out", str(tmp_path / "t"), "--n-envs", "1"]
    )
    assert result.exit_code == 2 and INSTALL_HINT in flat(result.output)
    assert not (tmp_path / "t").exists()  # refused before the run folder was made


def test_unreachable_address_fails_fast_and_clearly(tmp_path):
    address = f"127.0.0.1:{closed_port()}"
    started = time.perf_counter()
    with pytest.raises(RayBackendError, match=f"cannot reach a Ray cluster at {address}"):
        connect(address)
    result = runner.invoke(
        app, ["compare", "--backend", "ray", "--address", address, "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "ray start --head" in flat(result.output)
    assert time.perf_counter() - started < 10
    with pytest.raises(RayBackendError, match="is not HOST:PORT"):
        connect("head:port")
