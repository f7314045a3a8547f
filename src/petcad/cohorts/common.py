"""What every importer returns, and writing it as a manifest (atomically, paths relative to the manifest)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from petcad.errors import InputError
from petcad.io.atomic import write_text
from petcad.io.manifest import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

MANIFEST_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS


@dataclass
class ImportResult:
    """Rows of the lesion manifest (dicts; paths absolute), extra columns, and what was skipped or noted.

    ``notes`` are one-line warnings (never patient identifiers: rows are named by their manifest row);
    ``counts`` are the figures printed at the end; ``negatives`` are studies without lesions (autoPET),
    written beside the manifest; ``files`` maps a path relative to the output folder to the bytes of an
    extra file (per-lesion masks, under :func:`masks_dir`), written together with the manifest.
    """

    rows: list[dict] = field(default_factory=list)
    extra_columns: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    negatives: list[dict] = field(default_factory=list)
    negative_columns: tuple[str, ...] = ()
    files: dict[Path, object] = field(default_factory=dict)  # absolute path under masks_dir(out) -> uint8 Volume

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def masks_dir(out: str | os.PathLike) -> Path:
    """Where an importer's per-lesion mask files go: ``<manifest stem>_masks/`` beside the manifest."""
    out = Path(out)
    return out.parent.resolve() / f"{out.stem}_masks"


def relative(path: str | os.PathLike | None, base: Path) -> str:
    """``path`` relative to ``base`` (POSIX separators), or "" for None."""
    if path is None or str(path) == "":
        return ""
    return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def csv_text(columns, rows, base: Path, path_columns=("ct", "pet", "mask")) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([relative(r.get(c), base) if c in path_columns and r.get(c) else _fmt(r.get(c)) for c in columns])
    return buf.getvalue()


def write_result(result: ImportResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write the manifest (and the negatives list and mask files when there are any), nothing half-written.

    Mask files go to ``<out stem>_masks/`` beside the manifest: written into a temporary folder first, which
    replaces any previous one only once all are written; then the negatives CSV and the manifest (atomic).
    """
    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise InputError("--out", f"{out}: the manifest is a CSV file (name it .csv)")
    base = out.parent.resolve()
    base.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if result.files:
        written["masks"] = _write_files(result.files, base, masks_dir(out))
    if result.negatives:
        neg = out.with_name(f"{out.stem}_negatives.csv")
        write_text(neg, csv_text(result.negative_columns, result.negatives, base))
        written["negatives"] = neg
    write_text(out, csv_text(MANIFEST_COLUMNS + tuple(result.extra_columns), result.rows, base))
    written["manifest"] = out
    return written


def _write_files(files: dict, base: Path, folder: Path) -> Path:
    from petcad.io.volumes import write_image

    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=base))
    try:
        for path, vol in files.items():
            rel = Path(path).relative_to(folder)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            write_image(vol, tmp / rel)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
