"""Property-based checks (hypothesis) of every entry point a user can feed (issue 14).

Each case is drawn with an oracle: a setting is taken from a pool of valid values or a
pool of invalid ones (wrong types, non-finite and out-of-range numbers, empty and
unknown names, bad paths). Then:

* through the CLI (typer's runner): a case with an invalid setting exits with code 2
  and one error message (no traceback) and leaves no file behind; a valid case works,
  writes its complete result and keeps what was in ``--out`` before;
* through the public API (``load_config``, ``LRControlEnv``, ``PolicyScheduler`` and its
  ``load_state_dict``, ``check_initial_lr``, ``grid``, ``load_agent``, user tables): an
  invalid input raises the documented error, a valid one works and stays in range.

Issue 26 adds the files and values users hand in: agent cards (action ranges, 1e400 and
NaN literals), init cards and weights (family options naming paths, types, model size,
NaN/inf weights), suggester files (keys, shapes, NaN/inf), reset options (typos, types),
CSV shapes (empty, header-only, ragged, id or regression label) and ``step(loss=...)``
values, each also as a FIFO, a link to ``/dev/zero`` or a folder where a file is read.
Every example runs under an alarm: one that takes longer than ``LRGYM_FUZZ_HANG_S``
seconds (120) fails as a hang.

Outcomes are counted by class (works, clean error; any traceback, silent acceptance or
lost data fails the test). The default run uses a fixed, derandomised example set per
property (``PROFILES["fast"]``); ``pytest -m fuzz`` runs ten times as many, randomised.
Set ``LRGYM_FUZZ_REPORT=path.json`` to write the counts.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import math
import os
import shutil
import signal
import tempfile
import threading
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from shipped import shipped_agent_dirs
from typer.testing import CliRunner

import lrgym
import lrgym.cli
from lrgym.agents.config import ConfigError, TrainConfig, load_config
from lrgym.core.env import LRControlEnv
from lrgym.core.registration import UnknownTaskError
from lrgym.harness.compare import grid
from lrgym.io.validate import MAX_INITIAL_LR, check_initial_lr
from lrgym.tasks.sources import DataSourceError

R2, ACC = "lrgym/DiabetesXGB-v0", "lrgym/BreastCancerXGB-v0"  # the fastest tasks
TORCH_TASK = "lrgym/DigitsMLP-v0"
EXAMPLES = {  # per property, default run
    "cli_compare": 20,
    "cli_train": 40,
    "config": 150,
    "env": 30,
    "scheduler": 40,
    "state": 60,
    "initial_lr": 100,
    "grid": 60,
    "card": 40,
    "table": 16,
    "agent_card": 40,
    "init_card": 30,
    "suggester": 40,
    "reset": 30,
    "csv": 14,
    "step_loss": 30,
}
PROFILES = {
    "fast": dict(derandomize=True),
    "fuzz": dict(derandomize=False),
}
OUTCOMES: Counter = Counter()


def run_property(name: str, profile: str, strategy, check) -> None:
    """Run ``check(case)`` over ``strategy`` with the profile's example count."""
    count = EXAMPLES[name] * (10 if profile == "fuzz" else 1)

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        **PROFILES[profile],
    )
    @given(strategy)
    def prop(case):
        with no_hang():
            check(case)

    prop()


HANG_SECONDS = float(os.environ.get("LRGYM_FUZZ_HANG_S", "120"))
"""An example that takes longer fails as a hang (e.g. a FIFO read without a check)."""


@contextlib.contextmanager
def no_hang():
    """Fail with TimeoutError if the body runs longer than :data:`HANG_SECONDS` (SIGALRM
    interrupts a blocked ``open`` of a FIFO; main thread, POSIX only)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def hang(signum, frame):
        raise TimeoutError(f"hang: an example ran longer than {HANG_SECONDS:g} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


PROFILE = pytest.mark.parametrize("profile", ["fast", pytest.param("fuzz", marks=pytest.mark.fuzz)])


def count(name: str, outcome: str) -> None:
    OUTCOMES[f"{name}: {outcome}"] += 1


@pytest.fixture(scope="module", autouse=True)
def report_outcomes():
    """Wide error console (one message = one line) and the outcome counts at the end."""
    wide = Console(stderr=True, width=100_000)
    saved, lrgym.cli.err_console = lrgym.cli.err_console, wide
    yield
    lrgym.cli.err_console = saved
    totals = Counter()
    for key, n in OUTCOMES.items():
        totals[key.split(": ")[1]] += n
    summary = {"by property": dict(sorted(OUTCOMES.items())), "total": dict(totals)}
    print("\nfuzz outcomes:", json.dumps(summary, indent=1))
    if os.environ.get("LRGYM_FUZZ_REPORT"):
        Path(os.environ["LRGYM_FUZZ_REPORT"]).write_text(json.dumps(summary, indent=1))


def choose(valid: list, invalid: list):
    """A strategy of (value, is_valid) pairs."""
    return st.one_of(
        st.sampled_from(valid).map(lambda v: (v, True)),
        st.sampled_from(invalid).map(lambda v: (v, False)),
    )


@st.composite
def settings_from(draw, pools: dict[str, tuple[list, list]], max_bad: int = 2):
    """A dict of settings with 0..max_bad invalid ones (and the names of those)."""
    names = list(pools)
    bad = set(draw(st.lists(st.sampled_from(names), max_size=max_bad, unique=True)))
    values = {}
    for name in names:
        valid, invalid = pools[name]
        values[name] = draw(st.sampled_from(invalid if name in bad else valid))
    return values, bad


# --- CLI: compare and evaluate ---------------------------------------------------------------


SKIP = object()  # the option is left out
COMPARE_POOLS = {
    "--tasks": ([R2, ACC], ["", ",", "lrgym/NopeXGB-v0", "DiabetesXGB", "held-outt"]),
    "--schedulers": (
        ["constant", "constant,cosine"],
        ["", ",", "cosin", "hypergradient", "learned:nope", "lr-predictor:/nonexistent.pt"],
    ),
    "--seeds": (["1"], ["0", "-1", "abc", "1.5", "", "1e9x"]),
    "--seed-start": ([SKIP, "0", "7"], ["-1", "x", "2.5"]),
    "--initial-lrs": (
        ["default", "0.05", "default,0.05"],
        ["", ",", "0", "-1e-3", "nan", "inf", "-inf", "1e39", "1e7", "abc", "1e-3,abc", "0x"],
    ),
    "--total-steps": (["8", "12"], ["0", "-5", "abc", "2.5", "", "nan"]),
    "--workers": ([SKIP, "1"], ["0", "-2", "x", "1.5"]),
    "--out": (["new", "existing"], ["file", "under-file", "empty"]),
}
EVALUATE_AGENT = (["copy", "copy-update"], ["nope", "file", "default-update", "broken"])


@pytest.fixture(scope="module")
def agent_copy(tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("agent") / "agent"
    shutil.copytree(shipped_agent_dirs()[0], dst)
    return dst


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def assert_clean_error(result, name: str) -> None:
    text = result.output
    assert "Traceback" not in text, text
    assert result.exit_code == 2, (result.exit_code, text, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("Usage:"):  # click's own usage error (a bad flag value)
        assert sum("Error" in line for line in lines) == 1, text
    else:
        assert len(lines) == 1 and lines[0].startswith("error: "), text
    count(name, "clean error")


def out_path(kind: str, root: Path) -> str:
    if kind == "new":
        return str(root / "out")
    if kind == "existing":
        (root / "out").mkdir()
        (root / "out" / "keep.txt").write_text("keep me")
        return str(root / "out")
    if kind == "file":
        (root / "out").write_text("keep me")
        return str(root / "out")
    if kind == "under-file":
        (root / "file").write_text("keep me")
        return str(root / "file" / "out")
    return ""


@PROFILE
def test_cli_compare_and_evaluate(profile, agent_copy):
    strategy = st.tuples(
        st.sampled_from(["compare", "evaluate"]),
        settings_from(COMPARE_POOLS),
        choose(*EVALUATE_AGENT),
    )
    runner = CliRunner()

    def check(case):
        command, (values, bad), (agent, agent_ok) = case
        root = Path(tempfile.mkdtemp(prefix="lrgym-fuzz-"))
        try:
            args = [command]
            if command == "evaluate":
                bad = bad - {"--schedulers"}  # not an evaluate option: left out below
            valid = not bad
            for flag, value in values.items():
                if flag == "--out":
                    value = out_path(value, root)
                if flag == "--schedulers" and command == "evaluate":
                    continue  # evaluate runs the agent and every baseline
                if value is not SKIP:
                    args += [flag, value]
            if command == "evaluate":
                valid = valid and agent_ok
                if agent.startswith("copy"):
                    args += ["--agent", str(agent_copy)]
                elif agent == "file":
                    (root / "agent.txt").write_text("not an agent")
                    args += ["--agent", str(root / "agent.txt")]
                elif agent == "broken":
                    broken = root / "broken"
                    shutil.copytree(agent_copy, broken)
                    (broken / "card.json").write_text('{"name": 5}')
                    args += ["--agent", str(broken)]
                else:
                    args += ["--agent", "default" if agent.startswith("default") else "nope"]
                if agent.endswith("update"):
                    args.append("--update-card")
            before = snapshot(root)
            result = runner.invoke(lrgym.cli.app, args)
            assert "Traceback" not in result.output, result.output
            if not valid:
                assert_clean_error(result, "cli compare/evaluate")
                assert snapshot(root) == before, "an error left a file behind or lost one"
                return
            assert result.exit_code == 0, (args, result.output, result.exception)
            out = Path(args[args.index("--out") + 1])
            for name in ("runs.csv", "curves.csv", "summary.md", "runs.jsonl"):
                assert (out / name).is_file(), name
            assert not [p for p in out.rglob(".*") if ".tmp" in p.name]
            for name, data in before.items():
                if not name.startswith("broken"):
                    assert (root / name).read_bytes() == data, f"{name} was changed"
            if "--update-card" in args:
                lrgym.load_agent(agent_copy)  # the updated card still loads
            count("cli compare/evaluate", "works")
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run_property("cli_compare", profile, strategy, check)


# --- CLI: train (every case invalid: refused before anything is written) -------------------


TRAIN_BASE = [
    "train", "--tasks", TORCH_TASK, "--total-timesteps", "64", "--n-envs", "1", "--n-steps", "32",
    "--batch-size", "16", "--episode-steps", "40", "--decision-interval", "10", "--no-progress",
]  # fmt: skip
TRAIN_BAD = [
    ("--seed", "-1", "seed"),
    ("--seed", "99999999999", "seed"),
    ("--n-steps", "1", "n_steps"),
    ("--batch-size", "1", "batch_size"),
    ("--batch-size", "64", "batch_size"),
    ("--learning-rate", "nan", "learning_rate"),
    ("--learning-rate", "inf", "learning_rate"),
    ("--learning-rate", "-1", "learning_rate"),
    ("--learning-rate", "0", "learning_rate"),
    ("--ent-coef", "nan", "ent_coef"),
    ("--ent-coef", "-inf", "ent_coef"),
    ("--gamma", "0", "gamma"),
    ("--gamma", "1.5", "gamma"),
    ("--gamma", "nan", "gamma"),
    ("--total-timesteps", "0", "total_timesteps"),
    ("--total-timesteps", "-3", "total_timesteps"),
    ("--total-timesteps", "abc", "total-timesteps"),
    ("--n-envs", "-1", "n_envs"),
    ("--n-envs", "1.5", "n-envs"),
    ("--decision-interval", "0", "decision_interval"),
    ("--decision-interval", "-1", "decision_interval"),
    ("--decision-interval", "1000", "decision_interval"),
    ("--episode-steps", "0", "episode_steps"),
    ("--episode-steps", "5", "episode_steps"),
    ("--default-lr-share", "2", "default_lr_share"),
    ("--default-lr-share", "nan", "default_lr_share"),
    ("--eval-every", "0", "eval_every"),
    ("--checkpoint-every", "-5", "checkpoint_every"),
    ("--hparams", "nope", "hparams"),
    ("--hparams", "lr,max_depth", "hparams"),
    ("--drop-features", "nope", "drop_features"),
    ("--tasks", "", "tasks"),
    ("--tasks", "lrgym/WineMLP-v0", "WineMLP"),
    ("--tasks", "lrgym/Nope-v0", "Nope"),
    ("--out", "FILE", "out"),
    ("--out", "UNDER_FILE", "out"),
    ("--out", "", "out"),
    ("--out", "NON_EMPTY", "--overwrite"),
    ("--config", "DIR", "config"),
    ("--config", "MISSING", "config"),
    ("--resume", "EMPTY_DIR", "config.yaml"),
    ("--resume", "FILE", "config.yaml"),
]
YAML_BAD = [
    ("n_envs", 1.5),
    ("n_envs", "two"),
    ("ppo", [1, 2]),
    ("ppo", {"learning_rate": "abc"}),
    ("ppo", {"learning_rate": ".nan"}),
    ("ppo", {"net_arch": "abc"}),
    ("ppo", {"net_arch": [64, 0]}),
    ("ppo", {"n_step": 5}),
    ("seed", "abc"),
    ("seed", True),
    ("seed", -4),
    ("tasks", 5),
    ("tasks", []),
    ("val_lrs", [math.inf]),
    ("ppo", {"learning_rate": math.nan}),
    ("val_lrs", []),
    ("val_lrs", ["1e-3", "x"]),
    ("hparams", None),
    ("name", 7),
    ("out", ["a"]),
    ("total_timestep", 5),
    ("decision_interval", 2.7),
    ("episode_steps", 0),
]
YAML_BASE = {
    "tasks": [TORCH_TASK], "total_timesteps": 64, "n_envs": 1, "episode_steps": 40,
    "decision_interval": 10, "ppo": {"n_steps": 32, "batch_size": 16},
}  # fmt: skip
YAML_OK = [("ppo", {"learning_rate": "3e-4"}), ("val_lrs", ["1e-3"]), ("seed", 3), ("name", "x")]


def resolve_train_value(value: str, root: Path) -> str:
    if value in ("FILE", "UNDER_FILE"):
        (root / "afile").write_text("keep me")
        return str(root / "afile") + ("/sub" if value == "UNDER_FILE" else "")
    if value == "NON_EMPTY":
        (root / "used").mkdir()
        (root / "used" / "card.json").write_text("{}")
        return str(root / "used")
    if value in ("DIR", "EMPTY_DIR"):
        (root / "adir").mkdir()
        return str(root / "adir")
    if value == "MISSING":
        return str(root / "missing.yaml")
    return value


@PROFILE
def test_cli_train_refuses_before_writing(profile):
    strategy = st.one_of(
        st.lists(st.sampled_from(TRAIN_BAD), min_size=1, max_size=2, unique_by=lambda b: b[0]),
        st.tuples(
            st.lists(st.sampled_from(YAML_BAD), min_size=1, max_size=2, unique_by=lambda b: b[0]),
            st.lists(st.sampled_from(YAML_OK), max_size=2, unique_by=lambda b: b[0]),
        ),
    )
    runner = CliRunner()

    def check(case):
        root = Path(tempfile.mkdtemp(prefix="lrgym-fuzz-"))
        try:
            if isinstance(case, tuple):  # a YAML config with bad values (no flags over them)
                bad, ok = case
                import yaml

                values = {**YAML_BASE, "out": str(root / "agent"), **dict(ok), **dict(bad)}
                (root / "cfg.yaml").write_text(yaml.safe_dump(values))
                args = ["train", "--config", str(root / "cfg.yaml"), "--no-progress"]
                names = [k for k, _ in bad]
            else:
                args, names = list(TRAIN_BASE), []
                for flag, value, key in case:
                    if flag in args:  # replace the base value (list options accumulate)
                        i = args.index(flag)
                        del args[i : i + 2]
                    args += [flag, resolve_train_value(value, root)]
                    names.append(key)
                if "--out" not in args:
                    args += ["--out", str(root / "agent")]
            before = snapshot(root)
            result = runner.invoke(lrgym.cli.app, args)
            assert_clean_error(result, "cli train")
            assert any(n in result.output for n in names), (names, result.output)
            assert snapshot(root) == before, "train wrote or lost a file before refusing"
            assert not (root / "agent").exists()
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run_property("cli_train", profile, strategy, check)


# --- API: load_config -------------------------------------------------------------------------

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.sampled_from([0.5, 2.7, 3.0, 1e-4, -1.0, math.nan, math.inf, -math.inf, 1e300]),
    st.sampled_from(["3e-4", "1e-3", "abc", "", "nan", "inf", "7", "lr", "meta-train"]),
    st.lists(st.sampled_from([1, 64, "lr", "x", 1e-3, math.nan, None]), max_size=3),
    st.dictionaries(
        st.sampled_from(["learning_rate", "n_steps", "bogus"]), st.integers(), max_size=2
    ),
)
CONFIG_KEYS = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "ppo"]


def assert_canonical(cfg: TrainConfig) -> None:
    """No silently accepted value: every field in its type and range."""
    ints = dict(total_timesteps=1, n_envs=1, seed=0, checkpoint_every=1, eval_every=1)
    for key, low in ints.items():
        value = getattr(cfg, key)
        assert type(value) is int and value >= low, (key, value)
    for key in ("decision_interval", "episode_steps"):
        value = getattr(cfg, key)
        assert value is None or (type(value) is int and value >= 1), (key, value)
    assert all(type(x) is float and 0 < x < math.inf for x in cfg.val_lrs) and cfg.val_lrs
    assert type(cfg.default_lr_share) is float and 0 <= cfg.default_lr_share <= 1
    for key in ("tasks", "hparams", "drop_features"):
        assert all(isinstance(x, str) and x for x in getattr(cfg, key)), key
    assert cfg.tasks and cfg.hparams and isinstance(cfg.name, str) and isinstance(cfg.out, str)
    ppo = cfg.ppo
    for key in ("learning_rate", "gamma", "gae_lambda", "clip_range", "ent_coef"):
        value = getattr(ppo, key)
        assert type(value) is float and math.isfinite(value), (key, value)
    for key in ("n_steps", "batch_size", "n_epochs"):
        assert type(getattr(ppo, key)) is int and getattr(ppo, key) >= 1
    rollout = ppo.n_steps * cfg.n_envs * max(cfg.batched, 1)  # batched: K runs per env
    assert ppo.batch_size >= 2 and rollout >= ppo.batch_size
    assert all(type(w) is int and w >= 1 for w in ppo.net_arch) and ppo.net_arch
    json.dumps(cfg.to_dict(), allow_nan=False)  # cards are strict JSON


@PROFILE
def test_load_config_values(profile):
    keys = st.sampled_from([*CONFIG_KEYS, "ppo", "nonsense"])
    strategy = st.dictionaries(keys, ANY_VALUE, min_size=1, max_size=3)

    def check(overrides):
        try:
            cfg = load_config(None, **overrides)
        except ConfigError as exc:
            assert "\n" not in str(exc)
            named = [k for k in overrides if k in str(exc) or k == "ppo"]
            assert named or "tasks" in str(exc) or "batch_size" in str(exc), str(exc)
            count("api load_config", "clean error")
            return
        assert_canonical(cfg)
        assert load_config(None, **cfg.to_dict()).to_dict() == cfg.to_dict()  # round trip
        count("api load_config", "works")

    run_property("config", profile, strategy, check)


# --- API: the environment ---------------------------------------------------------------------

WHOLE_OK = [None, 1, 5, 3.0, "4"]
WHOLE_BAD = [0, -1, 2.7, math.nan, math.inf, "abc", "", True, [3]]


@PROFILE
def test_env_settings_and_actions(profile):
    pools = {
        "decision_interval": (WHOLE_OK, WHOLE_BAD),
        "total_steps": ([None, 10, 20.0], [0, -10, 2.5, math.nan, "x", False]),
        "divergence_factor": ([3.0, 1.5, 100], [math.nan, -1.0, 0.0, math.inf, "a", None]),
        "divergence_penalty": ([3.0, 0.0, 1], [math.nan, -1.0, math.inf, "a", None]),
    }
    strategy = st.tuples(
        settings_from(pools),
        st.lists(
            st.sampled_from([0.0, 1.0, -1.0, 5.0, -1e9, math.nan, math.inf, -math.inf]),
            min_size=1,
            max_size=3,
        ),
    )

    def check(case):
        (kwargs, bad), actions = case
        info = lrgym.make_task(R2).info
        k, t = kwargs["decision_interval"], kwargs["total_steps"]
        kk = info.decision_interval if k is None else k
        tt = info.total_steps if t is None else t
        valid = not bad and float(kk) <= float(tt)
        try:
            env = LRControlEnv(R2, **kwargs)
        except ValueError as exc:
            assert not valid, f"refused a valid setting: {exc}"
            assert "\n" not in str(exc)
            count("api env", "clean error")
            return
        assert valid, f"accepted {kwargs}"
        obs, _ = env.reset(seed=0)
        for a in actions:
            obs, reward, done, _, info_ = env.step(np.array([a], dtype=np.float32))
            assert env.observation_space.contains(obs) and math.isfinite(reward)
            assert math.isfinite(info_["lr"]) and info_["lr"] > 0
            if done:
                break
        env.close()
        count("api env", "works")

    run_property("env", profile, strategy, check)


@PROFILE
def test_check_initial_lr(profile):
    strategy = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-10, 10**40),
        st.sampled_from(["1e-3", "abc", "", None, True, [1e-3], "1e39"]),
    )

    def check(value):
        try:
            lr = float(value) if not isinstance(value, bool | list | type(None)) else None
        except ValueError:
            lr = None
        valid = lr is not None and math.isfinite(lr) and 0 < lr <= MAX_INITIAL_LR
        try:
            got = check_initial_lr(value)
        except ValueError:
            assert not valid
            count("api initial LR", "clean error")
            return
        assert valid and got == lr
        count("api initial LR", "works")

    run_property("initial_lr", profile, strategy, check)


# --- API: PolicyScheduler and its state -------------------------------------------------------


@pytest.fixture(scope="module")
def agent():
    return lrgym.load_agent("default")


def model_and_optimizer(lr):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return model, torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9), lr


LOSSES = st.lists(
    st.sampled_from([0.5, 1.0, 2.0, math.nan, math.inf, -math.inf, None, 1e30, 0.0]),
    min_size=1,
    max_size=14,
)


@PROFILE
@pytest.mark.filterwarnings("ignore:PolicyScheduler. no loss was fed")
def test_policy_scheduler_settings_and_losses(profile, agent):
    pools = {
        "lr": ([1e-3, 0.1, 2], [0.0, -1e-3, math.nan, math.inf]),
        "total_steps": ([40, 5.0, "100"], [0, -1, 2.5, math.nan, math.inf, "x", None, True]),
        "decision_interval": ([5, 1], [0, -2, 1.5, math.nan, "k"]),
        "min_lr": ([None, 1e-5], [0.0, -1.0, math.nan, "a"]),
    }
    strategy = st.tuples(settings_from(pools), LOSSES)

    def check(case):
        (kwargs, bad), losses = case
        kwargs = dict(kwargs)
        lr = kwargs.pop("lr")
        model, opt, _ = model_and_optimizer(lr)
        for g in opt.param_groups:
            g["lr"] = lr
        try:
            sched = lrgym.PolicyScheduler(opt, agent, **kwargs)
        except ValueError as exc:
            assert bad, f"refused a valid setting: {exc}"
            count("api PolicyScheduler", "clean error")
            return
        assert not bad, f"accepted {kwargs} with LR {lr}"
        low = sched.action_map.min_lr
        for loss in losses:
            sched.step(loss=loss)
            now = opt.param_groups[0]["lr"]
            assert math.isfinite(now) and low <= now <= sched.action_map.max_lr
        count("api PolicyScheduler", "works")

    run_property("scheduler", profile, strategy, check)


def _state_paths(state, prefix=()):
    for key, value in state.items():
        if isinstance(value, dict):
            yield from _state_paths(value, (*prefix, key))
        else:
            yield (*prefix, key)


def plain(state):
    """A state dict as JSON text (tensors as lists), to compare two states."""
    return json.dumps(state, default=lambda v: v.tolist(), sort_keys=True)


STATE_BAD = ["x", None, -1, math.nan, math.inf, -math.inf, 0, [], {}, True, 2.5, 1e9]


@PROFILE
def test_load_state_dict_validates(profile, agent):
    model, opt, _ = model_and_optimizer(1e-2)
    sched = lrgym.PolicyScheduler(opt, agent, total_steps=60, decision_interval=5)
    for loss in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4):
        sched.step(loss=loss)
    saved = sched.state_dict()
    paths = list(_state_paths(saved)) + [("missing",)]
    strategy = st.tuples(st.sampled_from(paths), st.sampled_from(STATE_BAD))

    def check(case):
        path, value = case
        state = copy.deepcopy(saved)  # tensors (update references) stay tensors
        if path == ("missing",):
            state.pop("decisions")
        else:
            target = state
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        _, fresh_opt, _ = model_and_optimizer(1e-2)
        fresh = lrgym.PolicyScheduler(fresh_opt, agent, total_steps=60, decision_interval=5)
        before = plain(fresh.state_dict())
        try:
            fresh.load_state_dict(state)
        except ValueError:
            assert plain(fresh.state_dict()) == before, "a refused state changed it"
            count("api load_state_dict", "clean error")
            return
        for loss in (0.5, math.nan, 0.4, 0.3, 0.2, 0.3, 0.2, 0.1, 0.2, 0.1, 0.1):
            fresh.step(loss=loss)  # the next decisions must work
            assert math.isfinite(fresh_opt.param_groups[0]["lr"])
        count("api load_state_dict", "works")

    run_property("state", profile, strategy, check)


# --- API: grid, cards, user tables ------------------------------------------------------------


@PROFILE
def test_grid(profile):
    names = st.lists(st.sampled_from([R2, ACC, "", "lrgym/Nope-v0", "held-out", 5]), max_size=3)
    scheds = st.lists(st.sampled_from(["constant", "cosine", "cosin", "hypergradient", ""]))
    strategy = st.tuples(
        names,
        scheds,
        st.lists(st.integers(-2, 3), max_size=3),
        st.lists(st.sampled_from([None, 1e-3, 0.0, math.nan, 1e39, "x", -1]), max_size=3),
    )

    def check(case):
        tasks, schedulers, seeds, lrs = case
        try:
            specs = grid(tasks, schedulers, seeds, lrs or (None,))
        except (ValueError, TypeError, KeyError) as exc:
            documented = isinstance(exc, ValueError | UnknownTaskError)
            assert documented, f"{type(exc).__name__}: {exc}"
            count("api grid", "clean error")
            return
        for s in specs:
            assert math.isfinite(s.initial_lr) and 0 < s.initial_lr <= MAX_INITIAL_LR
        count("api grid", "works")

    run_property("grid", profile, strategy, check)


CARD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(["x", "", "lr"]),
    st.lists(st.sampled_from(["lr", 1, None]), max_size=2),
    st.dictionaries(st.sampled_from(["min_lr", "max_lr", "x"]), st.integers(0, 2), max_size=2),
)


@PROFILE
def test_load_agent_with_damaged_card(profile, agent_copy):
    card = json.loads((agent_copy / "card.json").read_text())
    fields = sorted(card)
    strategy = st.dictionaries(st.sampled_from([*fields, "extra"]), CARD_VALUES, max_size=2)
    obs = np.random.default_rng(0).uniform(-3, 3, len(lrgym.FEATURES))

    def check(changes):
        root = Path(tempfile.mkdtemp(prefix="lrgym-fuzz-"))
        try:
            path = root / "agent"
            shutil.copytree(agent_copy, path)
            (path / "card.json").write_text(json.dumps({**card, **changes}))
            try:
                loaded = lrgym.load_agent(path)
            except lrgym.AgentLoadError as exc:
                assert "\n" not in str(exc)
                count("api load_agent", "clean error")
                return
            action = loaded.act(obs)
            assert np.all(np.isfinite(action)) and np.all(np.abs(action) <= 1)
            count("api load_agent", "works")
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run_property("card", profile, strategy, check)


TABLE_DAMAGE = ["garbage", "rows", "all-nan", "inf", "one-class", "three-classes", "target-gap"]


def titanic_like(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "PassengerId": np.arange(n),
            "Name": [f"p{i}" for i in range(n)],
            "Ticket": ["t"] * n,
            "Cabin": [None] * n,
            "Survived": np.tile([0, 1], n // 2),
            "Pclass": rng.integers(1, 4, n),
            "Sex": rng.choice(["m", "f"], n),
            "Age": rng.uniform(1, 80, n).round(),
            "SibSp": rng.integers(0, 3, n),
            "Parch": rng.integers(0, 3, n),
            "Fare": rng.uniform(5, 100, n).round(2),
            "Embarked": rng.choice(["S", "C"], n),
        }
    )


@PROFILE
def test_user_tables(profile):
    strategy = st.tuples(
        st.lists(st.sampled_from(TABLE_DAMAGE), max_size=2, unique=True),
        st.sampled_from(["lrgym/TitanicMLP-v0", "lrgym/TitanicXGB-v0"]),
        st.integers(0, 39),
    )
    counter = itertools.count()

    def check(case):
        damage, task_id, row = case
        frame = titanic_like()
        if "garbage" in damage:
            frame["Age"] = frame["Age"].astype(object)
            frame.loc[row, "Age"] = "n/a?"
        if "all-nan" in damage:
            frame["Fare"] = np.nan
        if "inf" in damage:
            frame.loc[row, "Fare"] = np.inf
        if "three-classes" in damage:
            frame.loc[:5, "Survived"] = 2
        if "one-class" in damage:
            frame["Survived"] = 1
        if "target-gap" in damage:
            frame["Survived"] = frame["Survived"].astype(float)
            frame.loc[row, "Survived"] = np.nan
        if "rows" in damage:
            frame = frame.iloc[: 1 + row % 3]
        valid = not damage or (damage == ["three-classes"] and "MLP" in task_id)
        root = Path(tempfile.mkdtemp(prefix="lrgym-fuzz-"))
        try:
            path = root / f"table{next(counter)}.csv"
            frame.to_csv(path, index=False)
            try:
                task = lrgym.make_task(task_id, source=str(path))
                trainee = task.build(0, task.info.default_lr)
            except DataSourceError as exc:
                assert not valid, f"refused a valid table: {exc}"
                assert str(path) in str(exc)
                count("api user tables", "clean error")
                return
            assert valid, f"accepted a damaged table: {damage}"
            trainee.train(2)
            trainee.close()
            count("api user tables", "works")
        finally:
            shutil.rmtree(root, ignore_errors=True)

    pytest.importorskip("datasets")
    run_property("table", profile, strategy, check)


# --- issue 26: files and inputs checked at the door ------------------------------------------
#
# Each property below writes a file (or passes a value) drawn from a pool of valid and a pool
# of invalid variants. An invalid one must raise the documented error type with a message
# (never another exception, never a hang: FIFOs and /dev/zero are among the variants); a
# valid one must load and work.


def file_variant(path: Path, kind: str, text: str) -> None:
    """Write ``text`` to ``path``, or put a FIFO, a link to /dev/zero or a folder there."""
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_text(text)


FILE_KINDS = ["fifo", "folder"] + ([] if os.environ.get("LRGYM_FUZZ_NO_DEV_ZERO") else ["dev-zero"])
"""Non-regular variants of any card or weights file: refused, and never read. Set
``LRGYM_FUZZ_NO_DEV_ZERO=1`` to leave out /dev/zero when running these tests against code
without the checks (it would read /dev/zero until memory runs out)."""

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero")


def replace_text(card_text: str, key: str, raw: str) -> str:
    """``card_text`` with the JSON value of ``"key": ...`` (a number) replaced by ``raw``
    (e.g. ``1e400`` or ``NaN``, which json.dumps cannot write)."""
    import re

    return re.sub(rf'("{key}":\s*)[^,}}\n]+', lambda m: m.group(1) + raw, card_text, count=1)


AGENT_ACTION = {
    "max_log2_step": (["1.0", "0.5", "2"], ["-1", "0", "1e6", "1e400", "NaN", '"1"', "true"]),
    "min_lr": (["1e-07", "1e-06"], ["-1", "0", "20", "NaN", "1e400", "null"]),
    "max_lr": (["10.0", "1.0"], ["1e400", "-1", "Infinity", "1e-08", '"x"']),
}


@PROFILE
@needs_fifo
def test_agent_card_values_and_file_kinds(profile, agent_copy):
    """Card action values are range-checked at load (a negative step, min_lr >= max_lr,
    1e400 ...) and a card that is not a regular file is refused without being read."""
    text = (agent_copy / "card.json").read_text()
    strategy = st.tuples(
        settings_from(AGENT_ACTION), st.sampled_from(["file"] * 4 + FILE_KINDS + ["array"])
    )
    obs = np.random.default_rng(0).uniform(-3, 3, len(lrgym.FEATURES))

    def check(case):
        (values, bad), kind = case
        valid = not bad and kind == "file"
        root = Path(tempfile.mkdtemp(prefix="lrgym-fuzz-"))
        try:
            path = root / "agent"
            shutil.copytree(agent_copy, path)
            card = text
            for key, raw in values.items():
                card = replace_text(card, key, raw)
            file_variant(path / "card.json", kind, "[1, 2]" if kind == "array" else card)
            try:
                loaded = lrgym.load_agent(path)
            except lrgym.AgentLoadError as exc:
                assert not valid, f"refused a valid card: {exc}"
                assert "\n" not in str(exc) and "card.json" in str(exc)
                count("api agent card", "clean error")
                return
            assert valid, f"accepted {values} ({kind})"
            action = loaded.act(obs)
            assert np.all(np.isfinite(action)) and np.all(np.abs(action) <= 1)
            assert loaded.action_map.max_log2_step > 0
            assert 0 < loaded.action_map.min_lr < loaded.action_map.max_lr < math.inf
            count("api agent card", "works")
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run_property("agent_card", profile, strategy, check)


def test_load_agent_wrong_argument_type():
    for value in (5, None, 1.5, ["default"]):
        with pytest.raises(TypeError, match="load_agent takes"):
            lrgym.load_agent(value)


INIT_DAMAGE = {
    "valid": None,
    "path-data": ("family_options", {"data": "/etc/passwd"}),
    "path-cache": ("family_options", {"cache_dir": "/tmp/elsewhere"}),
    "path-value": ("family_options", {"source": "../../secret"}),
    "not-scalar-option": ("family_options", {"k_shot": [1, 2]}),
    "name-option": ("family_options", {"encoder": "minilm"}),  # a name, not a path: fine
    "missing-model": ("model", ...),
    "model-kind": ("model", {"kind": "rnn"}),
    "model-huge": ("model", {"hidden": [10**9, 10**9]}),
    "model-zero": ("model", {"n_out": 0}),
    "iteration-text": ("selected_iteration", "x"),
    "seconds-negative": ("wall_seconds", -1),
    "history-ragged": ("val_history", [[1, 0.5], [2]]),
    "unknown-key": ("surprise", 1),
    "future-version": ("version", 99),
    "wrong-format": ("format", "other"),
    "evaluation-text": ("evaluation", "oops"),
}
INIT_FILES = ["ok", "ok", "ok", "array", "not-json", "weights-nan", "weights-inf", "weights-shape"]


@PROFILE
@needs_fifo
def test_init_cards_and_weights(profile):
    """Init cards: known keys, types, finite numbers, a sane model, and family_options that
    never name a path; NaN/inf weights refused naming the file."""
    from safetensors.torch import load_file, save_file

    from lrgym.meta_init.checkpoint import InitLoadError, load_init, read_init, resolve_init

    shipped = resolve_init("meta-init-digits")
    card = json.loads((shipped / "card.json").read_text())
    weights = load_file(str(shipped / "init.safetensors"))
    strategy = st.tuples(
        st.sampled_from([*sorted(INIT_DAMAGE), "valid", "valid", "valid", "name-option"]),
        st.sampled_from(INIT_FILES + FILE_KINDS),
    )

    def check(case):
        damage, kind = case
        valid = damage in ("valid", "name-option") and kind == "ok"
        root = Path(tempfile.mkdtemp(prefix="lrgym-fuzz-"))
        try:
            path = root / "init"
            shutil.copytree(shipped, path)
            data = json.loads(json.dumps(card))
            if INIT_DAMAGE[damage] is not None:
                key, value = INIT_DAMAGE[damage]
                if value is ...:
                    data.pop(key)
                elif isinstance(value, dict) and key == "model":
                    data[key] = {**data[key], **value}
                else:
                    data[key] = value
            text = json.dumps(data)
            if kind == "array":
                text = "[1, 2]"
            elif kind == "not-json":
                text = text[: len(text) // 2]
            file_variant(path / "card.json", kind if kind in FILE_KINDS else "file", text)
            if kind.startswith("weights-"):
                tensors = {k: v.clone() for k, v in weights.items()}
                first = sorted(tensors)[0]
                if kind == "weights-shape":
                    tensors[first] = torch.zeros(3, 3)
                else:
                    tensors[first].view(-1)[0] = math.nan if kind == "weights-nan" else math.inf
                save_file(tensors, str(path / "init.safetensors"))
                valid = False
            try:
                read_init(path)
                model = load_init(path)
            except InitLoadError as exc:
                assert not valid, f"refused a valid init: {exc}"
                assert str(path) in str(exc) or "init" in str(exc)
                if damage.startswith("path-") and kind == "ok":
                    assert "path" in str(exc) and "command line" in str(exc)
                count("api init card", "clean error")
                return
            assert valid, f"accepted {damage} ({kind})"
            x = torch.randn(2, *card["model"]["input_shape"])
            assert torch.isfinite(model(x)).all()
            count("api init card", "works")
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run_property("init_card", profile, strategy, check)


SUGGESTER_DAMAGE = [
    "valid", "valid", "drop-key", "extra-key", "nan-literal", "inf-overflow", "nan-as-big",
    "short-x-mean", "ragged-members", "text-weights", "array-file", "string-file",
    "probe-not-object", "probe-unknown", "zero-std", "names-not-list", "empty-members",
    "no-metric-max",
]  # fmt: skip


@PROFILE
@needs_fifo
def test_suggester_files(profile):
    """Suggester folders: missing or unknown keys, wrong shapes, non-object JSON, NaN/inf
    weights and non-regular files are refused with a ValueError naming the file."""
    from lrgym.suggester import load_suggester
    from lrgym.suggester.model import default_path

    shipped = default_path()
    base = json.loads((shipped / "suggester.json").read_text())
    strategy = st.tuples(
        st.sampled_from(SUGGESTER_DAMAGE), st.sampled_from(["file"] * 5 + FILE_KINDS)
    )

    def check(case):
        damage, kind = case
        valid = damage in ("valid", "no-metric-max") and kind == "file"
        root = Path(tempfile.mkdtemp(prefix="lrgym-fuzz-"))
        try:
            path = root / "s"
            shutil.copytree(shipped, path)
            data = json.loads(json.dumps(base))
            text = None
            if damage == "drop-key":
                data.pop("alpha")
            elif damage == "extra-key":
                data["surprise"] = 1
            elif damage == "nan-literal":
                text = json.dumps(data).replace('"resid_std": ', '"resid_std": NaN, "x": ', 1)
            elif damage == "inf-overflow":
                data["members"][0][0] = "BIG"
                text = json.dumps(data).replace('"BIG"', "1e400")
            elif damage == "nan-as-big":
                data["x_mean"][3] = "BIG"
                text = json.dumps(data).replace('"BIG"', "-1e999")
            elif damage == "short-x-mean":
                data["x_mean"] = data["x_mean"][:5]
            elif damage == "ragged-members":
                data["members"][1] = data["members"][1][:-1]
            elif damage == "text-weights":
                data["x_std"] = ["a"] * len(data["x_std"])
            elif damage == "array-file":
                text = "[1, 2, 3]"
            elif damage == "string-file":
                text = '"suggester"'
            elif damage == "probe-not-object":
                data["probe"] = 3
            elif damage == "probe-unknown":
                data["probe"] = {**data["probe"], "surprise": 1}
            elif damage == "zero-std":
                data["x_std"][0] = 0.0
            elif damage == "names-not-list":
                data["feature_names"] = 5
            elif damage == "empty-members":
                data["members"] = []
            elif damage == "no-metric-max":
                data.pop("metric_max", None)
            file_variant(path / "suggester.json", kind, json.dumps(data) if text is None else text)
            try:
                model = load_suggester(path)
            except (ValueError, FileNotFoundError) as exc:
                assert not valid, f"refused a valid suggester: {exc}"
                assert "suggester.json" in str(exc)
                count("api suggester file", "clean error")
                return
            assert valid, f"accepted {damage} ({kind})"
            assert np.isfinite(model.members).all() and (model.x_std > 0).all()
            count("api suggester file", "works")
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run_property("suggester", profile, strategy, check)


RESET_VALID = {
    "initial_lr": [1e-3, 0.05],
    "run_seed": [0, 7],
    "val_every": [0, 10],
    "initial_hparams": [{}],
}
RESET_INVALID = [
    ("intial_lr", 1e-3),  # a typo: refused, not a random LR
    ("initial_lr", -1.0),
    ("initial_lr", "abc"),
    ("initial_lr", math.nan),
    ("run_seed", 2.5),
    ("run_seed", -1),
    ("run_seed", "x"),
    ("val_every", -3),
    ("initial_hparams", 5),
    ("initial_hparams", {"momentum": 0.9}),  # an LR-only env controls no momentum
    ("seed", 1),
]


@pytest.fixture(scope="module")
def xgb_env():
    env = LRControlEnv(R2, decision_interval=5, total_steps=20)
    yield env
    env.close()


@PROFILE
def test_reset_options(profile, xgb_env):
    """reset(options=...): a non-dict or an unknown key raises naming the known keys;
    wrong values raise; valid options work."""
    pairs = [(k, v) for k, values in RESET_VALID.items() for v in values]
    strategy = st.one_of(
        st.tuples(
            st.lists(st.sampled_from(pairs), max_size=3),
            st.lists(st.sampled_from(RESET_INVALID), max_size=1),
        ),
        st.sampled_from([[1, 2], "initial_lr", 5, (("initial_lr", 1e-3),)]),
    )

    def check(case):
        if not isinstance(case, tuple) or len(case) != 2 or not isinstance(case[0], list):
            with pytest.raises(TypeError, match="reset options must be a dict"):
                xgb_env.reset(seed=0, options=case)
            count("api reset options", "clean error")
            return
        good, bad = case
        options = dict(good + bad)
        bad_keys = {k for k, _ in bad}
        try:
            obs, _ = xgb_env.reset(seed=0, options=options)
        except (TypeError, ValueError) as exc:
            assert bad_keys, f"refused valid options {options}: {exc}"
            if ("intial_lr", 1e-3) in bad or ("seed", 1) in bad:
                assert "known keys" in str(exc) and "initial_lr" in str(exc)
            count("api reset options", "clean error")
            return
        assert not bad_keys, f"accepted {options}"
        assert np.isfinite(obs).all()
        if "initial_lr" in options:
            assert xgb_env.initial_lr == options["initial_lr"]
        count("api reset options", "works")

    run_property("reset", profile, strategy, check)


CSV_SHAPES = ["ok", "ok-float-labels", "empty", "header-only", "ragged", "id-label",
              "regression-label", "fifo", "one-class"]  # fmt: skip


def csv_text(shape: str, rows: int) -> str:
    rng = np.random.default_rng(rows)
    x = rng.normal(size=rows).round(3)
    if shape in ("empty", "fifo"):
        return ""
    if shape == "header-only":
        return "a,b,label\n"
    labels = {
        "ok": rng.integers(0, 2, rows),
        "ok-float-labels": rng.integers(0, 3, rows).astype(float),
        "id-label": np.arange(rows),
        "regression-label": rng.normal(size=rows).round(4) + 0.01,
        "one-class": np.ones(rows, dtype=int),
        "ragged": rng.integers(0, 2, rows),
    }[shape]
    lines = ["a,b,label"] + [
        f"{v},{i % 5},{y}" for i, (v, y) in enumerate(zip(x, labels, strict=True))
    ]
    if shape == "ragged":
        lines[rows // 2] += ",extra"
    return "\n".join(lines) + "\n"


@PROFILE
@needs_fifo
def test_csv_shapes(profile):
    """User tables: empty, header-only, ragged, an id or regression label column (which
    would otherwise be hundreds of one-row classes) and FIFOs are refused naming the file."""
    pytest.importorskip("datasets")
    from lrgym.tasks.tabular import table_data

    strategy = st.tuples(st.sampled_from(CSV_SHAPES), st.integers(40, 120))
    counter = itertools.count()

    def check(case):
        shape, rows = case
        valid = shape.startswith("ok")
        root = Path(tempfile.mkdtemp(prefix="lrgym-fuzz-"))
        try:
            path = root / f"table{next(counter)}.csv"
            file_variant(path, "fifo" if shape == "fifo" else "file", csv_text(shape, rows))
            try:
                splits = table_data(str(path), "label")(np.random.default_rng(0))
            except DataSourceError as exc:
                assert not valid, f"refused a valid table: {exc}"
                assert str(path.name) in str(exc)
                assert "error occurred while generating" not in str(exc)
                count("api csv shapes", "clean error")
                return
            assert valid, f"accepted a {shape} table"
            assert len(np.unique(np.concatenate([splits.y_train, splits.y_val]))) <= 3
            count("api csv shapes", "works")
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run_property("csv", profile, strategy, check)


STEP_LOSSES = {
    "float": (0.5, None),
    "int": (1, None),
    "numpy": (np.float32(0.7), None),
    "tensor-0d": (torch.tensor(0.4), None),
    "tensor-1": (torch.ones(1), None),
    "tensor-grad": (torch.tensor(0.3, requires_grad=True) * 1.0, None),
    "nan": (math.nan, None),
    "inf": (math.inf, None),
    "none": (None, None),
    "negative": (-0.5, UserWarning),
    "text": ("abc", TypeError),
    "numeric-text": ("0.5", TypeError),
    "bool": (True, TypeError),
    "tensor-3": (torch.ones(3), ValueError),
    "tensor-bool": (torch.tensor(True), TypeError),
    "list": ([0.5], TypeError),
    "complex": (1 + 2j, TypeError),
}


@PROFILE
def test_scheduler_step_losses(profile, agent):
    """step(loss=...): a wrong type is a TypeError naming the loss, a tensor of several
    values a ValueError, a negative loss a warning; the LR stays finite and in range."""
    strategy = st.lists(st.sampled_from(sorted(STEP_LOSSES)), min_size=1, max_size=12)

    def check(names):
        model, opt, _ = model_and_optimizer(1e-2)
        sched = lrgym.PolicyScheduler(opt, agent, total_steps=60, decision_interval=3)
        for name in names:
            loss, expected = STEP_LOSSES[name]
            opt.step()
            if expected in (TypeError, ValueError):
                before = sched.state_dict()["step_count"]
                with pytest.raises(expected, match="loss"):
                    sched.step(loss=loss)
                assert sched.state_dict()["step_count"] == before  # refused: not counted
                count("api step(loss)", "clean error")
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                sched.step(loss=loss)
            negative = [w for w in caught if "negative loss" in str(w.message)]
            assert bool(negative) == (expected is UserWarning), (name, caught)
            lr = opt.param_groups[0]["lr"]
            assert math.isfinite(lr) and sched.action_map.min_lr <= lr <= sched.action_map.max_lr
            count("api step(loss)", "works")

    run_property("step_loss", profile, strategy, check)
