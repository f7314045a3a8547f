"""Prediction with a trained run directory: at world points of one study, or for a whole manifest.

The run's label list (``config.json`` ``classes``) decides the output: binary runs give the
probability of the positive label (``probability``), K-class runs one ``p_<label>`` per label
and the most probable label (``predicted``). A manifest label the model does not know is an
error naming the manifest, the label and the model.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from petcad.errors import InputError
from petcad.io.atomic import write_text
from petcad.models.data import LesionData, features_for_study, load_manifest_data
from petcad.models.estimator import CNNClassifier


def parse_point(text: str) -> np.ndarray:
    """``"x,y,z"`` (mm, LPS) -> array (3,)."""
    parts = [p for p in str(text).replace(" ", "").split(",") if p != ""]
    try:
        xyz = np.array([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        raise InputError("--at", f"expected x,y,z in mm, got {text!r}") from None
    if xyz.shape != (3,) or not np.all(np.isfinite(xyz)):
        raise InputError("--at", f"expected three finite numbers x,y,z in mm, got {text!r}")
    return xyz


def _check_features(clf: CNNClassifier, names) -> None:
    want = list(clf.config_.get("feature_names") or [])
    if want and list(names) != want:
        raise InputError("features", f"the diagnostic features differ from the training ones ({len(names)} vs {len(want)} columns)")


def predict_points(run_dir, ct, pet, points_mm, *, tta: bool = False, device: str = "auto",
                   threads: int | None = None, on_irregular: str = "error") -> list[dict]:
    """Probability of malignancy at world points ``(n, 3)`` (mm, LPS) of the study (CT, PET).

    Returns one dict per point: ``x, y, z, probability`` (of the ``positive`` label) and ``label``
    (the positive label when probability >= 0.5, else the other) for a binary run; for a
    K-class run ``x, y, z``, ``p_<label>`` per label and ``label`` (the most probable).
    """
    from petcad.io.loader import load_study
    from petcad.patches.cache import LesionCache
    from petcad.study import Lesion

    clf = CNNClassifier.load(run_dir, device=device, threads=threads)
    cfg = clf.config_
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    if len(pts) == 0:
        raise InputError("--at", "give at least one point")
    study = load_study(ct, pet, patient_id="query", on_irregular=on_irregular)
    inside = study.ct.contains(pts)
    if not np.all(inside):
        bad = int(np.flatnonzero(~inside)[0])
        raise InputError("--at", f"point {bad + 1} ({', '.join(f'{v:g}' for v in pts[bad])}) lies outside the CT")
    if int(cfg["in_channels"]) != 6:
        raise InputError(run_dir, "this network needs mask channels; use the manifest mode with masks")
    cache = LesionCache.from_study(study, pts, size=int(cfg["patch_size"]), spacing_mm=float(cfg["spacing_mm"]))
    feats, names = None, ()
    if clf.scaler_ is not None:
        lesions = [Lesion(f"point{i}", c, "", study.patient_id) for i, c in enumerate(pts)]
        feats, names = features_for_study(study, lesions)
        _check_features(clf, names)
    data = LesionData(cache=cache, y=np.zeros(len(pts), dtype=np.int64), groups=np.zeros(len(pts)),
                      features=feats, feature_names=names, size=int(cfg["patch_size"]),
                      spacing_mm=float(cfg["spacing_mm"]), normalization=cfg.get("normalization", "patch"),
                      classes=clf.labels_)
    P = clf.predict_proba(data, tta=tta)
    classes = clf.labels_
    if len(classes) == 2:
        return [{"x": float(a[0]), "y": float(a[1]), "z": float(a[2]), "probability": float(q[1]),
                 "positive": classes[1], "label": classes[1] if q[1] >= 0.5 else classes[0]} for a, q in zip(pts, P)]
    return [{"x": float(a[0]), "y": float(a[1]), "z": float(a[2]),
             **{f"p_{c}": float(v) for c, v in zip(classes, q)}, "label": classes[int(np.argmax(q))]}
            for a, q in zip(pts, P)]


def predict_manifest(run_dir, manifest, out_csv, *, tta: bool = False, device: str = "auto",
                     threads: int | None = None, on_irregular: str = "error") -> list[dict]:
    """One row per lesion of the manifest, written atomically.

    Binary run: ``patient_id, lesion_id, label, probability`` (of the positive label).
    K-class run: ``patient_id, lesion_id, label, p_<label>..., predicted``.
    """
    from petcad.io.manifest import read_manifest
    from petcad.models.labels import check_known

    clf = CNNClassifier.load(run_dir, device=device, threads=threads)
    cfg = clf.config_
    if not Path(manifest).is_file():
        raise InputError(manifest, "manifest not found")
    check_known((r.label for r in read_manifest(manifest, allowed_labels=None)), clf.labels_, manifest, run_dir)
    _, data = load_manifest_data(manifest, size=int(cfg["patch_size"]), spacing_mm=float(cfg["spacing_mm"]),
                                 with_mask=bool(cfg.get("with_mask")), with_features=clf.scaler_ is not None,
                                 normalization=cfg.get("normalization", "patch"), classes=clf.labels_,
                                 on_irregular=on_irregular)
    if clf.scaler_ is not None:
        _check_features(clf, data.feature_names)
    P = clf.predict_proba(data, tta=tta)
    classes = clf.labels_
    labels = [classes[int(k)] for k in data.y]
    keys = zip(data.groups, data.lesion_ids, labels, P)
    if len(classes) == 2:
        rows = [{"patient_id": str(g), "lesion_id": str(l), "label": lab, "probability": float(q[1])} for g, l, lab, q in keys]
        cols, fmt = ["patient_id", "lesion_id", "label", "probability"], {"probability"}
    else:
        rows = [{"patient_id": str(g), "lesion_id": str(l), "label": lab, **{f"p_{c}": float(v) for c, v in zip(classes, q)},
                 "predicted": classes[int(np.argmax(q))]} for g, l, lab, q in keys]
        cols = ["patient_id", "lesion_id", "label"] + [f"p_{c}" for c in classes] + ["predicted"]
        fmt = {f"p_{c}" for c in classes}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6f}" if k in fmt else v) for k, v in r.items()})
    write_text(out_csv, buf.getvalue())
    return rows
