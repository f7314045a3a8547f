"""``petcad features``: one row per lesion, the whole supplied mask, PET-only studies, DICOM SEG masks."""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from petcad.cli import main


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_whole_mask_of_large_sarcomas_pet_only(test_data, tmp_path, capsys):
    """Real sarcomas larger than the search sphere: the features use every mask voxel (PET-only manifest)."""
    import SimpleITK as sitk

    lines = ["patient_id,ct,pet,lesion_id,x,y,z,label,mask"]
    expect = {}
    for p in ("STS_004", "STS_005"):
        d = test_data / "sts_pet_suv" / p
        lines.append(f"{p},,{d / 'PET_image.nii.gz'},T1,,,,sarcoma,{d / 'PET_mask.nii.gz'}")
        m = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "PET_mask.nii.gz"))) > 0
        suv = sitk.GetArrayFromImage(sitk.ReadImage(str(d / "PET_image.nii.gz"))).astype(np.float64)
        sp = sitk.ReadImage(str(d / "PET_mask.nii.gz")).GetSpacing()
        expect[p] = (int(m.sum()), float(m.sum() * np.prod(sp) / 1000.0), float(suv[m].max()), float(suv[m].mean()))
    man = tmp_path / "m.csv"
    man.write_text("\n".join(lines) + "\n")
    out = tmp_path / "f.csv"
    assert main(["features", str(man), "--out", str(out)]) == 0
    assert "2 lesions in PET-only studies (CT features left empty)" in capsys.readouterr().out
    rows = {r["patient_id"]: r for r in _read_csv(out)}
    for p, (n, ml, smax, smean) in expect.items():
        r = rows[p]
        assert r["delineation"] == "mask" and r["modalities"] == "PET" and r["center_source"] == "mask"
        assert int(r["pet_voxels"]) == n and r["ct_voxels"] == "" and r["ct_mean_hu"] == ""
        assert float(r["metabolic_volume_ml"]) == pytest.approx(ml, rel=1e-5)
        assert float(r["suv_max"]) == pytest.approx(smax, rel=1e-5)
        assert float(r["suv_mean"]) == pytest.approx(smean, rel=1e-5)
    assert expect["STS_005"][1] > 500  # a tumour far larger than the 20 mm search sphere


def test_features_with_ct_on_the_phantom(small_cohort, tmp_path):
    out = tmp_path / "f.csv"
    assert main(["features", str(small_cohort), "--out", str(out), "--delineation", "fraction"]) == 0
    rows = _read_csv(out)
    assert len(rows) > 10 and {r["modalities"] for r in rows} == {"PET+CT"}
    assert all(r["delineation"] in ("pet", "ct", "sphere") for r in rows)
    assert all(int(r["ct_voxels"]) > 0 and int(r["pet_voxels"]) > 0 and r["ct_mean_hu"] != "" for r in rows)


def test_bad_options_write_nothing(small_cohort, tmp_path, capsys):
    out = tmp_path / "f.txt"
    assert main(["features", str(small_cohort), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and ".csv" in err[0]
    assert main(["features", str(small_cohort), "--out", str(tmp_path / "f.csv"), "--fraction", "1.5"]) == 2
    assert "--fraction" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- a DICOM SEG as the mask
def _suv_independent(pt_dir: Path) -> tuple[np.ndarray, list]:
    """SUVbw of the DRO series by pydicom + numpy only: slices sorted by z, BQML decayed to the series start."""
    import pydicom

    dss = [pydicom.dcmread(str(f)) for f in sorted(pt_dir.glob("*.dcm"))]
    dss.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    d0 = dss[0]
    assert d0.Units == "BQML" and d0.DecayCorrection == "START"
    rp = d0.RadiopharmaceuticalInformationSequence[0]
    t = lambda s: dt.datetime.strptime(str(s).split(".")[0], "%H%M%S")  # noqa: E731
    elapsed = (t(d0.SeriesTime) - t(rp.RadiopharmaceuticalStartTime)).total_seconds()
    dose = float(rp.RadionuclideTotalDose) * math.exp(-math.log(2) * elapsed / float(rp.RadionuclideHalfLife))
    for d in dss:  # highdicom copies these study attributes into the SEG; the DRO leaves some out
        for name in ("AccessionNumber", "ReferringPhysicianName", "StudyID", "PatientBirthDate", "PatientSex"):
            if name not in d:
                setattr(d, name, "")
    bqml = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in dss])
    return bqml * float(d0.PatientWeight) * 1000.0 / dose, dss


def test_features_of_a_dicom_seg_mask_equal_an_independent_computation(test_data, tmp_path):
    pytest.importorskip("petcad.io.masks", reason="DICOM SEG reader (petcad.io.masks) not in this tree yet")
    import highdicom as hd
    from pydicom.sr.codedict import codes

    pt = test_data / "suv_dro" / "DRO_0_0" / "PT"
    suv, dss = _suv_independent(pt)
    labels = np.zeros(suv.shape, np.uint8)  # [k, j, i] in slice order
    labels[6:13, 100:140, 90:150] = 1                    # segment 1: a block over several slices
    labels[3:6, 30:52, 200:230] = 2                      # segment 2: another, elsewhere
    labels[12, 100:110, 90:100] = 2                      # ... with a piece touching segment 1's slices
    descs = [hd.seg.SegmentDescription(
        segment_number=n, segment_label=name, segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for n, name in ((1, "tumour"), (2, "node"))]
    onehot = np.stack([labels == 1, labels == 2], axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=dss, pixel_array=onehot, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descs, series_instance_uid=hd.UID(), series_number=99, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="petcad test", manufacturer_model_name="test", software_versions="1",
        device_serial_number="1")
    seg_path = tmp_path / "seg.dcm"
    seg.save_as(str(seg_path))

    man = tmp_path / "m.csv"
    man.write_text("patient_id,ct,pet,lesion_id,x,y,z,label,mask,mask_label\n"
                   f"dro,,{pt},L1,,,,malignant,seg.dcm,tumour\n"
                   f"dro,,{pt},L2,,,,benign,seg.dcm,2\n")
    out = tmp_path / "f.csv"
    assert main(["features", str(man), "--out", str(out)]) == 0
    rows = {r["lesion_id"]: r for r in _read_csv(out)}
    for lid, value in (("L1", 1), ("L2", 2)):
        m = labels == value
        r = rows[lid]
        assert r["delineation"] == "mask" and r["modalities"] == "PET"
        assert int(r["pet_voxels"]) == int(m.sum())
        assert float(r["suv_max"]) == pytest.approx(float(suv[m].max()), rel=1e-5)
        assert float(r["suv_mean"]) == pytest.approx(float(suv[m].mean()), rel=1e-5)


def test_classical_comparison_runs_pet_only(small_cohort, tmp_path, capsys):
    """The manifest of the phantom with its ct column emptied: features and the classical methods still run."""
    rows = list(csv.DictReader(open(small_cohort, newline="")))
    base = Path(small_cohort).parent
    for r in rows:
        r["ct"] = ""
        r["pet"] = str((base / r["pet"]).resolve())
        r["mask"] = str((base / r["mask"]).resolve()) if r.get("mask") else ""
    man = tmp_path / "pet_only.csv"
    with open(man, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "rep"
    assert main(["compare", str(man), "--out", str(out), "--methods", "rf", "--folds", "2", "--repeats", "1",
                 "--bootstrap", "50", "--no-progress"]) == 0
    assert "rf " in capsys.readouterr().out
    note = "ct_mean_hu, ct_std_hu, ct_max_hu, ct_contrast_hu have no finite value: left out"
    assert note in (out / "report.html").read_text(encoding="utf-8")


def test_ibsi_and_all_sets_pet_only(test_data, tmp_path):
    pytest.importorskip("mirp")
    d = test_data / "sts_pet_suv" / "STS_008"
    man = tmp_path / "m.csv"
    man.write_text("patient_id,ct,pet,lesion_id,x,y,z,label,mask\n"
                   f"STS_008,,{d / 'PET_image.nii.gz'},T1,,,,sarcoma,{d / 'PET_mask.nii.gz'}\n")
    out = tmp_path / "f.csv"
    assert main(["features", str(man), "--out", str(out), "--set", "all"]) == 0
    with open(out, newline="") as fh:
        header = next(csv.reader(fh))
    rows = _read_csv(out)
    assert len(header) == len(set(header))
    texture = [c for c in header if c.startswith("pet_") and c != "pet_contrast" and not c.startswith("pet_vox")]
    assert len(texture) > 50 and not any(c.startswith("ct_cm_") for c in header)
    assert rows[0]["suv_max"] != "" and float(rows[0][texture[0]]) == float(rows[0][texture[0]])  # finite
