"""The region evaluated by dense segmentation, on the evaluation lattice.

* ``body``: CT above -500 HU, holes filled in every axial plane (so the lungs, the airways and
  everything they enclose count as body), largest 26-connected component.
* ``avid`` (the default): ``body`` and PET at or above ``suv_level`` (default SUV 1.0). Lung
  (~0.4), fat (~0.3) and resting muscle (~0.7) fall out; blood pool, liver, myocardium, marrow
  and every lesion voxel with uptake at or above the level stay in. **What it may miss**: any
  lesion, or part of one, whose PET stays below the level: small benign nodes blurred by the
  scanner's resolution, non-avid tumours (e.g. some adenocarcinomas in situ, mucinous or
  carcinoid tumours). ``--roi body`` evaluates the whole body instead (several times slower).
* a mask file: its nonzero voxels (resampled nearest-neighbour onto the lattice).

The PET and CT are sampled at the lattice points with the patch sampler's trilinear rule.
"""

from __future__ import annotations

import numpy as np

from petcad.errors import InputError
from petcad.segment.lattice import Lattice, resample_onto
from petcad.study import Volume

BODY_HU = -500.0
DEFAULT_SUV_LEVEL = 1.0
ROI_KINDS = ("avid", "body")


def body_mask(ct_on_lattice: np.ndarray, hu: float = BODY_HU) -> np.ndarray:
    """Bool body mask from CT values (HU) on a lattice (array order z, y, x)."""
    from scipy import ndimage

    m = ct_on_lattice > hu
    for z in range(m.shape[0]):
        if m[z].any():
            m[z] = ndimage.binary_fill_holes(m[z])
    lab, n = ndimage.label(m, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return m
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def region(kind: str, ct: Volume, pet: Volume, lat: Lattice, *, suv_level: float = DEFAULT_SUV_LEVEL) -> np.ndarray:
    """The region ``kind`` (``avid``, ``body`` or a mask file path) as a bool array of ``lat.shape``."""
    if kind in ROI_KINDS:
        body = body_mask(resample_onto(ct, lat, -1024.0))
        if kind == "body":
            return body
        if not (np.isfinite(suv_level) and suv_level >= 0):
            raise InputError("--suv-level", f"must be a non-negative number, got {suv_level!r}")
        return body & (resample_onto(pet, lat, 0.0) >= suv_level)
    return _mask_region(kind, ct, lat)


def _mask_region(path: str, ct: Volume, lat: Lattice) -> np.ndarray:
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise InputError("--roi", f"not avid, body or an existing mask file: {path}")
    ref = lat.volume(np.zeros(lat.shape, dtype=np.uint8))
    try:
        from petcad.io.masks import load_mask
    except ImportError:  # pragma: no cover - the mask reader is part of petcad.io
        load_mask = None
    if load_mask is not None:
        m = load_mask(p, like=ref)
    else:  # pragma: no cover
        from petcad.io.volumes import read_image

        m = read_image(p, modality="mask").resample_to(ref, "nearest")
    return np.asarray(m.array) > 0
