"""The one small base of the evaluation metrics: an estimate with its 95 % interval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval ``[lo, hi]`` (``level`` e.g. 0.95)."""

    value: float
    lo: float
    hi: float
    level: float = 0.95

    def as_dict(self, name: str) -> dict[str, float]:
        return {name: self.value, f"{name}_lo": self.lo, f"{name}_hi": self.hi}


def binary_labels(y) -> np.ndarray:
    """``y`` as a 0/1 int array (1 = positive, malignant); raises ValueError for other values."""
    y = np.asarray(y)
    if y.dtype == bool:
        return y.astype(np.int64)
    u = np.unique(y)
    if not np.all(np.isin(u, [0, 1])):
        raise ValueError(f"labels must be 0/1, got values {u[:5]}")
    return y.astype(np.int64)
