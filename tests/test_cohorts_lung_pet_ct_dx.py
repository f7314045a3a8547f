"""``petcad import lung-pet-ct-dx`` on a tiny TCIA-layout tree written as real DICOM by the phantom writer."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
import pytest

from petcad.cli import main
from petcad.phantom.dicom_writer import ScanInfo, write_ct_series, write_pet_series
from petcad.study import Volume

CT_GRID = dict(origin=[-19.2, -19.2, -12.0], spacing=[0.8, 0.8, 2.0])  # 48 x 48 x 12 slices
PET_GRID = dict(origin=[-18.0, -18.0, -12.0], spacing=[4.0, 4.0, 4.0])  # 10 x 10 x 6


def _series(folder: Path, patient: int, subject: str | None, pet: bool) -> None:
    start = dt.datetime(2026, 1, 5, 9, 0, 0)
    info = ScanInfo(patient, "F", 60, 70.0, 1.65, 3.0e8, start - dt.timedelta(hours=1), start, uid_seed=1000 + patient)
    study = folder / f"04-0{patient}-2007-NA-ThoraxAThoraxRoutine Adult-2408{patient}"
    ct = Volume(np.full((12, 48, 48), -700.0, np.float32), **CT_GRID)
    write_ct_series(study / "2.000000-ThoraxRoutine  8.0.0  B70f-5924", ct, info)
    if pet:
        write_pet_series(study / "3.000000-PET WB-1180", Volume(np.ones((6, 10, 10), np.float32), **PET_GRID), info)
    for f in sorted(study.rglob("*.dcm")):  # TCIA file names, and (for most) the subject id in PatientID
        ds = pydicom.dcmread(f)
        if subject:
            ds.PatientID = subject
        ds.save_as(f)
        f.rename(f.with_name(f"1-{int(ds.InstanceNumber):02d}.dcm"))


def _sop(root: Path, subject: str, k: int) -> str:
    folder = next((root / "manifest-1603198545583" / "Lung-PET-CT-Dx" / subject).glob("*/2.000000-*"))
    for f in folder.glob("*.dcm"):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        if abs(float(ds.ImagePositionPatient[2]) - (-12.0 + 2.0 * k)) < 1e-3:
            return str(ds.SOPInstanceUID)
    raise AssertionError(k)


def _voc(path: Path, boxes: list[tuple[int, int, int, int]], name: str) -> None:
    objs = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
        f"<bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for a, b, c, d in boxes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><folder>{path.parent.name}</folder><filename>{path.stem}</filename>"
                    f"<size><width>48</width><height>48</height><depth>3</depth></size>{objs}</annotation>")


#: subject -> {slice k: boxes (xmin, ymin, xmax, ymax) in pixels}
BOXES = {
    "Lung_Dx-A0001": {3: [(10, 12, 20, 22)], 4: [(11, 12, 21, 24)], 5: [(12, 14, 20, 23)], 9: [(30, 30, 36, 38)]},
    "Lung_Dx-B0002": {6: [(5, 5, 9, 9)]},
    "Lung_Dx-E0003": {2: [(20, 20, 30, 30), (2, 2, 6, 6)], 3: [(22, 21, 29, 31)]},
    "Lung_Dx-G0004": {7: [(15, 25, 25, 35)]},
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lungdx")
    base = root / "manifest-1603198545583" / "Lung-PET-CT-Dx"
    for n, subject in enumerate(BOXES, start=1):
        # B0002 has no PET; E0003 keeps the phantom's PatientID (the subject comes from the folder then)
        _series(base / subject, n, None if subject.endswith("E0003") else subject, pet=not subject.endswith("B0002"))
    (base.parent / "metadata.csv").write_text("Series UID,Subject ID,File Location\n1.2,Lung_Dx-A0001,./renamed\n")
    ann = root / "Annotation"
    for subject, per_slice in BOXES.items():
        for k, boxes in per_slice.items():
            _voc(ann / subject.split("-")[1] / f"{_sop(root, subject, k)}.xml", boxes, subject.split("-")[1][0])
    _voc(ann / "A0001" / "1.2.826.0.1.3680043.99.1.xml", [(1, 1, 4, 4)], "A")  # slice not in the tree
    (ann / "G0004" / "1.2.826.0.1.3680043.99.2.xml").write_text("<annotation><object><name>G")  # malformed
    return root


def _world(k: int, x: float, y: float) -> np.ndarray:
    return np.array([-19.2 + 0.8 * x, -19.2 + 0.8 * y, -12.0 + 2.0 * k])


def test_import_lung_pet_ct_dx(tree, tmp_path, capsys):
    out = tmp_path / "m.csv"
    assert main(["import", "lung-pet-ct-dx", str(tree), "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "1.2.826.0.1.3680043.99.2.xml: not a readable PASCAL-VOC XML file" in cap.err
    assert "1 patient(s) without a PET series: manifest rows 4 have an empty pet" in cap.err
    assert "boxes whose slice is not in the tree (skipped): 1" in cap.out
    assert "box files unreadable (skipped): 1" in cap.out
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    by = {(r["patient_id"], r["lesion_id"]): r for r in rows}
    assert sorted(by) == [("Lung_Dx-A0001", "S1-L01"), ("Lung_Dx-A0001", "S1-L02"), ("Lung_Dx-B0002", "S1-L01"),
                          ("Lung_Dx-E0003", "S1-L01"), ("Lung_Dx-E0003", "S1-L02"), ("Lung_Dx-G0004", "S1-L01")]
    assert {r["label"] for r in rows} == {"adenocarcinoma", "small_cell_carcinoma", "large_cell_carcinoma",
                                          "squamous_cell_carcinoma"}
    assert by[("Lung_Dx-A0001", "S1-L01")]["boxes"] == "3" and by[("Lung_Dx-A0001", "S1-L02")]["boxes"] == "1"
    assert [by[("Lung_Dx-E0003", f"S1-L0{n}")]["boxes"] for n in (1, 2)] == ["2", "1"] or \
        [by[("Lung_Dx-E0003", f"S1-L0{n}")]["boxes"] for n in (1, 2)] == ["1", "2"]
    assert by[("Lung_Dx-B0002", "S1-L01")]["pet"] == "" and by[("Lung_Dx-A0001", "S1-L01")]["pet"].endswith("PET WB-1180")
    # every centre lies inside one of its patient's boxes, on that box's slice
    for r in rows:
        c = np.array([float(r[a]) for a in "xyz"])
        inside = [k for k, boxes in BOXES[r["patient_id"]].items() for (a, b, cc, d) in boxes
                  if abs(c[2] - _world(k, 0, 0)[2]) < 1e-3
                  and np.all(c[:2] >= _world(k, a, b)[:2] - 1e-6) and np.all(c[:2] <= _world(k, cc, d)[:2] + 1e-6)]
        assert inside, r
    # extent of the 3-slice lesion: x over pixel columns 10..21, z over slices 3..5 plus half a slice each side
    a1 = by[("Lung_Dx-A0001", "S1-L01")]
    assert float(a1["extent_x_mm"]) == pytest.approx(0.8 * 11) and float(a1["extent_z_mm"]) == pytest.approx(6.0)
    # the row without PET is named by petcad manifest; importing without it gives a manifest that loads
    assert main(["manifest", str(out), "--rows-only", "--labels", "any"]) == 2
    assert "row 4: empty pet: every lesion needs a PET" in capsys.readouterr().err
    out2 = tmp_path / "m2.csv"
    assert main(["import", "lung-pet-ct-dx", str(tree), "--out", str(out2), "--without-pet", "skip"]) == 0
    labels = "adenocarcinoma,large_cell_carcinoma,squamous_cell_carcinoma"
    capsys.readouterr()
    assert main(["manifest", str(out2), "--labels", labels]) == 0
    assert "5 lesions of 3 patients" in capsys.readouterr().out


def test_bad_annotation_folder(tree, tmp_path, capsys):
    out = tmp_path / "m.csv"
    assert main(["import", "lung-pet-ct-dx", str(tree), "--out", str(out), "--annotations", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("petcad: error: --annotations:") and not out.exists()
