"""The 13 diagnostic features of a lesion (size, CT value, SUV, contrast, intensity spread).

Formulas and units are in docs/features.md. All are computed on small crops
around the lesion (see :mod:`petcad.features.delineation`): SUV features on the
PET grid, CT features, diameters and volume on the (finer) CT grid.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
from scipy import ndimage

from petcad.features.delineation import (
    Delineation,
    DelineationSettings,
    DelineationWarning,
    delineate,
)
from petcad.study import Cohort, Lesion, Study

FEATURE_NAMES: list[str] = [
    "suv_max",
    "suv_mean",
    "suv_peak",
    "suv_std",
    "metabolic_volume_ml",
    "tlg",
    "short_axis_mm",
    "long_axis_mm",
    "ct_mean_hu",
    "ct_std_hu",
    "ct_max_hu",
    "pet_contrast",
    "ct_contrast_hu",
]

#: radius (mm) of a 1 mL sphere: (3 / (4 pi))^(1/3) * 10 mm
PEAK_RADIUS_MM = float((3.0 / (4.0 * np.pi)) ** (1.0 / 3.0) * 10.0)
_ANGLES = np.deg2rad(np.arange(180, dtype=np.float64))


@lru_cache(maxsize=16)
def _sphere_kernel(spacing: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    """Normalised kernel ([k, j, i]) of voxel centres within ``radius_mm`` (at least the centre voxel)."""
    half = np.floor(radius_mm / np.asarray(spacing)).astype(int)  # i, j, k
    k, j, i = np.meshgrid(*(np.arange(-h, h + 1) * sp for h, sp in zip(half[::-1], spacing[::-1])), indexing="ij")
    ker = ((i**2 + j**2 + k**2) <= radius_mm**2).astype(np.float64)
    return ker / ker.sum()


def _ring(mask: np.ndarray, spacing: np.ndarray, gap: float, width: float) -> np.ndarray:
    """Voxels at distance (gap, gap + width] mm from ``mask``; the transform runs on the mask's bounding box
    grown by the ring's reach only (a few ms)."""
    out = np.zeros_like(mask, dtype=bool)
    idx = np.nonzero(mask)
    if idx[0].size == 0:
        return out
    reach = np.ceil((gap + width) / np.asarray(spacing)[::-1]).astype(int) + 1
    lo = [max(int(a.min()) - r, 0) for a, r in zip(idx, reach)]
    hi = [min(int(a.max()) + r + 1, n) for a, r, n in zip(idx, reach, mask.shape)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    d = ndimage.distance_transform_edt(~mask[box], sampling=np.asarray(spacing)[::-1])
    out[box] = (d > gap) & (d <= gap + width)
    return out


def axis_diameters(mask: np.ndarray, spacing: np.ndarray, direction: np.ndarray) -> tuple[float, float]:
    """Short- and long-axis diameters (mm) in axial slices of a boolean mask ``[k, j, i]``.

    Per slice, the extent of the voxels (centre extent plus one voxel footprint)
    is measured along 180 in-plane directions (1 degree apart): the long axis is
    the largest extent, the short axis the extent perpendicular to it. Returned:
    the largest long axis and the largest short axis over slices (RECIST-like).
    """
    kk, jj, ii = np.nonzero(mask)
    if kk.size == 0:
        return 0.0, 0.0
    # in-plane coordinates along the index axes i and j, in mm (orthonormal direction)
    u = ii * spacing[0]
    v = jj * spacing[1]
    c, s = np.cos(_ANGLES), np.sin(_ANGLES)
    proj = u[:, None] * c[None, :] + v[:, None] * s[None, :]  # (n, 180)
    starts = np.flatnonzero(np.r_[True, kk[1:] != kk[:-1]])  # np.nonzero is C-ordered: grouped by k
    hi = np.maximum.reduceat(proj, starts, axis=0)
    lo = np.minimum.reduceat(proj, starts, axis=0)
    ext = hi - lo + np.abs(c)[None, :] * spacing[0] + np.abs(s)[None, :] * spacing[1]  # (slices, 180)
    a_long = np.argmax(ext, axis=1)
    long_ = ext[np.arange(ext.shape[0]), a_long]
    short = ext[np.arange(ext.shape[0]), (a_long + 90) % 180]
    return float(short.max()), float(long_.max())


#: the features that need a CT (NaN for a PET-only study, whose size features come from the PET grid)
CT_FEATURE_NAMES: tuple[str, ...] = ("ct_mean_hu", "ct_std_hu", "ct_max_hu", "ct_contrast_hu")


def features_from_delineation(d: Delineation, lesion_id: str = "?", settings: DelineationSettings = DelineationSettings()) -> dict[str, float]:
    """The 13 diagnostic features of one delineated lesion (units in docs/features.md).

    PET-only (``d.ct is None``): volume and diameters are measured on the PET grid and the CT
    features (``CT_FEATURE_NAMES``) are NaN.
    """
    pet_only = d.ct is None
    pet, pm = d.pet, d.pet_mask
    ct, cm = (pet, pm) if pet_only else (d.ct, d.ct_mask)  # size features on the CT grid, else the PET's
    suv = pet.array[pm].astype(np.float64)
    hu = ct.array[cm].astype(np.float64)

    ker = _sphere_kernel(tuple(float(x) for x in pet.spacing), PEAK_RADIUS_MM)
    local = ndimage.correlate(pet.array.astype(np.float64), ker, mode="nearest")
    suv_peak = float(local[pm].max())

    ct_voxel_ml = float(np.prod(ct.spacing)) / 1000.0
    volume_ml = float(cm.sum()) * ct_voxel_ml
    suv_mean = float(suv.mean())
    short_ax, long_ax = axis_diameters(cm, ct.spacing, ct.direction)

    rp = _ring(pm, pet.spacing, settings.ring_gap_mm, settings.ring_width_mm)
    rc = _ring(cm, ct.spacing, settings.ring_gap_mm, settings.ring_width_mm)
    if not rp.any() or not rc.any():
        warnings.warn(
            f"lesion {lesion_id}: background ring empty (lesion at the edge of the image); "
            "using every crop voxel outside the lesion",
            DelineationWarning,
            stacklevel=2,
        )
        if not rp.any():
            rp = ~pm
        if not rc.any():
            rc = ~cm
    bg_suv = float(pet.array[rp].mean()) if rp.any() else float("nan")
    bg_hu = float(ct.array[rc].mean()) if rc.any() else float("nan")
    # SUV background floored at 0.05 g/mL so that a lesion next to air gives a finite ratio
    pet_contrast = suv_mean / max(bg_suv, 0.05)

    out = {
        "suv_max": float(suv.max()),
        "suv_mean": suv_mean,
        "suv_peak": suv_peak,
        "suv_std": float(suv.std()),
        "metabolic_volume_ml": volume_ml,
        "tlg": suv_mean * volume_ml,
        "short_axis_mm": short_ax,
        "long_axis_mm": long_ax,
        "ct_mean_hu": float(hu.mean()),
        "ct_std_hu": float(hu.std()),
        "ct_max_hu": float(hu.max()),
        "pet_contrast": float(pet_contrast),
        "ct_contrast_hu": float(hu.mean() - bg_hu),
    }
    if pet_only:
        out.update({n: float("nan") for n in CT_FEATURE_NAMES})
    return out


def compute_features(study: Study, lesion: Lesion, settings: DelineationSettings = DelineationSettings()) -> dict[str, float]:
    """Delineate ``lesion`` and return its 13 diagnostic features (``FEATURE_NAMES`` order)."""
    d = delineate(study, lesion, settings)
    return features_from_delineation(d, lesion.lesion_id, settings)


def cohort_features(
    cohort: Cohort,
    settings: DelineationSettings = DelineationSettings(),
    progress: bool = False,
    return_sources: bool = False,
):
    """Features of every lesion, in ``cohort.iter_lesions()`` order.

    Returns ``(FEATURE_NAMES, X)`` with ``X`` float64 of shape (n_lesions, 13), or
    ``(FEATURE_NAMES, X, sources)`` with ``return_sources=True`` (the delineation
    rule used per lesion: ``mask``, ``pet``, ``ct`` or ``sphere``).
    """
    items = cohort.iter_lesions()
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, total=cohort.n_lesions, desc="diagnostic features", unit="lesion")
    X = np.empty((cohort.n_lesions, len(FEATURE_NAMES)), dtype=np.float64)
    sources: list[str] = []
    for row, (study, lesion) in enumerate(items):
        d = delineate(study, lesion, settings)
        f = features_from_delineation(d, lesion.lesion_id, settings)
        X[row] = [f[n] for n in FEATURE_NAMES]
        sources.append(d.source)
    if return_sources:
        return list(FEATURE_NAMES), X, sources
    return list(FEATURE_NAMES), X
