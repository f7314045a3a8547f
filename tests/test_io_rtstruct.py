"""RTSTRUCT -> mask: the inclusion rule on synthetic contours, and the shared RTSTRUCT + NIfTI pairs."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest

from petcad.errors import InputError
from petcad.io.masks import list_labels, load_mask
from petcad.io.rtstruct import ROI, rasterise_roi, rtstruct_mask
from petcad.io.volumes import read_image
from petcad.study import Volume


def dice(a, b) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def grid(shape_kji=(10, 12, 12), spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)) -> Volume:
    return Volume(array=np.zeros(shape_kji, np.float32), origin=origin, spacing=spacing)


def square(x0, x1, y0, y1, z) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)


# ------------------------------------------------------------------ the rule, on synthetic contours
def test_voxel_centre_inside_rule_and_slab_along_the_normal():
    like = grid(origin=(0.0, 0.0, 0.5))  # slice centres at z = 0.5, 1.5, ... 9.5 mm
    # contours on planes z = 2, 4, 6 mm (spacing 2 mm: each plane covers +-1 mm)
    roi = ROI(1, "sq", "", [square(1.5, 5.5, 2.5, 4.5, z) for z in (2.0, 4.0, 6.0)])
    m = rasterise_roi(roi, like)
    # slices whose centre is within 1 mm of a plane: z = 1.5 ... 6.5 -> k = 1..6
    assert m.sum(axis=(1, 2)).nonzero()[0].tolist() == [1, 2, 3, 4, 5, 6]
    # in plane: centres i = 2..5 (1.5 < i < 5.5), j = 3..4
    expected = np.zeros((12, 12), np.uint8)
    expected[3:5, 2:6] = 1
    assert np.array_equal(m[3], expected)


def test_even_odd_hole_and_two_islands_on_one_plane():
    like = grid(shape_kji=(1, 12, 12))
    outer, hole = square(0.5, 8.5, 0.5, 8.5, 0.0), square(2.5, 6.5, 2.5, 6.5, 0.0)
    island = square(9.5, 11.5, 9.5, 11.5, 0.0)
    m = rasterise_roi(ROI(1, "ring", "", [outer, hole[::-1], island]), like)[0]
    assert m[1:9, 1:9].sum() == 64 - 16 and m[3:7, 3:7].sum() == 0  # ring: the hole is empty
    assert m[10:12, 10:12].sum() == 4  # the island is kept
    assert m.sum() == 48 + 4


def test_one_plane_roi_fills_one_slice_and_oblique_contour_is_refused():
    like = grid()
    m = rasterise_roi(ROI(1, "thin", "", [square(1.5, 3.5, 1.5, 3.5, 4.0)]), like)
    assert m.sum(axis=(1, 2)).tolist() == [0, 0, 0, 0, 4, 0, 0, 0, 0, 0]
    tilted = square(1.5, 3.5, 1.5, 3.5, 4.0)
    tilted[2:, 2] = 6.0
    with pytest.raises(InputError, match="parallel"):
        rasterise_roi(ROI(1, "tilted", "", [tilted]), like)


def test_off_image_and_empty_roi_are_refused():
    like = grid()
    with pytest.raises(InputError, match="entirely off the image"):
        rasterise_roi(ROI(7, "far", "", [square(100, 110, 100, 110, 4.0)]), like)
    with pytest.raises(InputError, match="empty"):
        rasterise_roi(ROI(7, "none", "", [], n_ignored=2), like)


# ------------------------------------------------------------------ the shared pairs
@pytest.fixture(scope="module")
def ge(test_data):
    ref = read_image(test_data / "pet_ge_sts001" / "reference_suv" / "nifti" / "mask" / "mask.nii.gz", modality="mask")
    return test_data / "pet_ge_sts001" / "mask" / "1-1.dcm", ref


def test_ge_rtstruct_matches_the_reference_nifti_mask(ge):
    rs, ref = ge
    assert list_labels(rs) == [(1, "GTV_Mass"), (2, "GTV_Edema")]
    m = load_mask(rs, ref, "GTV_Mass")
    d, n, n_ref = dice(m.array, ref.array), int(m.array.sum()), int(ref.array.sum())
    print(f"GE STS_001 GTV_Mass: Dice {d:.4f}, voxels {n} vs reference {n_ref}")
    assert d >= 0.97 and abs(n - n_ref) <= 0.02 * n_ref
    assert (d, n, n_ref) == (1.0, 5095, 5095)  # measured: identical


def test_dro_rtstruct_is_the_nifti_mask_less_one_voxel_layer(test_data):
    from scipy import ndimage

    d0 = test_data / "suv_dro" / "DRO_0_0"
    ref = read_image(d0 / "mask" / "DRO_mask.nii.gz", modality="mask")
    m = load_mask(d0 / "RS", ref)
    a, b = m.array.astype(bool), ref.array.astype(bool)
    d = dice(a, b)
    print(f"DRO_0_0 region_1: Dice {d:.4f}, voxels {a.sum()} vs NIfTI mask {b.sum()}")
    # the DRO's contours run about one voxel inside its NIfTI mask (which has one more slice at
    # each end than the contours have planes): every rasterised voxel is in the mask, and the
    # mask is the rasterised ROI grown by one voxel (6-connected)
    assert not (a & ~b).any()
    assert 0.92 <= d < 0.93 and (int(a.sum()), int(b.sum())) == (174690, 203202)
    assert dice(ndimage.binary_dilation(a), b) > 0.99


def test_roi_without_contours_and_frame_mismatch(ge, tmp_path):
    rs, ref = ge
    ds = pydicom.dcmread(rs)
    ds.ROIContourSequence = pydicom.Sequence([rc for rc in ds.ROIContourSequence if int(rc.ReferencedROINumber) != 2])
    bad = tmp_path / "rs.dcm"
    ds.save_as(bad)
    with pytest.raises(InputError, match=r"ROI 2 'GTV_Edema' is empty"):
        load_mask(bad, ref, "GTV_Edema")
    with pytest.raises(InputError, match="FrameOfReferenceUID"):
        rtstruct_mask(rs, 1, ref, frame_of_reference_uid="1.2.3.4")
    with pytest.raises(InputError, match=r"no ROI 'GTV' \(ROIs: 1 'GTV_Mass', 2 'GTV_Edema'\)"):
        load_mask(rs, ref, "GTV")
    with pytest.raises(InputError, match="2 ROIs; choose one"):
        load_mask(rs, ref)


def test_rtstruct_onto_the_full_pet_series_grid(test_data, ge):
    """The same ROI on the uncropped 267-slice PET grid (irregular slice spacing, mean-spaced stack)."""
    from petcad.io.dicom import read_series

    rs, ref = ge
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pet = read_series(test_data / "pet_ge_sts001" / "image").volume
    m = load_mask(rs, pet, 1)
    assert m.same_grid(pet) and m.array.dtype == np.uint8
    back = m.resample_to(ref, interpolator="nearest")
    assert int(m.array.sum()) == 5095 and dice(back.array, ref.array) == 1.0


def test_dro_rtstruct_agrees_with_mirp(test_data):
    """An independent rasteriser (MIRP's ray casting at voxel centres) gives the same ROI on the DRO."""
    mirp = pytest.importorskip("mirp")
    from petcad.io.dicom import read_series

    d0 = test_data / "suv_dro" / "DRO_0_0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid = read_series(d0 / "PT").volume
        ((_, masks),) = mirp.extract_images(image=str(d0 / "PT"), mask=str(d0 / "RS"), image_modality="PT",
                                            mask_modality="rtstruct", image_export_format="numpy", num_cpus=1)
    theirs = np.asarray(masks[0]) > 0
    ours = load_mask(d0 / "RS", grid).array > 0
    assert theirs.shape == ours.shape
    print(f"DRO_0_0: petcad {ours.sum()} voxels, MIRP {theirs.sum()}, Dice {dice(ours, theirs):.4f}")
    assert dice(ours, theirs) > 0.999 and abs(int(ours.sum()) - int(theirs.sum())) < 0.001 * theirs.sum()


def test_grid_orientation_does_not_change_the_mask():
    """The same ROI on a grid whose j and k axes run backwards gives the same voxels in physical space."""
    roi = ROI(1, "sq", "", [square(1.5, 5.5, 2.5, 7.5, z) for z in (2.0, 3.0, 4.0, 5.0)] + [square(3.2, 4.8, 4.2, 5.8, 3.0)])
    a = grid(origin=(0.0, 0.0, 0.0))
    flipped = Volume(array=np.zeros((10, 12, 12), np.float32), origin=(0.0, 11.0, 9.0), spacing=(1.0, 1.0, 1.0),
                     direction=np.diag([1.0, -1.0, -1.0]))
    ma = rasterise_roi(roi, a)
    mb = rasterise_roi(roi, flipped)
    assert ma.sum() == mb.sum() > 0
    assert np.array_equal(ma, mb[::-1, ::-1, :])
    assert ma[3].sum() == 4 * 5 - 1 and ma[3, 5, 4] == 0  # plane z = 3 has a hole holding one centre (i 4, j 5)


def test_roi_partly_off_the_image_is_cut_with_a_warning(ge):
    rs, ref = ge
    half = Volume(array=np.zeros((20, 43, 41), np.float32), origin=ref.origin, spacing=ref.spacing,
                  direction=ref.direction)  # the first 20 of the reference's 59 slices
    with pytest.warns(UserWarning, match="contour points lie outside the image; the mask is cut"):
        m = load_mask(rs, half, 1)
    assert np.array_equal(m.array, ref.array[:20])
