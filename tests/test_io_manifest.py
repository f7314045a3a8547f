"""The cohort manifest: parsing, validation with row numbers, masks in physical space, load_cohort."""

from __future__ import annotations

import time

import numpy as np
import pytest

from petcad.errors import InputError
from petcad.io.manifest import load_cohort, read_manifest
from petcad.io.volumes import write_image
from petcad.study import Volume


@pytest.fixture
def cohort_dir(tmp_path):
    for pid in ("p1", "p2"):
        write_image(Volume(np.zeros((20, 20, 20), np.float32), origin=[-20, -20, -20], spacing=[2, 2, 2]), tmp_path / pid / "ct.nii.gz")
        write_image(Volume(np.ones((10, 10, 10), np.float32), origin=[-20, -20, -20], spacing=[4, 4, 4]), tmp_path / pid / "pet.nii.gz")
    # a mask cropped to a box around the lesion at (4, 4, 4) mm, with its own origin
    box = np.zeros((5, 5, 5), np.uint8)
    box[1:4, 1:4, 1:4] = 1
    write_image(Volume(box, origin=[0, 0, 0], spacing=[2, 2, 2]), tmp_path / "p1" / "L1_mask.nii.gz")
    return tmp_path


def write_manifest(folder, rows, header="patient_id,ct,pet,lesion_id,x,y,z,label,mask"):
    m = folder / "manifest.csv"
    m.write_text(header + "\n" + "\n".join(rows) + "\n")
    return m


def test_read_manifest_paths_relative_and_labels(cohort_dir):
    m = write_manifest(cohort_dir, [
        "p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,4,4,4,malignant,p1/L1_mask.nii.gz",
        "",
        "p2,p2/ct.nii.gz,p2/pet.nii.gz,L1,-4,0,2.5,benign,",
    ])
    rows = read_manifest(m)
    assert [r.row for r in rows] == [2, 4]
    assert rows[0].ct == (cohort_dir / "p1" / "ct.nii.gz").resolve() and rows[0].mask is not None
    assert rows[1].mask is None and rows[1].center_mm == (-4.0, 0.0, 2.5)
    with pytest.raises(InputError, match=r"row 2: unknown label 'malignant'; allowed: yes, no"):
        read_manifest(m, allowed_labels=("yes", "no"))
    assert len(read_manifest(m, allowed_labels=None)) == 2


def test_load_cohort_attaches_cropped_masks(cohort_dir):
    m = write_manifest(cohort_dir, [
        "p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,4,4,4,malignant,p1/L1_mask.nii.gz",
        "p1,p1/ct.nii.gz,p1/pet.nii.gz,L2,-10,-10,-10,benign,",
        "p2,p2/ct.nii.gz,p2/pet.nii.gz,L1,0,0,0,benign,",
    ])
    c = load_cohort(m)
    assert len(c) == 2 and c.n_lesions == 3
    l1 = c.studies[0].lesions[0]
    assert l1.mask is not None and l1.mask.array.sum() == 27
    np.testing.assert_allclose(l1.mask.origin, [0, 0, 0])
    # the mask is on its own grid: the lesion centre maps to a mask voxel that is set
    i, j, k = np.rint(l1.mask.world_to_index(l1.center_mm)).astype(int)
    assert l1.mask.array[k, j, i] == 1
    assert c.labels() == ["malignant", "benign", "benign"] and c.patient_ids() == ["p1", "p1", "p2"]


def test_centre_outside_mask_and_volume(cohort_dir):
    m = write_manifest(cohort_dir, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,30,4,4,malignant,p1/L1_mask.nii.gz"])
    with pytest.raises(InputError, match=r"row 2: lesion centre .* outside the mask"):
        load_cohort(m, check_inside=False)
    with pytest.raises(InputError, match=r"row 2: lesion 'L1' centre .* outside the CT volume"):
        load_cohort(m)


def test_patient_with_two_different_images_is_an_error(cohort_dir):
    m = write_manifest(cohort_dir, [
        "p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,4,4,4,malignant,",
        "p1,p2/ct.nii.gz,p1/pet.nii.gz,L2,4,4,4,malignant,",
    ])
    with pytest.raises(InputError, match="row 3: patient 'p1' names other ct/pet than in row 2"):
        read_manifest(m)


def test_bad_study_error_names_manifest_row(cohort_dir):
    (cohort_dir / "p2" / "pet.nii.gz").write_bytes(b"garbage")
    m = write_manifest(cohort_dir, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,4,4,4,malignant,", "p2,p2/ct.nii.gz,p2/pet.nii.gz,L1,0,0,0,benign,"])
    with pytest.raises(InputError) as e:
        load_cohort(m)
    assert e.value.where == f"{m}: row 3" and "pet.nii.gz" in e.value.problem


@pytest.mark.slow
def test_load_small_phantom_cohort(small_cohort):
    t = time.perf_counter()
    c = load_cohort(small_cohort)
    seconds = time.perf_counter() - t
    rows = read_manifest(small_cohort)
    assert len(c) == 8 and c.n_lesions == len(rows)
    for study, lesion in c.iter_lesions():
        assert study.ct.contains(lesion.center_mm) and study.pet.contains(lesion.center_mm)
        assert study.suv["input_units"] == "BQML" and study.pet.array.dtype == np.float32
        if lesion.mask is not None:
            assert lesion.mask.contains(lesion.center_mm)
    assert seconds < 60, f"8 phantom patients took {seconds:.1f} s"


# ---------------------------------------------------------------- issue 11 item 3, issue 10 item 4
def test_mistyped_optional_column_is_an_error_naming_known_columns(cohort_dir):
    m = write_manifest(cohort_dir, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,4,4,4,malignant,p1/L1_mask.nii.gz"],
                       header="patient_id,ct,pet,lesion_id,x,y,z,label,masks")
    with pytest.raises(InputError, match=r"row 1: unknown column 'masks' \(did you mean 'mask'\?\); known columns: "
                       r"patient_id, ct, pet, lesion_id, x, y, z, label, mask, mask_label, study_id"):
        read_manifest(m)
    # an unrelated extra column is still ignored
    m = write_manifest(cohort_dir, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,4,4,4,malignant,p1/L1_mask.nii.gz,lymph"],
                       header="patient_id,ct,pet,lesion_id,x,y,z,label,mask,diagnosis")
    assert len(read_manifest(m)) == 1


def test_centre_inside_mask_extent_but_off_the_lesion_is_an_error(cohort_dir):
    # (0, 0, 0) is inside the mask image (origin) but on a zero voxel: today only the extent was checked
    m = write_manifest(cohort_dir, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,0,0,0,malignant,p1/L1_mask.nii.gz"])
    with pytest.raises(InputError, match=r"row 2: lesion 'L1' centre \(0.0, 0.0, 0.0\) mm lies outside its own mask "
                       r".*L1_mask.nii.gz \(nearest mask voxel 3.5 mm away\)"):
        load_cohort(m)


def test_empty_centre_is_the_centroid_of_the_largest_component(cohort_dir):
    arr = np.zeros((12, 12, 12), np.uint8)
    arr[1:3, 1:3, 1:3] = 1          # 8 voxels
    arr[5:10, 6:9, 2:6] = 1         # 60 voxels: the largest component
    write_image(Volume(arr, origin=[-10, -10, -10], spacing=[2, 2, 2]), cohort_dir / "p2" / "two.nii.gz")
    m = write_manifest(cohort_dir, ["p2,p2/ct.nii.gz,p2/pet.nii.gz,L1,,,,benign,p2/two.nii.gz"])
    rows = read_manifest(m)
    assert rows[0].center_mm is None
    les = load_cohort(m).studies[0].lesions[0]
    assert les.center_source == "mask"
    # i 2..5 -> 3.5, j 6..8 -> 7, k 5..9 -> 7, world = -10 + 2 * index
    np.testing.assert_allclose(les.center_mm, [-10 + 2 * 3.5, -10 + 2 * 7, -10 + 2 * 7])


def test_centroid_off_a_crescent_moves_onto_the_lesion(cohort_dir):
    arr = np.zeros((3, 9, 9), np.uint8)
    arr[:, 1, 1:8] = 1
    arr[:, 1:8, 1] = 1  # an L shape: its centroid is on a zero voxel
    write_image(Volume(arr, origin=[0, 0, 0], spacing=[1, 1, 1]), cohort_dir / "p2" / "l.nii.gz")
    m = write_manifest(cohort_dir, ["p2,p2/ct.nii.gz,p2/pet.nii.gz,L1,,,,benign,p2/l.nii.gz"])
    les = load_cohort(m).studies[0].lesions[0]
    i, j, k = np.rint(les.center_mm).astype(int)
    assert arr[k, j, i] == 1


def test_empty_centre_needs_a_mask_and_all_three_empty(cohort_dir):
    m = write_manifest(cohort_dir, ["p2,p2/ct.nii.gz,p2/pet.nii.gz,L1,,,,benign,"])
    with pytest.raises(InputError, match="row 2: empty x, y, z: give the lesion centre in mm, or a mask"):
        read_manifest(m)
    m = write_manifest(cohort_dir, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,4,,4,benign,p1/L1_mask.nii.gz"])
    with pytest.raises(InputError, match="row 2: x, y, z must be all given or all empty"):
        read_manifest(m)
    m = write_manifest(cohort_dir, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,4,4,4,benign,,2"],
                       header="patient_id,ct,pet,lesion_id,x,y,z,label,mask,mask_label")
    with pytest.raises(InputError, match="row 2: mask_label given without a mask"):
        read_manifest(m)


def test_pet_only_study(cohort_dir):
    m = write_manifest(cohort_dir, [
        "p1,,p1/pet.nii.gz,L1,4,4,4,malignant,p1/L1_mask.nii.gz",
        "p1,,p1/pet.nii.gz,L2,,,,benign,p1/L1_mask.nii.gz",
    ])
    rows = read_manifest(m)
    assert rows[0].ct is None
    c = load_cohort(m)
    assert c.studies[0].ct is None and not c.studies[0].has_ct and c.without_ct() == c.studies
    with pytest.raises(InputError, match="PET-only.*needs both CT and PET"):
        c.studies[0].require_ct("2.5D patches")
    # a patient cannot be PET-only in one row and have a CT in another
    m = write_manifest(cohort_dir, [
        "p1,,p1/pet.nii.gz,L1,4,4,4,malignant,",
        "p1,p1/ct.nii.gz,p1/pet.nii.gz,L2,4,4,4,malignant,",
    ])
    with pytest.raises(InputError, match="row 3: patient 'p1' names other ct/pet than in row 2"):
        read_manifest(m)


def test_cli_manifest_reports_mask_centres_and_pet_only(cohort_dir, capsys):
    from petcad.cli import main

    m = write_manifest(cohort_dir, ["p1,,p1/pet.nii.gz,L1,,,,malignant,p1/L1_mask.nii.gz"])
    assert main(["manifest", str(m)]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 patients have no CT (PET-only)" in out and "2.5D patches and the CNNs" in out
    assert "1 centres taken from the mask (centroid of its largest connected component)" in out
    assert "row 2 lesion L1: (4.00, 4.00, 4.00) mm" in out
    m = write_manifest(cohort_dir, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,4,4,4,malignant,p1/L1_mask.nii.gz"],
                       header="patient_id,ct,pet,lesion_id,x,y,z,label,masks")
    assert main(["manifest", str(m)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown column 'masks'" in err[0]


def test_commands_that_need_a_ct_say_so_on_a_pet_only_manifest(cohort_dir, capsys):
    from petcad.cli import main

    m = write_manifest(cohort_dir, [
        "p1,,p1/pet.nii.gz,L1,4,4,4,malignant,",
        "p2,,p2/pet.nii.gz,L1,0,0,0,benign,",
    ])
    out = cohort_dir / "out"
    for argv, what in (
        (["patches", str(m), "--out", str(out)], "2.5D tri-planar patches"),
        (["train", str(m), "--model", "wang2017", "--out", str(out)], "the 2.5D CNNs"),
        (["compare", str(m), "--out", str(out), "--methods", "rf,cnn", "--folds", "2", "--repeats", "1",
          "--no-progress"],
         "the 2.5D CNN methods (cnn)"),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert str(m) in err[0] and "2 of 2 studies have no CT (empty ct column)" in err[0] and what in err[0], err[0]
        assert not out.exists()
    assert "--methods" in err[0]


def test_mask_label_selects_a_value_of_a_label_image(cohort_dir):
    arr = np.zeros((10, 10, 10), np.uint8)
    arr[1:3, 1:3, 1:3] = 1
    arr[5:8, 5:8, 5:8] = 2
    write_image(Volume(arr, origin=[-10, -10, -10], spacing=[2, 2, 2]), cohort_dir / "p2" / "labels.nii.gz")
    m = write_manifest(cohort_dir, ["p2,p2/ct.nii.gz,p2/pet.nii.gz,L2,,,,benign,p2/labels.nii.gz,2",
                                    "p2,p2/ct.nii.gz,p2/pet.nii.gz,L3,,,,benign,p2/labels.nii.gz,tumour"],
                       header="patient_id,ct,pet,lesion_id,x,y,z,label,mask,mask_label")
    with pytest.raises(InputError, match="row 3: mask_label 'tumour': an image mask's label is a voxel value"):
        load_cohort(m)
    m.write_text("\n".join(m.read_text().splitlines()[:2]) + "\n")
    les = load_cohort(m).studies[0].lesions[0]
    assert int(les.mask.array.sum()) == 27
    np.testing.assert_allclose(les.center_mm, [-10 + 2 * 6] * 3)


def test_study_id_allows_several_studies_of_a_patient(cohort_dir):
    m = write_manifest(cohort_dir, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,4,4,4,malignant,,base",
                                    "p1,p2/ct.nii.gz,p2/pet.nii.gz,L2,0,0,0,benign,,follow-up"],
                       header="patient_id,ct,pet,lesion_id,x,y,z,label,mask,study_id")
    c = load_cohort(m)
    assert len(c) == 2 and c.patient_ids() == ["p1", "p1"]
    m = write_manifest(cohort_dir, ["p1,p1/ct.nii.gz,p1/pet.nii.gz,L1,4,4,4,malignant,,base",
                                    "p1,p2/ct.nii.gz,p2/pet.nii.gz,L2,0,0,0,benign,,base"],
                       header="patient_id,ct,pet,lesion_id,x,y,z,label,mask,study_id")
    with pytest.raises(InputError, match="row 3: study 'base' of patient 'p1' names other ct/pet than in row 2"):
        read_manifest(m)
