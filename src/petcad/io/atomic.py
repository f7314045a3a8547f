"""Write files atomically: to a temporary name beside the target, then rename.

A crash, a kill -9 or a bad-input error never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success rename it to ``target``.

    The temporary name keeps ``target``'s suffixes (``.nii.gz`` stays ``.nii.gz``)
    so that writers choosing a format by extension still work. On an exception
    the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(target.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{suffix}", dir=target.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions a plain open() would
    os.chmod(tmp, 0o666 & ~_umask())
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(target: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding=encoding)


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_fileset(target: str | os.PathLike) -> Iterator[Path]:
    """Like :func:`atomic_path` for formats written as a header plus data file(s) (``.mhd`` + ``.raw``, ``.nhdr`` + ``.raw.gz``).

    Yields ``target``'s own name inside a fresh temporary folder beside it, so the
    writer names the data file after the final header. On success every file
    written there is moved next to ``target``, the header (``target``) last: a
    reader never finds a header whose data file is missing or half-written. On
    an exception the temporary folder is removed and nothing is moved.
    """
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp_dir / target.name
        written = sorted(p for p in tmp_dir.iterdir() if p.name != target.name)
        for p in written + [tmp_dir / target.name]:
            os.chmod(p, 0o666 & ~_umask())
            os.replace(p, target.parent / p.name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
