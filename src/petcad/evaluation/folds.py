"""Repeated stratified group k-fold: patients as groups, folds computed once and shared by every method."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from petcad.errors import InputError


@dataclass(frozen=True)
class Fold:
    """One outer fold: repeat and fold numbers (from 0), training and test lesion indices (sorted)."""

    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray


def check_design(y, groups, n_splits: int, where: str = "cohort") -> None:
    """Raise :class:`InputError` when the labels and patients cannot support ``n_splits`` folds."""
    y = np.asarray(y)
    classes = np.unique(y)
    if classes.size < 2:
        raise InputError(where, f"only one class present ({classes[0] if classes.size else 'none'}); "
                                "a comparison needs lesions of at least two classes")
    n_pat = np.unique(np.asarray(groups)).size
    if n_splits < 2:
        raise InputError(where, f"--folds must be at least 2, got {n_splits}")
    if n_pat < n_splits:
        raise InputError(where, f"{n_pat} patients but {n_splits} folds: need at least one patient per fold "
                                f"(use --folds {max(2, n_pat)} or fewer)")


def repeated_group_folds(y, groups, n_splits: int = 10, n_repeats: int = 10, seed: int = 0,
                         where: str = "cohort") -> list[Fold]:
    """``n_repeats`` x ``n_splits`` folds; repeat ``r`` uses ``StratifiedGroupKFold(shuffle=True,
    random_state=seed + r)``. No patient is ever in the training and test set of one fold; every
    lesion is in exactly one test fold per repeat.
    """
    y = np.asarray(y)
    groups = np.asarray(groups)
    check_design(y, groups, n_splits, where)
    n_classes = np.unique(y).size
    folds: list[Fold] = []
    X = np.zeros((y.size, 1))
    for r in range(n_repeats):
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed + r)
        for f, (tr, te) in enumerate(cv.split(X, y, groups)):
            if np.unique(y[tr]).size < n_classes:
                what = "one class only" if np.unique(y[tr]).size < 2 else "not every class"
                raise InputError(where, f"repeat {r} fold {f}: the training set has {what}; use fewer folds")
            folds.append(Fold(r, f, np.sort(tr), np.sort(te)))
    return folds


def assert_grouped(folds: list[Fold], groups) -> None:
    """AssertionError if any patient appears in both the training and test set of a fold."""
    groups = np.asarray(groups)
    for fd in folds:
        shared = set(groups[fd.train]) & set(groups[fd.test])
        assert not shared, f"repeat {fd.repeat} fold {fd.fold}: {len(shared)} patients in train and test"
