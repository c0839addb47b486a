"""Runs on a Ray cluster: the connection, and comparison grids with one Ray task per run.

``lrgym compare|evaluate --backend ray`` runs every (task, scheduler, seed, initial LR)
as a Ray task (:func:`run_grid_on_ray`); ``lrgym train --backend ray`` puts the
meta-training environments in Ray actors (:mod:`lrgym.agents.ray_vec_env`). Both connect with
:func:`connect`: an explicit address, else ``RAY_ADDRESS``, else a new local Ray
instance on this machine. Ray is an optional extra (``pip install "lrgym[ray]"``) and is
imported only here, when a Ray backend is asked for.

A run is a deterministic function of its spec, so a run whose worker dies (a node lost,
the OOM killer) is simply run again: Ray retries the task up to :data:`RUN_RETRIES`
times. A run that raises is not retried: it would raise again.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from lrgym.core.registration import TaskSpec

Spec = TypeVar("Spec", bound=Hashable)
"""One run of a grid (:class:`lrgym.harness.compare.RunSpec`)."""

Result = TypeVar("Result")
"""What running one spec returns (:class:`lrgym.harness.compare.RunResult`)."""

BACKENDS = ("local", "ray")
"""Where runs and meta-training environments execute: worker processes on this machine,
or a Ray cluster."""

INSTALL_HINT = 'pip install "lrgym[ray]"'
"""How to install the Ray extra (Ray core and Tune)."""

RUN_RETRIES = 3
"""How many times a grid run whose worker died is run again."""

CONNECT_TIMEOUT_S = 5.0
"""Seconds to wait for a cluster address to answer before giving up."""

DEFAULT_PORT = 6379
"""The port of a Ray head (``ray start --head``) when an address names none."""


class RayBackendError(RuntimeError):
    """The Ray backend cannot be used (Ray missing, cluster unreachable, too small); the
    message says what to do."""


def check_backend(
    backend: str, address: str | None = None, error: type[Exception] = ValueError
) -> str:
    """``backend`` validated against :data:`BACKENDS`; an ``address`` needs ``"ray"``."""
    if backend not in BACKENDS:
        raise error(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "ray":
        raise error(
            f"address {address!r} is a Ray cluster address: pass backend 'ray' with it "
            "(--backend ray), or drop the address"
        )
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise error(f"address must be a Ray cluster address such as HEAD:6379, got {address!r}")
    return backend


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`RayBackendError` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise RayBackendError(
            f"the Ray backend needs Ray (core and Tune), which is not installed: {INSTALL_HINT}"
        ) from None
    return ray


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail within ``timeout`` seconds if nothing answers at ``address``.

    ``ray.init(address=...)`` retries an unreachable head for minutes before it gives
    up; a plain TCP connection to the head's port answers in seconds, so it is tried
    first. ``"auto"`` and ``"local"`` are Ray's own words and are left to Ray.
    """
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1].rstrip("/")
    host, _, port_text = target.rpartition(":")
    if not host:
        host, port_text = target, str(DEFAULT_PORT)
    try:
        port = int(port_text)
    except ValueError:
        raise RayBackendError(
            f"--address {address!r} is not HOST:PORT; pass the address `ray start --head` "
            f"printed, e.g. 10.0.0.1:{DEFAULT_PORT}"
        ) from None
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout):
            pass
    except OSError as exc:
        raise RayBackendError(
            f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}); start one "
            f"with `ray start --head` on the head machine and pass the address it prints "
            f"(HOST:{DEFAULT_PORT} by default), check that the port is open from here, or "
            "leave --address out to start a local Ray instance"
        ) from None


def connect(address: str | None = None) -> Any:
    """Connect this process to Ray once; returns the ``ray`` module.

    Reuses a connection made earlier (e.g. ``ray.init(num_cpus=2)`` in a test or a
    notebook, or inside a Ray worker). Otherwise joins the cluster at ``address``, else
    the one ``RAY_ADDRESS`` names, else starts a local Ray instance on this machine's
    cores. Workers see the modules ``lrgym --import`` named (``LRGYM_IMPORT``); they must
    be importable on every node.

    Raises:
        RayBackendError: Ray is not installed, or nothing answers at the address.
    """
    ray = import_ray()
    if address is not None:
        check_reachable(address)
    if ray.is_initialized():
        return ray
    from lrgym.core.registration import IMPORT_ENV

    env_vars = {IMPORT_ENV: os.environ[IMPORT_ENV]} if os.environ.get(IMPORT_ENV) else {}
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env_vars}} if env_vars else {}
    if address is None and os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]
        check_reachable(address)
    if address is None:  # a new local instance: no dashboard to start and serve
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise RayBackendError(
            f"cannot connect to a Ray cluster at {address}: {exc}; start one with "
            "`ray start --head`, or leave --address out to start a local Ray instance"
        ) from None
    return ray


def _run_task(
    spec: Spec,
    total_steps: int | None,
    own_tasks: list[TaskSpec],
    run: Callable[[Spec, int | None], Result],
) -> Result:
    """One grid run in a Ray worker, set up as a local grid worker is (one torch thread,
    this driver's own tasks registered)."""
    import torch

    from lrgym.core.registration import ensure_registered

    torch.set_num_threads(1)
    ensure_registered(own_tasks)
    return run(spec, total_steps)


def run_grid_on_ray(
    specs: Sequence[Spec],
    run: Callable[[Spec, int | None], Result],
    total_steps: int | None = None,
    on_result: Callable[[Spec, Result], None] | None = None,
    address: str | None = None,
    max_retries: int = RUN_RETRIES,
) -> list[Result]:
    """Run every spec as a Ray task (one CPU each); results in the order of ``specs``.

    ``on_result(spec, result)`` is called in this process as each run finishes, in
    finishing order (so callers record runs the moment they end). If this process stops
    early (an error, Ctrl-C), the runs still pending are cancelled and their workers
    killed.

    Args:
        specs: The runs (:class:`lrgym.harness.compare.RunSpec`).
        run: What runs one spec in a worker, ``run(spec, total_steps)``
            (:func:`lrgym.harness.compare.run_one`; tests pass one that kills its worker).
        total_steps: Step budget override, as in :func:`lrgym.harness.compare.run_one`.
        on_result: Called with each finished run.
        address: Ray cluster address (see :func:`connect`).
        max_retries: Times a run whose worker died is run again.
    """
    from lrgym.core.registration import portable_specs

    if not specs:  # e.g. every run already recorded: no cluster needed
        return []
    ray = connect(address)
    remote = ray.remote(_run_task).options(
        num_cpus=1, max_retries=max_retries, retry_exceptions=False
    )
    own_tasks = ray.put(portable_specs(s.task for s in specs))
    pending = {remote.remote(s, total_steps, own_tasks, run): s for s in specs}
    finished: dict[Spec, Result] = {}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                spec = pending.pop(ref)
                try:
                    finished[spec] = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # the run raised: as locally
                    raise (exc.cause or exc) from exc
                if on_result is not None:
                    on_result(spec, finished[spec])
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return [finished[s] for s in specs]


__all__ = [
    "BACKENDS",
    "INSTALL_HINT",
    "RUN_RETRIES",
    "RayBackendError",
    "check_backend",
    "check_reachable",
    "connect",
    "import_ray",
    "run_grid_on_ray",
]
