"""Delineation and the 13 diagnostic features on synthetic spheres with known answers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from petcad.features.delineation import DelineationSettings, DelineationWarning, delineate
from petcad.features.diagnostic import FEATURE_NAMES, PEAK_RADIUS_MM, axis_diameters, cohort_features, compute_features
from petcad.study import Cohort, Lesion, Study, Volume

CT_SP = np.array([1.0, 1.0, 2.0])
CT_O = np.array([-50.0, -60.0, -30.0])
PET_SP = np.array([4.0, 4.0, 3.0])
PET_O = np.array([-48.0, -58.0, -29.0])


def _grid(shape_ijk, origin, spacing):
    k, j, i = np.indices(shape_ijk[::-1])
    return np.stack([i, j, k], -1) * spacing + origin


def make_study(center=(3.0, -10.0, 20.0), r=8.0, suv=6.0, hu=40.0, mask="none", pid="P1"):
    center = np.asarray(center, float)
    d = np.linalg.norm(_grid((100, 100, 50), CT_O, CT_SP) - center, axis=-1)
    ct = np.where(d <= r, hu, -100.0).astype(np.float32)
    d2 = np.linalg.norm(_grid((25, 25, 34), PET_O, PET_SP) - center, axis=-1)
    pet = np.where(d2 <= r, suv, 1.0).astype(np.float32)
    m = None
    if mask == "true":
        m = Volume((d <= r).astype(np.uint8), CT_O, CT_SP)
    elif mask == "empty":
        m = Volume(np.zeros_like(ct, dtype=np.uint8), CT_O, CT_SP)
    les = Lesion(f"{pid}-L1", center, "malignant" if suv > 3 else "benign", pid, m)
    return Study(pid, Volume(ct, CT_O, CT_SP), Volume(pet, PET_O, PET_SP), [les]), les


def test_mask_sphere_known_values():
    s, les = make_study(mask="true")
    d = delineate(s, les)
    assert d.source == "mask"
    f = compute_features(s, les)
    assert list(f) == FEATURE_NAMES and len(FEATURE_NAMES) == 13
    vol = 4 / 3 * np.pi * 8.0**3 / 1000
    assert f["metabolic_volume_ml"] == pytest.approx(vol, rel=0.05)
    assert f["long_axis_mm"] == pytest.approx(16.0, abs=1.5)
    assert f["short_axis_mm"] == pytest.approx(16.0, abs=1.5)
    assert f["ct_mean_hu"] == pytest.approx(40.0)
    assert f["ct_std_hu"] == pytest.approx(0.0)
    assert f["ct_max_hu"] == pytest.approx(40.0)
    assert f["ct_contrast_hu"] == pytest.approx(140.0)
    assert f["suv_max"] == pytest.approx(6.0)
    assert f["tlg"] == pytest.approx(f["suv_mean"] * f["metabolic_volume_ml"])
    assert f["pet_contrast"] == pytest.approx(f["suv_mean"] / 1.0)  # background SUV is 1


def test_pet_rules_and_ct_fallback():
    s, les = make_study()
    for method in ("suv", "fraction", "auto"):
        d = delineate(s, les, DelineationSettings(method=method))
        assert d.source == "pet"
        assert d.pet_mask.sum() > 0 and np.all(d.pet.array[d.pet_mask] == 6.0)
    s, les = make_study(suv=1.5)  # non-avid: CT soft-tissue fallback finds the 40 HU sphere
    d = delineate(s, les)
    assert d.source == "ct"
    f = compute_features(s, les)
    assert f["ct_mean_hu"] == pytest.approx(40.0)
    assert f["metabolic_volume_ml"] == pytest.approx(4 / 3 * np.pi * 0.512, rel=0.05)


def test_empty_mask_warns_and_uses_sphere():
    s, les = make_study(mask="empty")
    with pytest.warns(DelineationWarning, match=les.lesion_id):
        d = delineate(s, les)
    assert d.source == "sphere"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DelineationWarning)
        f = compute_features(s, les)
    assert np.all(np.isfinite(list(f.values())))
    r = DelineationSettings().fallback_radius_mm
    assert f["metabolic_volume_ml"] == pytest.approx(4 / 3 * np.pi * r**3 / 1000, rel=0.15)


def test_no_soft_tissue_and_not_avid_warns():
    s, les = make_study(suv=1.5, hu=-100.0)  # nothing there at all
    with pytest.warns(DelineationWarning, match="sphere"):
        d = delineate(s, les)
    assert d.source == "sphere"


def test_suv_peak_is_a_1ml_mean():
    s, les = make_study(r=30.0)  # big uniform lesion: peak == max == 6
    f = compute_features(s, les)
    assert f["suv_peak"] == pytest.approx(6.0)
    # one hot voxel: SUVpeak is the mean of a 1 mL sphere, well below SUVmax
    s, les = make_study(suv=1.0, hu=40.0)
    ijk = np.rint(s.pet.world_to_index(les.center_mm)).astype(int)
    s.pet.array[ijk[2], ijk[1], ijk[0]] = 20.0
    f = compute_features(s, les, DelineationSettings(method="suv"))
    n = (np.linalg.norm(_grid((3, 3, 5), -np.array([1, 1, 2]) * PET_SP, PET_SP), axis=-1) <= PEAK_RADIUS_MM).sum()
    assert f["suv_max"] == pytest.approx(20.0)
    assert f["suv_peak"] == pytest.approx((20.0 + (n - 1) * 1.0) / n, rel=1e-6)


def test_axis_diameters_ellipse():
    k, j, i = np.indices((3, 80, 80))
    m = (((i - 40) / 20.0) ** 2 + ((j - 40) / 8.0) ** 2 <= 1.0) & (k == 1)
    short, long_ = axis_diameters(m, np.array([0.5, 0.5, 2.0]), np.eye(3))
    assert long_ == pytest.approx(20.0, abs=0.6)
    assert short == pytest.approx(8.0, abs=0.6)


def test_cohort_features_order_and_sources():
    studies = [make_study(pid="A", mask="true")[0], make_study(pid="B", suv=1.5)[0]]
    names, X, src = cohort_features(Cohort(studies), return_sources=True)
    assert names == FEATURE_NAMES and X.shape == (2, 13)
    assert src == ["mask", "ct"]
    assert X[0, names.index("suv_max")] == pytest.approx(6.0)
    assert X[1, names.index("suv_max")] == pytest.approx(1.5)


def test_bad_settings():
    with pytest.raises(ValueError, match="method"):
        DelineationSettings(method="magic")
    with pytest.raises(ValueError, match="fraction"):
        DelineationSettings(fraction=1.5)


def test_distance_and_crop_with_oblique_direction():
    from scipy.spatial.transform import Rotation

    from petcad.features.delineation import crop, distance_mm

    rot = Rotation.from_euler("xyz", [10, -20, 35], degrees=True).as_matrix()
    vol = Volume(np.zeros((12, 10, 8), np.float32), origin=[5.0, -3.0, 2.0], spacing=[1.5, 2.0, 3.0], direction=rot)
    c = np.array([9.0, 4.0, 10.0])
    k, j, i = np.indices(vol.array.shape)
    ref = np.linalg.norm(vol.index_to_world(np.stack([i, j, k], -1)) - c, axis=-1)
    np.testing.assert_allclose(distance_mm(vol, c), ref, rtol=1e-12)
    sub = crop(vol, c, 4.0)
    inside = ref <= 4.0
    # every voxel within 4 mm of the centre is in the crop
    sub_world = sub.index_to_world(np.stack(np.indices(sub.array.shape)[::-1], -1).reshape(-1, 3))
    want = vol.index_to_world(np.stack([i, j, k], -1)[inside])
    d = np.linalg.norm(want[:, None, :] - sub_world[None, :, :], axis=-1).min(axis=1)
    assert np.all(d < 1e-9)
