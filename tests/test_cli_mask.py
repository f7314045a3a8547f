"""``petcad mask`` (SEG / RTSTRUCT -> mask, label map -> SEG) and the SEG / RTSTRUCT rows of ``petcad series``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from petcad.cli import main
from petcad.io.volumes import read_image, write_image
from petcad.study import Volume


def run_cli(capsys, *argv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_bad(capsys, argv, out_path: Path, *contains):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for c in contains:
        assert c in lines[0], lines[0]
    assert not out_path.exists()
    assert not [p for p in out_path.parent.iterdir() if ".tmp" in p.name]
    return lines[0]


@pytest.fixture(scope="module")
def dro(test_data):
    d = test_data / "suv_dro" / "DRO_0_0"
    return d / "PT", d / "RS", d / "mask" / "DRO_mask.nii.gz"


@pytest.fixture(scope="module")
def ge(test_data):
    d = test_data / "pet_ge_sts001"
    return d / "mask" / "1-1.dcm", d / "reference_suv" / "nifti" / "image" / "image.nii.gz", d / "reference_suv" / "dicom" / "image"


def test_rtstruct_to_mask_on_a_dicom_series(dro, tmp_path, capsys):
    pt, rs, _ = dro
    out = tmp_path / "m.nii.gz"
    code, text, _ = run_cli(capsys, "mask", rs, "--like", pt, "--out", out, "--json")
    d = json.loads(text)
    assert code == 0 and d["kind"] == "rtstruct" and d["shape_ijk"] == [256, 256, 20]
    assert d["labels"] == [{"value": 1, "number": 3, "name": "region_1", "voxels": 174690, "volume_ml": 11180.16}]
    m = read_image(out, modality="mask")
    assert int(m.array.sum()) == 174690 and np.allclose(m.spacing, 4.0)


def test_label_map_of_two_rois_and_to_seg_round_trip(ge, tmp_path, capsys):
    rs, image, ref_dicom = ge
    lm = tmp_path / "lm.nii.gz"
    code, text, _ = run_cli(capsys, "mask", rs, "--like", image, "--label", "GTV_Edema", "--label", "1", "--out", lm)
    assert code == 0 and "value 2: 1 'GTV_Mass', 5095 voxels" in text, text
    lab = read_image(lm, modality="CT").array
    assert set(np.unique(lab).tolist()) == {0, 1, 2} and int((lab == 2).sum()) == 5095
    seg = tmp_path / "seg.dcm"
    code, text, _ = run_cli(capsys, "mask", "--to-seg", lm, "--like", ref_dicom, "--names", "1=edema,2=mass", "--out", seg)
    assert code == 0 and "2 segments" in text and "1 'edema', 2 'mass'" in text, text
    back = tmp_path / "back.nii.gz"
    code, text, _ = run_cli(capsys, "mask", seg, "--like", image, "--label", "edema", "--label", "mass", "--out", back)
    assert code == 0, text
    assert np.array_equal(read_image(back, modality="CT").array, lab)
    code, text, _ = run_cli(capsys, "series", tmp_path)
    assert code == 0 and "SEG" in text and "segments: 1 edema, 2 mass" in text, text


def test_series_lists_rtstruct_rois(dro, ge, capsys):
    pt, rs, _ = dro
    code, text, _ = run_cli(capsys, "series", rs.parent)
    assert code == 0 and "ROIs: 3 region_1" in text and "RTSTRUCT" in text, text
    code, text, _ = run_cli(capsys, "series", ge[0].parent, "--json")
    d = json.loads(text)
    (s,) = d["series"]
    assert s["labels"][0]["labels"] == [{"number": 1, "name": "GTV_Mass"}, {"number": 2, "name": "GTV_Edema"}]


def test_bad_mask_input_exits_2_and_writes_nothing(dro, ge, tmp_path, capsys):
    pt, rs_dro, _ = dro
    rs, image, ref_dicom = ge
    out = tmp_path / "never.nii.gz"
    assert_bad(capsys, ["mask", rs, "--like", image, "--label", "GTV", "--out", out],
               out, "1-1.dcm", "no ROI 'GTV'", "1 'GTV_Mass', 2 'GTV_Edema'")
    assert_bad(capsys, ["mask", rs, "--like", image, "--out", out], out, "2 ROIs; choose one")
    # the DRO structure set on the GE series: another frame of reference
    assert_bad(capsys, ["mask", rs_dro, "--like", ref_dicom, "--out", out], out,
               "RS_dro_0_0.dcm", "FrameOfReferenceUID", "another patient frame")
    # on the GE image file (no frame UID to compare): its contours are off that image
    assert_bad(capsys, ["mask", rs_dro, "--like", image, "--out", out], out, "contours lie entirely off the image grid")
    # an empty segment (named in --names, absent from the label map)
    lab = read_image(image, modality="CT")
    arr = np.zeros(lab.array.shape, np.uint8)
    arr[30, 20:25, 20:25] = 1
    lm = tmp_path / "one.nii.gz"
    write_image(Volume(arr, lab.origin, lab.spacing, lab.direction), lm)
    seg = tmp_path / "two.dcm"
    code, _, err = run_cli(capsys, "mask", "--to-seg", lm, "--like", ref_dicom, "--names", "1=a,2=b", "--out", seg)
    assert code == 0, err
    assert_bad(capsys, ["mask", seg, "--like", image, "--label", "b", "--out", out], out, "segment 2 'b' is empty")
    # --to-seg: --like must be the DICOM series; bad --names; output must not be an image file
    never = tmp_path / "never.dcm"
    assert_bad(capsys, ["mask", "--to-seg", lm, "--like", image, "--out", never], never, "DICOM series folder")
    assert_bad(capsys, ["mask", "--to-seg", lm, "--like", ref_dicom, "--names", "one=a", "--out", never], never, "--names")
    assert_bad(capsys, ["mask", "--to-seg", lm, "--like", ref_dicom, "--out", out], out, "not an image file")
    assert_bad(capsys, ["mask", "--to-seg", image, "--like", ref_dicom, "--out", never], never, "integer labels")
    assert_bad(capsys, ["mask", "--like", image, "--out", out], out, "either SEG_OR_RTSTRUCT or --to-seg")
    assert_bad(capsys, ["mask", pt, "--like", image, "--out", out], out, "exactly one DICOM SEG or RTSTRUCT")


def test_image_mask_onto_a_dicom_grid_and_unknown_value(dro, tmp_path, capsys):
    pt, _, nii = dro
    out = tmp_path / "m.nrrd"
    code, text, _ = run_cli(capsys, "mask", nii, "--like", pt, "--out", out, "--json")
    d = json.loads(text)
    assert code == 0 and d["kind"] == "image" and d["labels"][0]["voxels"] == 203202
    assert_bad(capsys, ["mask", nii, "--like", pt, "--label", "5", "--out", tmp_path / "x.nii.gz"],
               tmp_path / "x.nii.gz", "no label value '5' (label values: 1 '1')")
