"""The normalisations of the networks' input: one home, numpy and torch.

* **fixed** (the default of training): CT ``(clip(HU, -1000, 1000) - 40) / 300``, PET
  ``clip(SUV, 0, 30) / 3``; mask channels unchanged. :func:`fixed_normalize` on patches,
  :func:`fixed_normalize_planes` on any CT / PET arrays (the dense segmenter's planes),
  :func:`fixed_normalize_torch` on a batch on the GPU: the same float32 operations.
* **patch**: per-patch, per-channel standardisation, as in the original study
  (:func:`normalize_patches`, and :func:`normalize_patches_torch` without window or clip):

``X = X - mean(X); X = X * (1 / max(std(X), eps))`` for every patch and every CT or PET channel
(population std over the N x N pixels). Optional, before it: CT windowing (clip to
``ct_window = (low, high)`` in HU) and SUV clipping (clip to ``suv_clip = (low, high)`` or
``suv_clip = high`` in SUV). Defaults: no window, no clip (the original study). Mask
channels (6-8) are left as they are (0..1).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from petcad.errors import InputError
from petcad.patches._parallel import use_parallel

CT_CHANNELS = slice(0, 3)
PET_CHANNELS = slice(3, 6)
#: fixed normalisation: CT clipped to this window (HU), then (HU - centre) / scale
FIXED_CT_WINDOW, FIXED_CT_CENTRE, FIXED_CT_SCALE = (-1000.0, 1000.0), 40.0, 300.0
#: fixed normalisation: PET clipped to this range (SUV), then SUV / scale
FIXED_SUV_RANGE, FIXED_SUV_SCALE = (0.0, 30.0), 3.0


def fixed_normalize_planes(ct: np.ndarray, pet: np.ndarray) -> None:
    """In place, the fixed normalisation of CT (HU) and PET (SUV) float32 arrays of any shape."""
    np.clip(ct, *FIXED_CT_WINDOW, out=ct)
    ct -= np.float32(FIXED_CT_CENTRE)
    ct /= np.float32(FIXED_CT_SCALE)
    np.clip(pet, *FIXED_SUV_RANGE, out=pet)
    pet /= np.float32(FIXED_SUV_SCALE)


def fixed_normalize(x: np.ndarray) -> np.ndarray:
    """In place, the fixed normalisation of patches ``(n, C, N, N)`` (channels as
    :data:`petcad.patches.sampler.CHANNELS`); mask channels unchanged. Returns ``x``."""
    fixed_normalize_planes(x[:, CT_CHANNELS], x[:, PET_CHANNELS])
    return x


def fixed_normalize_torch(x):
    """In place, the torch twin of :func:`fixed_normalize` (same float32 operations) for a batch
    tensor on any device."""
    x[:, CT_CHANNELS].clamp_(*FIXED_CT_WINDOW).sub_(FIXED_CT_CENTRE).div_(FIXED_CT_SCALE)
    x[:, PET_CHANNELS].clamp_(*FIXED_SUV_RANGE).div_(FIXED_SUV_SCALE)
    return x


def normalize_patches_torch(x, eps: float = 1e-6):
    """In place, the torch twin of :func:`normalize_patches` without window or clip: per patch and
    CT / PET channel, ``(x - mean) * (1 / max(std, eps))`` with the mean and the population std
    accumulated in float64 (two passes); mask channels are left as they are."""
    import torch

    sub = x[:, :6]
    d = sub.to(torch.float64)
    mean = d.mean(dim=(2, 3), keepdim=True)
    std = ((d - mean) ** 2).mean(dim=(2, 3), keepdim=True).sqrt().clamp_min(eps)
    sub.sub_(mean.to(torch.float32)).mul_((1.0 / std).to(torch.float32))
    return x


def _pair(value, what: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if np.isscalar(value):
        lo, hi = -np.inf, float(value)
    else:
        vals = [float(v) for v in value]
        if len(vals) != 2:
            raise InputError(what, f"expected (low, high), got {value!r}")
        lo, hi = vals
    if not lo < hi:
        raise InputError(what, f"low must be below high, got {value!r}")
    return lo, hi


def normalize_patches(patches: np.ndarray, ct_window=None, suv_clip=None, eps: float = 1e-6,
                      out: np.ndarray | None = None) -> np.ndarray:
    """Standardise ``patches`` ``(n, C, N, N)`` (C = 6 or 9, channel order of
    :data:`petcad.patches.sampler.CHANNELS`) per patch and channel; returns float32.

    ``ct_window`` (HU) and ``suv_clip`` (SUV) clip CT and PET before standardising. A constant
    channel becomes all zeros. ``out`` may be ``patches`` itself (in place).
    """
    x = np.asarray(patches)
    if x.ndim != 4 or x.shape[1] not in (6, 9):
        raise InputError("patches", f"expected (n, 6 or 9, N, N), got shape {x.shape}")
    ct, suv = _pair(ct_window, "ct_window"), _pair(suv_clip, "suv_clip")
    if out is None:
        out = x.astype(np.float32, copy=True)
    else:
        if out.dtype != np.float32 or not out.flags.c_contiguous or out.shape != x.shape:
            raise ValueError(f"out must be a C-contiguous float32 array of shape {x.shape}")
        if out is not x:
            out[...] = x
    if ct is not None:
        np.clip(out[:, CT_CHANNELS], ct[0], ct[1], out=out[:, CT_CHANNELS])
    if suv is not None:
        np.clip(out[:, PET_CHANNELS], suv[0], suv[1], out=out[:, PET_CHANNELS])
    if out.shape[0]:
        flat = out.reshape(out.shape[0], out.shape[1], -1)
        (_standardize if use_parallel() else _standardize_serial)(flat, np.float64(eps))
    return out


@njit(cache=True, inline="always")
def _standardize_one(x, eps):  # pragma: no cover - compiled
    """Two-pass mean and population std (float64) of one channel, then ``(x - mean) / max(std, eps)``."""
    n = x.shape[0]
    s = 0.0
    for i in range(n):
        s += x[i]
    mean = s / n
    v = 0.0
    for i in range(n):
        d = x[i] - mean
        v += d * d
    std = max(np.sqrt(v / n), eps)
    m32 = np.float32(mean)
    inv = np.float32(1.0 / std)
    for i in range(n):
        x[i] = (x[i] - m32) * inv


@njit(parallel=True, cache=True)
def _standardize(flat, eps):  # pragma: no cover - compiled
    """CT and PET channels (0-5) of every patch, in parallel over patches."""
    for t in prange(flat.shape[0]):
        for c in range(6):
            _standardize_one(flat[t, c], eps)


@njit(cache=True)
def _standardize_serial(flat, eps):  # pragma: no cover - compiled
    for t in range(flat.shape[0]):
        for c in range(6):
            _standardize_one(flat[t, c], eps)
