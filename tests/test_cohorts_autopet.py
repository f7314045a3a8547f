"""``petcad import autopet``: a tiny tree in the NIfTI release layout, lesions = 18-connected components."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from petcad.cli import main
from petcad.io.volumes import write_image
from petcad.study import Volume

GRID = dict(origin=[-40.0, -40.0, -30.0], spacing=[4.0, 4.0, 3.0])
SHAPE = (12, 20, 20)  # k, j, i


def _study(root: Path, patient: str, study: str, seg: np.ndarray | None, *, ct: bool = True, suv: bool = True) -> Path:
    d = root / patient / study
    d.mkdir(parents=True)
    pet = np.full(SHAPE, 1.0, np.float32)
    if seg is not None:
        pet[seg > 0] = 6.0
        write_image(Volume(seg.astype(np.uint8), **GRID), d / "SEG.nii.gz")
    if suv:
        write_image(Volume(pet, **GRID), d / "SUV.nii.gz")
    if ct:
        write_image(Volume(np.full(SHAPE, -800.0, np.float32), **GRID), d / "CTres.nii.gz")
    return d


def _tree(root: Path) -> None:
    seg = np.zeros(SHAPE, np.uint8)
    seg[2:5, 3:6, 3:6] = 1          # lesion 1: 27 voxels
    seg[8, 12, 12] = 1              # lesion 2 ...
    seg[9, 13, 12] = 1              # ... an edge neighbour: the same lesion under 18-connectivity
    seg[8, 15, 15] = 1              # a corner neighbour only of (9, 14, 14) below: separate under 18-connectivity
    seg[9, 16, 16] = 1
    _study(root, "PETCT_aaa", "01-01-2001-NA-PET-CT-1", seg)
    _study(root, "PETCT_aaa", "06-01-2001-NA-PET-CT-2", np.zeros(SHAPE, np.uint8))  # negative control
    _study(root, "PETCT_bbb", "02-02-2002-NA-PET-CT-1", seg, ct=False)            # CTres missing: PET-only
    _study(root, "PETCT_ccc", "03-03-2003-NA-PET-CT-1", None)                     # SEG missing: skipped
    rows = [
        ("PETCT_aaa", "./FDG-PET-CT-Lesions/PETCT_aaa/01-01-2001-NA-PET-CT-1/2.000000-CT-1", "LYMPHOMA"),
        ("PETCT_aaa", "./FDG-PET-CT-Lesions/PETCT_aaa/06-01-2001-NA-PET-CT-2/2.000000-CT-1", "NEGATIVE"),
        ("PETCT_bbb", "./FDG-PET-CT-Lesions/PETCT_bbb/02-02-2002-NA-PET-CT-1/2.000000-CT-1", "MELANOMA"),
    ]
    with open(root / "fdg_metadata.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Series UID", "Subject ID", "Study UID", "Modality", "File Location", "diagnosis", "age", "sex"])
        for subject, loc, diag in rows:
            w.writerow(["1.2.3", subject, "1.2.4", "CT", loc, diag, "60Y", "F"])


def test_import_autopet(tmp_path, capsys):
    root = tmp_path / "autopet"
    _tree(root)
    out = tmp_path / "out" / "manifest.csv"
    assert main(["import", "autopet", str(root), "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "SEG.nii.gz: missing; study skipped" in cap.err and "CTres.nii.gz: missing; study imported PET-only" in cap.err
    assert "studies without lesions (listed as negatives): 1" in cap.out
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    by = {(r["patient_id"], r["lesion_id"]): r for r in rows}
    # 3 lesions per study (27 voxels; 2 edge-connected voxels; 2 corner-only voxels split in two) in 2 studies
    assert sorted(k for k in by if k[0] == "PETCT_aaa") == [("PETCT_aaa", f"S1-L0{n}") for n in (1, 2, 3, 4)]
    per_study = {}
    for r in rows:
        per_study.setdefault(r["patient_id"], []).append(r)
    assert [len(v) for v in per_study.values()] == [4, 4]
    a = per_study["PETCT_aaa"]
    assert {r["label"] for r in a} == {"lymphoma"} and {r["label"] for r in per_study["PETCT_bbb"]} == {"melanoma"}
    assert a[0]["ct"].endswith("CTres.nii.gz") and per_study["PETCT_bbb"][0]["ct"] == ""
    assert sorted(float(r["volume_ml"]) * 1000 / 48 for r in a) == [1, 1, 2, 27]  # voxels of 4 x 4 x 3 mm
    # the negative control is listed beside the manifest
    with open(out.with_name("manifest_negatives.csv"), newline="") as fh:
        neg = list(csv.DictReader(fh))
    assert [(n["patient_id"], n["diagnosis"]) for n in neg] == [("PETCT_aaa", "NEGATIVE")]
    # the manifest loads: every centre lies on its own lesion mask, and features use each whole component
    assert main(["manifest", str(out), "--labels", "lymphoma,melanoma"]) == 0
    feats = tmp_path / "f.csv"
    assert main(["features", str(out), "--out", str(feats)]) == 0
    with open(feats, newline="") as fh:
        f = list(csv.DictReader(fh))
    assert sorted(int(r["pet_voxels"]) for r in f) == [1, 1, 1, 1, 2, 2, 27, 27]
    assert all(r["delineation"] == "mask" and float(r["suv_max"]) == 6.0 for r in f)


def test_import_autopet_bad_input(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "m.csv"
    assert main(["import", "autopet", str(empty), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no autoPET study folders" in err[0]
    root = tmp_path / "a"
    _study(root, "P", "S", np.zeros(SHAPE, np.uint8))
    (root / "fdg_metadata.csv").write_text("a,b\n1,2\n")
    assert main(["import", "autopet", str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fdg_metadata.csv" in err[0] and "'Subject ID'" in err[0]
    (root / "fdg_metadata.csv").unlink()
    assert main(["import", "autopet", str(root), "--out", str(out)]) == 2  # one negative study, no lesion
    err = capsys.readouterr().err.strip().splitlines()
    assert "no lesions found, nothing written" in err[-1] and "listed as negatives): 1" in err[-1]
    assert main(["import", "autopet", str(root), "--out", str(out), "--labels", "x.csv"]) == 2
    assert "--labels: applies to dicom only" in capsys.readouterr().err
    assert not out.exists()
