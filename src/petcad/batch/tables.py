"""One table from per-study part files: ``OUT.csv.parts/<study>.csv`` merged into ``OUT.csv``.

Each study's rows are written (atomically) to its own part file, which is also the
study's "done" marker for resuming. Whichever run finds every part present merges them,
in the cohort's order, into the final table; until then ``OUT`` is not written, so a
half-finished cohort never looks like a finished table.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Sequence

from petcad.errors import InputError
from petcad.io.atomic import write_text


def part_path(out: str | Path, key: str) -> Path:
    """The part file of study ``key`` for the table ``out`` (a file-system-safe name)."""
    out = Path(out)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(key)).strip("._") or "study"
    if safe != str(key):  # keep distinct keys distinct after the substitution
        safe = f"{safe[:80]}-{hashlib.sha256(str(key).encode()).hexdigest()[:8]}"
    return out.with_name(out.name + ".parts") / f"{safe}.csv"


def merge_parts(out: str | Path, keys: Sequence[str]) -> int:
    """Merge the part files of ``keys`` (in this order) into ``out`` when all exist.

    Returns the number of missing parts (0 when ``out`` was written). Every part must have
    the same header line; an empty part (a study without rows) is its header alone.
    """
    out = Path(out)
    paths = [part_path(out, k) for k in keys]
    missing = sum(not p.exists() for p in paths)
    if missing:
        return missing
    header, body = None, []
    for p in paths:
        lines = p.read_text(encoding="utf-8").splitlines()
        if not lines:
            raise InputError(p, "empty part file (expected a header line); delete it and re-run")
        if header is None:
            header = lines[0]
        elif lines[0] != header:
            raise InputError(p, "its columns differ from the other parts (written by another version or settings?); "
                                "delete the .parts folder and re-run")
        body.extend(lines[1:])
    write_text(out, "\n".join([header or "", *body]) + "\n")
    return 0
