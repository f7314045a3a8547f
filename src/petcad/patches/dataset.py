"""A torch ``Dataset`` of tri-planar patches augmented on the fly.

Item ``i`` is lesion ``indices[i // variants_per_epoch]`` under a transform drawn from the
policy with uniforms that depend on ``(seed, epoch, i)`` only
(:func:`petcad.patches.augment.counter_uniforms`): no global random state, so
items are the same whatever the worker, the batch or the order they are asked in, and
change with :meth:`PatchDataset.set_epoch`.

Three ways to read it (the batched ones make one kernel call per batch):

* ``dataset[i] -> (tensor C x N x N float32, label int)``;
* ``torch.utils.data.DataLoader(dataset, batch_size=B, shuffle=True, ...)``: the loader calls
  :meth:`PatchDataset.__getitems__` with the whole batch (torch >= 2.1);
* ``dataset.batch(items) -> (X (B, C, N, N) float32 tensor, y (B,) int64 tensor)``, and
  :class:`PatchBatchIterator` which yields such batches over a seeded permutation (fastest:
  no collation copy).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from petcad.patches.augment import N_DIHEDRAL, AugmentPolicy, apply_dihedral, counter_uniforms
from petcad.patches.cache import LesionCache
from petcad.patches.normalize import normalize_patches
from petcad.patches.sampler import PatchSampler, warm_up


class PatchDataset(Dataset):
    """Augmented tri-planar patches of ``cache`` lesions ``indices``.

    Parameters
    ----------
    cache : the cropped sub-volumes; patch size and spacing are the cache's.
    indices : lesions of the cache in this dataset (e.g. a training fold).
    policy : the :class:`AugmentPolicy` transforms are drawn from.
    seed : with the epoch and the item index, fixes every transform.
    normalize : apply :func:`normalize_patches` (with ``ct_window`` / ``suv_clip``).
    variants_per_epoch : items per lesion per epoch (each with its own transform).
    with_mask : 9 channels (needs a cache built with masks).
    shift_unit : ``"px"`` or ``"mm"`` for the policy's shifts.
    dihedral : also mirror / quarter-turn each plane on its own
        (:func:`petcad.patches.augment.apply_dihedral`), codes drawn like the transforms
        from ``(seed, epoch, item)``. Turning it on changes the items' transforms too
        (three more uniforms are drawn per item).
    """

    def __init__(self, cache: LesionCache, indices: Sequence[int] | np.ndarray, policy: AugmentPolicy, seed: int,
                 normalize: bool = True, variants_per_epoch: int = 1, with_mask: bool = False,
                 ct_window=None, suv_clip=None, shift_unit: str = "px", dihedral: bool = False) -> None:
        self.cache = cache
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= len(cache)):
            raise IndexError(f"lesion indices must lie in [0, {len(cache)})")
        if int(variants_per_epoch) < 1:
            raise ValueError("variants_per_epoch must be >= 1")
        self.policy = policy
        self.seed = int(seed)
        self.normalize = bool(normalize)
        self.variants_per_epoch = int(variants_per_epoch)
        self.ct_window = ct_window
        self.suv_clip = suv_clip
        self.dihedral = bool(dihedral)
        self.sampler = PatchSampler(size=cache.size, spacing_mm=cache.spacing_mm, with_mask=with_mask,
                                    shift_unit=shift_unit)
        self.epoch = 0
        self._labels = cache.y[self.indices]
        warm_up()  # compiled here, so that forked DataLoader workers need not compile

    def set_epoch(self, epoch: int) -> None:
        """Use the transforms of ``epoch`` (call before each epoch, also with worker processes:
        the loader re-pickles the dataset into workers at each epoch unless persistent_workers)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.indices.size * self.variants_per_epoch

    @property
    def labels(self) -> np.ndarray:
        """Label (1 = malignant) per item."""
        return np.repeat(self._labels, self.variants_per_epoch)

    def _uniforms(self, items: np.ndarray) -> np.ndarray:
        return counter_uniforms(self.seed, self.epoch, np.asarray(items, dtype=np.int64).reshape(-1),
                                n_draws=9 if self.dihedral else 6)

    def transforms_for(self, items: np.ndarray) -> np.ndarray:
        """The transforms ``(n, 6)`` of dataset items ``items`` in the current epoch."""
        return self.policy.from_uniform(self._uniforms(items)[:, :6])

    def dihedral_for(self, items: np.ndarray) -> np.ndarray | None:
        """The per-plane mirror / quarter-turn codes ``(n, 3)`` of ``items`` (None when off)."""
        if not self.dihedral:
            return None
        return np.minimum((self._uniforms(items)[:, 6:9] * N_DIHEDRAL).astype(np.int64), N_DIHEDRAL - 1)

    def _arrays(self, items) -> tuple[np.ndarray, np.ndarray]:
        items = np.asarray(items, dtype=np.int64).reshape(-1)
        if items.size and (items.min() < 0 or items.max() >= len(self)):
            raise IndexError(f"item index out of range [0, {len(self)})")
        pos = items // self.variants_per_epoch
        x = self.sampler.sample(self.cache, self.indices[pos], self.transforms_for(items))
        codes = self.dihedral_for(items)
        if codes is not None:
            apply_dihedral(x, codes)
        if self.normalize:
            normalize_patches(x, ct_window=self.ct_window, suv_clip=self.suv_clip, out=x)
        return x, self._labels[pos]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y = self._arrays([int(i)])
        return torch.from_numpy(x[0]), int(y[0])

    def __getitems__(self, items: Sequence[int]) -> list[tuple[torch.Tensor, int]]:
        """The whole batch in one kernel call (used by ``DataLoader``)."""
        x, y = self._arrays(list(items))
        xt = torch.from_numpy(x)
        return [(xt[r], int(y[r])) for r in range(len(y))]

    def batch(self, items: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X float32 (B, C, N, N), y int64 (B,))`` for dataset items ``items``, one kernel call."""
        x, y = self._arrays(items)
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(y))


class PatchBatchIterator:
    """Batches of a :class:`PatchDataset` over a permutation seeded by ``(seed, epoch)``.

    ``for X, y in PatchBatchIterator(ds, batch_size=128, seed=0).epoch(e): ...`` sets the
    dataset's epoch to ``e`` and yields ``(X, y)`` tensors; ``shuffle=False`` keeps item order.
    """

    def __init__(self, dataset: PatchDataset, batch_size: int = 128, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> None:
        if int(batch_size) < 1:
            raise ValueError("batch_size must be >= 1")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.dataset.set_epoch(epoch)
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, int(epoch)]).permutation(n) if self.shuffle else np.arange(n)
        for a in range(0, len(self) * self.batch_size, self.batch_size):
            yield self.dataset.batch(order[a : a + self.batch_size])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.epoch(self.dataset.epoch)
