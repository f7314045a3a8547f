"""Folds: grouped, shared, complete; bad designs; classifiers tuned inside the training folds."""

from __future__ import annotations

import numpy as np
import pytest

from petcad.errors import InputError
from petcad.evaluation.classifiers import CLASSICAL, TunedClassifier, youden_threshold
from petcad.evaluation.compare import check_features, summarise
from petcad.evaluation.folds import assert_grouped, repeated_group_folds


def _design(n_pat=30, seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 9, n_pat)
    groups = np.repeat([f"P{i:03d}" for i in range(n_pat)], sizes)
    patient_effect = rng.normal(size=n_pat)
    y = (np.repeat(patient_effect, sizes) + rng.normal(size=groups.size) > 0).astype(int)
    X = rng.normal(size=(groups.size, 5)) + y[:, None] * 0.8
    return X, y, groups


def test_folds_grouped_complete_and_deterministic():
    X, y, g = _design()
    folds = repeated_group_folds(y, g, n_splits=5, n_repeats=3, seed=11)
    assert len(folds) == 15
    assert_grouped(folds, g)  # no patient in train and test of any fold
    for r in range(3):
        tests = np.concatenate([f.test for f in folds if f.repeat == r])
        assert np.array_equal(np.sort(tests), np.arange(y.size))  # every lesion tested once per repeat
    again = repeated_group_folds(y, g, n_splits=5, n_repeats=3, seed=11)
    assert all(np.array_equal(a.test, b.test) and np.array_equal(a.train, b.train) for a, b in zip(folds, again))
    # repeats differ
    assert not all(np.array_equal(a.test, b.test) for a, b in zip(folds[:5], folds[5:10]))


def test_leaky_folds_are_detected():
    X, y, g = _design()
    folds = repeated_group_folds(y, g, n_splits=5, n_repeats=1)
    from petcad.evaluation.folds import Fold

    bad = Fold(0, 0, np.arange(0, y.size - 1), np.array([y.size - 2]))
    with pytest.raises(AssertionError):
        assert_grouped([bad], g)


def test_bad_designs_raise_input_error():
    X, y, g = _design(n_pat=4)
    with pytest.raises(InputError, match="4 patients but 10 folds"):
        repeated_group_folds(y, g, n_splits=10)
    with pytest.raises(InputError, match="one class"):
        repeated_group_folds(np.zeros_like(y), g, n_splits=2)


def _tuned_reference(method, X, y, groups, inner_splits, seed):
    """What TunedClassifier documents, written out: every grid point scored by the AUC of its pooled
    inner out-of-fold predictions (StratifiedGroupKFold on the training patients), the first best
    kept, the threshold maximising TPR - FPR over every out-of-fold probability (the highest
    threshold of a tie), and the best pipeline refitted on all training lesions."""
    import warnings

    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold

    from petcad.evaluation.classifiers import make_pipeline

    k = min(inner_splits, *(np.unique(groups[y == c]).size for c in (0, 1)))
    splits = list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y, groups))
    assert all(np.bincount(y[tr], minlength=2).min() >= 3 for tr, _ in splits)  # no inner fold is left out
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the MLP's lbfgs on 50 lesions
        for params in ParameterGrid(CLASSICAL[method].grid):
            oof = np.full(y.size, np.nan)
            for tr, te in splits:
                fit = clone(make_pipeline(method, seed)).set_params(**params).fit(X[tr], y[tr])
                oof[te] = fit.predict_proba(X[te])[:, 1]
            auc = roc_auc_score(y, oof)
            if best is None or auc > best[1]:
                best = (params, auc, oof)
        params, auc, oof = best
        refit = clone(make_pipeline(method, seed)).set_params(**params).fit(X, y)
    cands = np.unique(oof)[::-1]
    j = [np.mean(oof[y == 1] >= t) - np.mean(oof[y == 0] >= t) for t in cands]
    threshold = min(float(cands[int(np.argmax(j))]), 1.0)
    return params, auc, threshold, refit


@pytest.mark.parametrize("method", sorted(CLASSICAL))
def test_tuned_classifier_equals_a_written_out_reference(method):
    """Tuning, threshold and refit of TunedClassifier against the reference above, on the training
    patients only; the test patients' predictions then equal the reference pipeline's."""
    X, y, g = _design(n_pat=16)
    tr = np.isin(g, np.unique(g)[:12])
    c = TunedClassifier(method, inner_splits=2, seed=0).fit(X[tr], y[tr], g[tr])
    params, auc, threshold, ref = _tuned_reference(method, X[tr], y[tr], g[tr], inner_splits=2, seed=0)
    assert c.best_params_ == params
    assert c.inner_auc_ == pytest.approx(auc, rel=1e-12)
    assert c.threshold_ == pytest.approx(threshold, rel=1e-12)
    p = c.predict_proba(X[~tr])
    np.testing.assert_allclose(p, ref.predict_proba(X[~tr]), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(c.predict(X[~tr]), (p[:, 1] >= threshold).astype(int))
    # deterministic for a seed
    again = TunedClassifier(method, inner_splits=2, seed=0).fit(X[tr], y[tr], g[tr]).predict_proba(X[~tr])
    np.testing.assert_array_equal(p, again)


@pytest.mark.parametrize("method", ["rf", "svm"])
def test_test_lesions_play_no_part_in_the_fold_runner(method):
    """Imputation, scaling, tuning and fitting see the training fold only.

    The fold runner gets the whole feature matrix; corrupting the test lesions (their labels
    flipped, some of their features missing or huge) must leave the predictions for the other,
    untouched test lesions unchanged. A median imputer or a scaler fitted on all rows would move them.
    """
    from petcad.evaluation.compare import CompareSettings, LesionTable, run_classical

    X, y, g = _design(n_pat=20, seed=5)
    X[::7, 1] = np.nan  # some missing values in training and test rows alike
    folds = [f for f in repeated_group_folds(y, g, n_splits=4, n_repeats=1, seed=3)][:1]
    test = folds[0].test
    touched, kept = test[: len(test) // 2], test[len(test) // 2:]

    def table(X, y):
        n = y.size
        return LesionTable(g, np.arange(n).astype(str), y.astype(str), y, X, list("abcde"), [], np.arange(n))

    settings = CompareSettings(methods=(method,), n_jobs=1, inner_splits=2)
    (_, _, _, p_ref, t_ref), = run_classical(table(X, y), folds, (method,), settings)
    X2, y2 = X.copy(), y.copy()
    y2[test] = 1 - y2[test]
    X2[touched, 0] = 1e6
    X2[touched, 2] = np.nan
    (_, _, _, p_bad, t_bad), = run_classical(table(X2, y2), folds, (method,), settings)
    pos = np.isin(test, kept)
    np.testing.assert_array_equal(p_ref[pos], p_bad[pos])
    assert t_ref == t_bad
    # and the check has teeth: the same corruption inside the training fold does move them
    X3 = X.copy()
    X3[folds[0].train[:10], 0] = 1e6
    (_, _, _, p_moved, _), = run_classical(table(X3, y), folds, (method,), settings)
    assert not np.array_equal(p_ref[pos], p_moved[pos])


def test_youden_threshold():
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.6, 0.4, 0.7, 0.8, 0.9])
    # J = TPR - FPR: 0.75 at threshold 0.7 (3/4 - 0), 0.667 at 0.4 (1 - 1/3)
    assert youden_threshold(y, p) == pytest.approx(0.7)
    assert youden_threshold(np.zeros(3), np.ones(3)) == 0.5


def test_nan_features_warn_and_impute_or_stop():
    X = np.arange(12, dtype=float).reshape(4, 3)
    X[1, 2] = np.nan
    with pytest.warns(UserWarning, match="L1"):
        X2, names, notes = check_features(X, ["a", "b", "c"], ["L0", "L1", "L2", "L3"])
    assert names == ["a", "b", "c"] and np.isnan(X2[1, 2]) and notes
    X[:, 1] = np.inf
    with pytest.warns(UserWarning, match="b have no finite value"):
        X3, names, _ = check_features(X, ["a", "b", "c"], ["L0", "L1", "L2", "L3"])
    assert names == ["a", "c"] and X3.shape == (4, 2)
    with pytest.raises(InputError, match="no feature"):
        check_features(np.full((3, 2), np.nan), ["a", "b"], ["x", "y", "z"])


def _wilson(p, n, z=1.959963984540054):
    """Wilson score interval, the textbook formula (Wilson 1927)."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def test_summary_pools_repeats():
    """Every figure of a row against its reference: scikit-learn per repeat, DeLong written out with
    pairwise comparisons (O(m n)), the Wilson formula, the documented pooling over repeats."""
    from scipy.stats import norm
    from sklearn.metrics import accuracy_score, brier_score_loss, precision_score, recall_score, roc_auc_score

    from petcad.evaluation.delong import cluster_bootstrap_auc
    from test_evaluation_metrics import _delong_reference

    X, y, g = _design(n_pat=40, seed=3)
    rng = np.random.default_rng(0)
    scores = {"good": np.vstack([y + rng.normal(size=y.size) * 0.6 for _ in range(3)]),
              "fair": np.vstack([0.7 * y + rng.normal(size=y.size) * 0.6 for _ in range(3)]),
              "bad": np.vstack([rng.normal(size=y.size) for _ in range(3)])}
    probs = {k: 1 / (1 + np.exp(-v)) for k, v in scores.items()}
    preds = {k: (v >= 0.5).astype(int) for k, v in probs.items()}
    rows, best = summarise(y, g, probs, preds, n_repeats=3, n_boot=200)
    assert best == "good" and [r["method"] for r in rows] == ["good", "fair", "bad"]
    r = {row["method"]: row for row in rows}
    z = 1.959963984540054
    for m, P in probs.items():
        row = r[m]
        assert row["AUC"] == pytest.approx(np.mean([roc_auc_score(y, P[i]) for i in range(3)]), rel=1e-12)
        # DeLong interval with the mean per-repeat variance (repeats add no sample size)
        var = np.mean([_delong_reference(y, P[i])[1][0, 0] for i in range(3)])
        assert row["AUC_lo"] == pytest.approx(max(0.0, row["AUC"] - z * np.sqrt(var)), rel=1e-9)
        assert row["AUC_hi"] == pytest.approx(min(1.0, row["AUC"] + z * np.sqrt(var)), rel=1e-9)
        assert row["brier"] == pytest.approx(np.mean([brier_score_loss(y, P[i]) for i in range(3)]), rel=1e-12)
        # confusion metrics: the mean per-repeat proportion, Wilson at one repeat's denominator
        tpr = np.mean([recall_score(y, preds[m][i]) for i in range(3)])
        acc = np.mean([accuracy_score(y, preds[m][i]) for i in range(3)])
        assert row["TPR"] == pytest.approx(tpr, rel=1e-12)
        assert row["SPC"] == pytest.approx(np.mean([recall_score(y, preds[m][i], pos_label=0) for i in range(3)]))
        assert row["PPV"] == pytest.approx(np.mean([precision_score(y, preds[m][i]) for i in range(3)]), rel=1e-12)
        assert row["ACC"] == pytest.approx(acc, rel=1e-12)
        assert (row["TPR_lo"], row["TPR_hi"]) == pytest.approx(_wilson(tpr, (y == 1).sum()), rel=1e-9)
        assert (row["ACC_lo"], row["ACC_hi"]) == pytest.approx(_wilson(acc, y.size), rel=1e-9)
        # the patient bootstrap is of the repeat-averaged probabilities
        clu = cluster_bootstrap_auc(y, P.mean(axis=0), g, n_boot=200, seed=0)
        assert (row["AUC_clu_lo"], row["AUC_clu_hi"]) == (clu.lo, clu.hi)
        assert clu.lo != cluster_bootstrap_auc(y, P[0], g, n_boot=200, seed=0).lo
    # paired DeLong test against the best: mean AUC difference over the root of the mean
    # per-repeat variance of the difference, two-sided
    assert np.isnan(r["good"]["p_vs_best"])
    for m in ("fair", "bad"):
        covs = [_delong_reference(y, np.vstack([probs["good"][i], probs[m][i]])) for i in range(3)]
        diff = np.mean([a[0] - a[1] for a, _ in covs])
        dvar = np.mean([c[0, 0] + c[1, 1] - 2 * c[0, 1] for _, c in covs])
        assert r[m]["p_vs_best"] == pytest.approx(2 * norm.sf(abs(diff) / np.sqrt(dvar)), rel=1e-9)
    assert 0.001 < r["fair"]["p_vs_best"] < 0.5 and r["bad"]["p_vs_best"] < 1e-6
