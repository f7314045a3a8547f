"""``petcad import dicom``: DICOM studies with a SEG (CT + PET) and an RTSTRUCT (PET-only) -> one row per segment / ROI."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest

from petcad.cli import main
from petcad.phantom.dicom_writer import ScanInfo, write_ct_series, write_pet_series
from petcad.study import Volume


def _case1(folder: Path) -> None:
    """Phantom CT + PET (one frame of reference) and a 2-segment SEG written on the PET series."""
    from petcad.io.seg import write_seg

    start = dt.datetime(2026, 1, 5, 9, 0, 0)
    info = ScanInfo(1, "M", 60, 80.0, 1.8, 3.2e8, start - dt.timedelta(hours=1), start, uid_seed=77)
    grid = dict(origin=[-20.0, -20.0, -10.0], spacing=[2.0, 2.0, 2.0])
    write_ct_series(folder / "CT", Volume(np.full((10, 20, 20), -700.0, np.float32), **grid), info)
    pet = np.ones((10, 20, 20), np.float32)
    pet[2:5, 3:7, 3:7] = 5.0
    pet[6:9, 12:16, 12:16] = 3.0
    write_pet_series(folder / "PET", Volume(pet, **grid), info)
    lab = np.zeros((10, 20, 20), np.int16)
    lab[2:5, 3:7, 3:7] = 1
    lab[6:9, 12:16, 12:16] = 2
    write_seg(Volume(lab, **grid), {1: "tumour", 2: "node"}, folder / "PET", folder / "SEG" / "seg.dcm")


@pytest.fixture(scope="module")
def tree(tmp_path_factory, test_data) -> Path:
    pytest.importorskip("highdicom")
    root = tmp_path_factory.mktemp("dicomtree") / "studies"
    _case1(root / "case1")
    dro = test_data / "suv_dro" / "DRO_0_0"  # PET + RTSTRUCT, no CT
    shutil.copytree(dro / "PT", root / "case2" / "PT")
    shutil.copytree(dro / "RS", root / "case2" / "RS")
    return root


def test_import_dicom_tree(tree, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("patient_id,name,label\ncase1,tumour,malignant\ncase1,node,benign\ncase2,*,malignant\n"
                      "case9,x,benign\n")
    out = tmp_path / "m.csv"
    assert main(["import", "dicom", str(tree), "--out", str(out), "--labels", str(labels)]) == 0
    cap = capsys.readouterr()
    assert "RS_dro_0_0.dcm: no CT series in its frame of reference; its rows are PET-only" in cap.err
    assert "1 entries of" in cap.err and "match no segment or ROI" in cap.err
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    got = sorted((r["patient_id"], r["segment_name"], r["mask_label"], r["label"], r["mask_type"]) for r in rows)
    assert got == [("case1", "node", "2", "benign", "SEG"), ("case1", "tumour", "1", "malignant", "SEG"),
                   ("case2", "region_1", "3", "malignant", "RTSTRUCT")]
    c1 = [r for r in rows if r["patient_id"] == "case1"]
    assert {(out.parent / r["ct"]).resolve() for r in c1} == {(tree / "case1" / "CT").resolve()}
    assert {(out.parent / r["pet"]).resolve() for r in c1} == {(tree / "case1" / "PET").resolve()}
    assert [r["ct"] for r in rows if r["patient_id"] == "case2"] == [""]
    assert all(r["x"] == "" for r in rows)
    # the manifest loads (centres from the masks) and its features use each segment whole
    assert main(["manifest", str(out)]) == 0
    assert "3 centres taken from the mask" in capsys.readouterr().out
    feats = tmp_path / "f.csv"
    assert main(["features", str(out), "--out", str(feats)]) == 0
    with open(feats, newline="") as fh:
        f = {(r["patient_id"], r["lesion_id"]): r for r in csv.DictReader(fh)}
    t = next(v for k, v in f.items() if k[0] == "case1" and v["label"] == "malignant")
    assert int(t["pet_voxels"]) == 3 * 4 * 4 and float(t["suv_max"]) == pytest.approx(5.0, rel=1e-3)
    dro = next(v for k, v in f.items() if k[0] == "case2")
    assert dro["modalities"] == "PET" and float(dro["suv_max"]) == pytest.approx(4.0, abs=0.01)


def test_import_dicom_tree_bad_input(tree, tmp_path, capsys):
    bad = tmp_path / "labels.csv"
    bad.write_text("patient,segment\na,b\n")
    out = tmp_path / "m.csv"
    assert main(["import", "dicom", str(tree), "--out", str(out), "--labels", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "labels.csv: expected the columns patient_id, name, label" in err[0]
    nomask = tmp_path / "nomask"
    shutil.copytree(tree / "case1" / "CT", nomask / "p" / "CT")
    assert main(["import", "dicom", str(nomask), "--out", str(out)]) == 2
    assert "no DICOM SEG or RTSTRUCT file" in capsys.readouterr().err
    assert not out.exists()


def test_a_mask_from_another_frame_of_reference_is_refused(tree, tmp_path, capsys):
    rs = next((tree / "case2" / "RS").glob("*.dcm"))
    man = tmp_path / "m.csv"
    man.write_text("patient_id,ct,pet,lesion_id,x,y,z,label,mask\n"
                   f"case1,{tree / 'case1' / 'CT'},{tree / 'case1' / 'PET'},L1,,,,malignant,{rs}\n")
    assert main(["manifest", str(man)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{man}: row 2: mask" in err[0] and "frame" in err[0].lower(), err
