"""The one exception type for bad input.

Every reader and command raises :class:`InputError` for input it cannot use.
The command line turns it into one line on stderr (``petcad: error: FILE: problem``)
and exit status 2, with no traceback. Messages must never contain patient names
or identifiers read from headers.
"""

from __future__ import annotations

import os


class InputError(Exception):
    """Bad user input: names the file (or option) and the problem in one line."""

    def __init__(self, where: str | os.PathLike | None, problem: str):
        self.where = None if where is None else str(where)
        self.problem = problem
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}" if self.where else self.problem

    def __reduce__(self):  # picklable, so that worker processes (pools, Dask) can send it back
        return (type(self), (self.where, self.problem))
