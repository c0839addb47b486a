"""Contract checks for one task: what `lrgym check TASK_ID` runs."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium
import numpy as np
from gymnasium.utils.env_checker import check_env

from lrgym.core.registration import gymnasium_id, make_task, spec


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: its name, whether it passed, and what went wrong."""

    name: str
    passed: bool
    detail: str = ""


def _env(task_id: str, steps: int) -> gymnasium.Env:
    info = make_task(task_id).info
    k = min(info.decision_interval, steps)
    env_id, extra = gymnasium_id(task_id)  # a drawn task runs in its family's env
    return gymnasium.make(env_id, total_steps=steps, decision_interval=k, **extra).unwrapped


def _check_info(task_id: str, steps: int) -> str:
    info = make_task(task_id).info
    missing = [f for f in ("domain", "model", "data", "metric") if not getattr(info, f)]
    if missing:
        return f"TaskInfo fields are empty: {', '.join(missing)}"
    if not math.isfinite(info.target):
        return (
            f"the target is not set (got {info.target}): measure it with `lrgym calibrate "
            f"{task_id}`, which writes it where the task reads it, or set TaskInfo(target=...)"
        )
    return ""


def _check_spaces(task_id: str, steps: int) -> str:
    env = _env(task_id, steps)
    obs, _ = env.reset(seed=0)
    if not env.observation_space.contains(obs):
        return f"reset() observation {obs} is outside {env.observation_space}"
    obs, *_ = env.step(env.action_space.sample())
    if not env.observation_space.contains(obs):
        return f"step() observation {obs} is outside {env.observation_space}"
    return ""


def _check_gymnasium(task_id: str, steps: int) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(_env(task_id, steps), skip_render_check=True)
    problems = [str(w.message) for w in caught if "gymnasium" in (w.filename or "")]
    return "; ".join(problems)


def _rollout(task_id: str, steps: int, seed: int) -> list[tuple]:
    env = _env(task_id, steps)
    obs, info = env.reset(seed=seed)
    trace = [(obs.tobytes(), info["lr"], info["val_loss"])]
    done = False
    actions = np.linspace(-1, 1, 7, dtype=np.float32)
    i = 0
    while not done:
        action = np.full(env.action_space.shape, actions[i % len(actions)], dtype=np.float32)
        obs, reward, done, _, info = env.step(action)
        trace.append((obs.tobytes(), reward, info["lr"], info["val_loss"]))
        i += 1
    return trace


def _check_determinism(task_id: str, steps: int) -> str:
    if _rollout(task_id, steps, seed=7) != _rollout(task_id, steps, seed=7):
        return "two rollouts with seed 7 and the same actions differ: some randomness is unseeded"
    return ""


def _check_short_run(task_id: str, steps: int) -> str:
    env = _env(task_id, steps)
    _, info = env.reset(seed=0, options={"initial_lr": make_task(task_id).info.default_lr})
    done = False
    while not done:
        _, _, done, _, info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    if info["diverged"]:
        return f"a short run at the default LR diverged (val loss {info['val_loss']})"
    if info["steps"] != steps:
        return f"the run did {info['steps']} optimizer steps, expected {steps}"
    return ""


CHECKS: dict[str, Callable[[str, int], str]] = {
    "task info": _check_info,
    "spaces": _check_spaces,
    "gymnasium check_env": _check_gymnasium,
    "seeded determinism": _check_determinism,
    "short run at default LR": _check_short_run,
}
"""Each check returns an empty string when it passes, else what is wrong."""


def check_task(task_id: str, steps: int = 60) -> list[CheckResult]:
    """Run every check in :data:`CHECKS` on ``task_id`` with a ``steps``-step budget.

    Raises:
        UnknownTaskError: ``task_id`` is not registered.
    """
    spec(task_id)
    results = []
    raised: dict[str, str] = {}  # error -> first check that raised it
    for name, check in CHECKS.items():
        try:
            problem = check(task_id, steps)
        except Exception as exc:  # noqa: BLE001 - report, don't crash, on a broken task
            problem = f"raised {type(exc).__name__}: {exc}"
            if problem in raised:  # e.g. data that cannot be loaded: say it once
                problem = f"raised the same error as {raised[problem]!r}"
            else:
                raised[problem] = name
        results.append(CheckResult(name, not problem, problem))
    return results
