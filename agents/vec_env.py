"""stable-baselines3 ``VecEnv`` adapters for lrgym's vector envs.

SB3 has no adapter from a Gymnasium ``VectorEnv`` and no vectorised env whose workers
are themselves vectorised, so both are written here (about SB3's ``DummyVecEnv`` /
``SubprocVecEnv`` size): :class:`VectorEnvAdapter` turns one same-step-autoreset
``VectorEnv`` (e.g. a :class:`~lrgym.vector.env.BatchedLRControlEnv`) into a ``VecEnv``;
:class:`ConcatVecEnv` puts several ``VecEnv`` side by side in one process; and
:class:`SubprocVecEnvGroup` runs each of several ``VecEnv`` in its own process, so K
batched runs per worker × N workers train on N cores.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env import CloudpickleWrapper, VecEnv

from lrgym.backends._lifetime import quiet_worker

ObsTransform = Callable[[np.ndarray], np.ndarray]


class VectorEnvAdapter(VecEnv):
    """A Gymnasium ``VectorEnv`` with ``AutoresetMode.SAME_STEP`` as an SB3 ``VecEnv``.

    Ended episodes are reported as SB3 expects: ``done`` set, the new run's first
    observation returned, the ended run's last one in ``info["terminal_observation"]``.

    Args:
        venv: The vector env.
        obs_transform: Applied to every observation batch (e.g. zeroing ablated features).
    """

    def __init__(self, venv: VectorEnv, obs_transform: ObsTransform | None = None) -> None:
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"the vector env must reset in the same step, not {mode!r}")
        self.venv = venv
        self.obs_transform = obs_transform or (lambda obs: obs)
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        """Reset every slot (seeded by :meth:`seed` if it was called)."""
        seed = self._seeds[0] if self._seeds else None
        obs, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        return self.obs_transform(obs)

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every slot; SB3's ``(obs, rewards, dones, infos)``."""
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        dones = terminated | truncated
        per_env = []
        for i in range(self.num_envs):
            info = {k: v[i] for k, v in infos.items() if not k.startswith(("_", "final_"))}
            if dones[i]:
                info["terminal_observation"] = self.obs_transform(infos["final_obs"][i])
                info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            per_env.append(info)
        return self.obs_transform(obs), rewards.astype(np.float32), dones, per_env

    def close(self) -> None:
        """Close the vector env."""
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The vector env's attribute, once per selected slot."""
        return [getattr(self.venv, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute on the vector env (shared by every slot)."""
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the vector env once, reported for every selected slot."""
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        """Slots are not Gymnasium-wrapped envs."""
        return [False] * len(self._get_indices(indices))


class ConcatVecEnv(VecEnv):
    """Several ``VecEnv`` side by side, stepped one after another in this process.

    Args:
        venvs: The parts; their spaces must be equal.
    """

    def __init__(self, venvs: Sequence[VecEnv]) -> None:
        if not venvs:
            raise ValueError("ConcatVecEnv needs at least one VecEnv")
        self.venvs = list(venvs)
        self._bounds = np.cumsum([0, *(v.num_envs for v in self.venvs)])
        first = self.venvs[0]
        for v in self.venvs[1:]:
            if (
                v.observation_space != first.observation_space
                or v.action_space != first.action_space
            ):
                raise ValueError("every part of a ConcatVecEnv needs the same spaces")
        super().__init__(int(self._bounds[-1]), first.observation_space, first.action_space)

    def _parts(self, values: np.ndarray) -> list[np.ndarray]:
        return [values[a:b] for a, b in zip(self._bounds[:-1], self._bounds[1:], strict=True)]

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        """Seed each part with ``seed`` plus its first index."""
        for v, start in zip(self.venvs, self._bounds[:-1], strict=True):
            v.seed(None if seed is None else seed + int(start))
        return [None] * self.num_envs

    def reset(self) -> np.ndarray:
        """Reset every part."""
        return np.concatenate([v.reset() for v in self.venvs])

    def step_async(self, actions: np.ndarray) -> None:
        """Hand each part its actions."""
        for v, a in zip(self.venvs, self._parts(np.asarray(actions)), strict=True):
            v.step_async(a)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Collect every part's step."""
        results = [v.step_wait() for v in self.venvs]
        return _concat(results)

    def close(self) -> None:
        """Close every part."""
        for v in self.venvs:
            v.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """Every selected slot's attribute."""
        values = [x for v in self.venvs for x in v.get_attr(attr_name)]
        return [values[i] for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute in every part."""
        for v in self.venvs:
            v.set_attr(attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method in every part."""
        values = [
            x for v in self.venvs for x in v.env_method(method_name, *method_args, **method_kwargs)
        ]
        return [values[i] for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        """Whether each selected slot is wrapped in ``wrapper_class``."""
        values = [x for v in self.venvs for x in v.env_is_wrapped(wrapper_class)]
        return [values[i] for i in self._get_indices(indices)]


def _concat(results: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    obs, rewards, dones, infos = zip(*results, strict=True)
    return (
        np.concatenate(obs),
        np.concatenate(rewards),
        np.concatenate(dones),
        [i for part in infos for i in part],
    )


def serve_vec_env(remote: Any, parent: Any, factory: CloudpickleWrapper) -> None:
    """Serve one ``VecEnv`` over a pipe (as SB3's ``SubprocVecEnv`` worker serves one env):
    the worker loop of :class:`SubprocVecEnvGroup`, in a process or a Ray actor."""
    parent.close()
    quiet_worker()  # SIGTERM, Ctrl-C, a gone parent: the worker stops without a traceback
    venv: VecEnv | None = None
    try:
        venv = factory.var()
        while True:
            command, data = remote.recv()
            if command == "step":
                remote.send(venv.step(data))
            elif command == "reset":
                venv.seed(data)
                remote.send(venv.reset())
            elif command == "get_attr":
                remote.send(venv.get_attr(data))
            elif command == "env_method":
                name, args, kwargs = data
                remote.send(venv.env_method(name, *args, **kwargs))
            elif command == "spaces":
                remote.send((venv.num_envs, venv.observation_space, venv.action_space))
            elif command == "close":
                venv.close()
                remote.close()
                return
    except (KeyboardInterrupt, EOFError, BrokenPipeError, ConnectionResetError):
        if venv is not None:
            venv.close()


class SubprocVecEnvGroup(VecEnv):
    """Each of several ``VecEnv`` (e.g. K batched runs) in its own process.

    Args:
        factories: Zero-argument callables, each building one ``VecEnv`` in its worker.
        start_method: ``multiprocessing`` start method (default ``"spawn"``, safe with torch).
    """

    def __init__(
        self, factories: Sequence[Callable[[], VecEnv]], start_method: str = "spawn"
    ) -> None:
        ctx = mp.get_context(start_method)
        pipes = [ctx.Pipe() for _ in factories]
        processes = []
        for (remote, child), factory in zip(pipes, factories, strict=True):
            process = ctx.Process(
                target=serve_vec_env, args=(child, remote, CloudpickleWrapper(factory)), daemon=True
            )
            process.start()
            child.close()
            processes.append(process)
        self._connect([p[0] for p in pipes], processes)

    def _connect(self, remotes: Sequence[Any], processes: Sequence[Any]) -> None:
        """Take over started workers: ask each for its env count and spaces."""
        self.remotes, self.processes = list(remotes), list(processes)
        sizes = []
        for remote in self.remotes:
            remote.send(("spaces", None))
            n, observation_space, action_space = remote.recv()
            sizes.append(n)
        self._bounds = np.cumsum([0, *sizes])
        self._seed: int | None = None
        self.closed = False
        VecEnv.__init__(self, int(self._bounds[-1]), observation_space, action_space)

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        """Seed worker ``i`` with ``seed`` plus its first slot index at the next reset."""
        self._seed = seed
        return [None] * self.num_envs

    def reset(self) -> np.ndarray:
        """Reset every worker."""
        for remote, start in zip(self.remotes, self._bounds[:-1], strict=True):
            remote.send(("reset", None if self._seed is None else self._seed + int(start)))
        self._seed = None
        return np.concatenate([remote.recv() for remote in self.remotes])

    def step_async(self, actions: np.ndarray) -> None:
        """Send each worker its actions."""
        actions = np.asarray(actions)
        for remote, a, b in zip(self.remotes, self._bounds[:-1], self._bounds[1:], strict=True):
            remote.send(("step", actions[a:b]))

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Collect every worker's step."""
        return _concat([remote.recv() for remote in self.remotes])

    def close(self) -> None:
        """Stop every worker."""
        if self.closed:
            return
        for remote in self.remotes:
            try:
                remote.send(("close", None))
            except (BrokenPipeError, EOFError):
                pass
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
        self.closed = True

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """Every selected slot's attribute."""
        for remote in self.remotes:
            remote.send(("get_attr", attr_name))
        values = [x for remote in self.remotes for x in remote.recv()]
        return [values[i] for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Not supported across processes."""
        raise NotImplementedError("SubprocVecEnvGroup does not set attributes in its workers")

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method in every worker."""
        for remote in self.remotes:
            remote.send(("env_method", (method_name, method_args, method_kwargs)))
        values = [x for remote in self.remotes for x in remote.recv()]
        return [values[i] for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        """Workers hold vectorised envs, not Gymnasium-wrapped ones."""
        return [False] * len(self._get_indices(indices))


__all__ = ["ConcatVecEnv", "SubprocVecEnvGroup", "VectorEnvAdapter", "serve_vec_env"]
