"""Nothing lost, nothing executed: interrupted and tampered runs (issue 14).

* ``kill -9`` of ``lrgym compare`` mid-grid keeps every finished run; running the same
  command again completes the rest, and the result equals an uninterrupted run;
* ``SIGTERM`` / ``SIGKILL`` of ``compare --workers 2`` leaves no process behind;
* a tampered or damaged checkpoint is never loaded (and nothing in a run folder is a
  pickle): the newest one that verifies is used, or the resume is refused;
* a resumed ``lrgym train`` equals an uninterrupted one (single env);
* a new run refuses a non-empty folder; a failed resume leaves ``config.yaml`` alone.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_agent_training import tiny_config
from typer.testing import CliRunner

import lrgym
from lrgym.agents.checkpoints import BEST_FILES, RunFolderError, checkpoint_names, checkpoint_stem
from lrgym.agents.config import ConfigError
from lrgym.agents.train import BEST, CHECKPOINTS, CONFIG, train
from lrgym.agents.training_state import read_training_state, state_files
from lrgym.cli import app
from lrgym.deploy.agent import CARD, TRAINING
from lrgym.harness.results_store import JOURNAL
from lrgym.io.manifest import MANIFEST

XGB = "lrgym/BreastCancerXGB-v0"
GRID = ["--tasks", XGB, "--schedulers", "constant,cosine", "--seeds", "3"]
TIMING = ["wall_seconds", "seconds_to_target", "seconds"]  # wall-clock: differs run to run
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def cli(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def lrgym_process(*args) -> subprocess.Popen:
    """``python -m lrgym ARGS`` in its own process (output in ``OUT.log`` beside ``--out``)."""
    out = Path(args[args.index("--out") + 1])
    log = open(out.parent / f"{out.name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "lrgym", *map(str, args)], stdout=log, stderr=subprocess.STDOUT
    )


def recorded(out: Path) -> int:
    path = out / JOURNAL
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_for(condition, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the process ended early (code {process.returncode})")
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.05)


def descendants(pid: int) -> set[int]:
    """Live (not zombie) descendants of ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def pool_workers(pid: int) -> set[int]:
    """Live descendants of ``pid`` that multiprocessing started (workers, resource tracker)."""
    found = set()
    for child in alive(descendants(pid)):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing" in cmdline:
            found.add(child)
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            out.add(pid)
    return out


def frames_without_timing(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = pd.read_csv(out / "runs.csv").drop(columns=TIMING[:2])
    curves = pd.read_csv(out / "curves.csv").drop(columns=TIMING[2:])
    return runs, curves


def no_temp_files(out: Path) -> bool:
    return not [p for p in out.rglob(".*") if ".tmp" in p.name]


# --- compare: kill -9 mid-grid, then resume -------------------------------------------------


@linux_only
def test_kill_9_mid_grid_keeps_finished_runs_and_resume_equals_uninterrupted(tmp_path):
    reference = tmp_path / "reference"
    assert cli("compare", *GRID, "--total-steps", 100, "--out", reference).exit_code == 0

    out = tmp_path / "killed"
    process = lrgym_process("compare", *GRID, "--total-steps", 100, "--workers", 2, "--out", out)
    wait_for(lambda: recorded(out) >= 2, 120, process)
    workers = descendants(process.pid)
    process.kill()  # SIGKILL: no handler runs
    process.wait()
    kept = (out / JOURNAL).read_text().splitlines()
    assert 2 <= len(kept) < 6, "the grid should have been cut mid-way"
    wait_for(lambda: not alive(workers), 10)  # no worker outlives its parent

    result = cli("compare", *GRID, "--total-steps", 100, "--out", out)  # the same command
    assert result.exit_code == 0, result.output
    assert f"{len(kept)} of 6 runs already recorded" in " ".join(result.output.split())
    assert (out / JOURNAL).read_text().splitlines()[: len(kept)] == kept  # nothing rewritten
    assert recorded(out) == 6
    for got, expected in zip(
        frames_without_timing(out), frames_without_timing(reference), strict=True
    ):
        pd.testing.assert_frame_equal(got, expected)
    assert (out / "summary.md").read_text().splitlines()[:3] == (
        (reference / "summary.md").read_text().splitlines()[:3]
    )
    assert no_temp_files(out)


def test_torn_journal_line_is_dropped_and_rerun(tmp_path):
    out = tmp_path / "torn"
    args = ["compare", "--tasks", XGB, "--schedulers", "constant,cosine", "--seeds", 1]
    assert cli(*args, "--total-steps", 20, "--out", out).exit_code == 0
    lines = (out / JOURNAL).read_bytes().splitlines(keepends=True)
    (out / JOURNAL).write_bytes(lines[0] + lines[1][: len(lines[1]) // 2])  # a kill mid-append
    (out / ".runs.abcd1234.tmp.csv").write_text("left by a kill")
    result = cli(*args, "--total-steps", 20, "--out", out)
    assert result.exit_code == 0, result.output
    assert "1 of 2 runs already recorded" in " ".join(result.output.split())
    assert len(pd.read_csv(out / "runs.csv")) == 2
    assert no_temp_files(out)


@linux_only
def test_sigterm_leaves_no_process_behind(tmp_path):
    """(SIGKILL: see the kill -9 test above.)"""
    out = tmp_path / "term"
    process = lrgym_process("compare", *GRID, "--total-steps", 300, "--workers", 2, "--out", out)
    wait_for(lambda: recorded(out) >= 1, 120, process)
    spawned = descendants(process.pid)
    assert len(pool_workers(process.pid)) >= 2
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) != 0
    wait_for(lambda: not alive(spawned), 10)
    assert recorded(out) >= 1  # what finished is kept
    assert no_temp_files(out)


# --- train: run folders ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished tiny run with checkpoints at 64 and 128 timesteps."""
    out = tmp_path_factory.mktemp("run") / "run"
    train(tiny_config(out), progress_bar=False)
    return out


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(run_dir, dst)
    return dst


def test_new_run_refuses_a_non_empty_folder_and_overwrite_starts_clean(run_dir, tmp_path):
    out = copy_run(run_dir, tmp_path)
    card = (out / CARD).read_text()
    with pytest.raises(RunFolderError, match="--resume.*--overwrite"):
        train(tiny_config(out, total_timesteps=64), progress_bar=False)
    assert (out / CARD).read_text() == card  # nothing touched

    stray = tmp_path / "notes"
    stray.mkdir()
    (stray / "thesis.tex").write_text("mine")
    with pytest.raises(RunFolderError, match="thesis.tex"):
        train(tiny_config(stray), overwrite=True, progress_bar=False)
    assert (stray / "thesis.tex").read_text() == "mine"

    result = cli(
        "train", "--config", out / CONFIG, "--out", out, "--total-timesteps", 64, "--no-progress"
    )
    assert result.exit_code == 2 and "--overwrite" in " ".join(result.output.split())


def test_overwrite_replaces_the_earlier_run(run_dir, tmp_path):
    out = copy_run(run_dir, tmp_path)
    train(tiny_config(out, total_timesteps=64), overwrite=True, progress_bar=False)
    card = json.loads((out / CARD).read_text())
    assert card["total_timesteps"] == 64 and card["selected_timesteps"] <= 64
    assert not (out / CHECKPOINTS / "rl_model_128_steps.zip").exists()  # the old run is gone


def test_tampered_checkpoint_is_refused_and_planted_pickles_never_load(run_dir, tmp_path):
    out = copy_run(run_dir, tmp_path)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.write_text, (marker, "code ran"))

    import pickle

    for steps in (64, 128):  # changed after lrgym wrote them: the manifest refuses them
        tensors, meta = checkpoint_names(steps)
        text = (out / CHECKPOINTS / meta).read_text()
        (out / CHECKPOINTS / meta).write_text(text.replace('"n_epochs": 2', '"n_epochs": 9'))
    with pytest.raises(RunFolderError, match="no checkpoint .* verifies"):
        train(tiny_config(out, total_timesteps=192), resume=True, progress_bar=False)

    # pickles planted under the names earlier lrgym versions used are never opened
    fresh = tmp_path / "fresh"
    shutil.copytree(run_dir, fresh)
    for name in ("rl_model_192_steps.zip", "rl_model_vecnormalize_192_steps.pkl"):
        (fresh / CHECKPOINTS / name).write_bytes(pickle.dumps(Exploit()))
    for folder in (fresh, fresh / BEST):
        for name in ("ppo.zip", "vecnormalize.pkl"):
            (folder / name).write_bytes(pickle.dumps(Exploit()))
    # and a best/ whose training state was changed is dropped on resume, never loaded
    tensors, _ = state_files(TRAINING)
    (fresh / BEST / tensors).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="best"):
        train(tiny_config(fresh, total_timesteps=192), resume=True, progress_bar=False)
    assert not marker.exists()
    lrgym.load_agent(fresh)


def test_forged_manifest_gives_a_clean_error_not_code(run_dir, tmp_path):
    """Whoever can write the folder can rewrite the manifest; the files are still data."""
    from lrgym.io import manifest

    out = copy_run(run_dir, tmp_path)
    tensors, meta = checkpoint_names(128)
    (out / CHECKPOINTS / meta).write_text('{"format": "lrgym-training-state", "version": 1}')
    (out / CHECKPOINTS / tensors).write_bytes(b"\x00" * 64)
    manifest.record(out / CHECKPOINTS, (tensors, meta))  # the forger's manifest
    with pytest.raises(RunFolderError, match="checkpoint 128"):
        train(tiny_config(out, total_timesteps=192), resume=True, progress_bar=False)


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(run_dir, tmp_path):
    out = copy_run(run_dir, tmp_path)
    tensors, _ = checkpoint_names(128)
    data = (out / CHECKPOINTS / tensors).read_bytes()
    (out / CHECKPOINTS / tensors).write_bytes(data[: len(data) // 2])  # truncated
    with pytest.warns(UserWarning, match="resuming from 64"):
        train(tiny_config(out, total_timesteps=128), resume=True, progress_bar=False)
    assert json.loads((out / CARD).read_text())["total_timesteps"] == 128
    lrgym.load_agent(out)


def test_failed_resume_leaves_config_alone(run_dir, tmp_path):
    out = copy_run(run_dir, tmp_path)
    before = (out / CONFIG).read_text()
    result = cli("train", "--resume", out, "--hparams", "lr,momentum", "--no-progress")
    assert result.exit_code == 2
    assert "hparams" in result.output and "Traceback" not in result.output
    assert (out / CONFIG).read_text() == before
    with pytest.raises(ConfigError, match="decision_interval"):
        train(tiny_config(out, decision_interval=5), resume=True, progress_bar=False)
    assert (out / CONFIG).read_text() == before


def test_resume_equals_uninterrupted_single_env(tmp_path):
    settings = dict(total_timesteps=128, eval_every=50, checkpoint_every=64)
    whole = train(tiny_config(tmp_path / "whole", **settings), progress_bar=False)
    part = tmp_path / "part"  # interrupted after its checkpoint at 64 timesteps
    train(tiny_config(part, **{**settings, "total_timesteps": 64}), progress_bar=False)
    train(tiny_config(part, **settings), resume=True, progress_bar=False)

    a, b = lrgym.load_agent(whole), lrgym.load_agent(part)
    obs = np.random.default_rng(0).uniform(-3, 3, (200, len(lrgym.FEATURES))).astype(np.float32)
    assert np.array_equal(a.policy(obs), b.policy(obs))
    assert a.card.selected_timesteps == b.card.selected_timesteps
    # the whole training state at 128 timesteps is the same: networks, Adam, statistics,
    # last observation, RNG states (all but the episodes' wall-clock times)
    sa = read_training_state(whole / CHECKPOINTS, checkpoint_stem(128))
    sb = read_training_state(part / CHECKPOINTS, checkpoint_stem(128))
    assert sa.tensors.keys() == sb.tensors.keys()
    assert any(k.startswith("optimizer.state.") for k in sa.tensors)
    for key in sa.tensors.keys() - {"ep_info.t"}:
        assert np.array_equal(sa.tensors[key], sb.tensors[key]), key
    assert sa.meta == sb.meta


def test_manifests_beside_checkpoints_best_and_exports(run_dir):
    for folder, names in (
        (run_dir / CHECKPOINTS, checkpoint_names(128)),
        (run_dir / BEST, BEST_FILES),
        (run_dir, state_files(TRAINING)),
    ):
        listed = json.loads((folder / MANIFEST).read_text())["files"]
        assert set(names) <= set(listed), folder


# --- evaluate and cards ---------------------------------------------------------------------


def test_update_card_refuses_shipped_agents(tmp_path):
    card = Path(lrgym.load_agent("default").path) / CARD
    before = card.read_bytes()
    result = cli("evaluate", "--agent", "default", "--update-card", "--out", tmp_path / "e")
    assert result.exit_code == 2 and "copy it first" in " ".join(result.output.split())
    assert card.read_bytes() == before and not (tmp_path / "e").exists()


def test_cards_are_strict_json(run_dir, tmp_path):
    out = copy_run(run_dir, tmp_path)
    text = (out / CARD).read_text()
    assert "NaN" not in text and "Infinity" not in text
    card = lrgym.load_agent(out).card
    card.wall_seconds = float("nan")
    with pytest.raises(ValueError, match="strict JSON"):
        card.save(out)
    assert (out / CARD).read_text() == text
    (out / CARD).write_text(re.sub(r'"wall_seconds": [^,\n]+', '"wall_seconds": NaN', text))
    with pytest.raises(lrgym.AgentLoadError, match="strict JSON"):
        lrgym.load_agent(out)


@pytest.mark.parametrize(
    ("field", "value"),
    [("features", 5), ("action", "x"), ("hparams", [1]), ("obs_layout_version", "1"),
     ("action", {"min_lr": "a"}), ("policy", []), ("tasks", None), ("hparam_specs", 3)],
)  # fmt: skip
def test_wrong_typed_card_fields_are_agent_load_errors(run_dir, tmp_path, field, value):
    out = copy_run(run_dir, tmp_path)
    card = json.loads((out / CARD).read_text())
    card[field] = value
    (out / CARD).write_text(json.dumps(card))
    with pytest.raises(lrgym.AgentLoadError, match="card.json|policy"):
        lrgym.load_agent(out)


# --- train: SIGTERM of a multi-worker run (issue 26) -----------------------------------------


@linux_only
@pytest.mark.parametrize("moment", ["starting", "training"])
def test_sigterm_of_train_with_two_workers_prints_no_worker_traceback(tmp_path, moment):
    """Workers stop without a word when their parent is stopped (a worker's traceback
    after the run stopped, e.g. a BrokenPipe/ConnectionReset in SB3's worker, says
    nothing the user needs), and none outlives it."""
    out = tmp_path / moment
    process = lrgym_process(
        "train", "--tasks", XGB, "--n-envs", 2, "--total-timesteps", 100_000,
        "--n-steps", 64, "--batch-size", 32, "--episode-steps", 100,
        "--decision-interval", 10, "--eval-every", 100_000, "--checkpoint-every", 100_000,
        "--batched", 0, "--out", out, "--no-progress",
    )  # fmt: skip
    log = out.parent / f"{out.name}.log"
    # multiprocessing's helpers (forkserver, resource tracker) and the two env workers
    wait_for(lambda: len(pool_workers(process.pid)) >= 3, 180, process)
    if moment == "training":
        wait_for(lambda: (out / "tb").exists(), 180, process)
        time.sleep(3)
    spawned = descendants(process.pid)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    wait_for(lambda: not alive(spawned), 30)
    time.sleep(0.5)
    text = log.read_text()
    assert "Traceback" not in text and "Error" not in text, text
