"""Tri-planar patches: geometry, interpolation, augmentation, normalisation, dataset, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from petcad.errors import InputError
from petcad.patches.augment import AugmentPolicy, apply_dihedral, draw_dihedral, grid_transforms, random_transforms
from petcad.patches.cache import LesionCache
from petcad.patches.geometry import PLANE_AXES, pixel_world, rotation_matrices
from petcad.patches.normalize import normalize_patches
from petcad.patches.sampler import CHANNELS, PatchSampler
from petcad.study import Cohort, Lesion, Study, Volume

H = 25  # half-width of a 51-pixel patch


def _study(ct: Volume, pet: Volume | None = None, centers=((0.0, 0.0, 0.0),), labels=None, masks=None) -> Study:
    pet = pet if pet is not None else ct
    labels = labels or ["malignant"] * len(centers)
    lesions = [
        Lesion(f"L{i}", c, labels[i], "P0", None if masks is None else masks[i]) for i, c in enumerate(centers)
    ]
    return Study("P0", ct, pet, lesions)


@pytest.fixture(scope="module")
def random_vol() -> Volume:
    """Random values on a 1 mm identity grid; voxel (50, 40, 30) sits at world (0, 0, 0)."""
    arr = np.random.default_rng(0).normal(size=(70, 90, 100)).astype(np.float32)
    return Volume(arr, origin=[-50.0, -40.0, -30.0], spacing=[1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def random_cache(random_vol) -> LesionCache:
    pet = Volume(random_vol.array * 2.0 + 1.0, random_vol.origin, random_vol.spacing)
    return LesionCache.from_cohort(Cohort([_study(random_vol, pet)]), max_rotation_deg=90.0, max_shift_mm=5.0)


def _one(sampler, cache, t):
    return sampler.sample(cache, np.zeros(1, np.int64), np.asarray([t], dtype=float))[0]


def test_identity_equals_direct_slicing(random_vol, random_cache):
    a = random_vol.array
    i0, j0, k0 = 50, 40, 30
    p = _one(PatchSampler(), random_cache, [0] * 6)
    assert p.shape == (6, 51, 51) and p.dtype == np.float32
    np.testing.assert_array_equal(p[0], a[k0, j0 - H : j0 + H + 1, i0 - H : i0 + H + 1])  # axial: rows +y, cols +x
    np.testing.assert_array_equal(p[1], a[k0 + H : k0 - H - 1 : -1, j0, i0 - H : i0 + H + 1])  # coronal: rows -z
    np.testing.assert_array_equal(p[2], a[k0 + H : k0 - H - 1 : -1, j0 - H : j0 + H + 1, i0])  # sagittal: cols +y
    np.testing.assert_array_equal(p[3:], p[:3] * 2.0 + 1.0)  # PET channels
    assert CHANNELS[:6] == ("CT-axial", "CT-coronal", "CT-sagittal", "PET-axial", "PET-coronal", "PET-sagittal")


def _pixel_world(center, t, size=51, spacing=1.0):
    """Independent restatement of the documented geometry: (3 planes, N, N, 3) world mm."""
    r = rotation_matrices(np.asarray(t[:3])[None])[0]
    h = (size - 1) / 2
    off = (np.arange(size) - h) * spacing
    out = []
    for plane in ("axial", "coronal", "sagittal"):
        u, v = PLANE_AXES[plane]
        o = off[None, :, None] * u + off[:, None, None] * v  # [row, col, 3]
        out.append(center + o @ r.T + np.asarray(t[3:]) * spacing)
    return np.stack(out)


def test_linear_ramp_exact_at_any_rotation():
    # ramp on an anisotropic, oblique grid (CT) and a coarse grid (PET): trilinear is exact on linear functions
    coef, const = np.array([0.7, -1.3, 2.1]), 5.0
    theta = np.deg2rad(20)
    direction = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    vols = []
    for spacing, shape, d in (((0.8, 0.9, 2.5), (50, 140, 140), direction), ((4.0, 4.0, 3.0), (40, 35, 35), np.eye(3))):
        v = Volume(np.zeros(shape, np.float32), origin=[0, 0, 0], spacing=spacing, direction=d)
        centre_idx = (np.array(v.shape_ijk) - 1) / 2
        v.origin = -(v.direction * v.spacing) @ centre_idx  # volume centred on the world origin
        k, j, i = np.indices(shape)
        w = v.index_to_world(np.stack([i, j, k], -1).reshape(-1, 3))
        v.array = (w @ coef + const).reshape(shape).astype(np.float64).astype(np.float32)
        vols.append(v)
    center = np.array([1.3, -2.2, 0.7])
    cache = LesionCache.from_cohort(Cohort([_study(vols[0], vols[1], centers=[center])]), max_rotation_deg=45.0)
    ts = random_transforms(np.random.default_rng(1), 8, max_rotation_deg=45.0, max_shift=2.0)
    p = PatchSampler().sample(cache, np.zeros(8, np.int64), ts)
    for n, t in enumerate(ts):
        expected = _pixel_world(center, t) @ coef + const
        np.testing.assert_allclose(p[n, :3], expected, atol=2e-3)
        np.testing.assert_allclose(p[n, 3:], expected, atol=2e-3)
    np.testing.assert_allclose(pixel_world(np.tile(center, (8, 1)), ts, 51, 1.0)[3], _pixel_world(center, ts[3]))


def test_ninety_degree_rotations_map_planes(random_cache):
    s = PatchSampler()
    ident = _one(s, random_cache, [0] * 6)
    ax, co, sa = ident[0], ident[1], ident[2]
    rx = _one(s, random_cache, [90, 0, 0, 0, 0, 0])  # y -> z, z -> -y
    np.testing.assert_allclose(rx[0], co[::-1, :], atol=1e-4)  # axial (x, y) -> (x, z): flipped coronal
    np.testing.assert_allclose(rx[1], ax, atol=1e-4)  # coronal (x, -z) -> (x, y): axial
    ry = _one(s, random_cache, [0, 90, 0, 0, 0, 0])  # x -> -z, z -> x
    np.testing.assert_allclose(ry[0], sa.T, atol=1e-4)  # axial (x, y) -> (-z, y): transposed sagittal
    rz = _one(s, random_cache, [0, 0, 90, 0, 0, 0])  # x -> y, y -> -x
    np.testing.assert_allclose(rz[1], sa, atol=1e-4)  # coronal (x, -z) -> (y, -z): sagittal
    np.testing.assert_allclose(rz[0], ax[:, ::-1].T, atol=1e-4)  # axial turned by 90 degrees
    # four quarter turns about any axis are the identity; the PET follows the same geometry
    np.testing.assert_allclose(_one(s, random_cache, [0, 0, 180, 0, 0, 0])[3], ident[3][::-1, ::-1], atol=1e-4)


def test_dihedral_moves_each_plane_exactly(random_cache):
    s = PatchSampler()
    ident = _one(s, random_cache, [0] * 6)
    # a quarter turn of the axial plane equals sampling with 90 degrees about Z (axial channels only)
    rz = _one(s, random_cache, [0, 0, 90, 0, 0, 0])
    x = apply_dihedral(ident[None].copy(), np.array([[1, 0, 0]]))[0]
    np.testing.assert_allclose(x[[0, 3]], rz[[0, 3]], atol=1e-4)
    np.testing.assert_array_equal(x[[1, 2, 4, 5]], ident[[1, 2, 4, 5]])  # other planes untouched
    # code 4 mirrors the columns of the coronal plane, CT and PET alike; code 0 is the identity
    x = apply_dihedral(ident[None].copy(), np.array([[0, 4, 0]]))[0]
    np.testing.assert_array_equal(x[[1, 4]], ident[[1, 4]][:, :, ::-1])
    np.testing.assert_array_equal(x[[0, 2, 3, 5]], ident[[0, 2, 3, 5]])
    # the eight codes are eight distinct pixel permutations that keep the centre pixel
    batch = np.repeat(ident[None], 8, axis=0)
    out = apply_dihedral(batch.copy(), np.repeat(np.arange(8)[:, None], 3, axis=1))
    flat = out[:, 2].reshape(8, -1)
    assert len({row.tobytes() for row in flat}) == 8
    assert np.all(np.sort(flat, axis=1) == np.sort(ident[2].ravel()))
    assert np.all(out[:, :, H, H] == ident[:, H, H])
    # 9 channels: the mask of a plane moves with its CT and PET
    nine = np.concatenate([ident, ident[:3] * 0 + np.arange(51 * 51, dtype=np.float32).reshape(51, 51)])[None]
    x = apply_dihedral(nine.copy(), np.array([[3, 0, 0]]))[0]
    np.testing.assert_array_equal(x[6], np.rot90(nine[0, 6], 3))
    np.testing.assert_array_equal(x[0], np.rot90(nine[0, 0], 3))
    a, b = draw_dihedral(np.random.default_rng(1), 5), draw_dihedral(np.random.default_rng(1), 5)
    assert a.shape == (5, 3) and np.array_equal(a, b) and a.min() >= 0 and a.max() <= 7
    with pytest.raises(ValueError):
        apply_dihedral(ident[None].copy(), np.array([[8, 0, 0]]))
    with pytest.raises(ValueError):
        apply_dihedral(ident[None].copy(), np.zeros((2, 3), dtype=int))


def test_translation_signs(random_cache):
    s = PatchSampler()
    ident = _one(s, random_cache, [0] * 6)
    px = _one(s, random_cache, [0, 0, 0, 3, 0, 0])  # centre moves to +x: content moves to the image left
    np.testing.assert_array_equal(px[0][:, :-3], ident[0][:, 3:])
    np.testing.assert_array_equal(px[1][:, :-3], ident[1][:, 3:])
    py = _one(s, random_cache, [0, 0, 0, 0, 2, 0])  # +y: axial content moves up
    np.testing.assert_array_equal(py[0][:-2], ident[0][2:])
    pz = _one(s, random_cache, [0, 0, 0, 0, 0, 2])  # +z (head): coronal content moves down
    np.testing.assert_array_equal(pz[1][2:], ident[1][:-2])
    mm = PatchSampler(spacing_mm=1.0, shift_unit="mm")
    np.testing.assert_array_equal(_one(mm, random_cache, [0, 0, 0, 3, 0, 0]), px)
    half = PatchSampler(size=21, spacing_mm=0.5)  # pixels scale the shift by the spacing
    np.testing.assert_allclose(_one(half, random_cache, [0, 0, 0, 2, 0, 0])[0, 10, ::2][:-1],
                               ident[0][25, 21:31], atol=1e-5)


def test_anisotropic_and_flipped_grids_give_same_patches():
    """One physical object, f(x, y, z) = g(x, y) * (0.5 + 0.1 z) with g random on integer (x, y),
    written on a 1 mm identity grid and on a 2 mm-in-z grid whose index axes are permuted and flipped."""
    rng = np.random.default_rng(3)
    g = rng.normal(size=(110, 110))  # g[y + 55, x + 55]

    def f(w):
        x, y = np.rint(w[..., 0]).astype(int), np.rint(w[..., 1]).astype(int)
        assert np.allclose(w[..., :2], np.stack([x, y], -1), atol=1e-6)
        return g[y + 55, x + 55] * (0.5 + 0.1 * w[..., 2])

    def on_grid(shape_kji, origin, spacing, direction):
        v = Volume(np.zeros(shape_kji, np.float32), origin, spacing, direction)
        k, j, i = np.indices(shape_kji)
        v.array = f(v.index_to_world(np.stack([i, j, k], -1))).astype(np.float32)
        return v

    a = on_grid((81, 101, 101), [-50, -50, -40], [1, 1, 1], np.eye(3))
    # index i runs along -z (2 mm), j along +x, k along -y (1 mm)
    d = np.array([[0, 1, 0], [0, 0, -1], [-1, 0, 0]], dtype=float)
    b = on_grid((101, 101, 41), [-50, 50, 40], [2, 1, 1], d)
    assert np.allclose(b.index_to_world([0, 0, 0]), [-50, 50, 40])
    centers = [(0.0, 0.0, 0.0), (3.0, -4.0, 2.0)]
    ca = LesionCache.from_cohort(Cohort([_study(a, b, centers=centers)]))
    cb = LesionCache.from_cohort(Cohort([_study(b, a, centers=centers)]))
    ts = np.vstack([np.zeros(6), random_transforms(np.random.default_rng(5), 5)])
    idx = np.array([0, 1, 0, 1, 0, 1])
    pa, pb = PatchSampler().sample(ca, idx, ts), PatchSampler().sample(cb, idx, ts)
    np.testing.assert_allclose(pa[:, :3], pb[:, 3:], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pa[:, 3:], pb[:, :3], rtol=1e-4, atol=1e-4)
    assert np.abs(pa).max() > 0.5


def test_grid_has_729_distinct_variants(random_cache):
    g = grid_transforms()
    assert g.shape == (729, 6) and len(np.unique(g, axis=0)) == 729
    assert set(np.unique(g[:, :3])) == {-10.0, 0.0, 10.0} and set(np.unique(g[:, 3:])) == {-2.0, 0.0, 2.0}
    p = PatchSampler().sample(random_cache, np.zeros(729, np.int64), g)
    assert len(np.unique(p.reshape(729, -1), axis=0)) == 729
    per_axis = grid_transforms(rotations=[[-5, 5], [0], [0]], shifts=[1, 2])
    assert per_axis.shape == (2 * 1 * 1 * 8, 6)


def test_policies_draw_reproducibly():
    rng = lambda: np.random.default_rng(42)  # noqa: E731
    pol = AugmentPolicy("random", max_rotation_deg=5.0, max_shift=1.5)
    t = pol.draw(rng(), 1000)
    np.testing.assert_array_equal(t, pol.draw(rng(), 1000))
    assert np.abs(t[:, :3]).max() <= 5 and np.abs(t[:, 3:]).max() <= 1.5 and np.abs(t[:, :3]).max() > 4.5
    grid = AugmentPolicy("grid")
    assert len(grid.all()) == 729 and set(map(tuple, grid.draw(rng(), 50))) <= set(map(tuple, grid.all()))
    assert not AugmentPolicy("none").draw(rng(), 3).any()
    with pytest.raises(ValueError):
        AugmentPolicy("sometimes")


def test_normalize():
    rng = np.random.default_rng(0)
    x = rng.normal(50, 20, size=(4, 6, 11, 11)).astype(np.float32)
    x[1, 2] = 7.0  # constant channel -> zeros
    y = normalize_patches(x)
    assert y.dtype == np.float32 and y is not x
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-5)
    s = y.std(axis=(2, 3))
    s[1, 2] = 1.0
    np.testing.assert_allclose(s, 1, atol=1e-4)
    assert not y[1, 2].any()
    w = normalize_patches(x, ct_window=(40, 60), suv_clip=55)
    np.testing.assert_allclose(w[0, 0], normalize_patches(np.clip(x, 40, 60))[0, 0], atol=1e-5)
    np.testing.assert_allclose(w[0, 4], normalize_patches(np.minimum(x, 55))[0, 4], atol=1e-5)
    m = np.concatenate([x, (x[:, :3] > 50).astype(np.float32)], axis=1)
    np.testing.assert_array_equal(normalize_patches(m)[:, 6:], m[:, 6:])  # mask channels untouched
    with pytest.raises(InputError):
        normalize_patches(x, ct_window=(60, 40))
    with pytest.raises(InputError):
        normalize_patches(x[:, :5])


def test_mask_channels_and_cache(random_vol):
    mask_arr = np.zeros(random_vol.array.shape, np.uint8)
    mask_arr[27:34, 37:44, 47:54] = 1  # a 7 mm cube around world (0, 0, 0)
    mask = Volume(mask_arr, random_vol.origin, random_vol.spacing)
    pet_coarse = random_vol.resample_to(
        Volume(np.zeros((20, 25, 30), np.float32), [-48, -38, -28], [3.3, 3.5, 3.4]))
    study = _study(random_vol, pet_coarse, centers=[(0, 0, 0), (2, 1, -1)], labels=["benign", "malignant"],
                   masks=[mask, mask])
    cache = LesionCache.from_cohort(Cohort([study]), with_mask=True)
    assert len(cache) == 2 and cache.labels == ["benign", "malignant"] and cache.y.tolist() == [0, 1]
    assert cache.lesion_ids == ["L0", "L1"] and cache.patient_ids == ["P0", "P0"]
    ct_crop, pet_crop = cache.crops[0][:2]
    assert ct_crop.array.size < random_vol.array.size and np.allclose(pet_crop.spacing, [3.3, 3.5, 3.4])
    assert 0 < cache.memory_mb < 20
    p = PatchSampler(with_mask=True).sample(cache, np.array([0, 1]), np.zeros((2, 6)))
    assert p.shape == (2, 9, 51, 51)
    np.testing.assert_array_equal(p[0, 6, 22:29, 22:29], 1)
    assert p[0, 6].sum() == 49 and p[0, 7].sum() == 49 and p[0, 8].sum() == 49
    with pytest.raises(InputError, match="without masks"):
        PatchSampler(with_mask=True).sample(LesionCache.from_cohort(Cohort([study])), np.array([0]), np.zeros((1, 6)))
    points = LesionCache.from_study(study, np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]]))
    assert points.lesion_ids == ["point0", "point1"] and points.y.tolist() == [-1, -1]
    np.testing.assert_array_equal(PatchSampler().sample(points, np.array([0]), np.zeros((1, 6))), p[:1, :6])


def test_outside_fill_values():
    arr = np.full((20, 20, 20), 100.0, np.float32)
    vol = Volume(arr, origin=[0, 0, 0], spacing=[1, 1, 1])
    cache = LesionCache.from_cohort(Cohort([_study(vol, centers=[(1.0, 10.0, 10.0)])]))
    p = PatchSampler().sample(cache, np.array([0]), np.zeros((1, 6)))[0]
    assert p[0, 25, 0] == -1024.0 and p[3, 25, 0] == 0.0  # beyond the volume: air in CT, 0 SUV in PET
    assert p[0, 25, 24] == 100.0 and p[3, 25, 24] == 100.0


def test_bad_input(random_cache, random_vol):
    for size in (0, 50, -3, 2.5):
        with pytest.raises(InputError):
            PatchSampler(size=size)
        with pytest.raises(InputError):
            LesionCache.from_cohort(Cohort([_study(random_vol)]), size=size)
    with pytest.raises(InputError, match="outside the CT"):
        LesionCache.from_cohort(Cohort([_study(random_vol, centers=[(500.0, 0.0, 0.0)])]))
    with pytest.warns(UserWarning, match="may leave the patch"):
        grid_transforms(shifts=(-12, 0, 12))
    with pytest.warns(UserWarning, match="may leave the patch"):
        AugmentPolicy("random", max_shift=11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grid_transforms(shifts=(-10, 10))
    s = PatchSampler()
    with pytest.warns(UserWarning, match="may leave the patch"):
        s.sample(random_cache, np.array([0]), np.array([[0, 0, 0, 0, 0, 11.0]]))
    small = LesionCache.from_cohort(Cohort([_study(random_vol)]))  # sized for 10 degrees, 2 px
    with pytest.raises(InputError, match="cache holds"):
        s.sample(small, np.array([0]), np.array([[45.0, 0, 0, 0, 9.0, 0]]))
    with pytest.raises(InputError):
        s.sample(random_cache, np.array([1]), np.zeros((1, 6)))
    with pytest.raises(InputError):
        s.sample(random_cache, np.array([0, 0]), np.zeros((1, 6)))


def test_mask_on_its_own_grid(random_vol):
    """A mask stored on a coarser box of its own is put on the CT grid (nearest neighbour)."""
    box = np.zeros((10, 10, 10), np.uint8)
    box[3:7, 3:7, 3:7] = 1  # 2 mm voxels: an 8 mm cube from -4 to +4 mm around the centre
    mask = Volume(box, origin=[-9.0, -9.0, -9.0], spacing=[2.0, 2.0, 2.0])
    cache = LesionCache.from_cohort(Cohort([_study(random_vol, masks=[mask])]), with_mask=True)
    p = PatchSampler(with_mask=True).sample(cache, np.array([0]), np.zeros((1, 6)))[0]
    for c in (6, 7, 8):
        rows, cols = np.nonzero(p[c] > 0.5)
        assert rows.min() >= 20 and rows.max() <= 30 and cols.min() >= 20 and cols.max() <= 30
        assert p[c, 25, 25] == 1.0 and 49 <= (p[c] > 0.5).sum() <= 100


def test_batch_order_threads_and_blocks_do_not_change_patches(random_cache):
    """The kernel visits patches sorted by lesion, in blocks, on several threads: a patch depends
    only on its own (lesion, transform), not on its batch, position or thread."""
    from petcad.patches.cache import FILL_VALUES
    from petcad.patches.sampler import _BLOCK, _trilinear_blocks

    two = LesionCache.from_cohort(
        Cohort([_study(random_cache.crops[0][0], centers=((0.0, 0.0, 0.0), (3.2, -4.1, 2.7)))]),
        max_rotation_deg=30.0, max_shift_mm=3.0)
    rng = np.random.default_rng(5)
    n = 3 * _BLOCK + 5  # blocks of _BLOCK patches and a partial one
    les = rng.integers(0, 2, n)
    t = random_transforms(rng, n, max_rotation_deg=30.0, max_shift=3.0)
    s = PatchSampler(threads=3)
    full = s.sample(two, les, t)
    perm = rng.permutation(n)
    np.testing.assert_array_equal(PatchSampler(threads=1).sample(two, les[perm], t[perm]), full[perm])
    for i in (0, n - 1):
        np.testing.assert_array_equal(s.sample(two, les[i : i + 1], t[i : i + 1])[0], full[i])
    # the kernel in another visiting order and block size, in two calls, gives the same
    base, drow, dcol, _ = s._tables(two, les, t)
    out = np.empty_like(full)
    fills = np.array([FILL_VALUES["CT"], FILL_VALUES["PET"]], np.float32)
    args = (two.data, two.offsets, two.shapes, fills, les, np.arange(n)[::-1].copy(), base, drow, dcol, out, 3)
    _trilinear_blocks(*args, 0, 4)
    _trilinear_blocks(*args, 4, -(-n // 3))
    np.testing.assert_array_equal(out, full)
    with pytest.raises(InputError, match="threads"):
        PatchSampler(threads=0)
