"""Statistics of a K-class comparison (K > 2 labels): one-vs-rest and macro AUC with DeLong intervals,
per-class sensitivity with Wilson intervals, accuracy, a K x K confusion table, multi-class Brier score.

One-vs-rest AUC of class k: lesions of class k against all others, scored by P(k); its DeLong
variance from the structural components (:func:`petcad.evaluation.delong.delong_components`).

Macro AUC = the mean of the K one-vs-rest AUCs. Its variance (and that of the difference of two
methods' macro AUCs, for the paired test) uses the same components: each lesion i of class c has
the influence ``psi_i = (1/K) sum_k d_k(i)``, where ``d_k(i) = (V10_k(i) - AUC_k) / m_k`` when
``c = k`` (a positive of the one-vs-rest split) and ``(V01_k(i) - AUC_k) / n_k`` otherwise; the
lesions of one class are the independent units, so ``var = sum_c m_c * var_c(psi)`` (sample
variance within class c). For K = 2 this is exactly DeLong's variance. As for the binary table,
repeats are pooled by the mean AUC and the mean per-repeat variance, and the interval assumes
independent lesions; the patient-cluster bootstrap interval of the macro AUC does not.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from petcad.evaluation.confusion import wilson_interval
from petcad.evaluation.delong import cluster_bootstrap_replicates, delong_components


def macro_ovr_auc(y, prob) -> float:
    """Mean one-vs-rest AUC over the classes present in ``y`` (with both positives and negatives)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    aucs = [roc_auc_score((y == k).astype(int), prob[:, k]) for k in range(prob.shape[1])
            if 0 < np.sum(y == k) < y.size]
    return float(np.mean(aucs)) if aucs else float("nan")


def ovr_influence(y, prob) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-vs-rest AUCs ``(K,)``, their DeLong variances ``(K,)`` and the macro-AUC influence ``psi (n,)``."""
    y = np.asarray(y, dtype=np.int64)
    K = prob.shape[1]
    aucs, var, psi = np.zeros(K), np.zeros(K), np.zeros(y.size)
    for k in range(K):
        pos = y == k
        a, v10, v01 = delong_components(pos.astype(int), prob[:, k])
        m, n = int(pos.sum()), int((~pos).sum())
        aucs[k] = a[0]
        var[k] = (np.var(v10[0], ddof=1) / m if m > 1 else 0.0) + (np.var(v01[0], ddof=1) / n if n > 1 else 0.0)
        psi[pos] += (v10[0] - a[0]) / m
        psi[~pos] += (v01[0] - a[0]) / n
    return aucs, var, psi / K


def stratified_variance(psi, y, K: int) -> float:
    """``sum_c m_c * var_c(psi)``: the variance of a sum of per-lesion influences, classes as strata."""
    y = np.asarray(y)
    total = 0.0
    for c in range(K):
        v = psi[y == c]
        if v.size > 1:
            total += v.size * float(np.var(v, ddof=1))
    return total


def confusion_matrix(y, pred, K: int) -> np.ndarray:
    """``(K, K)`` counts: rows true class, columns predicted class."""
    cm = np.zeros((K, K), dtype=np.int64)
    np.add.at(cm, (np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return cm


def brier_multiclass(y, prob) -> float:
    """Mean over lesions of ``sum_k (p_k - [y = k])^2`` (0 = perfect, 2 = worst)."""
    onehot = np.eye(prob.shape[1])[np.asarray(y, dtype=np.int64)]
    return float(np.mean(np.sum((prob - onehot) ** 2, axis=1)))


def _interval(value: float, var: float, z: float) -> tuple[float, float]:
    se = float(np.sqrt(max(var, 0.0)))
    return max(0.0, value - z * se), min(1.0, value + z * se)


def _method_stats(y, P, pred, K: int):
    """Per repeat: OvR AUCs, their variances, influences, confusion matrices."""
    per = [ovr_influence(y, P[r]) for r in range(P.shape[0])]
    cms = np.array([confusion_matrix(y, pred[r], K) for r in range(P.shape[0])])
    return per, cms


def _cluster_macro(y, P_mean, groups, K: int, n_boot: int, seed: int, level: float) -> tuple[float, float]:
    reps = np.array([cluster_bootstrap_replicates((np.asarray(y) == k).astype(int), P_mean[:, k], groups, n_boot, seed)
                     for k in range(K)])
    macro = reps.mean(axis=0)
    macro = macro[np.isfinite(macro)]
    if macro.size == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    return float(np.quantile(macro, a)), float(np.quantile(macro, 1 - a))


def summarise_multiclass(y, groups, probabilities: dict, predictions: dict, classes, level: float = 0.95,
                         n_boot: int = 2000, seed: int = 0) -> tuple[list[dict], str, dict]:
    """One row per method, the best (highest macro AUC) method, and each method's mean K x K confusion table.

    ``probabilities[m]`` ``(R, n, K)``, ``predictions[m]`` ``(R, n)`` class indices. Row keys:
    ``ACC``, ``AUC`` (macro) with ``_lo``/``_hi`` (Wilson / DeLong), ``AUC_clu_lo/hi`` (patient
    bootstrap), per class ``c``: ``TPR_c`` (sensitivity, Wilson) and ``AUC_c`` (one-vs-rest, DeLong),
    ``brier`` (multi-class) and ``p_vs_best`` (paired test of the macro AUCs).
    """
    y = np.asarray(y, dtype=np.int64)
    K = len(classes)
    z = float(norm.ppf(0.5 + level / 2))
    stats = {m: _method_stats(y, P, predictions[m], K) for m, P in probabilities.items()}
    macro = {m: float(np.mean([a.mean() for a, _, _ in per])) for m, (per, _) in stats.items()}
    best = max(macro, key=macro.get)
    m_c = np.bincount(y, minlength=K)
    rows, confusions = [], {}
    for m, P in probabilities.items():
        per, cms = stats[m]
        R = len(per)
        row = {"method": m}
        acc = float(np.mean([np.trace(c) / y.size for c in cms]))
        row.update({"ACC": acc, **dict(zip(("ACC_lo", "ACC_hi"), wilson_interval(acc * y.size, y.size, level)))})
        var = float(np.mean([stratified_variance(psi, y, K) for _, _, psi in per]))
        row["AUC"] = macro[m]
        row["AUC_lo"], row["AUC_hi"] = _interval(macro[m], var, z)
        row["AUC_clu_lo"], row["AUC_clu_hi"] = _cluster_macro(y, P.mean(axis=0), groups, K, n_boot, seed, level)
        for k, c in enumerate(classes):
            sens = float(np.mean([cm[k, k] / m_c[k] for cm in cms]))
            row[f"TPR_{c}"] = sens
            row[f"TPR_{c}_lo"], row[f"TPR_{c}_hi"] = wilson_interval(sens * m_c[k], m_c[k], level)
            auc_k = float(np.mean([a[k] for a, _, _ in per]))
            row[f"AUC_{c}"] = auc_k
            row[f"AUC_{c}_lo"], row[f"AUC_{c}_hi"] = _interval(auc_k, float(np.mean([v[k] for _, v, _ in per])), z)
        row["brier"] = float(np.mean([brier_multiclass(y, P[r]) for r in range(R)]))
        if m == best:
            row["p_vs_best"] = float("nan")
        else:
            bper = stats[best][0]
            dvar = float(np.mean([stratified_variance(bper[r][2] - per[r][2], y, K) for r in range(R)]))
            diff = macro[best] - macro[m]
            row["p_vs_best"] = 1.0 if dvar <= 0 else float(2 * norm.sf(abs(diff) / np.sqrt(dvar)))
        rows.append(row)
        confusions[m] = cms.mean(axis=0)
    return rows, best, confusions


def table_columns(classes) -> list[str]:
    """The columns of a K-class ``table.csv``."""
    cols = ["method", "ACC", "ACC_lo", "ACC_hi", "AUC", "AUC_lo", "AUC_hi", "AUC_clu_lo", "AUC_clu_hi"]
    for c in classes:
        cols += [f"TPR_{c}", f"TPR_{c}_lo", f"TPR_{c}_hi", f"AUC_{c}", f"AUC_{c}_lo", f"AUC_{c}_hi"]
    return cols + ["brier", "p_vs_best"]
