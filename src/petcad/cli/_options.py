"""Helpers shared by the commands: warnings to stderr and into the JSON output.

(The ``--on-irregular`` option itself is :func:`petcad.io.options.add_on_irregular_option`,
one definition for the command line and for ``python -m petcad.models.ddp``.)
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Iterator

_QUIET = (DeprecationWarning, PendingDeprecationWarning)


def print_warning(message) -> None:
    """One line ``petcad: warning: MESSAGE`` on stderr."""
    print(f"petcad: warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def collected_warnings() -> Iterator[list[str]]:
    """Collect the warnings raised inside (each text once, in order) and print them to stderr on exit.

    Yields the list, filled when the block ends, for the command's JSON output
    (``"warnings"``). Deprecation warnings of libraries are left out. When the
    block raises (bad input), nothing is printed: the error is the one line.
    """
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield seen
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, _QUIET) or text in seen:
            continue
        seen.append(text)
        print_warning(text)
