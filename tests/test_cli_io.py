"""The io commands through ``petcad.cli.main``: results on the reference data, and every bad input.

Bad input: one line on stderr naming the file, exit status 2, no traceback,
nothing written at the output path.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from petcad.cli import main
from petcad.io.volumes import read_image, write_image
from petcad.study import Volume
from test_io_helpers import DRO_EXPECTED, copy_series, dro_mask, edit_series, new_uids, roi_stats


def run_cli(capsys, *argv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_bad(capsys, argv, *, names, contains=(), out_path: Path | None = None):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert str(names) in lines[0], lines[0]
    for c in contains:
        assert c in lines[0], lines[0]
    if out_path is not None:
        assert not out_path.exists()
        assert not [p for p in out_path.parent.iterdir() if ".tmp" in p.name]
    return lines[0]


@pytest.fixture
def dro(test_data, tmp_path):
    return copy_series(test_data / "suv_dro" / "DRO_0_0" / "PT", tmp_path / "pt")


# ------------------------------------------------------------------ results
@pytest.mark.parametrize("variant", ["DRO_0_0", "DRO_1_0", "DRO_2_0", "DRO_2_4", "DRO_3_1", "DRO_4_2"])
def test_suv_command_on_every_dro_variant(test_data, tmp_path, capsys, variant):
    out = tmp_path / "suv.nii.gz"
    code, stdout, err = run_cli(capsys, "suv", test_data / "suv_dro" / variant / "PT", "--out", out, "--json",
                                "--mask", test_data / "suv_dro" / variant / "mask" / "DRO_mask.nii.gz")
    assert code == 0, err
    d = json.loads(stdout)
    for key in ("factor", "input_units", "decay_correction", "decay_factor", "scan_datetime", "header", "weight_kg"):
        assert key in d
    vol = read_image(out, modality="PT")
    assert vol.array.shape == (20, 256, 256)
    assert tuple(round(x, 2) for x in roi_stats(vol.array, dro_mask(test_data, variant))) == DRO_EXPECTED
    assert tuple(round(d["roi"][k], 2) for k in ("min", "median", "max")) == DRO_EXPECTED


def test_suv_command_ge_roi_with_mask_on_another_grid(test_data, tmp_path, capsys):
    # the GTV mask is on the cropped reference grid (regular 3.27 mm): resampled by physical position
    code, stdout, err = run_cli(capsys, "suv", test_data / "pet_ge_sts001" / "image", "--out", tmp_path / "s.nii.gz",
                                "--mask", test_data / "pet_ge_sts001" / "reference_suv" / "nifti" / "mask" / "mask.nii.gz")
    assert code == 0, err
    assert "(5095 voxels): SUV min 0.1688, median 2.4870, max 7.9107" in stdout


def test_suv_command_types_and_overrides(test_data, tmp_path, capsys):
    out = tmp_path / "lbm.nrrd"
    code, stdout, err = run_cli(capsys, "suv", test_data / "suv_dro" / "DRO_0_0" / "PT", "--out", out,
                                "--type", "lbm", "--sex", "M", "--weight", "80", "--json")
    assert code == 0, err
    d = json.loads(stdout)
    assert d["weight_kg"] == 80 and d["sources"]["weight"] == "override" and d["suv_type"] == "lbm"
    assert d["normalisation"] == pytest.approx(1000 * (1.10 * 80 - 128 * (80 / 175) ** 2))


def test_info_on_real_ge_series(test_data, capsys):
    pet = test_data / "pet_ge_sts001" / "image"
    ct = test_data / "pet_ge_sts001" / "reference_suv" / "nifti" / "image" / "image.nii.gz"
    code, out, err = run_cli(capsys, "info", ct, pet)
    assert code == 0, err
    for text in ("patient weight 71 kg", "injected dose 388.777 MBq", "injection time 2000-09-07T10:35:00",
                 "earliest acquisition time 2000-09-07T11:20:11", "decay factor 0.751838", "SUV factor 0.000242903",
                 "half-life 6588 s", "decay correction START"):
        assert text in out, text
    assert "STS_001" not in out  # no identifiers from headers


def test_series_command(test_data, capsys):
    code, out, _ = run_cli(capsys, "series", test_data / "suv_dro", "--json")
    d = json.loads(out)
    assert code == 0 and len([s for s in d["series"] if s["modality"] == "PT"]) == 6
    code, out, _ = run_cli(capsys, "series", test_data / "pet_ge_sts001")
    assert "PET AC" in out and "267" in out
    # the reference series' description holds the patient ID: never printed
    assert "STS_001" not in out and "IBSI_1_***_PET_image" in out


# ------------------------------------------------------------------ bad input
def test_bad_truncated_file(dro, tmp_path, capsys):
    f = sorted(dro.glob("*.dcm"))[4]
    f.write_bytes(f.read_bytes()[:-5000])
    out = tmp_path / "o" / "suv.nii.gz"
    out.parent.mkdir()
    assert_bad(capsys, ["suv", dro, "--out", out], names=f, contains=["truncated"], out_path=out)


def test_bad_non_dicom_folder(tmp_path, capsys):
    d = tmp_path / "junk"
    d.mkdir()
    (d / "a.dcm").write_text("this is not DICOM")
    out = tmp_path / "suv.nii.gz"
    assert_bad(capsys, ["suv", d, "--out", out], names=d, contains=["no DICOM image series"], out_path=out)


def test_bad_several_and_no_matching_series(test_data, dro, tmp_path, capsys):
    out = tmp_path / "suv.nii.gz"
    assert_bad(capsys, ["suv", test_data / "suv_dro", "--out", out], names=test_data / "suv_dro",
               contains=["6 series match", "--series UID"], out_path=out)
    edit_series(dro, lambda ds, k: setattr(ds, "Modality", "CT"))
    assert_bad(capsys, ["suv", dro, "--out", out], names=dro, contains=["no DICOM image series with modality PT"], out_path=out)


def test_bad_mixed_frames_of_reference(test_data, tmp_path, capsys):
    pet = copy_series(test_data / "suv_dro" / "DRO_0_0" / "PT", tmp_path / "pet")
    ct = copy_series(test_data / "suv_dro" / "DRO_0_0" / "PT", tmp_path / "ct")
    new_uids(ct, modality="CT", frame_uid=generate_uid())
    assert_bad(capsys, ["info", ct, pet], names=pet, contains=["FrameOfReferenceUID", "--allow-frame-mismatch"])
    code, out, err = run_cli(capsys, "info", ct, pet, "--allow-frame-mismatch")
    assert code == 0 and "frame of reference: different" in out
    new_uids(ct, modality="CT", frame_uid=str(pydicom.dcmread(next(pet.glob("*.dcm"))).FrameOfReferenceUID))
    code, out, err = run_cli(capsys, "info", ct, pet)
    assert code == 0 and "frame of reference: same" in out


@pytest.mark.parametrize(
    "edit, contains",
    [
        (lambda ds, k: delattr(ds.RadiopharmaceuticalInformationSequence[0], "RadionuclideTotalDose"), ["RadionuclideTotalDose", "--dose"]),
        (lambda ds, k: delattr(ds, "PatientWeight"), ["PatientWeight", "--weight"]),
        (lambda ds, k: (delattr(ds.RadiopharmaceuticalInformationSequence[0], "RadiopharmaceuticalStartDateTime"),
                        delattr(ds.RadiopharmaceuticalInformationSequence[0], "RadiopharmaceuticalStartTime")),
         ["RadiopharmaceuticalStartDateTime", "--injection-time"]),
    ],
    ids=["dose", "weight", "times"],
)
def test_bad_missing_dose_weight_times(dro, tmp_path, capsys, edit, contains):
    edit_series(dro, edit)
    out = tmp_path / "suv.nii.gz"
    assert_bad(capsys, ["suv", dro, "--out", out], names=dro, contains=contains, out_path=out)
    # the option named in the message supplies the value
    fix = {"--dose": ["--dose", "368.08"], "--weight": ["--weight", "70"], "--injection-time": ["--injection-time", "10:00"]}[contains[1]]
    code, _, err = run_cli(capsys, "suv", dro, "--out", out, *fix)
    assert code == 0, err
    assert out.exists()


def test_bad_nan_voxels(tmp_path, capsys):
    arr = np.zeros((4, 5, 6), np.float32)
    arr[1, 2, 3] = np.nan
    ct = write_image(Volume(arr, origin=[0, 0, 0], spacing=[1, 1, 1]), tmp_path / "ct.nrrd")  # NIfTI writer drops NaN
    pet = write_image(Volume(np.ones((4, 5, 6), np.float32), origin=[0, 0, 0], spacing=[1, 1, 1]), tmp_path / "pet.nii.gz")
    assert_bad(capsys, ["info", ct, pet], names=ct, contains=["1 NaN voxels"])


def _manifest(tmp_path, rows, header="patient_id,ct,pet,lesion_id,x,y,z,label"):
    write_image(Volume(np.zeros((10, 10, 10), np.float32), origin=[0, 0, 0], spacing=[2, 2, 2]), tmp_path / "p1" / "ct.nii.gz")
    write_image(Volume(np.ones((5, 5, 5), np.float32), origin=[0, 0, 0], spacing=[4, 4, 4]), tmp_path / "p1" / "pet.nii.gz")
    m = tmp_path / "manifest.csv"
    m.write_text(header + "\n" + "\n".join(rows) + "\n")
    return m


def test_bad_lesion_outside_volume(tmp_path, capsys):
    m = _manifest(tmp_path, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,5,5,5,benign", "p1,p1/ct.nii.gz,p1/pet.nii.gz,L2,5,5,80,malignant"])
    line = assert_bad(capsys, ["manifest", m], names=f"{m}: row 3", contains=["outside the CT volume"])
    assert "L2" in line


@pytest.mark.parametrize(
    "row, problem",
    [
        ("p1,p1/ct.nii.gz,p1/pet.nii.gz,L2,5,five,5,benign", "x, y, z must be numbers"),
        ("p1,p1/ct.nii.gz,p1/pet.nii.gz,L2,5,5,5,maybe", "unknown label 'maybe'"),
        ("p1,p1/ct.nii.gz,p1/missing.nii.gz,L2,5,5,5,benign", "pet file not found"),
        ("p1,p1/ct.nii.gz,p1/pet.nii.gz,L2,5,5", "6 fields, the header has 8"),
        ("p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,5,5,5,benign", "repeats row 2"),
    ],
    ids=["number", "label", "file", "fields", "duplicate"],
)
def test_bad_manifest_row(tmp_path, capsys, row, problem):
    m = _manifest(tmp_path, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,5,5,5,benign", row])
    assert_bad(capsys, ["manifest", m], names=f"{m}: row 3", contains=[problem])


def test_bad_manifest_header_and_file(tmp_path, capsys):
    m = _manifest(tmp_path, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,5,5,5,benign"], header="patient,ct,pet,lesion_id,x,y,z,label")
    assert_bad(capsys, ["manifest", m], names=m, contains=["row 1", "patient_id"])
    assert_bad(capsys, ["manifest", tmp_path / "nope.csv"], names=tmp_path / "nope.csv", contains=["not found"])


def test_bad_output_suffix_writes_nothing(test_data, tmp_path, capsys):
    out = tmp_path / "suv.png"
    assert_bad(capsys, ["suv", test_data / "suv_dro" / "DRO_0_0" / "PT", "--out", out], names=out, out_path=out)
