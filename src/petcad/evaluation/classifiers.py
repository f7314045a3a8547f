"""The classical classifiers as scikit-learn pipelines, tuned inside the training folds only.

Each method is ``SimpleImputer(median) -> StandardScaler -> classifier``. :class:`TunedClassifier`
chooses the hyper-parameters on a small grid by inner patient-grouped cross-validation
(``StratifiedGroupKFold``, AUC of the pooled inner out-of-fold predictions) on the
training lesions only, then sets the decision threshold by Youden's J on those same inner
out-of-fold predictions (never on the test fold), and refits on all training lesions.

More than two classes (``y`` = 0..K-1): the same pipelines as K-class classifiers (the SVM's Platt
scaling one-vs-rest, normalised), tuned on the macro one-vs-rest AUC of the inner out-of-fold
predictions; the prediction is the most probable class (no threshold).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import AdaBoostClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from petcad.errors import InputError


@dataclass(frozen=True)
class MethodSpec:
    """A classical method: display name, a builder ``seed -> classifier`` and its tuning grid."""

    label: str
    build: Callable[[int], BaseEstimator]
    grid: dict


CLASSICAL: dict[str, MethodSpec] = {
    "rf": MethodSpec(
        "random forest",
        lambda seed: RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
        {"clf__min_samples_leaf": [1, 5]},
    ),
    "svm": MethodSpec(
        "SVM (RBF)",
        # probability by Platt scaling of the decision function (3-fold, one final SVC)
        lambda seed: CalibratedClassifierCV(SVC(kernel="rbf", random_state=seed), method="sigmoid", cv=3,
                                            ensemble=False),
        {"clf__estimator__C": [1.0, 10.0], "clf__estimator__gamma": ["scale", 0.02]},
    ),
    "adaboost": MethodSpec(
        "AdaBoost",
        lambda seed: AdaBoostClassifier(random_state=seed),
        {"clf__n_estimators": [50, 100]},
    ),
    "mlp": MethodSpec(
        "BP-ANN (MLP, 2 hidden layers)",
        lambda seed: MLPClassifier(hidden_layer_sizes=(16, 8), solver="lbfgs", max_iter=300, random_state=seed),
        {"clf__alpha": [1e-2, 1.0]},
    ),
}


#: lesions of every class a method needs in its training data (the SVM's 3-fold Platt scaling)
MIN_PER_CLASS = {"svm": 3}


def make_pipeline(method: str, seed: int = 0) -> Pipeline:
    """``SimpleImputer(median) -> StandardScaler -> classifier`` for a method of :data:`CLASSICAL`."""
    if method not in CLASSICAL:
        raise ValueError(f"unknown classical method {method!r}; choose one of {', '.join(CLASSICAL)}")
    return Pipeline([
        ("impute", SimpleImputer(strategy="median")),
        ("scale", StandardScaler()),
        ("clf", CLASSICAL[method].build(seed)),
    ])


def youden_threshold(y, prob) -> float:
    """The probability threshold maximising TPR - FPR (Youden's J); 0.5 when undefined (one class)."""
    y = np.asarray(y)
    if np.unique(y).size < 2:
        return 0.5
    fpr, tpr, thr = roc_curve(y, prob)
    j = tpr - fpr
    i = int(np.argmax(j[1:])) + 1  # thr[0] is +inf
    return float(min(thr[i], 1.0))


class TunedClassifier(ClassifierMixin, BaseEstimator):
    """A classical method tuned by inner grouped CV on the training data, with a Youden threshold.

    Parameters
    ----------
    method : key of :data:`CLASSICAL` (``rf``, ``svm``, ``adaboost``, ``mlp``).
    inner_splits : number of inner patient-grouped folds (reduced when there are too few patients).
    seed : seeds the classifier and the inner folds.

    Fitted attributes: ``best_params_``, ``inner_auc_``, ``threshold_``, ``estimator_``.
    """

    def __init__(self, method: str = "rf", inner_splits: int = 3, seed: int = 0):
        self.method = method
        self.inner_splits = inner_splits
        self.seed = seed

    def _inner_splits(self, y, groups):
        classes = np.unique(y)
        k = min([self.inner_splits] + [np.unique(groups[y == c]).size for c in classes])
        if k < 2:
            return []
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=self.seed)
        splits = [(tr, te) for tr, te in cv.split(np.zeros((y.size, 1)), y, groups)]
        need = MIN_PER_CLASS.get(self.method, 1)
        return [s for s in splits if np.unique(y[s[0]]).size == classes.size
                and np.bincount(y[s[0]], minlength=classes.size).min() >= need]

    @staticmethod
    def _score(y, oof) -> float:
        """AUC (binary, of column 1) or macro one-vs-rest AUC of out-of-fold probabilities."""
        if oof.shape[1] == 2:
            return roc_auc_score(y, oof[:, 1]) if np.unique(y).size == 2 else 0.5
        from petcad.evaluation.multiclass import macro_ovr_auc

        auc = macro_ovr_auc(y, oof)
        return 0.5 if np.isnan(auc) else auc

    def fit(self, X, y, groups=None):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y).astype(int)
        groups = np.arange(y.size) if groups is None else np.asarray(groups)
        need, fewest = MIN_PER_CLASS.get(self.method, 1), int(np.bincount(y).min())
        if fewest < need:
            raise InputError("manifest", f"{self.method} needs at least {need} training lesions of every class, a training "
                                         f"fold has {fewest} of class {int(np.argmin(np.bincount(y)))}; use fewer folds "
                                         "or leave the method out")
        base = make_pipeline(self.method, self.seed)
        grid = list(ParameterGrid(CLASSICAL[self.method].grid))
        splits = self._inner_splits(y, groups)
        K = int(y.max()) + 1
        best, best_auc, best_oof = grid[0], -np.inf, None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if splits:
                covered = np.zeros(y.size, dtype=bool)
                for _, te in splits:
                    covered[te] = True
                for params in grid:
                    oof = np.full((y.size, max(K, 2)), np.nan)
                    for tr, te in splits:
                        est = clone(base).set_params(**params).fit(X[tr], y[tr])
                        oof[te] = est.predict_proba(X[te])
                    auc = self._score(y[covered], oof[covered])
                    if auc > best_auc:
                        best, best_auc, best_oof = params, auc, oof
            self.best_params_ = dict(best)
            self.inner_auc_ = float(best_auc) if best_oof is not None else float("nan")
            if K > 2:
                self.threshold_ = float("nan")  # the most probable class
            elif best_oof is not None:
                ok = ~np.isnan(best_oof[:, 1])
                self.threshold_ = youden_threshold(y[ok], best_oof[ok, 1])
            else:
                self.threshold_ = 0.5
            self.estimator_ = clone(base).set_params(**best).fit(X, y)
        self.classes_ = np.arange(max(K, 2))
        return self

    def predict_proba(self, X) -> np.ndarray:
        """``(n, K)``: column k = P(class k) (binary: column 1 = malignant)."""
        return self.estimator_.predict_proba(np.asarray(X, dtype=np.float64))

    def predict(self, X) -> np.ndarray:
        p = self.predict_proba(X)
        if p.shape[1] > 2:
            return p.argmax(axis=1).astype(int)
        return (p[:, 1] >= self.threshold_).astype(int)
