"""``petcad bench phantom``: the phantom's calibration figure.

Simulates patients in memory (no files), measures the 13 diagnostic features of
every node with :mod:`petcad.features.diagnostic` in the comparison's two modes,
and cross-validates a random forest with patient-grouped folds
(``StratifiedGroupKFold``) on each:

* *with masks* (the calibration figure): the node's generated mask as its
  delineation, as a physician's contour would be. The AUC of the pooled
  out-of-fold probabilities is the figure the ``paper`` preset is tuned to
  (0.87-0.92, Wang et al. 2017 for such features).
* *images only*: petcad's own delineation of the images (PET 40 % of SUVmax,
  CT fallback), the features ``petcad compare`` uses by default. Printed beside
  it; the phantom is not tuned to it.

Also prints the time taken.

    petcad bench phantom --preset paper --seed 0            # the full figure (168 patients)
    petcad bench phantom --patients 60 --seed 0 --json      # the test's size
"""

from __future__ import annotations

HELP = "phantom calibration: random-forest AUC on diagnostic features (with masks, and images only), patient-grouped CV"

#: the delineation of each mode (see petcad.evaluation.compare); the calibration figure is "masks"
MODE_DELINEATION = {"masks": "mask", "images": "fraction"}
MODE_TITLES = {"masks": "with masks", "images": "images only"}
CALIBRATION_MODE = "masks"


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default="paper", help="phantom preset (default paper: 168 patients)")
    parser.add_argument("--patients", type=int, default=None, help="number of patients (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0, help="cohort seed (default 0); the CV and forest use it too")
    parser.add_argument("--folds", type=int, default=10, help="patient-grouped folds (default 10)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _patient_features(job):
    import warnings

    import numpy as np

    from petcad.features.delineation import DelineationSettings
    from petcad.features.diagnostic import FEATURE_NAMES, compute_features
    from petcad.phantom.cohort import simulate_patient
    from petcad.study import Lesion, Study

    ss, preset, number, modes = job
    t = simulate_patient(ss, preset, number)
    lesions = [Lesion(les.lesion_id, les.center_mm, les.label, t.patient_id, mask=les.mask) for les in t.lesions]
    study = Study(t.patient_id, t.ct, t.pet, lesions)
    X = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode in modes:
            settings = DelineationSettings(method=MODE_DELINEATION[mode])
            rows = []
            for les in lesions:
                f = compute_features(study, les, settings)
                rows.append([f[n] for n in FEATURE_NAMES])
            X[mode] = np.asarray(rows, float).reshape(-1, len(FEATURE_NAMES))
    labels = [les.label == "malignant" for les in t.lesions]
    return X, labels, [t.patient_id] * len(lesions)


def phantom_features(n_patients: int, seed: int, preset: str = "paper", workers: int | None = None,
                     mode: str = CALIBRATION_MODE):
    """Diagnostic features of every node of ``n_patients`` simulated patients, delineated as in ``mode``
    (``masks``: the generated masks, the calibration figure's; ``images``: petcad's PET delineation).

    Returns ``(feature_names, X (n_nodes, 13), y (1 = malignant), groups (patient ids))``;
    the patients are exactly those ``petcad phantom --seed seed`` writes.
    """
    names, X, y, g = phantom_feature_sets(n_patients, seed, preset, workers, modes=(mode,))
    return names, X[mode], y, g


def phantom_feature_sets(n_patients: int, seed: int, preset: str = "paper", workers: int | None = None,
                         modes=("masks", "images")):
    """As :func:`phantom_features`, for several modes from one simulation: ``(names, {mode: X}, y, groups)``."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    import numpy as np

    from petcad.features.diagnostic import FEATURE_NAMES
    from petcad.phantom.cohort import patient_seeds
    from petcad.phantom.presets import get_preset

    pre = get_preset(preset)
    bad = [m for m in modes if m not in MODE_DELINEATION]
    if bad:
        raise ValueError(f"unknown mode(s) {', '.join(bad)}; choose from {', '.join(MODE_DELINEATION)}")
    jobs = [(s, pre, i + 1, tuple(modes)) for i, s in enumerate(patient_seeds(seed, n_patients))]
    nw = min(int(workers or os.cpu_count() or 1), len(jobs))
    if nw <= 1:
        res = list(map(_patient_features, jobs))
    else:
        with ProcessPoolExecutor(max_workers=nw, mp_context=get_context("forkserver")) as ex:
            res = list(ex.map(_patient_features, jobs))
    X = {m: np.concatenate([r[0][m] for r in res]) for m in modes}
    y = np.concatenate([np.asarray(r[1], int) for r in res])
    g = np.concatenate([np.asarray(r[2]) for r in res])
    return list(FEATURE_NAMES), X, y, g


def grouped_rf_auc(X, y, groups, seed: int = 0, folds: int = 10) -> dict:
    """Random forest (300 trees, min 3 samples a leaf) under StratifiedGroupKFold by patient.

    Returns the AUC of the pooled out-of-fold probabilities and the mean/SD of the per-fold AUCs.
    """
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold

    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    oof = np.zeros(len(y))
    fold_aucs = []
    for tr, te in cv.split(X, y, groups):
        rf = RandomForestClassifier(n_estimators=300, min_samples_leaf=3, random_state=seed, n_jobs=1)
        rf.fit(X[tr], y[tr])
        oof[te] = rf.predict_proba(X[te])[:, 1]
        if len(np.unique(y[te])) == 2:
            fold_aucs.append(roc_auc_score(y[te], oof[te]))
    return {"auc_pooled": float(roc_auc_score(y, oof)), "auc_fold_mean": float(np.mean(fold_aucs)),
            "auc_fold_sd": float(np.std(fold_aucs)), "folds": folds}


def run(args) -> int:
    import json
    import time

    from petcad.errors import InputError
    from petcad.provenance import software_versions
    from petcad.phantom.presets import get_preset

    pre = get_preset(args.preset)
    n = args.patients if args.patients is not None else pre.n_patients
    if n < 10:
        raise InputError("--patients", "at least 10 patients are needed for a grouped cross-validation")
    t0 = time.perf_counter()
    names, Xs, y, g = phantom_feature_sets(n, args.seed, pre, workers=args.workers)
    t1 = time.perf_counter()
    # the calibration figure (with masks) keeps the top-level keys; images only beside it
    per_mode = {m: _mode_figures(Xs[m], y, g, names, args) for m in ("masks", "images")}
    out = {"preset": pre.name, "patients": n, "nodes": int(len(y)), "malignant_share": float(y.mean()),
           "seed": args.seed, "calibration_mode": MODE_TITLES[CALIBRATION_MODE], **per_mode[CALIBRATION_MODE],
           "images_only": per_mode["images"], "features": names,
           "seconds_simulation_and_features": round(t1 - t0, 1), "seconds_cv": round(time.perf_counter() - t1, 1),
           "versions": software_versions()}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"phantom calibration: preset {pre.name}, {n} patients, {len(y)} nodes, malignant {y.mean():.1%}, seed "
              f"{args.seed}")
        for m in ("masks", "images"):
            r = per_mode[m]
            what = ("the calibration figure: features inside the generated lesion masks" if m == CALIBRATION_MODE
                    else "features from petcad's delineation of the images (PET 40% of SUVmax, CT fallback)")
            print(f"{MODE_TITLES[m]} ({what}):")
            print(f"  random forest, {args.folds}-fold StratifiedGroupKFold by patient: AUC (pooled out-of-fold) "
                  f"{r['auc_pooled']:.3f}; per-fold {r['auc_fold_mean']:.3f} +- {r['auc_fold_sd']:.3f}")
            print("  single-feature AUC: " + ", ".join(f"{k} {v:.2f}" for k, v in r["single_feature_auc"].items()))
        print(f"time: simulation + features {out['seconds_simulation_and_features']} s, CV {out['seconds_cv']} s")
    return 0


def _mode_figures(X, y, g, names, args) -> dict:
    """The random forest's grouped-CV AUCs and the single-feature AUCs (how much each feature alone separates)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    res = grouped_rf_auc(X, y, g, seed=args.seed, folds=args.folds)
    res["single_feature_auc"] = {n_: round(float(roc_auc_score(y, np.nan_to_num(X[:, i]))), 3)
                                 for i, n_ in enumerate(names)}
    return res
