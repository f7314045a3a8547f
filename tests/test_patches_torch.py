"""The torch (GPU) sampling path against the numba CPU sampler, run here on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from petcad.errors import InputError
from petcad.patches.augment import apply_dihedral, draw_dihedral, random_transforms
from petcad.patches.cache import LesionCache
from petcad.patches.normalize import fixed_normalize_torch, normalize_patches, normalize_patches_torch
from petcad.patches.sampler import PatchSampler
from petcad.patches.torch_sampler import TorchPatchSampler, apply_dihedral_torch
from petcad.study import Cohort, Lesion, Study, Volume

SIZE = 21


def _cohort() -> Cohort:
    """CT on an oblique anisotropic grid, PET on a coarse grid, smooth random values, masks."""
    rng = np.random.default_rng(3)
    theta = np.deg2rad(25)
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    ct = Volume((rng.normal(0, 300, (40, 70, 70)) - 200).astype(np.float32), [-30, -35, -40], [0.9, 0.8, 2.0], rot)
    pet = Volume(rng.gamma(2, 1.5, (24, 22, 22)).astype(np.float32), [-44, -44, -40], [4.0, 4.0, 3.3])
    mask_arr = np.zeros(ct.array.shape, np.uint8)
    mask_arr[15:25, 30:40, 30:40] = 1
    mask = Volume(mask_arr, ct.origin, ct.spacing, ct.direction)
    centres = [ct.index_to_world(np.array([35.0, 35.0, 20.0])), ct.index_to_world(np.array([30.5, 38.2, 18.7]))]
    lesions = [Lesion(f"L{i}", c, ("benign", "malignant")[i], "P", mask) for i, c in enumerate(centres)]
    return Cohort([Study("P", ct, pet, lesions)])


@pytest.fixture(scope="module")
def cache() -> LesionCache:
    return LesionCache.from_cohort(_cohort(), size=SIZE, spacing_mm=1.0, max_rotation_deg=30.0, max_shift_mm=3.0,
                                   with_mask=True)


@pytest.mark.parametrize("with_mask", [False, True])
def test_same_values_as_cpu_sampler(cache, with_mask):
    rng = np.random.default_rng(0)
    les = rng.integers(0, len(cache), 40)
    t = random_transforms(rng, 40, max_rotation_deg=30.0, max_shift=3.0)
    t[0] = 0.0
    cpu = PatchSampler(size=SIZE, with_mask=with_mask).sample(cache, les, t)
    gpu_path = TorchPatchSampler(cache, size=SIZE, with_mask=with_mask, chunk=16)
    out = gpu_path.sample(les, t)
    assert out.dtype == torch.float32 and tuple(out.shape) == cpu.shape and out.device.type == "cpu"
    assert gpu_path.channels == PatchSampler(size=SIZE, with_mask=with_mask).channels
    # every plane lies inside its crop: the same float32 operations, so the same values
    np.testing.assert_array_equal(out.numpy(), cpu)


def test_border_planes_blend_the_fill_value(cache):
    # pretend the crops reach further than they do, so that shifted planes leave them
    wide = LesionCache(**{k: getattr(cache, k) for k in (
        "lesion_ids", "patient_ids", "labels", "y", "centers_mm", "crops", "size", "spacing_mm",
        "max_rotation_deg", "max_shift_mm", "with_mask")}, reach_mm=500.0)
    t = np.array([[0, 0, 0, 24.5, 0, 0], [5, -7, 3, 0, -9.3, 4.1], [0, 0, 0, 0, 0, 400.0]], dtype=np.float64)
    les = np.array([0, 1, 0])
    with pytest.warns(UserWarning):
        cpu = PatchSampler(size=SIZE, with_mask=True).sample(wide, les, t)
    with pytest.warns(UserWarning):
        out = TorchPatchSampler(wide, size=SIZE, with_mask=True).sample(les, t).numpy()
    # the CPU border path places pixels in float64, the torch path in float32 (as on inner planes):
    # index error < 1e-5 voxel, times this white noise's gradient (~1000 HU per voxel) < 0.01 HU
    np.testing.assert_allclose(out, cpu, rtol=0, atol=1e-2)
    inner = PatchSampler(size=SIZE, with_mask=True).sample(cache, les[:2], np.zeros((2, 6)))
    assert np.abs(inner).max() > 100  # so the tolerance is small against the values
    assert np.any(cpu[0, 0] == -1024.0) and np.any(cpu[0, 0] != -1024.0)  # partly outside, partly inside
    np.testing.assert_array_equal(out[2, :3], -1024.0)  # far away: CT fill
    np.testing.assert_array_equal(out[2, 3:], 0.0)  # PET and mask fill


def test_same_errors_as_cpu_sampler(cache):
    ts = TorchPatchSampler(cache, size=SIZE)
    with pytest.raises(InputError, match="lesion_index"):
        ts.sample(np.array([len(cache)]), np.zeros((1, 6)))
    with pytest.raises(InputError, match="reach"), pytest.warns(UserWarning, match="may leave the patch"):
        ts.sample(np.array([0]), np.array([[0, 0, 0, 0, 0, 40.0]]))
    assert tuple(ts.sample(np.zeros(0, np.int64), np.zeros((0, 6))).shape) == (0, 6, SIZE, SIZE)


def test_normalisations_and_dihedral_match_numpy(cache):
    from petcad.patches.normalize import fixed_normalize

    rng = np.random.default_rng(1)
    x = PatchSampler(size=SIZE, with_mask=True).sample(cache, np.array([0, 1, 1, 0]),
                                                        random_transforms(rng, 4, max_rotation_deg=30.0, max_shift=3.0))
    x[1, 4] = 2.5  # a constant channel becomes 0
    np.testing.assert_array_equal(fixed_normalize_torch(torch.from_numpy(x.copy())).numpy(), fixed_normalize(x.copy()))
    ref = normalize_patches(x.copy())
    got = normalize_patches_torch(torch.from_numpy(x.copy())).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_array_equal(got[:, 6:], x[:, 6:])  # masks untouched
    codes = draw_dihedral(np.random.default_rng(2), 4)
    codes[0] = [1, 5, 7]
    np.testing.assert_array_equal(apply_dihedral_torch(torch.from_numpy(x.copy()), codes).numpy(),
                                  apply_dihedral(x.copy(), codes))


@pytest.mark.parametrize("normalization", ["fixed", "patch"])
def test_lesion_data_sample_tensor_torch_path(cache, normalization):
    """The path training takes on CUDA (``LesionData.sample_tensor``), forced here on the CPU."""
    from petcad.models.data import LesionData

    data = LesionData(cache=cache, y=np.array([0, 1]), groups=np.array(["P", "P"]), size=SIZE,
                      normalization=normalization)
    rng = np.random.default_rng(4)
    idx = np.array([1, 0, 1, 1, 0])
    t = random_transforms(rng, 5, max_rotation_deg=30.0, max_shift=3.0)
    codes = draw_dihedral(rng, 5)
    ref = data.sample(idx, t, codes)
    got = data.sample_tensor(idx, t, codes, device="cpu", use_torch=True)
    assert got.dtype == torch.float32 and tuple(got.shape) == ref.shape
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-5)
    np.testing.assert_array_equal(data.sample_tensor(idx, t, codes, device="cpu").numpy(), ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_matches_cpu_sampler(cache):
    """On a machine with a GPU: the patches sampled on the device equal the CPU sampler's."""
    rng = np.random.default_rng(6)
    les = rng.integers(0, len(cache), 64)
    t = random_transforms(rng, 64, max_rotation_deg=30.0, max_shift=3.0)
    cpu = PatchSampler(size=SIZE, with_mask=True).sample(cache, les, t)
    out = TorchPatchSampler(cache, size=SIZE, with_mask=True, device="cuda").sample(les, t)
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.cpu().numpy(), cpu, rtol=0, atol=1e-3)
