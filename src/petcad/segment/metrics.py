"""Evaluation of segmentation outputs against a manifest's lesion masks.

Per study (on the CT grid of ``labels.nii.gz``):

* **Dice per class**: ``2 |P_c & T_c| / (|P_c| + |T_c|)`` for each tumour class and for ``tumour``
  (any tumour class); undefined (None) when both are empty.
* **Lesion-wise detection**: a true lesion (one manifest row, its mask) is **found** when at least
  one voxel of its mask is predicted as any tumour class. A predicted lesion (a 26-connected
  component of tumour voxels, the lesions of ``lesions.json``) is a **false positive** when none
  of its voxels lies in any true lesion mask. Sensitivity = found / true lesions; false
  positives per study.
* **autoPET volumes** (as the challenge's script): components with 18-connectivity; false-positive
  volume = predicted components that touch no true lesion voxel; false-negative volume = true
  components (of the union of the masks) that touch no predicted tumour voxel; in mL.
* **FROC** (as LUNA16 and the lesion-detection literature): each predicted lesion is scored by its
  mean tumour probability (the sum of its ``p_<class>`` over the tumour classes, ``lesions.json``);
  for every threshold, the lesions scoring below it are dropped, a true lesion counts as found when
  a kept lesion overlaps it, and false positives per study are the kept lesions overlapping none.
  Reported: the best sensitivity at <= 0.125, 0.25, 0.5, 1, 2, 4 and 8 false positives per study,
  with the threshold that gives it (``petcad segment --min-score``), and their mean (CPM).
* **Malignant vs benign** (two tumour classes named ``benign`` and ``malignant``): per found
  lesion the score ``p_malignant / (p_benign + p_malignant)`` of the predicted lesion overlapping it
  most; the AUC over found lesions (pooled over studies).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from petcad.errors import InputError
from petcad.segment.lesions import lesion_score

CONN26 = np.ones((3, 3, 3), dtype=bool)


def conn18() -> np.ndarray:
    from scipy import ndimage

    return ndimage.generate_binary_structure(3, 2)


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    sa, sb = int(a.sum()), int(b.sum())
    if sa + sb == 0:
        return None
    return 2.0 * int(np.logical_and(a, b).sum()) / (sa + sb)


def _voxels_of_untouched_components(a: np.ndarray, b: np.ndarray) -> int:
    """Voxels of the 18-connected components of ``a`` that share no voxel with ``b``."""
    from scipy import ndimage

    lab, n = ndimage.label(a, structure=conn18())
    if not n:
        return 0
    hit = np.zeros(n + 1, dtype=bool)
    hit[np.unique(lab[b & (lab > 0)])] = True
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    return int(sizes[1:][~hit[1:]].sum())


def autopet_volumes(pred: np.ndarray, truth: np.ndarray, voxel_ml: float) -> tuple[float, float]:
    """(false-positive, false-negative) volume in mL with 18-connected components: predicted
    components touching no true lesion, and true components touching no prediction."""
    return (_voxels_of_untouched_components(pred, truth) * voxel_ml,
            _voxels_of_untouched_components(truth, pred) * voxel_ml)


def evaluate_study(study_dir: Path, rows, classes_hint=None) -> dict:
    """Metrics of one study folder (``labels.nii.gz``, ``lesions.json``, ``meta.json``) against manifest rows."""
    from scipy import ndimage

    from petcad.io.masks import load_mask
    from petcad.io.volumes import read_image

    meta_path = study_dir / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        lesions = json.loads((study_dir / "lesions.json").read_text(encoding="utf-8"))["lesions"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(study_dir, f"not a petcad segment output folder ({type(exc).__name__})") from None
    classes = list(meta["classes"])
    labels = read_image(study_dir / "labels.nii.gz")  # class numbers (not modality="mask", which binarises)
    lab = np.rint(labels.array).astype(np.int64)
    voxel_ml = float(np.prod(labels.spacing)) / 1000.0
    truth = np.zeros(lab.shape, dtype=np.int64)
    masks = []
    for r in rows:
        if r.mask is None:
            raise InputError(r.mask or f"row {r.row}", f"lesion {r.lesion_id}: evaluation needs a mask for every lesion")
        if r.label not in classes:
            raise InputError(f"row {r.row}", f"label {r.label!r} is not a class of the segmentation ({', '.join(classes[1:])})")
        m = load_mask(r.mask, like=labels, label=r.mask_label).array > 0
        truth[m] = classes.index(r.label)
        masks.append((r, m))
    pred_t, true_t = lab > 0, truth > 0
    out = {"patient_id": study_dir.name, "n_true": len(rows), "n_pred": len(lesions),
           "dice": {c: dice(lab == k, truth == k) for k, c in enumerate(classes) if k > 0}}
    out["dice"]["tumour"] = dice(pred_t, true_t)
    comp, n = ndimage.label(pred_t, structure=CONN26)
    if n != len(lesions):
        raise InputError(study_dir / "lesions.json", f"{len(lesions)} lesions listed but labels.nii.gz has {n} components")
    score = [lesion_score(row, classes) for row in lesions]
    found, scores = [], []
    for r, m in masks:
        ids, counts = np.unique(comp[m & pred_t], return_counts=True)
        hit = len(ids) > 0
        found.append({"lesion_id": r.lesion_id, "label": r.label, "found": bool(hit),
                      "best_score": max(score[int(i) - 1] for i in ids) if hit else None})
        if hit and {"benign", "malignant"} <= set(classes):
            row = lesions[int(ids[np.argmax(counts)]) - 1]
            pb, pm = float(row["p_benign"]), float(row["p_malignant"])
            scores.append((r.label, pm / max(pb + pm, 1e-12)))
    tp_comp = np.unique(comp[true_t & pred_t])
    out["n_found"] = int(sum(f["found"] for f in found))
    out["false_positives"] = int(n - len(tp_comp[tp_comp > 0]))
    out["sensitivity"] = out["n_found"] / len(rows) if rows else None
    fpv, fnv = autopet_volumes(pred_t, true_t, voxel_ml)
    out["fp_volume_ml"], out["fn_volume_ml"] = fpv, fnv
    out["lesions"] = found
    out["scores"] = scores
    tp = set(int(i) for i in tp_comp if i > 0)
    out["detections"] = [{"score": sc, "true_positive": k + 1 in tp} for k, sc in enumerate(score)]
    return out


FROC_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def froc(studies: list[dict], rates=FROC_RATES) -> dict:
    """Best sensitivity at each rate of false positives per study (rule in the module docstring)."""
    n_studies = len(studies)
    true_best = np.array([-np.inf if f["best_score"] is None else f["best_score"] for s in studies for f in s["lesions"]])
    fp_scores = np.sort([d["score"] for s in studies for d in s["detections"] if not d["true_positive"]])[::-1]
    thresholds = np.unique(np.concatenate([true_best[np.isfinite(true_best)], fp_scores]))[::-1]
    points = []
    for t in thresholds:  # from the highest score down: sensitivity and false positives both grow
        fp = int(np.searchsorted(-fp_scores, -t, side="right")) / n_studies
        points.append((float(t), fp, float((true_best >= t).mean()) if len(true_best) else 0.0))
    table = []
    for rate in rates:
        ok = [p for p in points if p[1] <= rate]
        best = max(ok, key=lambda p: (p[2], p[0])) if ok else None
        table.append({"fp_per_study": rate, "sensitivity": best[2] if best else 0.0,
                      "min_score": best[0] if best else None, "fp_per_study_at_threshold": best[1] if best else 0.0})
    return {"points": table, "cpm": float(np.mean([p["sensitivity"] for p in table])),
            "score": "mean tumour probability of the predicted lesion"}


def summarise(studies: list[dict], classes: list[str]) -> dict:
    """Overall figures: pooled sensitivity, mean false positives / volumes per study, mean Dice, AUC."""
    from sklearn.metrics import roc_auc_score

    n_true = sum(s["n_true"] for s in studies)
    n_found = sum(s["n_found"] for s in studies)
    by_label = {}
    for c in classes[1:]:
        les = [f for s in studies for f in s["lesions"] if f["label"] == c]
        by_label[c] = {"n": len(les), "found": sum(f["found"] for f in les),
                       "sensitivity": (sum(f["found"] for f in les) / len(les)) if les else None}
    mean = lambda key: float(np.mean([s[key] for s in studies])) if studies else None  # noqa: E731
    dice_mean = {}
    for c in list(classes[1:]) + ["tumour"]:
        vals = [s["dice"][c] for s in studies if s["dice"].get(c) is not None]
        dice_mean[c] = float(np.mean(vals)) if vals else None
    sc = [x for s in studies for x in s["scores"]]
    y = np.array([lab == "malignant" for lab, _ in sc], dtype=int)
    auc = float(roc_auc_score(y, [p for _, p in sc])) if len(np.unique(y)) == 2 else None
    return {"n_studies": len(studies), "n_true": n_true, "n_found": n_found,
            "sensitivity": n_found / n_true if n_true else None, "sensitivity_by_label": by_label,
            "false_positives_per_study": mean("false_positives"), "fp_volume_ml_per_study": mean("fp_volume_ml"),
            "fn_volume_ml_per_study": mean("fn_volume_ml"), "dice_mean": dice_mean,
            "auc_malignant_found": auc, "auc_n": {"benign": int((y == 0).sum()), "malignant": int(y.sum())},
            "froc": froc(studies),
            "rules": {"found": "a true lesion is found when >= 1 of its mask voxels is predicted as any tumour class",
                      "false_positive": "a predicted lesion (26-connected) overlapping no true lesion voxel",
                      "autopet_volumes": "18-connected components; FP: predicted components touching no true voxel; "
                                         "FN: true components touching no predicted voxel",
                      "auc": "over found lesions, score p_malignant / (p_benign + p_malignant) of the predicted lesion "
                             "overlapping most"}}


def evaluate_dir(out_dir, manifest) -> dict:
    """Evaluate every study of ``manifest`` that has an output folder in ``out_dir``."""
    from petcad.io.manifest import read_manifest

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(out_dir, "segmentation output folder not found")
    by_pid: dict[str, list] = {}
    for r in read_manifest(manifest, allowed_labels=None):
        by_pid.setdefault(r.patient_id, []).append(r)
    studies, missing, classes = [], [], None
    for pid, rows in by_pid.items():
        d = out_dir / pid
        if not (d / "meta.json").is_file():
            missing.append(pid)
            continue
        res = evaluate_study(d, rows)
        studies.append(res)
        if classes is None:
            classes = json.loads((d / "meta.json").read_text(encoding="utf-8"))["classes"]
    if not studies:
        raise InputError(out_dir, f"no study of {manifest} has outputs here (expected {out_dir}/<patient_id>/meta.json)")
    return {"overall": summarise(studies, classes),
            "studies": [{k: v for k, v in s.items() if k not in ("scores", "detections")} for s in studies],
            "missing": missing}
