"""Choosing between the parallel and the serial build of a numba kernel.

numba's OpenMP thread pool must not be used in a process forked after the parent used it
(GNU OpenMP aborts: "fork() called from a process already using GNU OpenMP"). DataLoader
workers are such forks, and they are parallel already, so kernels run serially there.
"""

from __future__ import annotations

import os

_FIRST_PID: list[int] = []


def use_parallel() -> bool:
    """True in the process that first asked (it owns the thread pool), False in forked children."""
    pid = os.getpid()
    if not _FIRST_PID:
        _FIRST_PID.append(pid)
    return _FIRST_PID[0] == pid
