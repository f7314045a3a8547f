"""Metrics against scikit-learn, DeLong against a published example and an O(m n) reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu, norm
from sklearn.metrics import accuracy_score, brier_score_loss, precision_score, recall_score, roc_auc_score

from petcad.evaluation.calibration import brier_score, reliability_curve
from petcad.evaluation.confusion import confusion_metrics, pooled_confusion_metrics, confusion_counts, wilson_interval
from petcad.evaluation.delong import auc_ci, auc_fast, cluster_bootstrap_auc, delong_cov, delong_test


def _data(n=120, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = rng.normal(size=n) + 1.0 * y
    b = 0.6 * a + rng.normal(size=n) * 0.8 + 0.3 * y
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    return y, a, b


def _delong_reference(y, scores):
    """DeLong et al. 1988 written out with explicit pairwise comparisons (O(m n))."""
    scores = np.atleast_2d(scores)
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])  # (k, m, n)
    auc = psi.mean(axis=(1, 2))
    v10 = psi.mean(axis=2)  # (k, m)
    v01 = psi.mean(axis=1)  # (k, n)
    k = scores.shape[0]
    s10 = np.array([[np.sum((v10[r] - auc[r]) * (v10[s] - auc[s])) / (m - 1) for s in range(k)] for r in range(k)])
    s01 = np.array([[np.sum((v01[r] - auc[r]) * (v01[s] - auc[s])) / (n - 1) for s in range(k)] for r in range(k)])
    return auc, s10 / m + s01 / n


@pytest.mark.parametrize("ties", [False, True])
def test_delong_matches_reference_and_sklearn(ties):
    y, a, b = _data(ties=ties)
    auc, cov = delong_cov(y, np.vstack([a, b]))
    ref_auc, ref_cov = _delong_reference(y, np.vstack([a, b]))
    np.testing.assert_allclose(auc, ref_auc, rtol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10)
    assert auc[0] == pytest.approx(roc_auc_score(y, a), rel=1e-12)
    u = mannwhitneyu(a[y == 1], a[y == 0]).statistic
    assert auc[0] == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()), rel=1e-12)
    z, p = delong_test(y, a, b)
    zr = (ref_auc[0] - ref_auc[1]) / np.sqrt(ref_cov[0, 0] + ref_cov[1, 1] - 2 * ref_cov[0, 1])
    assert z == pytest.approx(zr, rel=1e-10)
    assert p == pytest.approx(2 * norm.sf(abs(zr)), rel=1e-10)
    np.testing.assert_allclose(auc_fast(y, np.vstack([a, b])), auc, rtol=1e-12)


def test_hanley_mcneil_published_example():
    """Hanley & McNeil, Radiology 143:29 (1982), Table 1: CT ratings (1 = definitely normal ... 5 =
    definitely abnormal) of 58 truly normal and 51 truly abnormal patients; published area 0.893."""
    normal = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
    abnormal = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])
    y = np.r_[np.zeros(58, int), np.ones(51, int)]
    s = np.r_[normal, abnormal].astype(float)
    est = auc_ci(y, s)
    assert round(est.value, 3) == 0.893
    ref_auc, ref_cov = _delong_reference(y, s)
    se = np.sqrt(ref_cov[0, 0])
    assert est.lo == pytest.approx(est.value - 1.959964 * se, rel=1e-6)
    # DeLong's SE is close to Hanley & McNeil's published 0.032 (their exponential approximation)
    assert se == pytest.approx(0.032, abs=0.004)
    z, p = delong_test(y, s, s)
    assert p == 1.0


def test_confusion_metrics_equal_sklearn():
    y, a, _ = _data(n=200, seed=3)
    pred = (a > 0.5).astype(int)
    m = confusion_metrics(y, pred)
    assert m["TPR"].value == pytest.approx(recall_score(y, pred))
    assert m["SPC"].value == pytest.approx(recall_score(y, pred, pos_label=0))
    assert m["PPV"].value == pytest.approx(precision_score(y, pred))
    assert m["NPV"].value == pytest.approx(precision_score(y, pred, pos_label=0))
    assert m["ACC"].value == pytest.approx(accuracy_score(y, pred))
    for e in m.values():
        assert e.lo < e.value < e.hi
    pooled = pooled_confusion_metrics([confusion_counts(y, pred)] * 3)
    assert pooled["ACC"].value == pytest.approx(m["ACC"].value)
    assert pooled["ACC"].lo == pytest.approx(m["ACC"].lo)


def test_wilson_known_values():
    # Wilson 95 % interval for 81/100, by hand: centre (0.81 + z^2/200) / (1 + z^2/100) = 0.79853,
    # half-width z sqrt(0.81 * 0.19 / 100 + z^2 / 40000) / (1 + z^2/100) = 0.07632 -> 0.7222 - 0.8749
    lo, hi = wilson_interval(81, 100)
    assert lo == pytest.approx(0.7222, abs=1e-4) and hi == pytest.approx(0.8749, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0
    assert np.isnan(wilson_interval(0, 0)[0])


def test_brier_and_reliability():
    y, a, _ = _data(n=300, seed=5)
    p = 1 / (1 + np.exp(-a))
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p))
    mp, fo, cnt = reliability_curve(y, p, n_bins=10)
    assert cnt.sum() == 300 and np.all((mp >= 0) & (mp <= 1)) and np.all(np.diff(mp) > 0)


def test_cluster_bootstrap_matches_brute_force():
    rng = np.random.default_rng(1)
    y, a, _ = _data(n=60, seed=2, ties=True)
    groups = rng.integers(0, 15, 60)
    est = cluster_bootstrap_auc(y, a, groups, n_boot=300, seed=4)
    # same replicates by explicit expansion
    _, g = np.unique(groups, return_inverse=True)
    rs = np.random.default_rng(4)
    draws = rs.integers(0, g.max() + 1, size=(300, g.max() + 1))
    aucs = []
    for d in draws:
        idx = np.concatenate([np.flatnonzero(g == c) for c in d])
        if np.unique(y[idx]).size == 2:
            aucs.append(roc_auc_score(y[idx], a[idx]))
    assert est.lo == pytest.approx(np.quantile(aucs, 0.025), rel=1e-9)
    assert est.hi == pytest.approx(np.quantile(aucs, 0.975), rel=1e-9)
    assert est.value == pytest.approx(roc_auc_score(y, a))
