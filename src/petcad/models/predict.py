"""Prediction with a trained run directory: at world points of one study, or for a whole manifest.

The run's label list (``config.json`` ``classes``) decides the output: binary runs give the
probability of the positive label (``probability``), K-class runs one ``p_<label>`` per label
and the most probable label (``predicted``). A manifest label the model does not know is an
error naming the manifest, the label and the model.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PredictJob:
    """One study of ``predict --manifest`` (picklable, for Dask workers)."""

    run_dir: str
    manifest: str
    study: tuple[str, str]  # (patient_id, study_id)
    tta: bool = False
    device: str = "auto"
    threads: int | None = None
    on_irregular: str = "error"


def _classifier(run_dir: str, device: str, threads: int | None) -> CNNClassifier:
    """The run's classifier, loaded once per process while its files are unchanged (a batch run
    predicts many studies with it)."""
    p = Path(run_dir)
    files = sorted(p.glob("*")) if p.is_dir() else [p]
    stamp = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file())
    return _load_classifier(str(run_dir), device, threads, stamp)


@functools.lru_cache(maxsize=2)
def _load_classifier(run_dir: str, device: str, threads: int | None, stamp: tuple) -> CNNClassifier:
    return CNNClassifier.load(run_dir, device=device, threads=threads)


def predict_study_task(task) -> int:
    """Predict every lesion of one study of the manifest; write the rows to the task's part file."""
    job: PredictJob = task.payload
    clf = _classifier(job.run_dir, job.device, job.threads)
    cfg = clf.config_
    _, data = load_manifest_data(job.manifest, size=int(cfg["patch_size"]), spacing_mm=float(cfg["spacing_mm"]),
                                 with_mask=bool(cfg.get("with_mask")), with_features=clf.scaler_ is not None,
                                 normalization=cfg.get("normalization", "patch"), classes=clf.labels_,
                                 on_irregular=job.on_irregular, only={job.study})
    if clf.scaler_ is not None:
        _check_features(clf, data.feature_names)
    P = clf.predict_proba(data, tta=job.tta)
    classes = clf.labels_
    labels = [classes[int(k)] for k in data.y]
    if len(classes) == 2:
        cols = ["patient_id", "lesion_id", "label", "probability"]
        rows = [[str(g), str(l), lab, f"{q[1]:.6f}"] for g, l, lab, q in zip(data.groups, data.lesion_ids, labels, P)]
    else:
        cols = ["patient_id", "lesion_id", "label"] + [f"p_{c}" for c in classes] + ["predicted"]
        rows = [[str(g), str(l), lab, *(f"{v:.6f}" for v in q), classes[int(np.argmax(q))]]
                for g, l, lab, q in zip(data.groups, data.lesion_ids, labels, P)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    w.writerows(rows)
    write_text(task.outputs[0], buf.getvalue())
    return len(rows)


def predict_manifest(run_dir, manifest, out_csv, *, tta: bool = False, device: str = "auto",
                     threads: int | None = None, on_irregular: str = "error", shard: str | None = None,
                     scheduler: str | None = None, progress: bool = False) -> list[dict]:
    """One row per lesion of the manifest, predicted study by study (see :mod:`petcad.batch`).

    Binary run: ``patient_id, lesion_id, label, probability`` (of the positive label).
    K-class run: ``patient_id, lesion_id, label, p_<label>..., predicted``.
    Each study's rows go to ``OUT.parts/<study>.csv`` (studies already there are skipped);
    ``out_csv`` is written once every study has its part, and its rows are returned (as
    strings); with studies left to other shards, ``[]``.
    """
    import hashlib

    from petcad.batch import StudyTask, check_parts_settings, merge_parts, parse_shard, part_path, run_tasks
    from petcad.io.manifest import read_manifest, study_key_text, study_keys
    from petcad.models.labels import check_known

    clf = _classifier(str(run_dir), device, threads)
    if not Path(manifest).is_file():
        raise InputError(manifest, "manifest not found")
    check_known((r.label for r in read_manifest(manifest, allowed_labels=None)), clf.labels_, manifest, run_dir)
    weights = Path(run_dir) / "model.safetensors" if Path(run_dir).is_dir() else Path(run_dir)
    check_parts_settings(out_csv, {"manifest_sha256": hashlib.sha256(Path(manifest).read_bytes()).hexdigest(),
                                   "model_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
                                   "tta": tta, "on_irregular": on_irregular})
    keys = study_keys(manifest)
    names = [study_key_text(k) for k in keys]
    tasks = [StudyTask(n, (part_path(out_csv, n),),
                       PredictJob(str(run_dir), str(Path(manifest).resolve()), k, tta, device, threads, on_irregular))
             for n, k in zip(names, keys)]
    report = run_tasks(predict_study_task, tasks, shard=parse_shard(shard), scheduler=scheduler, progress=progress)
    if progress:
        import sys

        print(report.summary(), file=sys.stderr)
    if merge_parts(out_csv, names):
        return []
    with open(out_csv, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
