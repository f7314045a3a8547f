"""Tri-planar patches sampled with torch from lesion crops held on a device (the GPU path).

:class:`TorchPatchSampler` computes the same patches as :class:`petcad.patches.sampler.PatchSampler`
(same geometry, same index tables, same fill values outside a volume) with torch tensor
operations, so that training or prediction on CUDA samples its batches on the GPU from the
crops uploaded once (``LesionCache.data``, a few MB per hundred lesions) instead of waiting
for the CPU. It is a gather kernel written in torch operations (not ``grid_sample``): every
pixel's continuous voxel index is computed exactly as the numba kernel computes it (row starts
in float64 rounded to float32, column steps in float32, no fused multiply-add), the 8
neighbours are gathered from the packed crops and blended in the same order. Hence:

* planes whose neighbours all lie inside their crop (in practice every plane of a transform
  within the cache's reach) give **the same float32 values** as the CPU sampler;
* planes that touch a crop border blend the fill value in float32 (the CPU kernel's border
  path sums eight weighted terms in float64): equal within float32 rounding.

``grid_sample`` would be one fused kernel too, but it reads each crop through normalised
coordinates in ``[-1, 1]`` (float32), which costs index precision on large crops and needs the
crops padded to one shape; the gather form needs neither. Tested on the CPU against the numba
sampler (tests/test_patches_torch.py); on CUDA the same operations run on the GPU.

Normalisation (``fixed`` or per-patch ``patch``) and the per-plane mirrors / quarter turns
(:func:`petcad.patches.augment.apply_dihedral`) have torch forms here too, so a batch never
leaves the device.
"""

from __future__ import annotations

import numpy as np
import torch

from petcad.patches.cache import FILL_VALUES, MODALITIES, LesionCache
from petcad.patches.sampler import PatchSampler

#: the 8 trilinear neighbours as (di, dj, dk), in the CPU kernel's blending order
_NEIGHBOURS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0), (0, 0, 1), (1, 0, 1), (0, 1, 1), (1, 1, 1),
)


class TorchPatchSampler:
    """Samples augmented tri-planar patches with torch on ``device`` from ``cache``'s crops.

    Parameters
    ----------
    cache : the :class:`LesionCache`; its packed crops are copied to ``device`` once.
    size, spacing_mm, with_mask, shift_unit : as :class:`PatchSampler` (validation, the reach
        check and the index tables are the CPU sampler's own).
    device : a torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
    chunk : patches per group of tensor operations; bounds the memory in flight (on the CPU, 128
        six-channel 51 x 51 patches raised the peak RSS by 232 MB, about 120 bytes per sample).

    Output: float32 tensors ``(n, C, size, size)`` on ``device``, HU (CT) and SUV (PET), not normalised.
    """

    def __init__(self, cache: LesionCache, size: int = 51, spacing_mm: float = 1.0, with_mask: bool = False,
                 shift_unit: str = "px", device: str | torch.device = "cpu", chunk: int = 128) -> None:
        self.cpu = PatchSampler(size=size, spacing_mm=spacing_mm, with_mask=with_mask, shift_unit=shift_unit)
        self.cache = cache
        self.device = torch.device(device)
        self.chunk = max(1, int(chunk))
        self.data = torch.from_numpy(cache.data).to(self.device)
        self.offsets = torch.from_numpy(cache.offsets).to(self.device)
        self.shapes = torch.from_numpy(cache.shapes).to(self.device)
        n_mod = 3 if with_mask else 2
        self.fills = torch.tensor([FILL_VALUES[m] for m in MODALITIES[:n_mod]], dtype=torch.float32, device=self.device)

    @property
    def size(self) -> int:
        return self.cpu.size

    @property
    def channels(self) -> tuple[str, ...]:
        return self.cpu.channels

    @property
    def n_channels(self) -> int:
        return self.cpu.n_channels

    def sample(self, lesion_index, transforms) -> torch.Tensor:
        """Patches ``float32 (n, C, size, size)`` on the device for lesions ``lesion_index`` ``(n,)``
        under ``transforms`` ``(n, 6)``; the same validation and errors as :meth:`PatchSampler.sample`."""
        lesion, t = self.cpu._check(self.cache, lesion_index, transforms)
        n = lesion.shape[0]
        out = torch.empty((n, self.n_channels, self.size, self.size), dtype=torch.float32, device=self.device)
        if n == 0:
            return out
        base, drow, dcol, reach = self.cpu._tables(self.cache, lesion, t)
        self.cpu._check_reach(self.cache, reach)
        for a in range(0, n, self.chunk):
            b = min(n, a + self.chunk)
            out[a:b] = self._gather(lesion[a:b], base[a:b], drow[a:b], dcol[a:b])
        return out

    def _gather(self, lesion: np.ndarray, base: np.ndarray, drow: np.ndarray, dcol: np.ndarray) -> torch.Tensor:
        dev, size = self.device, self.size
        n, n_mod = base.shape[:2]
        les = torch.from_numpy(lesion).to(dev)
        # per (patch, channel): tables (n, C, 3) in channel order m * 3 + p
        b = torch.from_numpy(base.reshape(n, n_mod * 3, 3)).to(dev)
        rs = torch.from_numpy(drow.reshape(n, n_mod * 3, 3)).to(dev)
        cs = torch.from_numpy(dcol.reshape(n, n_mod * 3, 3)).to(dev).to(torch.float32)
        rows = torch.arange(size, dtype=torch.float64, device=dev)
        cols = torch.arange(size, dtype=torch.float32, device=dev)
        # row starts in float64, rounded to float32 (the CPU kernel's ``np.float32(b0 + r * r0)``)
        start = (b[:, :, None, :] + rows[None, None, :, None] * rs[:, :, None, :]).to(torch.float32)  # (n, C, S, 3)
        step = cols[:, None] * cs[:, :, None, :]  # (n, C, S cols, 3): ``cf * s0`` rounded to float32
        idx, w = [], []
        for a in range(3):  # voxel axes i, j, k; each (n, C, S rows, S cols), contiguous
            f = start[:, :, :, None, a] + step[:, :, None, :, a]
            fl = torch.floor(f)
            w.append(f - fl)  # the weights (float32, as the CPU kernel's ``fi - float32(i0)``)
            idx.append(fl.to(torch.int64))
        m_of_ch = torch.arange(n_mod, device=dev).repeat_interleave(3)
        shp = self.shapes[les][:, m_of_ch]  # (n, C, 3) = (ni, nj, nk)
        off = self.offsets[les][:, m_of_ch]  # (n, C)
        ni = shp[..., 0][:, :, None, None]
        nj = shp[..., 1][:, :, None, None]
        nk = shp[..., 2][:, :, None, None]
        ii, jj, kk = idx
        q0 = off[:, :, None, None] + (kk * nj + jj) * ni + ii
        last = self.data.numel() - 1
        v = []
        if _all_inside(base, drow, dcol, self.cache.shapes[lesion, :n_mod], size):
            for di, dj, dk in _NEIGHBOURS:  # the CPU kernel's branch-free path: no bounds to check
                v.append(torch.take(self.data, q0 + ((dk * nj + dj) * ni + di)))
        else:  # neighbours outside the crop take the fill value
            fill = self.fills[m_of_ch][None, :, None, None]
            ok_i = _in(ii, ni), _in(ii + 1, ni)
            ok_j = _in(jj, nj), _in(jj + 1, nj)
            ok_k = _in(kk, nk), _in(kk + 1, nk)
            for di, dj, dk in _NEIGHBOURS:
                q = (q0 + ((dk * nj + dj) * ni + di)).clamp_(0, last)
                v.append(torch.where(ok_i[di] & ok_j[dj] & ok_k[dk], torch.take(self.data, q), fill))
        wi, wj, wk = w
        a00 = v[0] + wi * (v[1] - v[0])
        a01 = v[2] + wi * (v[3] - v[2])
        a10 = v[4] + wi * (v[5] - v[4])
        a11 = v[6] + wi * (v[7] - v[6])
        e0 = a00 + wj * (a01 - a00)
        e1 = a10 + wj * (a11 - a10)
        return e0 + wk * (e1 - e0)


def _in(index: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    return (index >= 0) & (index < n)


def _all_inside(base: np.ndarray, drow: np.ndarray, dcol: np.ndarray, shapes: np.ndarray, size: int) -> bool:
    """Whether every plane's 8 neighbours lie inside its crop (the CPU kernel's corner test):
    tables ``(n, M, 3, 3)``, crop shapes ``(n, M, 3)`` as ``(ni, nj, nk)``."""
    last = size - 1
    lo = base + np.minimum(0.0, last * drow) + np.minimum(0.0, last * dcol)
    hi = base + np.maximum(0.0, last * drow) + np.maximum(0.0, last * dcol)
    return bool(np.all(lo >= 0.0) and np.all(hi < shapes[:, :, None, :] - 1))


def _dihedral_maps(size: int, device: torch.device) -> torch.Tensor:
    """``(8, size * size)`` on ``device``: for code ``c``, the flat source pixel of every output pixel
    of :func:`petcad.patches.augment.apply_dihedral` (mirror the columns when ``c & 4``, then
    ``c & 3`` quarter turns counter-clockwise, as ``numpy.rot90``)."""
    key = (size, str(device))
    if key not in _MAPS:
        flat = np.arange(size * size, dtype=np.int64).reshape(size, size)
        maps = np.stack([np.rot90(flat[:, ::-1] if c & 4 else flat, c & 3).reshape(-1) for c in range(8)])
        _MAPS[key] = torch.from_numpy(maps).to(device)
    return _MAPS[key]


_MAPS: dict[tuple[int, str], torch.Tensor] = {}


def apply_dihedral_torch(x: torch.Tensor, codes) -> torch.Tensor:
    """The torch twin of :func:`petcad.patches.augment.apply_dihedral` (in place, same codes ``(n, 3)``
    in 0..7): per plane one ``torch.gather`` of every patch's pixels through its code's pixel map."""
    codes = np.asarray(codes, dtype=np.int64)
    if x.ndim != 4 or x.shape[1] % 3 or x.shape[2] != x.shape[3]:
        raise ValueError(f"apply_dihedral_torch: expected square patches (n, 3k, N, N), got {tuple(x.shape)}")
    if codes.shape != (x.shape[0], 3):
        raise ValueError(f"apply_dihedral_torch: expected codes of shape ({x.shape[0]}, 3), got {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() > 7):
        raise ValueError("apply_dihedral_torch: codes must be in 0..7")
    n, n_ch, size = x.shape[0], x.shape[1], x.shape[2]
    if n == 0:
        return x
    maps = _dihedral_maps(size, x.device)
    code_t = torch.from_numpy(codes).to(x.device)
    k = n_ch // 3
    for p in range(3):
        idx = maps[code_t[:, p]]  # (n, size * size)
        sub = x[:, p::3].reshape(n, k, size * size)
        x[:, p::3] = torch.gather(sub, 2, idx[:, None, :].expand(n, k, size * size)).reshape(n, k, size, size)
    return x
