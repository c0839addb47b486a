"""No worker process outlives its parent.

Worker pools (``lrgym compare --workers N``) call :func:`watch_parent` in each worker:
on Linux the kernel kills the worker the moment its parent dies, even by ``SIGKILL``
(``PR_SET_PDEATHSIG``); elsewhere, and as a fallback, a daemon thread polls the parent
and exits the worker within a second. :func:`stop_pool` tears a pool down at once when
the parent stops early (an error, Ctrl-C, ``SIGTERM``), instead of waiting for the runs
in progress. :func:`quiet_worker` makes a worker stop without a traceback.
"""

from __future__ import annotations

import ctypes
import io
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

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


def quiet_worker() -> None:
    """Set up a worker process to stop without a word when its run stops.

    A worker's traceback after its parent stopped (``SIGTERM`` or Ctrl-C of ``lrgym
    train --n-envs 2``: a ``BrokenPipeError`` while it answers a parent that is gone) says
    nothing the user needs. So: Ctrl-C is ignored (the parent reports it and closes the
    workers), ``SIGTERM`` ends the worker by the default action (no handler, no
    traceback), a write to a pipe whose reader is gone ends it by ``SIGPIPE`` (Python
    turns that into ``BrokenPipeError`` otherwise), and :func:`watch_parent` ends it when
    its parent dies. Signal handlers can only be set from a main thread: where the
    worker runs in another one (a Ray actor's), its runtime owns the signals.
    """
    if threading.current_thread() is threading.main_thread():  # not in a Ray actor's thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if hasattr(signal, "SIGPIPE"):
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parent = multiprocessing.parent_process()
    if parent is not None and not isinstance(sys.stderr, _QuietWhenOrphaned):
        sys.stderr = _QuietWhenOrphaned(sys.stderr, parent)
    watch_parent()


ORPHAN_GRACE_S = 3.0
"""How long a worker's traceback waits to see whether its parent is stopping."""


class _QuietWhenOrphaned(io.TextIOBase):
    """``sys.stderr`` of a worker that says nothing once its parent process is gone.

    SB3's ``SubprocVecEnv`` worker catches only ``EOFError``; when its parent dies the
    next read of the pipe may raise ``ConnectionResetError`` instead, and
    ``multiprocessing`` prints that traceback. Nobody is left to read it, and it would
    land in the user's terminal after the run stopped, so it is dropped. While the
    parent lives, everything is written (a worker's real errors stay visible). A stopping
    parent closes the pipes before it exits, so the first line of a worker's traceback
    (``multiprocessing`` writes ``Process NAME:`` first) waits up to
    :data:`ORPHAN_GRACE_S` for the parent to go before it is written. Written by hand:
    neither SB3 nor ``multiprocessing`` offers a hook for this.
    """

    def __init__(self, stream: Any, parent: Any) -> None:
        self._stream = stream
        self._parent = parent

    def write(self, text: str) -> int:
        """Write ``text`` unless the parent process has exited."""
        if text.startswith(("Process ", "Traceback")) and self._parent.is_alive():
            multiprocessing.connection.wait([self._parent.sentinel], timeout=ORPHAN_GRACE_S)
        if not self._parent.is_alive():  # its sentinel pipe closed: the parent is gone
            return len(text)
        return self._stream.write(text)

    def flush(self) -> None:
        """Flush the underlying stream."""
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def fileno(self) -> int:
        """The underlying stream's descriptor."""
        return self._stream.fileno()

    def isatty(self) -> bool:
        """Whether the underlying stream is a terminal."""
        return self._stream.isatty()


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel pending work and kill the pool's worker processes now."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=5)


__all__ = ["quiet_worker", "stop_pool", "watch_parent"]
