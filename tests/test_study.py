"""Geometry of the bottom layer: voxel <-> world, SimpleITK round trip, resampling."""

import numpy as np
import pytest

from petcad.io.atomic import atomic_path, write_text
from petcad.study import Cohort, Lesion, Study, Volume


def _vol(direction=np.eye(3), spacing=(0.8, 1.2, 2.5), origin=(-10.0, 5.0, 30.0), shape=(6, 7, 8)):
    arr = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    return Volume(arr, origin=origin, spacing=spacing, direction=direction)


def test_index_world_round_trip_with_oblique_direction():
    c, s = np.cos(0.3), np.sin(0.3)
    d = np.array([[c, -s, 0], [s, c, 0], [0, 0, -1.0]])
    v = _vol(direction=d)
    ijk = np.array([[0, 0, 0], [3.5, 2.0, 1.25], [7, 6, 5]])
    xyz = v.index_to_world(ijk)
    np.testing.assert_allclose(v.world_to_index(xyz), ijk, atol=1e-12)
    np.testing.assert_allclose(xyz[0], v.origin)
    # one step along i moves spacing[0] mm along the first direction column
    np.testing.assert_allclose(v.index_to_world([1, 0, 0]) - v.origin, d[:, 0] * 0.8)


def test_matches_simpleitk_physical_points():
    sitk = pytest.importorskip("SimpleITK")
    d = np.array([[0, 1.0, 0], [-1.0, 0, 0], [0, 0, 1.0]])
    v = _vol(direction=d)
    img = v.to_sitk()
    for ijk in [(0, 0, 0), (1, 2, 3), (7, 6, 5)]:
        np.testing.assert_allclose(img.TransformIndexToPhysicalPoint(ijk), v.index_to_world(ijk), atol=1e-9)
    back = Volume.from_sitk(img)
    assert back.same_grid(v)
    np.testing.assert_array_equal(back.array, v.array)
    # array order: [k, j, i]
    assert img.GetPixel(7, 6, 5) == v.array[5, 6, 7]
    # and the direction survives the round trip (columns = axis directions)
    np.testing.assert_allclose(np.array(img.GetDirection()).reshape(3, 3), d)


def test_bounds_world_by_hand_and_by_brute_force():
    # identity direction: voxel centres run from the origin to origin + spacing * (shape_ijk - 1);
    # the array is (6, 7, 8) in [k, j, i] order, so 8 x 7 x 6 voxels along x, y, z
    lo, hi = _vol().bounds_world()
    np.testing.assert_allclose(lo, [-10.0, 5.0, 30.0])
    np.testing.assert_allclose(hi, [-10.0 + 0.8 * 7, 5.0 + 1.2 * 6, 30.0 + 2.5 * 5])
    # i along -y, j along +x, k along -z: x = -10 + 1.2 j, y = 5 - 0.8 i, z = 30 - 2.5 k
    lo, hi = _vol(direction=np.array([[0, 1.0, 0], [-1.0, 0, 0], [0, 0, -1.0]])).bounds_world()
    np.testing.assert_allclose(lo, [-10.0, 5.0 - 0.8 * 7, 30.0 - 2.5 * 5])
    np.testing.assert_allclose(hi, [-10.0 + 1.2 * 6, 5.0, 30.0])
    # oblique: the box of every voxel centre, computed voxel by voxel (the extremes of x and y
    # lie at the corners (n_i, 0) and (0, n_j), not on the diagonal from the origin)
    c, s = np.cos(0.5), np.sin(0.5)
    d = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    v = _vol(direction=d)
    k, j, i = np.indices(v.array.shape)
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], 1) * np.array([0.8, 1.2, 2.5])
    centres = np.array([-10.0, 5.0, 30.0]) + ijk @ d.T
    lo, hi = v.bounds_world()
    np.testing.assert_allclose(lo, centres.min(axis=0), atol=1e-12)
    np.testing.assert_allclose(hi, centres.max(axis=0), atol=1e-12)


def test_contains_at_the_margin():
    # identity grid, 8 x 7 x 6 voxels: inside means -margin <= index <= n - 1 + margin on every axis
    v = _vol()
    origin, spacing = np.array([-10.0, 5.0, 30.0]), np.array([0.8, 1.2, 2.5])
    n = np.array([8, 7, 6])
    for axis in range(3):
        for index, inside, margin in [(-0.49, True, 0.5), (-0.51, False, 0.5), (n[axis] - 1 + 0.49, True, 0.5),
                                      (n[axis] - 1 + 0.51, False, 0.5), (0.01, True, 0.0), (-0.01, False, 0.0),
                                      (n[axis] - 1.01, True, 0.0), (n[axis] - 1 + 0.01, False, 0.0)]:
            ijk = (n - 1) / 2.0
            ijk[axis] = index
            assert bool(v.contains(origin + spacing * ijk, margin_voxels=margin)) is inside, (axis, index, margin)
    # many points at once: one answer per point
    pts = origin + spacing * np.array([[0, 0, 0], [7, 6, 5], [7.6, 0, 0], [3, -0.6, 2], [3, 3, 3]])
    np.testing.assert_array_equal(v.contains(pts), [True, True, False, False, True])


def test_pet_resampled_onto_ct_grid_in_physical_space():
    # a PET on a coarse grid holding a linear function of world x; resampled onto a
    # finer, shifted CT grid it must give the same linear function (trilinear is exact)
    pet_shape = (10, 12, 14)
    pet = Volume(np.zeros(pet_shape, np.float32), origin=(-20, -20, -10), spacing=(4, 4, 3))
    ii = np.arange(pet_shape[2])
    pet.array[:] = (pet.origin[0] + 4 * ii)[None, None, :] * 0.1 + 5
    ct = Volume(np.zeros((8, 9, 10), np.float32), origin=(-10, -8, 0), spacing=(1.5, 1.5, 2.5))
    study = Study("P1", ct=ct, pet=pet, lesions=[Lesion("L1", (0, 0, 5), "malignant", "P1")])
    on_ct = study.pet_on_ct_grid()
    assert on_ct.same_grid(ct)
    x = ct.origin[0] + 1.5 * np.arange(10)
    np.testing.assert_allclose(on_ct.array[3, 4, :], x * 0.1 + 5, atol=1e-4)
    cohort = Cohort([study])
    assert cohort.n_lesions == 1 and cohort.labels() == ["malignant"] and cohort.patient_ids() == ["P1"]


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.nii.gz"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.name.endswith(".nii.gz")
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    write_text(target, "whole")
    assert target.read_text() == "whole"


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    target = tmp_path / "report.html"
    write_text(target, "<html></html>")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
