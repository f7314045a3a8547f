"""PatchDataset: on-the-fly augmentation, deterministic for a seed, worker-independent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from petcad.patches.augment import AugmentPolicy
from petcad.patches.cache import LesionCache
from petcad.patches.dataset import PatchBatchIterator, PatchDataset
from petcad.study import Cohort, Lesion, Study, Volume


@pytest.fixture(scope="module")
def cache() -> LesionCache:
    rng = np.random.default_rng(0)
    ct = Volume(rng.normal(0, 100, size=(60, 80, 80)).astype(np.float32), [-40, -40, -30], [1, 1, 1])
    pet = Volume(rng.gamma(2.0, 1.0, size=(20, 20, 20)).astype(np.float32), [-38, -38, -28], [4, 4, 3])
    lesions = [Lesion(f"L{i}", rng.uniform(-5, 5, 3), ["benign", "malignant"][i % 2], "P0") for i in range(6)]
    return LesionCache.from_cohort(Cohort([Study("P0", ct, pet, lesions)]), size=31, max_rotation_deg=15.0,
                                   max_shift_mm=3.0)


def _ds(cache, seed=7, **kw):
    return PatchDataset(cache, np.arange(1, 6), AugmentPolicy("random", max_rotation_deg=15.0, max_shift=3.0),
                        seed=seed, variants_per_epoch=3, **kw)


def test_items_deterministic_and_epoch_dependent(cache):
    ds = _ds(cache)
    assert len(ds) == 15
    x, y = ds[4]
    assert x.shape == (6, 31, 31) and x.dtype == torch.float32 and y == int(cache.y[2])
    torch.testing.assert_close(x.mean(dim=(1, 2)), torch.zeros(6), atol=1e-5, rtol=0)
    x2, _ = _ds(cache)[4]
    assert torch.equal(x, x2)  # same seed, epoch, index
    assert not torch.equal(_ds(cache, seed=8)[4][0], x)
    ds.set_epoch(1)
    assert not torch.equal(ds[4][0], x)
    ds.set_epoch(0)
    xb, yb = ds.batch([9, 4, 0])  # batch path = item path, whatever the order
    assert torch.equal(xb[1], x) and yb.dtype == torch.int64
    assert not torch.equal(ds[3][0], ds[4][0])  # variants of one lesion differ
    raw = _ds(cache, normalize=False)[4][0]
    assert raw[:3].min() < -50 and raw[3:].min() >= 0  # HU and SUV


def test_dataloader_workers_match_single_process(cache):
    ds = _ds(cache)
    single = torch.cat([xb for xb, _ in DataLoader(ds, batch_size=4, shuffle=False, num_workers=0)])
    multi = torch.cat([xb for xb, _ in DataLoader(ds, batch_size=4, shuffle=False, num_workers=2)])
    assert single.shape == (15, 6, 31, 31)
    assert torch.equal(single, multi)
    it = PatchBatchIterator(ds, batch_size=4, shuffle=False)
    assert torch.equal(torch.cat([xb for xb, _ in it.epoch(0)]), single)
    a = [yb for _, yb in PatchBatchIterator(ds, batch_size=4, seed=1).epoch(2)]
    b = [yb for _, yb in PatchBatchIterator(ds, batch_size=4, seed=1).epoch(2)]
    assert all(torch.equal(p, q) for p, q in zip(a, b)) and sum(len(p) for p in a) == 15


def test_grid_policy_dataset_covers_grid(cache):
    ds = PatchDataset(cache, [0], AugmentPolicy("grid"), seed=0, variants_per_epoch=50)
    t = ds.transforms_for(np.arange(50))
    grid = {tuple(r) for r in AugmentPolicy("grid").all()}
    assert {tuple(r) for r in t} <= grid and len({tuple(r) for r in t}) > 40


def test_counter_uniforms():
    from petcad.patches.augment import counter_uniforms

    u = counter_uniforms(3, 0, np.arange(20000))
    assert u.shape == (20000, 6) and u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.003
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.03 and abs(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]) < 0.03
    np.testing.assert_array_equal(counter_uniforms(3, 0, [5, 7]), u[[5, 7]])
    assert not np.array_equal(counter_uniforms(3, 1, [5]), u[[5]]) and not np.array_equal(counter_uniforms(4, 0, [5]), u[[5]])
    t = AugmentPolicy("random", max_rotation_deg=10.0, max_shift=2.0).from_uniform(u)
    assert np.abs(t[:, :3]).max() <= 10 and np.abs(t[:, 3:]).max() <= 2 and np.abs(t[:, 0]).max() > 9.9


def test_dihedral_option_moves_planes_deterministically(cache):
    from petcad.patches.augment import apply_dihedral

    ds = _ds(cache, dihedral=True)
    codes = ds.dihedral_for(np.arange(len(ds)))
    assert codes.shape == (15, 3) and codes.min() >= 0 and codes.max() <= 7 and len(np.unique(codes)) > 1
    assert np.array_equal(codes, _ds(cache, dihedral=True).dihedral_for(np.arange(len(ds))))
    assert _ds(cache).dihedral_for([0]) is None
    # an item = the sampled patch of its transform, then its plane codes, then normalised
    raw = _ds(cache, dihedral=True, normalize=False)
    x, _ = raw.batch([4])
    plain = raw.sampler.sample(cache, raw.indices[[4 // 3]], raw.transforms_for([4]))
    np.testing.assert_array_equal(x.numpy(), apply_dihedral(plain, codes[[4]]))
    xb, _ = ds.batch([9, 4])
    assert torch.equal(xb[1], ds[4][0])
