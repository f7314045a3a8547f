"""The comparison runner: features, shared folds, every method, statistics.

Protocol (docs/evaluation.md):

* Labels (:mod:`petcad.models.labels`): every label of the manifest takes part, or those of
  ``CompareSettings.labels`` (the rest are left out and counted in the report's notes). Two
  labels: the binary comparison, ``positive`` (default ``malignant``) = 1. More than two: a
  K-class comparison (every classifier and network K-class; one-vs-rest and macro AUC with
  DeLong intervals, per-class sensitivity, a K x K confusion table; see
  :mod:`petcad.evaluation.multiclass`).
* Mode (``CompareSettings.mode``): every row of one table sees the same information.
  ``images`` (images only, the default): the classical features come from petcad's own
  delineation of the images (:mod:`petcad.features.delineation`: PET 40 % of SUVmax, CT
  soft-tissue fallback; ``--delineation suv`` for SUV >= 2.5), never from a supplied mask,
  and the CNNs see the 6 CT / PET planes. ``masks`` (with masks, ``--with-masks``; every
  lesion needs a mask): the classical features come from the supplied masks and the CNNs
  see 9 planes (CT, PET, mask). The mode is named in the table's title and in settings.json.
* Folds: :func:`petcad.evaluation.folds.repeated_group_folds` (patients as groups),
  computed once; every method sees exactly the same folds (paired comparison).
* Classical methods: :class:`petcad.evaluation.classifiers.TunedClassifier` (grid search
  and Youden threshold on inner grouped out-of-fold predictions of the training lesions).
  CNN methods: threshold 0.5 (trained with class balancing); deep-feature SVM / RF use
  the classical SVM / RF on the CNN's penultimate-layer features, fitted in the fold.
* Statistics per method: per repeat, the pooled out-of-fold predictions of all lesions
  give one AUC (with its DeLong variance) and one confusion matrix. Reported: the mean
  over repeats; 95 % intervals: Wilson at one repeat's denominator, DeLong with the mean
  per-repeat variance (repeats re-use the same lesions, so they add no sample size).
  Both assume independent lesions; ``AUC_clu_lo/hi`` is a patient-cluster bootstrap
  interval of the repeat-averaged probabilities that does not. Paired DeLong test
  against the best-AUC method: mean per-repeat AUC difference over the square root of
  the mean per-repeat variance of the difference.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from petcad.errors import InputError
from petcad.evaluation.calibration import brier_score
from petcad.evaluation.classifiers import CLASSICAL, TunedClassifier
from petcad.evaluation.confusion import CONFUSION_METRICS, confusion_counts, pooled_confusion_metrics
from petcad.evaluation.delong import cluster_bootstrap_auc, delong_components
from petcad.evaluation.folds import Fold, repeated_group_folds
from petcad.features.delineation import DelineationSettings
from petcad.models.config import DEFAULT_NORMALIZATION, EMBEDDING_LOSSES, TrainConfig
from petcad.study import Cohort

CNN_METHODS = ("cnn", "multiview", "hybrid", "cnn-svm", "cnn-rf")
ALL_METHODS = tuple(CLASSICAL) + CNN_METHODS
METHOD_LABELS = {
    **{k: v.label for k, v in CLASSICAL.items()},
    "cnn": "2.5D CNN (wang2017)",
    "multiview": "multi-view CNN",
    "hybrid": "hybrid CNN + diagnostic features",
    "cnn-svm": "CNN deep features + SVM",
    "cnn-rf": "CNN deep features + RF",
}
FEATURE_SETS = ("diagnostic", "ibsi", "all")
MODES = ("images", "masks")
#: the default methods of ``petcad compare``: the original study's table (four classical methods, the 2.5D CNN)
DEFAULT_METHODS = ("rf", "svm", "adaboost", "mlp", "cnn")
_RULES = {"fraction": "PET {fraction:.0%} of SUVmax", "suv": "PET SUV >= {suv:g}"}


def mode_title(mode: str) -> str:
    """The mode's short name as table titles show it (``images only`` / ``with masks``)."""
    return {"images": "images only", "masks": "with masks"}[mode]


def mode_description(settings: "CompareSettings") -> str:
    """One English sentence: what the classical features and the CNNs see in this mode."""
    if settings.mode == "masks":
        return ("classical features from the supplied lesion masks; CNNs on 9 channels "
                "(CT, PET and mask planes)")
    d = settings.delineation
    rule = _RULES[d.method].format(fraction=d.fraction, suv=d.suv_threshold)
    return (f"classical features from petcad's delineation of the images ({rule}, CT soft-tissue fallback "
            f"for non-avid lesions); CNNs on 6 channels (CT and PET planes); no supplied mask is used")


class CompareWarning(UserWarning):
    """The comparison continued with a documented fallback (NaN features, excluded lesions)."""


@dataclass(frozen=True)
class CompareSettings:
    """Settings of one comparison (all recorded in the report).

    ``n_splits`` x ``n_repeats`` outer folds; ``seed`` seeds folds, classifiers and CNNs;
    ``features`` is ``diagnostic``, ``ibsi`` or ``all``; ``cnn_epochs`` the CNN training
    epochs per fold, each of at least ``cnn_samples_per_epoch`` augmented samples;
    ``cnn_normalization``, ``cnn_dihedral``, ``cnn_dropout``, ``cnn_embedding_loss`` and
    ``cnn_embedding_weight`` as in :class:`petcad.models.estimator.CNNClassifier` (the embedding
    loss shapes the deep features of ``cnn-svm`` / ``cnn-rf``); ``n_jobs`` parallel workers for the
    classical methods; ``n_boot`` patient-cluster bootstrap replicates; ``labels`` the labels
    taking part (empty = all of the manifest's); ``positive`` the positive one of two labels
    (None = ``malignant``; an error with more than two); ``mode`` ``images`` or ``masks`` (see the
    module text): ``images`` turns delineation ``auto`` into the PET rule ``fraction`` and refuses
    ``mask``; ``masks`` turns ``auto`` into ``mask`` and refuses the PET rules.
    """

    methods: tuple[str, ...] = DEFAULT_METHODS
    n_splits: int = 10
    n_repeats: int = 10
    seed: int = 0
    features: str = "diagnostic"
    inner_splits: int = 3
    cnn_epochs: int = 10
    cnn_samples_per_epoch: int = TrainConfig.min_samples_per_epoch
    cnn_normalization: str = DEFAULT_NORMALIZATION
    cnn_dihedral: bool = TrainConfig.dihedral
    cnn_dropout: float = TrainConfig.dropout
    cnn_embedding_loss: str = TrainConfig.embedding_loss
    cnn_embedding_weight: float = TrainConfig.embedding_weight
    n_jobs: int = 2
    n_boot: int = 2000
    level: float = 0.95
    positive: str | None = None
    labels: tuple[str, ...] = ()
    delineation: DelineationSettings = field(default_factory=DelineationSettings)
    mode: str = "images"

    def __post_init__(self) -> None:
        if self.cnn_embedding_loss not in EMBEDDING_LOSSES:
            raise InputError("--cnn-embedding-loss", f"must be {', '.join(EMBEDDING_LOSSES)}, got {self.cnn_embedding_loss!r}")
        if not (math.isfinite(self.cnn_embedding_weight) and self.cnn_embedding_weight > 0):
            raise InputError("--cnn-embedding-weight", f"must be a positive number, got {self.cnn_embedding_weight!r}")
        if self.mode not in MODES:
            raise InputError("--with-masks", f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        method = self.delineation.method
        if self.mode == "images" and method == "mask":
            raise InputError("--delineation", "'mask' uses the supplied masks: give --with-masks for the with-masks table")
        if self.mode == "masks" and method in ("suv", "fraction"):
            raise InputError("--delineation", f"--with-masks takes the features from the supplied masks; "
                                              f"leave out --delineation {method} or --with-masks")
        if method == "auto":
            dl = dataclasses.replace(self.delineation, method="mask" if self.mode == "masks" else "fraction")
            object.__setattr__(self, "delineation", dl)
        bad = [m for m in self.methods if m not in ALL_METHODS]
        if bad:
            raise InputError("--methods", f"unknown method(s) {', '.join(bad)}; choose from {', '.join(ALL_METHODS)}")
        if not self.methods:
            raise InputError("--methods", "no method given")
        if self.features not in FEATURE_SETS:
            raise InputError("--features", f"unknown feature set {self.features!r}; choose one of {', '.join(FEATURE_SETS)}")
        if self.n_repeats < 1:
            raise InputError("--repeats", f"must be at least 1, got {self.n_repeats}")

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["methods"] = list(self.methods)
        d["labels"] = list(self.labels)
        d["mode_title"] = mode_title(self.mode)
        d["mode_description"] = mode_description(self)
        return d


@dataclass
class LesionTable:
    """The lesions taking part, their labels (class indices into ``classes``), patients and feature matrix."""

    patient_id: np.ndarray
    lesion_id: np.ndarray
    label: np.ndarray  # label strings
    y: np.ndarray  # class index (binary: 0/1, 1 = positive)
    X: np.ndarray
    feature_names: list[str]
    sources: list[str]
    index: np.ndarray  # position of each lesion in cohort.iter_lesions() order
    diagnostic: np.ndarray | None = None  # the 13 diagnostic features (for the hybrid CNN)
    diagnostic_names: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=lambda: ["benign", "malignant"])


@dataclass
class ComparisonResult:
    settings: CompareSettings
    lesions: LesionTable
    folds: list[Fold]
    probabilities: dict[str, np.ndarray]  # method -> (n_repeats, n_lesions) P(positive), or (.., K) for K classes
    predictions: dict[str, np.ndarray]  # method -> (n_repeats, n_lesions) class (binary: at the training-chosen threshold)
    thresholds: dict[str, np.ndarray]  # method -> (n_repeats, n_splits)
    table: list[dict]
    best: str
    timings: dict[str, float]
    notes: list[str]
    summary: dict
    versions: dict[str, str]
    classes: list[str] = field(default_factory=lambda: ["benign", "malignant"])
    confusion: dict[str, np.ndarray] = field(default_factory=dict)  # K classes: method -> mean (K, K) counts
    machine: dict = field(default_factory=dict)  # threads, device, CPU count, platform (see machine_info)
    estimate_s: float = float("nan")  # the run time estimated before the run (NaN: not estimated)

    @property
    def multiclass(self) -> bool:
        return len(self.classes) > 2


# --------------------------------------------------------------------------- lesions and features
def select_lesions(cohort: Cohort, classes) -> tuple[np.ndarray, list[str]]:
    """Indices (``iter_lesions`` order) of lesions labelled one of ``classes``, and notes on the rest."""
    labels = np.asarray(cohort.labels(), dtype=object)
    inside = np.isin(labels.astype(str), list(classes))
    keep = np.flatnonzero(inside)
    notes = []
    other, counts = np.unique(labels[~inside].astype(str), return_counts=True)
    for lab, c in zip(other, counts):
        notes.append(f"{c} lesion(s) labelled '{lab}' left out (only {', '.join(map(repr, classes))} are compared)")
    return keep, notes


def compute_feature_matrix(cohort: Cohort, which: str, settings: DelineationSettings, progress: bool = False):
    """``(names, X, sources, diagnostic X)`` for all lesions of ``cohort`` (diagnostic, IBSI or both)."""
    from petcad.features.diagnostic import cohort_features

    names, X, sources = cohort_features(cohort, settings=settings, progress=progress, return_sources=True)
    if which == "diagnostic":
        return names, X, sources, X
    from petcad.features.ibsi import cohort_ibsi_features

    inames, IX = cohort_ibsi_features(cohort, settings=settings, progress=progress)
    if which == "ibsi":
        return inames, IX, sources, X
    return names + inames, np.hstack([X, IX]), sources, X


def check_features(X: np.ndarray, names: list[str], lesion_ids, where: str = "features") -> tuple[np.ndarray, list[str], list[str]]:
    """Handle non-finite features: a column with no finite value is dropped (warning); other
    non-finite values become NaN and are imputed with the training-fold median inside each
    pipeline (warning naming lesions and features). No finite column left: InputError."""
    X = np.where(np.isfinite(X), X, np.nan)
    notes = []
    allnan = np.all(np.isnan(X), axis=0)
    if allnan.all():
        raise InputError(where, "no feature has a finite value for any lesion")
    if allnan.any():
        dropped = [n for n, a in zip(names, allnan) if a]
        msg = f"feature(s) {', '.join(dropped)} have no finite value: left out"
        warnings.warn(msg, CompareWarning, stacklevel=2)
        notes.append(msg)
        X = X[:, ~allnan]
        names = [n for n, a in zip(names, allnan) if not a]
    bad_rows = np.flatnonzero(np.isnan(X).any(axis=1))
    if bad_rows.size:
        bad_cols = [n for n, b in zip(names, np.isnan(X).any(axis=0)) if b]
        shown = ", ".join(str(lesion_ids[i]) for i in bad_rows[:5]) + (" ..." if bad_rows.size > 5 else "")
        msg = (f"{bad_rows.size} lesion(s) ({shown}) have non-finite feature values ({', '.join(bad_cols[:8])}); "
               "imputed with the training-fold median")
        warnings.warn(msg, CompareWarning, stacklevel=2)
        notes.append(msg)
    return X, names, notes


def check_mode(pairs, mode: str) -> None:
    """``masks`` needs a supplied mask for every compared lesion: an InputError counting those without."""
    if mode != "masks":
        return
    missing = sum(les.mask is None for _, les in pairs)
    if missing:
        raise InputError("--with-masks", f"{missing} of {len(pairs)} compared lesions have no mask (the manifest's "
                                         "mask column); the with-masks table needs one for every lesion")


def prepare_lesions(cohort: Cohort, settings: CompareSettings, progress: bool = False) -> tuple[LesionTable, Cohort, list[str]]:
    """Select the lesions of the compared labels, compute their features; returns the table, the
    filtered cohort (same studies, only those lesions) and notes."""
    from petcad.models.labels import encode, resolve_classes

    classes = list(resolve_classes(cohort.labels(), positive=settings.positive, keep=settings.labels or None))
    keep, notes = select_lesions(cohort, classes)
    keep_set = set(keep.tolist())
    studies, pos = [], 0
    for s in cohort.studies:
        kept = []
        for les in s.lesions:
            if pos in keep_set:
                kept.append(les)
            pos += 1
        if kept:
            studies.append(dataclasses.replace(s, lesions=kept))
    sub = Cohort(studies)
    pairs = list(sub.iter_lesions())
    check_mode(pairs, settings.mode)
    pids = np.array([les.patient_id for _, les in pairs], dtype=object)
    lids = np.array([les.lesion_id for _, les in pairs], dtype=object)
    labels = np.array([les.label for _, les in pairs], dtype=object)
    y = encode(labels, classes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names, X, sources, D = compute_feature_matrix(sub, settings.features, settings.delineation, progress)
    for w in caught:
        notes.append(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    X, names, n2 = check_features(X, names, lids)
    notes += n2
    from petcad.features.diagnostic import FEATURE_NAMES

    D = np.where(np.isfinite(D), D, np.nan)
    return LesionTable(pids, lids, labels, y, X, names, sources, keep, D, list(FEATURE_NAMES), classes), sub, notes


# --------------------------------------------------------------------------- fitting
def _classical_task(method: str, X, y, groups, fold: Fold, inner_splits: int, seed: int):
    clf = TunedClassifier(method, inner_splits=inner_splits, seed=seed + 1000 * fold.repeat + fold.fold)
    clf.fit(X[fold.train], y[fold.train], groups[fold.train])
    p = clf.predict_proba(X[fold.test])
    return method, fold.repeat, fold.fold, p[:, 1] if p.shape[1] == 2 else p, clf.threshold_


def run_classical(table: LesionTable, folds: list[Fold], methods, settings: CompareSettings, progress: bool = False):
    """Out-of-fold probabilities and thresholds of the classical methods (parallel over folds)."""
    from joblib import Parallel, delayed

    tasks = [(m, f) for m in methods for f in folds]
    if not tasks:
        return []
    par = Parallel(n_jobs=settings.n_jobs, return_as="generator")
    gen = par(delayed(_classical_task)(m, table.X, table.y, table.patient_id, f, settings.inner_splits, settings.seed)
              for m, f in tasks)
    if progress:
        from tqdm.auto import tqdm

        gen = tqdm(gen, total=len(tasks), desc="classical methods (method x fold)", unit="fold")
    return list(gen)


def run_cnn(cohort: Cohort, table: LesionTable, folds: list[Fold], methods, settings: CompareSettings, progress: bool = False):
    """Out-of-fold probabilities of the CNN methods through the same folds (see :mod:`petcad.models`)."""
    from petcad.evaluation import cnn_methods

    return cnn_methods.run(cohort, table, folds, methods, settings, progress=progress)


# --------------------------------------------------------------------------- statistics
def summarise(y, groups, probabilities, predictions, n_repeats: int, level: float = 0.95, n_boot: int = 2000,
              seed: int = 0) -> tuple[list[dict], str]:
    """One row per method (see the module text for the pooling); returns (rows, best method)."""
    z = float(norm.ppf(0.5 + level / 2))
    per = {}
    for m, P in probabilities.items():
        aucs, v10s, v01s = [], [], []
        for r in range(n_repeats):
            a, v10, v01 = delong_components(y, P[r])
            aucs.append(a[0]), v10s.append(v10[0]), v01s.append(v01[0])
        per[m] = (np.array(aucs), np.array(v10s), np.array(v01s))
    best = max(per, key=lambda m: per[m][0].mean())
    rows = []
    bv10, bv01 = per[best][1], per[best][2]
    for m, P in probabilities.items():
        aucs, v10, v01 = per[m]
        n_pos, n_neg = v10.shape[1], v01.shape[1]
        var = np.mean([np.var(v10[r], ddof=1) / n_pos + np.var(v01[r], ddof=1) / n_neg for r in range(n_repeats)])
        auc = float(aucs.mean())
        se = float(np.sqrt(var))
        counts = [confusion_counts(y, predictions[m][r]) for r in range(n_repeats)]
        cm = pooled_confusion_metrics(counts, level)
        row = {"method": m}
        for name in CONFUSION_METRICS:
            row.update(cm[name].as_dict(name))
        row.update({"AUC": auc, "AUC_lo": max(0.0, auc - z * se), "AUC_hi": min(1.0, auc + z * se)})
        clu = cluster_bootstrap_auc(y, P.mean(axis=0), groups, n_boot=n_boot, seed=seed, level=level)
        row.update({"AUC_clu_lo": clu.lo, "AUC_clu_hi": clu.hi})
        row["brier"] = float(np.mean([brier_score(y, P[r]) for r in range(n_repeats)]))
        if m == best:
            row["p_vs_best"] = float("nan")
        else:
            d10, d01 = bv10 - v10, bv01 - v01
            dvar = np.mean([np.var(d10[r], ddof=1) / n_pos + np.var(d01[r], ddof=1) / n_neg for r in range(n_repeats)])
            diff = float(per[best][0].mean() - auc)
            row["p_vs_best"] = 1.0 if dvar <= 0 else float(2 * norm.sf(abs(diff) / np.sqrt(dvar)))
        rows.append(row)
    return rows, best


def software_versions(with_torch: bool = False, with_mirp: bool = False) -> dict[str, str]:
    """Versions recorded in the report (see :func:`petcad.provenance.software_versions`)."""
    from petcad.provenance import software_versions as _versions

    return _versions(extra=("mirp", "pandas") if with_mirp else ())


def machine_info(settings: CompareSettings, with_torch: bool) -> dict:
    """Where the comparison ran (exact reproducibility needs the same machine, threads and device)."""
    import os
    import platform

    info = {"threads": settings.n_jobs, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "machine": platform.machine()}
    if with_torch:
        from petcad.models.train import resolve_device

        dev = resolve_device("auto")
        if dev.type == "cuda":
            import torch

            info["device"] = f"cuda ({torch.cuda.get_device_name(dev)})"
        else:
            info["device"] = "cpu"
    else:
        info["device"] = "cpu"
    return info


def compare(cohort: Cohort, settings: CompareSettings = CompareSettings(), progress: bool = False,
            on_estimate=None) -> ComparisonResult:
    """Run the whole comparison on ``cohort``; see the module text for the protocol.

    ``on_estimate``: called with one line, the estimated run time (:mod:`petcad.evaluation.estimate`),
    after the features and folds and before the methods run; None = no estimate.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    table, sub, notes = prepare_lesions(cohort, settings, progress)
    timings["features_s"] = time.perf_counter() - t0

    folds = repeated_group_folds(table.y, table.patient_id, settings.n_splits, settings.n_repeats, settings.seed,
                                 where="manifest")
    estimate_s = float("nan")
    if on_estimate is not None:
        from petcad.evaluation.estimate import estimate

        est = estimate(sub, table, folds, settings)
        estimate_s = est.total_s
        timings["estimate_measure_s"] = est.measure_s
        on_estimate(est.text(len(folds), len(settings.methods)))
    n = table.y.size
    R, K = settings.n_repeats, settings.n_splits
    C = len(table.classes)
    shape = (R, n) if C == 2 else (R, n, C)
    probs = {m: np.full(shape, np.nan) for m in settings.methods}
    thr = {m: np.full((R, K), np.nan) for m in settings.methods}

    classical = [m for m in settings.methods if m in CLASSICAL]
    cnn = [m for m in settings.methods if m in CNN_METHODS]
    fold_of = {(f.repeat, f.fold): f for f in folds}
    t = time.perf_counter()
    for m, r, k, p, th in run_classical(table, folds, classical, settings, progress):
        probs[m][r, fold_of[(r, k)].test] = p
        thr[m][r, k] = th
    timings["classical_s"] = time.perf_counter() - t
    if cnn:
        t = time.perf_counter()
        for m, r, k, p, th in run_cnn(sub, table, folds, cnn, settings, progress):
            probs[m][r, fold_of[(r, k)].test] = p
            thr[m][r, k] = th
        timings["cnn_s"] = time.perf_counter() - t
    preds = {m: _predictions(probs[m], thr[m], folds) for m in settings.methods}

    t = time.perf_counter()
    confusion = {}
    if C == 2:
        rows, best = summarise(table.y, table.patient_id, probs, preds, R, settings.level, settings.n_boot, settings.seed)
    else:
        from petcad.evaluation.multiclass import summarise_multiclass

        rows, best, confusion = summarise_multiclass(table.y, table.patient_id, probs, preds, table.classes,
                                                     settings.level, settings.n_boot, settings.seed)
    timings["statistics_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0

    per_patient = np.unique(table.patient_id, return_counts=True)[1]
    src, src_n = np.unique(np.asarray(table.sources), return_counts=True)
    counts = np.bincount(table.y, minlength=C)
    summary = {
        "patients": int(per_patient.size),
        "lesions": int(n),
        "classes": list(table.classes),
        "class_counts": {c: int(k) for c, k in zip(table.classes, counts)},
        "lesions_per_patient_median": float(np.median(per_patient)),
        "lesions_per_patient_max": int(per_patient.max()),
        "features": len(table.feature_names),
        "delineation": {str(s): int(c) for s, c in zip(src, src_n)},
    }
    versions = software_versions(with_torch=bool(cnn), with_mirp=settings.features != "diagnostic")
    summary["mode"] = mode_title(settings.mode)
    return ComparisonResult(settings, table, folds, probs, preds, thr, rows, best, timings, notes, summary, versions,
                            list(table.classes), confusion, machine_info(settings, bool(cnn)), estimate_s)


def _predictions(P: np.ndarray, thr: np.ndarray, folds: list[Fold]) -> np.ndarray:
    """Class per repeat and lesion: binary, P >= the fold's threshold; K classes, the most probable."""
    if np.isnan(P).any():
        raise RuntimeError("some lesions got no out-of-fold prediction")
    if P.ndim == 3:
        return P.argmax(axis=2)
    th_lesion = np.empty(P.shape)
    for f in folds:
        th_lesion[f.repeat, f.test] = thr[f.repeat, f.fold]
    return (P >= th_lesion).astype(int)
