"""Calibration of the phantom's difficulty: random forest on the diagnostic features, patient-grouped CV.

The full ``paper`` preset figure (168 patients) is a benchmark: ``petcad bench phantom --preset paper``.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow
def test_rf_auc_on_diagnostic_features_in_published_range():
    from petcad.bench.phantom import grouped_rf_auc, phantom_features

    names, X, y, groups = phantom_features(n_patients=60, seed=0, preset="default")
    assert X.shape == (len(y), len(names)) and len(np.unique(groups)) == 60
    assert np.isfinite(X).all()
    assert 0.35 <= y.mean() <= 0.60
    res = grouped_rf_auc(X, y, groups, seed=0, folds=5)
    assert 0.80 <= res["auc_pooled"] <= 0.95, res
    # no single feature gives the answer away
    from sklearn.metrics import roc_auc_score

    single = [roc_auc_score(y, X[:, i]) for i in range(X.shape[1])]
    assert max(max(single), 1 - min(single)) < 0.9
