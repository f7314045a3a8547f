"""``petcad explain``: saliency panels of every lesion of a manifest, as PNG, with a summary CSV."""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np

from petcad.errors import InputError
from petcad.io.atomic import write_text

CSV_COLUMNS = ("patient_id", "lesion_id", "label", "file", "method", "explained_class", "probability",
               "ct_share", "pet_share", "mask_share")


def explain_manifest(run_dir, manifest, out_dir, *, method: str = "ig", steps: int = 32, lang: str = "en",
                     device: str = "cpu", limit: int | None = None) -> list[dict]:
    """Write ``<patient>_<lesion>.png`` (the labelled panels with the saliency overlay) for every
    lesion of ``manifest`` (the first ``limit`` when given) and ``saliency.csv``; return the CSV rows."""
    from petcad.explain.analysis import class_names
    from petcad.explain.panels import save_saliency_panels
    from petcad.explain.saliency import METHODS, explain_lesion
    from petcad.models.data import load_manifest_data
    from petcad.models.estimator import CNNClassifier

    if method not in METHODS:
        raise InputError("--method", f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    clf = CNNClassifier.load(run_dir, device=device)
    cfg = clf.config_
    cohort, data = load_manifest_data(manifest, size=int(cfg["patch_size"]), spacing_mm=float(cfg["spacing_mm"]),
                                      with_mask=int(cfg["in_channels"]) == 9, with_features=clf.scaler_ is not None,
                                      require_binary=False, normalization=cfg.get("normalization", "patch"))
    names = class_names(clf)
    out.mkdir(parents=True, exist_ok=True)
    rows, ordinal = [], {}
    n = len(data) if limit is None else min(int(limit), len(data))
    for i, (_, les) in enumerate(cohort.iter_lesions()):
        if i >= n:
            break
        ordinal[les.patient_id] = ordinal.get(les.patient_id, 0) + 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            raw = data.sampler().sample(data.cache, np.array([i]), np.zeros((1, 6)))[0]
        sal = explain_lesion(clf, data, index=i, method=method, steps=steps)
        fname = _safe_name(f"{les.patient_id}_{les.lesion_id}") + ".png"
        heading = f"{les.patient_id} / {les.lesion_id}: P({names[sal.target]}) = {sal.probability:.3f}"
        save_saliency_panels(out / fname, raw, data.channels, number=ordinal[les.patient_id], label=les.label,
                             attributions=sal.attributions, share=sal.share, heading=heading, lang=lang)
        rows.append({"patient_id": les.patient_id, "lesion_id": les.lesion_id, "label": les.label, "file": fname,
                     "method": method, "explained_class": names[sal.target], "probability": f"{sal.probability:.6f}",
                     "ct_share": f"{sal.share.get('CT', 0.0):.4f}", "pet_share": f"{sal.share.get('PET', 0.0):.4f}",
                     "mask_share": f"{sal.share.get('mask', 0.0):.4f}" if "mask" in sal.share else ""})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(out / "saliency.csv", buf.getvalue())
    return rows


def _safe_name(text: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)
    return keep.strip(".") or "lesion"
