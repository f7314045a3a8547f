"""Confusion-matrix metrics (TPR, SPC, PPV, NPV, ACC) with Wilson score intervals."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from petcad.evaluation.base import Estimate, binary_labels

CONFUSION_METRICS = ("TPR", "SPC", "PPV", "NPV", "ACC")


def wilson_interval(successes: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n``; ``(nan, nan)`` when ``n == 0``.

    ``successes`` may be fractional (a proportion averaged over repeats times ``n``).
    """
    if n <= 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(0.5 + level / 2))
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def confusion_counts(y_true, y_pred) -> dict[str, int]:
    """``tp, fp, tn, fn`` of 0/1 labels and 0/1 predictions."""
    y = binary_labels(y_true)
    p = binary_labels(y_pred)
    return {
        "tp": int(np.sum((y == 1) & (p == 1))),
        "fp": int(np.sum((y == 0) & (p == 1))),
        "tn": int(np.sum((y == 0) & (p == 0))),
        "fn": int(np.sum((y == 1) & (p == 0))),
    }


def _num_den(c: dict[str, float]) -> dict[str, tuple[float, float]]:
    return {
        "TPR": (c["tp"], c["tp"] + c["fn"]),
        "SPC": (c["tn"], c["tn"] + c["fp"]),
        "PPV": (c["tp"], c["tp"] + c["fp"]),
        "NPV": (c["tn"], c["tn"] + c["fn"]),
        "ACC": (c["tp"] + c["tn"], c["tp"] + c["tn"] + c["fp"] + c["fn"]),
    }


def confusion_metrics(y_true, y_pred, level: float = 0.95) -> dict[str, Estimate]:
    """TPR (sensitivity), SPC (specificity), PPV, NPV and ACC with Wilson intervals.

    A metric whose denominator is zero (e.g. PPV with no positive prediction) is NaN.
    """
    out = {}
    for name, (num, den) in _num_den(confusion_counts(y_true, y_pred)).items():
        v = num / den if den else float("nan")
        lo, hi = wilson_interval(num, den, level)
        out[name] = Estimate(float(v), lo, hi, level)
    return out


def pooled_confusion_metrics(counts: list[dict[str, int]], level: float = 0.95) -> dict[str, Estimate]:
    """Metrics over repeats of the same lesions: the mean per-repeat proportion, with the Wilson
    interval for that proportion at one repeat's denominator (repeats re-use the same lesions, so
    they add no sample size)."""
    out = {}
    per = [_num_den(c) for c in counts]
    for name in CONFUSION_METRICS:
        vals = [n / d for n, d in (p[name] for p in per) if d]
        dens = [d for _, d in (p[name] for p in per) if d]
        if not vals:
            out[name] = Estimate(float("nan"), float("nan"), float("nan"), level)
            continue
        v = float(np.mean(vals))
        n = float(np.mean(dens))
        lo, hi = wilson_interval(v * n, n, level)
        out[name] = Estimate(v, lo, hi, level)
    return out
