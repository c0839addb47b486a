"""No worker process outlives its parent.

Worker pools (``lrgym compare --workers N``) call :func:`watch_parent` in each worker:
on Linux the kernel kills the worker the moment its parent dies, even by ``SIGKILL``
(``PR_SET_PDEATHSIG``); elsewhere, and as a fallback, a daemon thread polls the parent
and exits the worker within a second. :func:`stop_pool` tears a pool down at once when
the parent stops early (an error, Ctrl-C, ``SIGTERM``), instead of waiting for the runs
in progress.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5


def watch_parent() -> None:
    """Make this (worker) process exit when its parent process dies."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def poll() -> None:
        while True:
            time.sleep(POLL_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=poll, name="lrgym-watch-parent", daemon=True).start()


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel pending work and kill the pool's worker processes now."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=5)


__all__ = ["stop_pool", "watch_parent"]
