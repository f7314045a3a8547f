"""petcad compare end to end on the small phantom cohort, bad inputs, and the calibrated AUC band."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from petcad.cli import main

FILES = ("table.csv", "table.md", "predictions.csv", "roc.png", "calibration.png", "settings.json", "report.html")


def _read_csv(p: Path) -> list[dict]:
    with open(p, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_compare_end_to_end_small_cohort(small_cohort, tmp_path, capsys):
    out = tmp_path / "report"
    rc = main([
        "compare", str(small_cohort), "--out", str(out), "--folds", "2", "--repeats", "1",
        "--methods", "rf,svm,cnn,cnn-rf", "--cnn-epochs", "1", "--cnn-samples-per-epoch", "128", "--bootstrap", "200", "--no-progress",
    ])
    assert rc == 0
    for name in FILES:
        assert (out / name).stat().st_size > 0, name
    printed = capsys.readouterr().out
    assert "AUC" in printed and "report.html" in printed
    table = _read_csv(out / "table.csv")
    assert [r["method"] for r in table] == ["rf", "svm", "cnn", "cnn-rf"]
    for r in table:
        for m in ("TPR", "SPC", "PPV", "NPV", "ACC", "AUC"):
            if m in ("PPV", "NPV") and r[m] == "":  # undefined: no positive (negative) prediction, left empty
                continue
            v, lo, hi = float(r[m]), float(r[m + "_lo"]), float(r[m + "_hi"])
            assert 0 <= lo <= v <= hi <= 1, (r["method"], m)
    preds = _read_csv(out / "predictions.csv")
    assert {"patient_id", "lesion_id", "label", "method", "repeat", "fold", "probability"} <= set(preds[0])
    n_lesions = len({p["lesion_id"] for p in preds})
    assert len(preds) == 4 * n_lesions
    # the same folds for every method (paired), and no patient in two folds of one repeat
    fold_by_method = {}
    for p in preds:
        fold_by_method.setdefault(p["method"], {})[p["lesion_id"]] = p["fold"]
    assert all(v == fold_by_method["rf"] for v in fold_by_method.values())
    pat_folds = {}
    for p in preds:
        pat_folds.setdefault(p["patient_id"], set()).add(p["fold"])
    assert all(len(f) == 1 for f in pat_folds.values())
    # AUC in the table equals scikit-learn's on the written predictions
    from sklearn.metrics import roc_auc_score

    rf = [p for p in preds if p["method"] == "rf"]
    auc = roc_auc_score([p["label"] == "malignant" for p in rf], [float(p["probability"]) for p in rf])
    assert float(table[0]["AUC"]) == pytest.approx(auc, abs=1e-6)
    meta = json.loads((out / "settings.json").read_text())
    assert meta["settings"]["n_splits"] == 2 and "scikit-learn" in meta["versions"]
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "random forest" in html


def _rewrite_manifest(src: Path, dst: Path, label=None, keep_patients=None) -> Path:
    rows = _read_csv(src)
    if keep_patients is not None:
        keep = sorted({r["patient_id"] for r in rows})[:keep_patients]
        rows = [r for r in rows if r["patient_id"] in keep]
    base = src.parent
    for r in rows:
        for k in ("ct", "pet", "mask"):
            if r.get(k):
                r[k] = str((base / r[k]).resolve())
        if label:
            r["label"] = label
    with open(dst, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return dst


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "petcad", *args], capture_output=True, text=True)


def test_bad_inputs_exit_2(small_cohort, tmp_path, capsys):
    def run(*args):
        rc = main(["compare", *args, "--no-progress"])
        return rc, capsys.readouterr().err

    one = _rewrite_manifest(Path(small_cohort), tmp_path / "one.csv", label="benign", keep_patients=3)
    rc, err = run(str(one), "--out", str(tmp_path / "o1"), "--folds", "2")
    assert rc == 2 and "only one class" in err and "Traceback" not in err
    few = _rewrite_manifest(Path(small_cohort), tmp_path / "few.csv", keep_patients=3)
    rc, err = run(str(few), "--out", str(tmp_path / "o2"), "--folds", "5")
    assert rc == 2 and "3 patients but 5 folds" in err
    rc, err = run(str(few), "--out", str(tmp_path / "o3"), "--methods", "rf,xgboost")
    assert rc == 2 and "xgboost" in err
    rc, err = run(str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o4"))
    assert rc == 2 and "not found" in err
    for o in ("o1", "o2", "o3", "o4"):
        assert not (tmp_path / o / "table.csv").exists()
    # the command line prints one line, exit status 2, no traceback
    r = _cli("compare", str(few), "--out", str(tmp_path / "o5"), "--folds", "5", "--no-progress")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and r.stderr.startswith("petcad: error:")


@pytest.mark.slow
def test_rf_auc_in_calibrated_band():
    """The phantom is calibrated so that RF on the diagnostic features reaches AUC 0.80-0.95 under
    patient-grouped CV (issue 3); the comparison's own RF pipeline must land there too."""
    from petcad.bench.phantom import phantom_features
    from petcad.evaluation.compare import run_classical, summarise, CompareSettings, LesionTable
    from petcad.evaluation.folds import repeated_group_folds

    names, X, y, groups = phantom_features(n_patients=60, seed=0, preset="default")
    table = LesionTable(np.asarray(groups), np.arange(len(y)).astype(str), np.where(y == 1, "malignant", "benign"),
                        np.asarray(y), X, list(names), [], np.arange(len(y)))
    s = CompareSettings(methods=("rf",), n_splits=5, n_repeats=1, inner_splits=2)
    folds = repeated_group_folds(table.y, table.patient_id, 5, 1, seed=0)
    P = np.full((1, len(y)), np.nan)
    thr = np.zeros((1, 5))
    for m, r, k, p, th in run_classical(table, folds, ["rf"], s):
        P[r, folds[k].test] = p
        thr[r, k] = th
    pred = np.zeros_like(P, dtype=int)
    for f in folds:
        pred[0, f.test] = (P[0, f.test] >= thr[0, f.fold]).astype(int)
    rows, _ = summarise(table.y, table.patient_id, {"rf": P}, {"rf": pred}, 1, n_boot=200)
    assert 0.80 <= rows[0]["AUC"] <= 0.95, rows[0]


def test_cli_method_list_matches_runner_and_help_is_light():
    from petcad.cli.compare import METHOD_CHOICES
    from petcad.evaluation.compare import ALL_METHODS

    assert tuple(METHOD_CHOICES) == tuple(ALL_METHODS)
    r = subprocess.run([sys.executable, "-c", "import sys, petcad.cli.compare, petcad.cli.demo; "
                        "print('sklearn' in sys.modules, 'torch' in sys.modules)"], capture_output=True, text=True)
    assert r.stdout.split() == ["False", "False"]
