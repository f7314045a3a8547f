"""Calibration: Brier score and the reliability curve."""

from __future__ import annotations

import numpy as np

from petcad.evaluation.base import binary_labels


def brier_score(y_true, prob) -> float:
    """Mean squared difference between the predicted probability of malignancy and the 0/1 outcome."""
    y = binary_labels(y_true)
    p = np.asarray(prob, dtype=np.float64)
    return float(np.mean((p - y) ** 2))


def reliability_curve(y_true, prob, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width bins on [0, 1]: ``(mean predicted, observed fraction, count)`` of the non-empty bins.

    Bins are closed on the right (a probability on an inner edge falls in the lower bin), as
    scikit-learn's ``calibration_curve(strategy="uniform")``, which gives the same curve (tested).
    """
    y = binary_labels(y_true)
    p = np.clip(np.asarray(prob, dtype=np.float64), 0.0, 1.0)
    b = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], p)
    cnt = np.bincount(b, minlength=n_bins)
    sp = np.bincount(b, weights=p, minlength=n_bins)
    sy = np.bincount(b, weights=y, minlength=n_bins)
    ok = cnt > 0
    return sp[ok] / cnt[ok], sy[ok] / cnt[ok], cnt[ok]
