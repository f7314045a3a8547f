"""Any label set: binary with a chosen positive label, K classes through train / predict / compare, the
label list stored with the model and checked when used, and the K-class statistics."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from petcad.cli import main
from petcad.errors import InputError
from petcad.models.labels import check_known, encode, resolve_classes

CLASSES = ["benign", "malignant", "primary"]


# ---------------------------------------------------------------------------- label sets
def test_resolve_classes_binary_positive_and_k_classes():
    assert resolve_classes(["malignant", "benign", "benign"]) == ("benign", "malignant")
    assert resolve_classes(["benign", "malignant"], positive="benign") == ("malignant", "benign")
    assert resolve_classes(["A", "G", "A"], positive="A") == ("G", "A")
    assert resolve_classes(["primary", "benign", "malignant"]) == tuple(CLASSES)
    assert resolve_classes(["c", "a", "b", "a"], keep=["b", "a"], positive="a") == ("b", "a")
    assert resolve_classes(["c", "a", "b"], keep=["c", "a", "b"]) == ("c", "a", "b")  # given order kept
    with pytest.raises(InputError, match="'malignant' is not one of the two labels"):
        resolve_classes(["A", "G"])
    with pytest.raises(InputError, match="only for two labels"):
        resolve_classes(CLASSES, positive="malignant")
    with pytest.raises(InputError, match="only one class"):
        resolve_classes(["benign", "benign"])
    with pytest.raises(InputError, match="no lesion of manifest is labelled 'x'"):
        resolve_classes(CLASSES, keep=["benign", "x"])
    assert encode(["primary", "benign"], CLASSES).tolist() == [2, 0]
    with pytest.raises(InputError, match="'nodule'"):
        encode(["nodule"], CLASSES)
    with pytest.raises(InputError) as exc:
        check_known(["benign", "metastasis"], CLASSES, "m.csv", "runs/r1")
    assert str(exc.value).startswith("m.csv: label 'metastasis' is not known to the model runs/r1")


# ---------------------------------------------------------------------------- K-class statistics
def _three_class_scores(n=90, seed=0, sep=1.5):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n // 3)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), y] += sep
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, P


def test_ovr_and_macro_auc_match_sklearn_and_delong_for_two_classes():
    from sklearn.metrics import roc_auc_score

    from petcad.evaluation.delong import delong_cov
    from petcad.evaluation.multiclass import macro_ovr_auc, ovr_influence, stratified_variance

    y, P = _three_class_scores()
    aucs, var, psi = ovr_influence(y, P)
    for k in range(3):
        assert aucs[k] == pytest.approx(roc_auc_score(y == k, P[:, k]))
        assert var[k] == pytest.approx(delong_cov((y == k).astype(int), P[:, k])[1][0, 0])
    assert macro_ovr_auc(y, P) == pytest.approx(roc_auc_score(y, P, multi_class="ovr", average="macro"))
    # two classes: the macro-AUC variance from the per-lesion influences is exactly DeLong's
    rng = np.random.default_rng(1)
    y2 = rng.integers(0, 2, 60)
    s = rng.normal(y2 * 0.8, 1.0)
    P2 = np.column_stack([1 - 1 / (1 + np.exp(-s)), 1 / (1 + np.exp(-s))])
    _, _, psi2 = ovr_influence(y2, P2)
    assert stratified_variance(psi2, y2, 2) == pytest.approx(delong_cov(y2, P2[:, 1])[1][0, 0], rel=1e-9)
    # the macro variance is positive and below the largest per-class variance for this balanced case
    v = stratified_variance(psi, y, 3)
    assert 0 < v < var.max()


def test_summarise_multiclass_rows_confusion_and_report_text():
    from petcad.evaluation.multiclass import summarise_multiclass, table_columns
    from petcad.evaluation.report_multiclass import table_markdown, table_text

    y, P = _three_class_scores(n=120, seed=2)
    _, Pw = _three_class_scores(n=120, seed=3, sep=0.3)  # a weaker method
    groups = np.arange(120) // 4
    probs = {"good": P[None], "weak": Pw[None]}
    preds = {m: p.argmax(axis=2) for m, p in probs.items()}
    rows, best, conf = summarise_multiclass(y, groups, probs, preds, CLASSES, n_boot=200)
    assert best == "good"
    assert set(table_columns(CLASSES)) == set(rows[0]) and len(rows) == 2
    good = rows[0]
    assert good["AUC"] == pytest.approx(np.mean([good[f"AUC_{c}"] for c in CLASSES]))
    cm = conf["good"]
    assert cm.sum() == 120 and cm.shape == (3, 3)
    assert good["ACC"] == pytest.approx(np.trace(cm) / 120)
    assert good["TPR_primary"] == pytest.approx(cm[2, 2] / 40)
    for r in rows:
        for key in ["ACC", "AUC"] + [f"{m}_{c}" for m in ("TPR", "AUC") for c in CLASSES]:
            assert 0 <= r[key + "_lo"] <= r[key] <= r[key + "_hi"] <= 1, (r["method"], key)
        assert r["AUC_clu_lo"] <= r["AUC"] <= r["AUC_clu_hi"]
    assert np.isnan(good["p_vs_best"]) and rows[1]["p_vs_best"] < 0.05
    res = SimpleNamespace(table=rows, classes=CLASSES, confusion=conf, best=best)
    md_en, md_zh = table_markdown(res, "en"), table_markdown(res, "zh")
    assert "| true \\ predicted | benign | malignant | primary |" in md_en
    assert f"| primary | {cm[2, 0]:.1f} | {cm[2, 1]:.1f} | {cm[2, 2]:.1f} |" in md_en
    assert "原发灶" in md_zh and "混淆矩阵" in md_zh and "一对其余 AUC" in md_zh
    assert "TPR primary" in table_text(res)


def test_k_class_classical_pipeline_predicts_every_class():
    from petcad.evaluation.classifiers import TunedClassifier

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    X = rng.normal(0, 1, (60, 4)) + np.eye(3, 4)[y] * 2.5
    groups = np.arange(60) // 3
    for method in ("rf", "svm"):
        clf = TunedClassifier(method, inner_splits=2, seed=0).fit(X, y, groups)
        p = clf.predict_proba(X)
        assert p.shape == (60, 3) and np.allclose(p.sum(axis=1), 1.0)
        assert np.isnan(clf.threshold_) and clf.inner_auc_ > 0.8
        assert (clf.predict(X) == y).mean() > 0.8
    with pytest.raises(InputError, match="svm needs at least 3"):
        TunedClassifier("svm").fit(X[:42], y[:42], groups[:42])  # two lesions of class 2


# ---------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def three_class_manifest(tmp_path_factory) -> Path:
    """4 phantom patients with a primary lung tumour each (labels benign / malignant / primary), NIfTI."""
    from petcad.phantom import generate_cohort
    from petcad.phantom.presets import get_preset

    out = tmp_path_factory.mktemp("three_class")
    return generate_cohort(out / "cohort", n_patients=4, seed=4, preset=get_preset("default", primary=True),
                           fmt="nifti", workers=1)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_three_class_train_predict_compare(three_class_manifest, tmp_path, capsys):
    """The done-when of issue 11 item 5: a 3-class cohort through petcad train and petcad compare."""
    from safetensors import safe_open

    labels = {r["label"] for r in _rows(three_class_manifest)}
    assert labels == set(CLASSES)
    run = tmp_path / "run"
    assert main(["train", str(three_class_manifest), "--out", str(run), "--epochs", "1", "--batch-size", "32",
                 "--min-samples-per-epoch", "64", "--threads", "2", "--no-progress"]) == 0
    assert "(benign, malignant, primary)" in capsys.readouterr().out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["classes"] == CLASSES and "n / (3 n_c)" in cfg["class_balance"]
    with safe_open(str(run / "model.safetensors"), framework="pt") as fh:
        assert json.loads(fh.metadata()["classes"]) == CLASSES
        assert fh.get_tensor("head.weight").shape[0] == 3
    assert "labels benign, malignant, primary" in (run / "train.log").read_text()

    pred = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(run), "--manifest", str(three_class_manifest), "--out", str(pred)]) == 0
    rows = _rows(pred)
    assert list(rows[0]) == ["patient_id", "lesion_id", "label", "p_benign", "p_malignant", "p_primary", "predicted"]
    p = np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows])
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert [r["predicted"] for r in rows] == [CLASSES[i] for i in p.argmax(axis=1)]

    # the point mode: one probability per label
    r0 = _rows(three_class_manifest)[0]
    base = three_class_manifest.parent
    capsys.readouterr()
    assert main(["predict", "--model", str(run), "--ct", str(base / r0["ct"]), "--pet", str(base / r0["pet"]),
                 f"--at={r0['x']},{r0['y']},{r0['z']}"]) == 0
    line = capsys.readouterr().out
    assert "P(benign) = " in line and "P(primary) = " in line and line.split()[-1] in CLASSES

    # a manifest label the model does not know: one line naming manifest, label and model; nothing written
    bad = tmp_path / "bad.csv"
    src = _rows(three_class_manifest)
    for r in src:
        r["ct"], r["pet"] = str(base / r["ct"]), str(base / r["pet"])
        r["mask"] = str(base / r["mask"]) if r.get("mask") else ""
    src[0]["label"] = "metastasis"
    with open(bad, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(src[0]))
        w.writeheader()
        w.writerows(src)
    capsys.readouterr()
    assert main(["predict", "--model", str(run), "--manifest", str(bad), "--out", str(tmp_path / "p2.csv")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: label 'metastasis' is not known to the model {run}" in err and "Traceback" not in err
    assert not (tmp_path / "p2.csv").exists()

    # the label list in config.json and in the weights must agree
    cfg["classes"] = ["benign", "primary", "malignant"]
    (run / "config.json").write_text(json.dumps(cfg))
    assert main(["predict", "--model", str(run), "--manifest", str(three_class_manifest), "--out", str(pred)]) == 2
    assert "differ from config.json" in capsys.readouterr().err

    rep = tmp_path / "report"
    assert main(["compare", str(three_class_manifest), "--out", str(rep), "--folds", "2", "--repeats", "1",
                 "--methods", "rf,cnn", "--cnn-epochs", "1", "--cnn-samples-per-epoch", "64", "--bootstrap", "100",
                 "--jobs", "1", "--no-progress", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "TPR primary" in out and "confusion table of" in out
    table = _rows(rep / "table.csv")
    assert [r["method"] for r in table] == ["rf", "cnn"]
    for r in table:
        assert float(r["AUC"]) == pytest.approx(np.mean([float(r[f"AUC_{c}"]) for c in CLASSES]), abs=1e-5)
        for c in CLASSES:
            assert 0 <= float(r[f"AUC_{c}_lo"]) <= float(r[f"AUC_{c}"]) <= float(r[f"AUC_{c}_hi"]) <= 1
    # one-vs-rest AUCs equal scikit-learn's on the written out-of-fold probabilities
    from sklearn.metrics import roc_auc_score

    preds = [r for r in _rows(rep / "predictions.csv") if r["method"] == "rf"]
    for c in CLASSES:
        auc = roc_auc_score([r["label"] == c for r in preds], [float(r[f"p_{c}"]) for r in preds])
        assert float(table[0][f"AUC_{c}"]) == pytest.approx(auc, abs=1e-5)
    conf = _rows(rep / "confusion.csv")
    assert len(conf) == 2 * 9 and sum(float(r["mean_count"]) for r in conf if r["method"] == "rf") == len(preds)
    html = (rep / "report.html").read_text(encoding="utf-8")
    assert "混淆矩阵" in html and "原发灶" in html and "一对其余 AUC" in html and html.count("<table class='res'>") >= 4
    assert json.loads((rep / "settings.json").read_text())["classes"] == CLASSES


def test_compare_positive_and_labels_options(three_class_manifest, tmp_path, capsys):
    rc = main(["compare", str(three_class_manifest), "--out", str(tmp_path / "a"), "--positive", "primary",
               "--no-progress"])
    assert rc == 2 and "--positive: only for two labels" in capsys.readouterr().err
    rc = main(["compare", str(three_class_manifest), "--out", str(tmp_path / "b"), "--labels", "benign,primary",
               "--positive", "primary", "--folds", "2", "--repeats", "1", "--methods", "rf", "--bootstrap", "50",
               "--jobs", "1", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "primary)" in out and "p vs best" in out
    meta = json.loads((tmp_path / "b" / "settings.json").read_text())
    assert any("labelled 'malignant' left out" in n for n in meta["notes"])
    preds = _rows(tmp_path / "b" / "predictions.csv")
    assert {r["label"] for r in preds} == {"benign", "primary"}
