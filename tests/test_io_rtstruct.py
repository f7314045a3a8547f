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
    # the same seen from the mask: its one-voxel erosion is the rasterised ROI
    assert dice(ndimage.binary_erosion(b), a) > 0.99


# ------------------------------------------------------------------ inclusion="touch"
def _touches_brute(poly: np.ndarray, nj: int, ni: int) -> np.ndarray:
    """Closed pixel squares met by the closed polygon, one pixel and one edge at a time (test oracle only)."""
    from matplotlib.path import Path as MplPath

    out = np.zeros((nj, ni), bool)
    inside = MplPath(poly).contains_points(np.array([(i, j) for j in range(nj) for i in range(ni)])).reshape(nj, ni)
    for j in range(nj):
        for i in range(ni):
            lo, hi = np.array([i - 0.5, j - 0.5]), np.array([i + 0.5, j + 0.5])
            for a, b in zip(poly, np.roll(poly, -1, axis=0)):
                t0, t1, d = 0.0, 1.0, b - a
                for ax in (0, 1):
                    if d[ax] == 0:
                        t0, t1 = (t0, t1) if lo[ax] <= a[ax] <= hi[ax] else (1.0, 0.0)
                    else:
                        ta, tb = sorted(((lo[ax] - a[ax]) / d[ax], (hi[ax] - a[ax]) / d[ax]))
                        t0, t1 = max(t0, ta), min(t1, tb)
                if t0 <= t1:
                    out[j, i] = True
                    break
            out[j, i] |= inside[j, i]
    return out


def test_touch_rule_in_the_plane_matches_a_brute_force_oracle():
    pytest.importorskip("matplotlib")
    from petcad.io.rtstruct import _touch_fill

    rng = np.random.default_rng(11)
    for _ in range(5):  # random star-shaped polygons, vertices anywhere (not on the grid)
        ang = np.sort(rng.uniform(0, 2 * np.pi, 9))
        r = rng.uniform(1.5, 5.5, 9)
        poly = np.c_[7 + r * np.cos(ang), 6 + r * np.sin(ang)]
        ours = _touch_fill([poly], 13, 15).astype(bool)
        assert np.array_equal(ours, _touches_brute(poly, 13, 15))
    # a square whose edges lie on pixel borders touches the ring of pixels around it (closed squares)
    sq = square(1.5, 4.5, 1.5, 3.5, 0.0)[:, :2]
    m = _touch_fill([sq], 8, 8)
    assert m.sum() == 5 * 4 and m[1:5, 1:6].all()  # i 1..5, j 1..4


def test_touch_rule_along_the_normal_and_against_centre():
    like = grid(origin=(0.0, 0.0, 0.5))  # slice centres at z = 0.5 ... 9.5 mm, slabs [k, k + 1] mm
    roi = ROI(1, "sq", "", [square(1.5, 5.5, 2.5, 4.5, z) for z in (2.0, 4.0, 6.0)])  # slabs [1, 7] mm
    centre = rasterise_roi(roi, like)
    touch = rasterise_roi(roi, like, inclusion="touch")
    # slices 0 (slab [0, 1]) and 7 ([7, 8]) meet the structure's slab by a face; slices 1..6 overlap it
    assert touch.sum(axis=(1, 2)).nonzero()[0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert not (centre & ~touch).any()
    expected = np.zeros((12, 12), np.uint8)
    expected[2:6, 1:7] = 1  # i 1..6 (1.5..5.5 touches i-squares 1..6), j 2..5 (2.5..4.5 touches j 2..5)
    assert np.array_equal(touch[3], expected) and np.array_equal(touch[0], expected)
    with pytest.raises(InputError, match="unknown RTSTRUCT inclusion rule 'area'"):
        rasterise_roi(roi, like, inclusion="area")


def test_touch_rule_on_the_shared_pairs(test_data, ge):
    """Dice and voxel counts of both rules on both shared pairs (the figures in docs/io.md)."""
    rs, ge_ref = ge
    d0 = test_data / "suv_dro" / "DRO_0_0"
    dro_ref = read_image(d0 / "mask" / "DRO_mask.nii.gz", modality="mask")
    got = {}
    for name, path, ref, label in (("GE", rs, ge_ref, "GTV_Mass"), ("DRO", d0 / "RS", dro_ref, None)):
        b = ref.array.astype(bool)
        for rule in ("centre", "touch"):
            a = load_mask(path, ref, label, inclusion=rule).array.astype(bool)
            got[name, rule] = (round(dice(a, b), 4), int(a.sum()), int(b.sum()), int(np.sum(a & ~b)))
            print(f"{name} {rule}: Dice {got[name, rule][0]:.4f}, voxels {a.sum()} vs {b.sum()} "
                  f"({100 * (a.sum() / b.sum() - 1):+.1f} %), {got[name, rule][3]} outside the reference")
    assert got["GE", "centre"] == (1.0, 5095, 5095, 0)
    assert got["DRO", "centre"] == (0.9245, 174690, 203202, 0)
    # touch reaches the DRO target (Dice >= 0.97, count within 2 %) and stays inside its mask ...
    dice_t, n_t, n_ref, out_t = got["DRO", "touch"]
    assert dice_t >= 0.97 and abs(n_t - n_ref) <= 0.02 * n_ref and out_t == 0
    assert (dice_t, n_t) == (0.9937, 200645)
    # ... but not the GE target: the two references follow different rules
    assert got["GE", "touch"][0] < 0.9 and got["GE", "touch"][1] > 1.2 * 5095


def test_touch_rule_dro_end_slices_come_from_face_contact(test_data):
    """Slices 1 and 18 of the DRO mask hold no contour plane: only the closed (touching) slab reaches them."""
    d0 = test_data / "suv_dro" / "DRO_0_0"
    ref = read_image(d0 / "mask" / "DRO_mask.nii.gz", modality="mask")
    touch = load_mask(d0 / "RS", ref, inclusion="touch").array.sum(axis=(1, 2))
    centre = load_mask(d0 / "RS", ref).array.sum(axis=(1, 2))
    mask = (ref.array > 0).sum(axis=(1, 2))
    print("DRO_0_0 voxels per slice: mask", mask.tolist(), "touch", touch.tolist(), "centre", centre.tolist())
    assert mask.nonzero()[0].tolist() == list(range(1, 19)) and centre.nonzero()[0].tolist() == list(range(2, 18))
    assert touch.nonzero()[0].tolist() == list(range(1, 19))
    # even touching, every slice misses part of the mask's outer ring, which no contour reaches
    assert np.all(touch[1:19] < mask[1:19]) and np.all(mask[1:19] - touch[1:19] >= 100)


def test_inclusion_is_refused_for_non_rtstruct_masks(test_data):
    d0 = test_data / "suv_dro" / "DRO_0_0"
    nii = d0 / "mask" / "DRO_mask.nii.gz"
    ref = read_image(nii, modality="mask")
    with pytest.raises(InputError, match="applies to RTSTRUCT contours only"):
        load_mask(nii, ref, inclusion="touch")


def test_cli_mask_inclusion_option(test_data, tmp_path, capsys):
    import json

    from petcad.cli import main

    d0 = test_data / "suv_dro" / "DRO_0_0"
    out = tmp_path / "m.nii.gz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["mask", str(d0 / "RS"), "--like", str(d0 / "mask" / "DRO_mask.nii.gz"), "--inclusion", "touch",
                     "--out", str(out), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 0 and rep["inclusion"] == "touch" and rep["labels"][0]["voxels"] == 200645
    assert int(read_image(out, modality="mask").array.sum()) == 200645
    bad = tmp_path / "bad.nii.gz"
    code = main(["mask", str(d0 / "mask" / "DRO_mask.nii.gz"), "--like", str(d0 / "mask" / "DRO_mask.nii.gz"),
                 "--inclusion", "touch", "--out", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "--inclusion" in err and "only used with an RTSTRUCT" in err and not bad.exists()
    assert len(err.strip().splitlines()) == 1


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
