"""Meta-training environments as Ray actors: the SB3 ``VecEnv`` of ``--backend ray``.

SB3 has no multi-machine ``VecEnv`` (its maintainers point to custom ones) and RLlib
pins its own gymnasium, so this one is written here, small by reuse rather than by a
second implementation: each actor runs the very worker loop the local backend runs in
a subprocess (SB3's ``SubprocVecEnv`` worker for a plain environment, lrgym's
:class:`~lrgym.agents.vec_env.SubprocVecEnvGroup` worker for a batched one) on an in-process
pipe, and the driver side *is* ``SubprocVecEnv`` / ``SubprocVecEnvGroup`` with its pipes
replaced by connections to the actors. Every command (step, reset and its seeds,
``env_method`` with indices, close) therefore takes the local backend's code path, which
is why the same seed and environment count give the same agent on either backend.

Each actor reserves ``cpus_per_env`` CPUs and ``gpus_per_env`` GPUs of the cluster
(Ray sets ``CUDA_VISIBLE_DEVICES`` in it); PPO's updates and the validation episodes run
in the driver. An actor lost mid-run (a node gone) ends training with Ray's error;
``lrgym train --resume`` continues from the last checkpoint.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import CloudpickleWrapper, SubprocVecEnv, VecEnv

# SubprocVecEnv's worker loop, which the actors of RayVecEnv run: SB3 exports no public
# name for it (SubprocVecEnv starts it itself and takes no worker argument), and running
# the very loop the local backend runs is what makes both backends train the same agent.
from stable_baselines3.common.vec_env.subproc_vec_env import _worker as sb3_worker

from lrgym.agents.vec_env import SubprocVecEnvGroup, serve_vec_env
from lrgym.backends.ray_backend import RayBackendError, connect

ACTOR_START_TIMEOUT_S = 300.0
"""Seconds to wait for every environment actor to be placed on the cluster."""

Worker = Callable[[Any, Any, CloudpickleWrapper], None]
"""A ``SubprocVecEnv``-style worker loop: ``worker(remote, parent_remote, factory)``."""


class _QueueEnd:
    """One end of an in-process pipe (the ``send``/``recv``/``close`` a worker uses)."""

    def __init__(self, inbox: queue.Queue, outbox: queue.Queue) -> None:
        self._inbox, self._outbox = inbox, outbox

    def send(self, message: Any) -> None:
        self._outbox.put(message)

    def recv(self) -> Any:
        return self._inbox.get()

    def close(self) -> None:
        pass


class _Failure:
    """An exception raised in the worker loop, passed to the caller of the next command."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class EnvActor:
    """A Ray actor serving one environment (or one ``VecEnv``) through ``worker``.

    The worker loop runs in a thread of the actor on an in-process pipe; :meth:`call`
    hands it one command and returns its reply (``close`` has none).
    """

    def __init__(self, worker: Worker, factory: Callable[[], Any]) -> None:
        self._commands: queue.Queue = queue.Queue()
        self._replies: queue.Queue = queue.Queue()
        self._failure: _Failure | None = None
        end = _QueueEnd(self._commands, self._replies)
        unused = _QueueEnd(queue.Queue(), queue.Queue())  # the parent's end, closed first

        def serve() -> None:
            try:
                worker(end, unused, CloudpickleWrapper(factory))
            except BaseException as exc:  # noqa: BLE001 - reported to the driver instead
                self._replies.put(_Failure(exc))

        self._thread = threading.Thread(target=serve, name="lrgym-env-worker", daemon=True)
        self._thread.start()

    def ready(self) -> bool:
        """True once the actor runs (its environment is built by the first command)."""
        return True

    def call(self, message: tuple[str, Any]) -> Any:
        """Send ``message`` (command, data) to the worker loop; its reply, if any."""
        if self._failure is not None:
            raise self._failure.error
        self._commands.put(message)
        if message[0] == "close":
            self._thread.join(timeout=30)
            return None
        reply = self._replies.get()
        if isinstance(reply, _Failure):
            self._failure = reply
            raise reply.error
        return reply


class _ActorConnection:
    """The driver's end of an actor's pipe: ``send`` submits, ``recv`` waits, in order."""

    def __init__(self, ray: Any, actor: Any) -> None:
        self.ray, self.actor = ray, actor
        self.pending: deque = deque()

    def send(self, message: tuple[str, Any]) -> None:
        self.pending.append(self.actor.call.remote(message))

    def recv(self) -> Any:
        return self.ray.get(self.pending.popleft())

    def close(self) -> None:
        pass


class _ActorProcess:
    """What the ``VecEnv`` calls a worker process: ``join`` waits for the actor's last
    commands (``close``) and then removes the actor from the cluster."""

    def __init__(self, connection: _ActorConnection) -> None:
        self.connection = connection
        self.alive = True

    def join(self, timeout: float | None = None) -> None:
        ray = self.connection.ray
        pending = list(self.connection.pending)
        if pending:
            ray.wait(pending, num_returns=len(pending), timeout=timeout)
        self.terminate()

    def is_alive(self) -> bool:
        return self.alive

    def terminate(self) -> None:
        if self.alive:
            self.connection.ray.kill(self.connection.actor, no_restart=True)
            self.alive = False


def _start_actors(
    worker: Worker, factories: Sequence[Callable[[], Any]], cpus: float, gpus: float
) -> tuple[list[_ActorConnection], list[_ActorProcess]]:
    """One actor per factory, each reserving ``cpus`` CPUs and ``gpus`` GPUs; waits until
    all are placed, so a cluster too small fails here, with a message, not in a hang."""
    ray = connect()
    check_capacity(ray, len(factories), cpus, gpus)
    actor_class = ray.remote(EnvActor).options(num_cpus=cpus, num_gpus=gpus, max_restarts=0)
    actors = [actor_class.remote(worker, factory) for factory in factories]
    ready, _ = ray.wait(
        [a.ready.remote() for a in actors], num_returns=len(actors), timeout=ACTOR_START_TIMEOUT_S
    )
    if len(ready) < len(actors):
        for actor in actors:
            ray.kill(actor, no_restart=True)
        raise RayBackendError(
            f"only {len(ready)} of {len(actors)} environment actors could be placed on the "
            f"Ray cluster within {ACTOR_START_TIMEOUT_S:.0f} s ({cpus:g} CPU and {gpus:g} GPU "
            "each); lower --n-envs or --cpus-per-env/--gpus-per-env, or add machines"
        )
    connections = [_ActorConnection(ray, a) for a in actors]
    return connections, [_ActorProcess(c) for c in connections]


def check_capacity(ray: Any, actors: int, cpus: float, gpus: float) -> None:
    """Refuse a request larger than the cluster (its CPUs and GPUs now)."""
    have = ray.cluster_resources()
    for name, each, flag in (("CPU", cpus, "--cpus-per-env"), ("GPU", gpus, "--gpus-per-env")):
        need, total = actors * each, float(have.get(name, 0.0))
        if need > total + 1e-9:
            raise RayBackendError(
                f"{actors} environment actors × {each:g} {name} each need {need:g} {name}s, "
                f"but the Ray cluster has {total:g}: lower --n-envs or {flag} (e.g. "
                f"{flag} {total / actors:.2g}), or add machines with `ray start --address`"
            )


class RayVecEnv(SubprocVecEnv):
    """SB3's ``SubprocVecEnv`` whose environments are Ray actors, one env each.

    Args:
        env_fns: Zero-argument callables, each building one environment in its actor.
        cpus: CPUs each actor reserves.
        gpus: GPUs each actor reserves.
        reward_dtype: Cast rewards to this dtype (``np.float32`` gives ``DummyVecEnv``'s
            rewards, which the local backend uses for a single environment).
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        cpus: float = 1.0,
        gpus: float = 0.0,
        reward_dtype: type | None = None,
    ) -> None:
        # SubprocVecEnv.__init__ starts processes; its state is set up here instead
        self.remotes, self.processes = _start_actors(sb3_worker, env_fns, cpus, gpus)
        self.waiting = False
        self.closed = False
        self.reward_dtype = reward_dtype
        self.remotes[0].send(("get_spaces", None))
        observation_space, action_space = self.remotes[0].recv()
        VecEnv.__init__(self, len(env_fns), observation_space, action_space)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """Collect every actor's step (``SubprocVecEnv.step_wait``)."""
        obs, rewards, dones, infos = super().step_wait()
        if self.reward_dtype is not None:
            rewards = rewards.astype(self.reward_dtype)
        return obs, rewards, dones, infos


class RayVecEnvGroup(SubprocVecEnvGroup):
    """lrgym's ``SubprocVecEnvGroup`` whose workers (each a ``VecEnv``, e.g. K batched
    runs per task) are Ray actors.

    Args:
        factories: Zero-argument callables, each building one ``VecEnv`` in its actor.
        cpus: CPUs each actor reserves.
        gpus: GPUs each actor reserves.
    """

    def __init__(
        self, factories: Sequence[Callable[[], VecEnv]], cpus: float = 1.0, gpus: float = 0.0
    ) -> None:
        # SubprocVecEnvGroup.__init__ starts processes; actors take their place here
        self._connect(*_start_actors(serve_vec_env, factories, cpus, gpus))


__all__ = ["EnvActor", "RayVecEnv", "RayVecEnvGroup", "check_capacity"]
