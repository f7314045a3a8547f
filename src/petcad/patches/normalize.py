"""Per-patch, per-channel standardisation, as in the original study.

``X = X - mean(X); X = X / max(std(X), eps)`` for every patch and every CT or PET channel
(population std over the N x N pixels). Optional, before it: CT windowing (clip to
``ct_window = (low, high)`` in HU) and SUV clipping (clip to ``suv_clip = (low, high)`` or
``suv_clip = high`` in SUV). Defaults: no window, no clip (the original study). Mask
channels (6-8) are left as they are (0..1).
"""

from __future__ import annotations

import numpy as np

from petcad.errors import InputError

CT_CHANNELS = slice(0, 3)
PET_CHANNELS = slice(3, 6)


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
    elif out is not x:
        out[...] = x
    if ct is not None:
        np.clip(out[:, CT_CHANNELS], ct[0], ct[1], out=out[:, CT_CHANNELS])
    if suv is not None:
        np.clip(out[:, PET_CHANNELS], suv[0], suv[1], out=out[:, PET_CHANNELS])
    img = out[:, :6]
    flat = img.reshape(img.shape[0], 6, -1)
    mean = flat.mean(axis=2, dtype=np.float64)
    std = flat.std(axis=2, dtype=np.float64)
    img -= mean[:, :, None, None].astype(np.float32)
    img /= np.maximum(std, eps)[:, :, None, None].astype(np.float32)
    return out
