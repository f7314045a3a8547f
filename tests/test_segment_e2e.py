"""End to end: train a tiny segmenter on a 2-patient DICOM phantom, segment, list lesions, DICOM SEG, evaluate."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from petcad.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from petcad.phantom import generate_cohort

    root = tmp_path_factory.mktemp("segment_e2e")
    manifest = generate_cohort(root / "cohort", n_patients=2, seed=11, preset="default", fmt="dicom", workers=1)
    run = root / "run"
    rc = main(["train", str(manifest), "--task", "segment", "--out", str(run), "--epochs", "1",
               "--min-samples-per-epoch", "64", "--batch-size", "32", "--val-fraction", "0",
               "--points-per-lesion", "8", "--no-progress", "--threads", "2"])
    assert rc == 0
    return root, Path(manifest), run


def _box_roi(manifest, path):
    """A mask (on P0001's CT grid) of a 60 mm box centred on the mean lesion centre of P0001."""
    from petcad.io.manifest import read_manifest
    from petcad.io.volumes import write_image
    from petcad.io.loader import load_study
    from petcad.study import Volume

    rows = [r for r in read_manifest(manifest) if r.patient_id == "P0001"]
    centre = np.mean([r.center_mm for r in rows], axis=0)
    ct = load_study(rows[0].ct, rows[0].pet, patient_id="P0001").ct
    kk, jj, ii = np.indices(ct.array.shape)
    w = ct.index_to_world(np.stack([ii, jj, kk], axis=-1).reshape(-1, 3).astype(float))
    box = np.all(np.abs(w - centre) <= 30.0, axis=1).reshape(ct.array.shape).astype(np.uint8)
    write_image(Volume(box, ct.origin, ct.spacing, ct.direction), path)
    return path


def test_training_config_records_the_task(trained):
    _, _, run = trained
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["task"] == "segment" and cfg["model"] == "multiview"
    assert cfg["classes"] == ["none", "benign", "malignant"]
    assert cfg["normalization"] == "fixed"


def test_predict_refuses_a_segmentation_model(trained, capsys):
    root, manifest, run = trained
    assert main(["predict", "--model", str(run), "--manifest", str(manifest), "--out", str(root / "p.csv")]) == 2
    assert "segmentation model" in capsys.readouterr().err
    assert not (root / "p.csv").exists()


def test_segment_refuses_a_classification_model(trained, tmp_path, capsys):
    _, manifest, run = trained
    clf = tmp_path / "clf"
    shutil.copytree(run, clf)
    cfg = json.loads((clf / "config.json").read_text())
    cfg["task"] = "classify"
    cfg["classes"] = ["benign", "malignant"]
    (clf / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "out"
    assert main(["segment", "--model", str(clf), "--manifest", str(manifest), "--out", str(out)]) == 2
    assert "classification model" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_segment_lesions_seg_and_evaluation(trained, capsys):
    hd = pytest.importorskip("highdicom")
    import pydicom

    root, manifest, run = trained
    out = root / "seg_out"
    roi = _box_roi(manifest, root / "roi.nii.gz")  # a 60 mm box around the lesions keeps the test fast
    args = ["segment", "--model", str(run), "--manifest", str(manifest), "--out", str(out), "--stride", "4",
            "--roi", str(roi), "--threads", "2"]
    assert main(args) == 0
    capsys.readouterr()
    studies = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert studies == ["P0001", "P0002"]
    d = out / "P0001"
    meta = json.loads((d / "meta.json").read_text())
    assert meta["classes"] == ["none", "benign", "malignant"] and meta["lattice"]["pitch_mm"] == 4.0
    from petcad.io.volumes import read_image

    lab = read_image(d / "labels.nii.gz")
    probs = [read_image(d / f"prob_{c}.nii.gz").array for c in meta["classes"]]
    ct_dir = Path(manifest).parent / "P0001" / "ct"
    if not ct_dir.is_dir():
        ct_dir = next(p for p in (Path(manifest).parent / "P0001").iterdir() if p.is_dir() and "ct" in p.name.lower())
    assert np.allclose(np.sum(probs, axis=0), 1.0, atol=1e-4)
    assert np.array_equal(np.rint(lab.array), np.argmax(probs, axis=0))
    with open(d / "lesions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    listed = json.loads((d / "lesions.json").read_text())["lesions"]
    assert len(listed) == len(rows) == meta["n_lesions"]
    header = (d / "lesions.csv").read_text().splitlines()[0].split(",")
    assert header == ["lesion", "x", "y", "z", "volume_ml", "suv_max", "suv_mean", "suv_peak", "p_none", "p_benign",
                      "p_malignant", "predicted"]
    for r in rows:
        assert float(r["suv_max"]) >= float(r["suv_mean"]) > 0 and float(r["volume_ml"]) > 0
    # DICOM SEG: opens with highdicom and references the CT series
    seg = hd.seg.segread(d / "seg.dcm")
    ct_file = next(p for p in sorted(ct_dir.rglob("*")) if p.is_file())
    ct_uid = pydicom.dcmread(ct_file, stop_before_pixels=True).SeriesInstanceUID
    refs = [s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence]
    assert ct_uid in refs
    # a second run skips the studies that are done
    stamp = (d / "meta.json").stat().st_mtime_ns
    assert main(args) == 0
    assert "skipped" in capsys.readouterr().out
    assert (d / "meta.json").stat().st_mtime_ns == stamp
    # evaluation (a loose bound: a one-epoch network)
    assert main(["evaluate-segmentation", str(out), "--manifest", str(manifest), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    o = res["overall"]
    assert o["n_studies"] == 2 and o["n_true"] > 0
    assert 0.0 <= o["sensitivity"] <= 1.0 and o["false_positives_per_study"] >= 0
    assert set(o["dice_mean"]) == {"benign", "malignant", "tumour"}
    assert all(s["fp_volume_ml"] >= 0 and s["fn_volume_ml"] >= 0 for s in res["studies"])
    # an FROC operating point is reproduced by segment --min-score with its threshold
    point = next((p for p in reversed(o["froc"]["points"]) if p["min_score"] is not None), None)
    if point is not None:
        out2 = root / "seg_min_score"
        assert main(args[:6] + [str(out2)] + args[7:] + ["--min-score", repr(point["min_score"])]) == 0
        capsys.readouterr()
        assert main(["evaluate-segmentation", str(out2), "--manifest", str(manifest), "--json"]) == 0
        o2 = json.loads(capsys.readouterr().out)["overall"]
        assert o2["false_positives_per_study"] == point["fp_per_study_at_threshold"]
        assert o2["sensitivity"] == point["sensitivity"]


def test_segment_bad_input(trained, tmp_path, capsys):
    root, manifest, run = trained
    ct = Path(manifest).parent / "P0001"
    assert main(["segment", "--model", str(run), "--ct", str(ct), "--out", str(tmp_path / "o")]) == 2
    assert "--ct" in capsys.readouterr().err
    assert main(["segment", "--model", str(run), "--manifest", str(manifest), "--out", str(tmp_path / "o"),
                 "--roi", str(tmp_path / "nope.nii.gz")]) == 2
    assert "--roi" in capsys.readouterr().err
