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


def check_parts_settings(out: str | Path, settings: dict) -> None:
    """Record the run's settings beside the part files, or refuse parts made with other settings.

    Parts written with other settings (another feature set, another model, a changed manifest)
    must not be merged silently with new ones.
    """
    import json

    out = Path(out)
    f = out.with_name(out.name + ".parts") / "settings.json"
    text = json.dumps(settings, sort_keys=True, default=str)
    if f.exists():
        if f.read_text(encoding="utf-8").strip() != text:
            raise InputError(f.parent, "these part files were written with other settings or another version of the "
                                       "manifest; delete the folder (or choose another --out) to start afresh")
        return
    write_text(f, text + "\n")


def merge_parts(out: str | Path, keys: Sequence[str]) -> int:
    """Merge the part files of ``keys`` (in this order) into the CSV ``out`` when all exist.

    Returns the number of missing parts (0 when ``out`` was written). Columns are the union
    of the parts' columns in order of first appearance (a study may lack an optional column,
    e.g. a texture family that could not be computed); a missing cell is empty. An empty
    part (a study without rows) is its header alone.
    """
    import csv
    import io

    out = Path(out)
    paths = [part_path(out, k) for k in keys]
    missing = sum(not p.exists() for p in paths)
    if missing:
        return missing
    columns: dict[str, None] = {}
    rows: list[dict] = []
    for p in paths:
        reader = csv.DictReader(io.StringIO(p.read_text(encoding="utf-8")))
        if not reader.fieldnames:
            raise InputError(p, "empty part file (expected a header line); delete it and re-run")
        columns.update(dict.fromkeys(reader.fieldnames))
        rows.extend(reader)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), restval="", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(out, buf.getvalue())
    return 0
