"""``--shard K/N``: which studies one of N independent jobs runs.

A study belongs to shard ``K`` (1-based) of ``N`` when ``sha256(key) mod N == K - 1``.
The assignment depends only on the study key (the manifest's ``patient_id``, or a
series folder's path relative to the cohort root), never on the order of the rows or on
the machine, and a study keeps its shard when others are added to the cohort.
With SLURM: ``#SBATCH --array=1-N`` and ``--shard ${SLURM_ARRAY_TASK_ID}/N``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from petcad.errors import InputError


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise InputError("--shard", f"expected K/N with 1 <= K <= N, got {self.index}/{self.count}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str | None) -> Shard:
    """``"K/N"`` -> :class:`Shard`; ``None`` or ``""`` -> the whole cohort (1/1)."""
    if not text:
        return Shard()
    parts = str(text).split("/")
    try:
        k, n = (int(p) for p in parts)
    except ValueError:
        raise InputError("--shard", f"expected K/N (e.g. 3/10), got {text!r}") from None
    return Shard(k, n)


def in_shard(key: str, shard: Shard) -> bool:
    """Whether the study ``key`` belongs to ``shard``."""
    if shard.count == 1:
        return True
    h = int.from_bytes(hashlib.sha256(str(key).encode("utf-8")).digest()[:8], "big")
    return h % shard.count == shard.index - 1
