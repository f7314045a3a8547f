"""Lesion delineation for feature extraction (PET-based, CT fallback, or a supplied mask).

Everything here works on a small crop around each lesion (never on the whole
volume), so one lesion costs milliseconds. The rule, in order (see
docs/features.md):

1. ``method="auto"`` (default): the lesion's supplied mask when it has one,
   otherwise the PET rule ``"fraction"``. ``method="mask"`` requires a mask.
2. PET rules, inside a search sphere of ``search_radius_mm`` around the lesion
   centre: the seed is the hottest PET voxel within ``seed_radius_mm`` of the
   centre. The lesion is *avid* when that SUV is at least ``avid_suv``. Then
   ``"suv"`` keeps voxels with SUV >= ``suv_threshold`` (default 2.5) and
   ``"fraction"`` keeps voxels with SUV >= ``fraction`` x seed SUV (default
   40 %), and only the connected component (26-connectivity) holding the seed.
3. CT fallback for non-avid lesions: soft-tissue region growing on the CT from
   the voxel nearest the centre (HU in [``ct_low_hu``, ``ct_high_hu``]) within
   ``ct_max_radius_mm``, connected component holding the seed.
4. If the result is empty (empty supplied mask, no soft tissue at the centre),
   a :class:`DelineationWarning` names the lesion and a sphere of
   ``fallback_radius_mm`` around the centre is used. Never a silent NaN.

The delineation is returned on both the PET and the CT crop grids: a mask made
on one grid is carried to the other by SimpleITK linear resampling of the 0/1
mask, thresholded at 0.5 (partial-volume majority).

A supplied mask is used whole: the crops grow to cover all of it (plus the
background ring), however far it reaches beyond ``search_radius_mm``.

PET-only studies (``study.ct is None``): the delineation is made on the PET
crop only (``Delineation.ct`` and ``ct_mask`` are ``None``); a supplied mask is
carried onto the PET grid, and there is no CT fallback (a non-avid lesion gets
the sphere, with a warning).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from petcad.study import Lesion, Study, Volume

METHODS = ("auto", "mask", "suv", "fraction")
SOURCES = ("mask", "pet", "ct", "sphere")


class DelineationWarning(UserWarning):
    """A lesion could not be delineated by its rule; a documented fallback was used."""


@dataclass(frozen=True)
class DelineationSettings:
    """How lesions are delineated for features. Distances in mm, thresholds in SUV (g/mL) or HU.

    Attributes
    ----------
    method : ``auto`` | ``mask`` | ``suv`` | ``fraction`` (see the module text).
    suv_threshold : fixed SUV threshold of the ``suv`` rule.
    fraction : fraction of the seed SUV (SUVmax) for the ``fraction`` rule.
    avid_suv : below this seed SUV a lesion is non-avid and the CT fallback is used.
    search_radius_mm : PET delineations are confined to this sphere around the centre.
    seed_radius_mm : the PET seed (hottest voxel) is searched within this radius.
    ct_low_hu, ct_high_hu : soft-tissue window of the CT fallback.
    ct_max_radius_mm : the CT fallback is confined to this sphere.
    fallback_radius_mm : radius of the sphere used when a delineation is empty.
    ring_gap_mm, ring_width_mm : the background ring for contrast features is the set
        of voxels at distance in (gap, gap + width] mm from the delineation.
    """

    method: str = "auto"
    suv_threshold: float = 2.5
    fraction: float = 0.40
    avid_suv: float = 2.5
    search_radius_mm: float = 20.0
    seed_radius_mm: float = 6.0
    ct_low_hu: float = -30.0
    ct_high_hu: float = 150.0
    ct_max_radius_mm: float = 10.0
    fallback_radius_mm: float = 5.0
    ring_gap_mm: float = 4.0
    ring_width_mm: float = 8.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown delineation method {self.method!r}; choose one of {', '.join(METHODS)}")
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {self.fraction}")
        for name in ("search_radius_mm", "seed_radius_mm", "ct_max_radius_mm", "fallback_radius_mm", "ring_width_mm"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def crop_radius_mm(self) -> float:
        """Half-size of the crops: room for the search sphere plus the background ring."""
        return max(self.search_radius_mm, self.ct_max_radius_mm) + self.ring_gap_mm + self.ring_width_mm + 2.0


@dataclass
class Delineation:
    """A lesion's delineation on the PET and CT crops around it.

    ``pet`` / ``ct`` are the crops (SUV / HU) as :class:`Volume`; ``pet_mask`` /
    ``ct_mask`` are boolean arrays of the crops' shapes (``ct`` and ``ct_mask``
    are ``None`` for a PET-only study). ``source`` says which rule made it
    (``mask``, ``pet``, ``ct`` or ``sphere``); ``seed_suv`` is the hottest PET
    voxel near the centre (SUV).
    """

    pet: Volume
    ct: Volume | None
    pet_mask: np.ndarray
    ct_mask: np.ndarray | None
    source: str
    seed_suv: float


# ----------------------------------------------------------------------------- crops
def crop(volume: Volume, center_mm: np.ndarray, radius_mm: float) -> Volume:
    """The sub-volume covering a sphere of ``radius_mm`` around ``center_mm`` (clipped to the volume).

    The index box is +-radius/spacing around the centre index, which covers the
    sphere for any orthonormal direction. Shares memory with ``volume`` (a view).
    """
    c = volume.world_to_index(center_mm)
    half = np.ceil(radius_mm / volume.spacing).astype(int)
    n = np.asarray(volume.shape_ijk)
    lo = np.clip(np.floor(c).astype(int) - half, 0, n - 1)
    hi = np.clip(np.ceil(c).astype(int) + half + 1, 1, n)
    if np.any(hi <= lo):
        lo = np.minimum(lo, n - 1)
        hi = np.maximum(hi, lo + 1)
    arr = volume.array[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]]
    return Volume(arr, origin=volume.index_to_world(lo), spacing=volume.spacing, direction=volume.direction)


def distance_mm(volume: Volume, center_mm: np.ndarray) -> np.ndarray:
    """Distance (mm) of every voxel centre of ``volume`` from ``center_mm``, shape of ``volume.array``."""
    nk, nj, ni = volume.array.shape
    a = volume.direction * volume.spacing[None, :]  # world = origin + a @ ijk
    d0 = volume.origin - np.asarray(center_mm, dtype=np.float64)
    i = np.arange(ni, dtype=np.float64)[None, None, :]
    j = np.arange(nj, dtype=np.float64)[None, :, None]
    k = np.arange(nk, dtype=np.float64)[:, None, None]
    sq = np.zeros(volume.array.shape, dtype=np.float64)
    for c in range(3):  # three world components, each a broadcast sum of 1D ramps
        sq += (d0[c] + a[c, 0] * i + a[c, 1] * j + a[c, 2] * k) ** 2
    return np.sqrt(sq)


def _resample_fraction(mask: np.ndarray, src: Volume, dst: Volume) -> np.ndarray:
    """Fraction of each ``dst`` voxel covered by ``mask`` on ``src`` (SimpleITK linear resampling).

    When both grids share spacing and direction and differ by a whole-voxel shift (a mask
    cropped from the CT grid), the mask is pasted instead (exact). SimpleITK runs with one
    thread: on crops this small, thread start-up costs more than the work.
    """
    if np.allclose(src.spacing, dst.spacing) and np.allclose(src.direction, dst.direction):
        off = dst.world_to_index(src.origin)  # src voxel (0,0,0) in dst indices
        r = np.rint(off)
        if np.allclose(off, r, atol=1e-3):
            out = np.zeros(dst.array.shape, dtype=np.float32)
            o = r.astype(int)[::-1]  # k, j, i
            lo_d = np.maximum(o, 0)
            hi_d = np.minimum(o + np.asarray(mask.shape), np.asarray(out.shape))
            if np.all(hi_d > lo_d):
                lo_s = lo_d - o
                hi_s = hi_d - o
                out[lo_d[0]:hi_d[0], lo_d[1]:hi_d[1], lo_d[2]:hi_d[2]] = mask[
                    lo_s[0]:hi_s[0], lo_s[1]:hi_s[1], lo_s[2]:hi_s[2]]
            return out
    import SimpleITK as sitk

    img = Volume(mask.astype(np.float32), src.origin, src.spacing, src.direction).to_sitk()
    f = sitk.ResampleImageFilter()
    f.SetNumberOfThreads(1)
    f.SetOutputOrigin(tuple(float(v) for v in dst.origin))
    f.SetOutputSpacing(tuple(float(v) for v in dst.spacing))
    f.SetOutputDirection(tuple(float(v) for v in dst.direction.reshape(-1)))
    f.SetSize([int(v) for v in dst.shape_ijk])
    f.SetInterpolator(sitk.sitkLinear)
    f.SetDefaultPixelValue(0.0)
    f.SetOutputPixelType(sitk.sitkFloat32)
    return sitk.GetArrayFromImage(f.Execute(img))


def _transfer(mask: np.ndarray, src: Volume, dst: Volume) -> np.ndarray:
    """Carry a boolean mask from grid ``src`` to grid ``dst`` (linear, >= 0.5)."""
    if src.same_grid(dst):
        return mask.copy()
    return _resample_fraction(mask, src, dst) >= 0.5


def _fraction_on(mask: np.ndarray, src: Volume, dst: Volume) -> np.ndarray:
    return _resample_fraction(mask, src, dst)


def _component_with(mask: np.ndarray, seed_kji: tuple[int, int, int]) -> np.ndarray:
    if not mask[seed_kji]:
        return np.zeros_like(mask, dtype=bool)
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    return labels == labels[seed_kji]


def _nearest_index(volume: Volume, center_mm: np.ndarray) -> tuple[int, int, int]:
    ijk = np.rint(volume.world_to_index(center_mm)).astype(int)
    ijk = np.clip(ijk, 0, np.asarray(volume.shape_ijk) - 1)
    return int(ijk[2]), int(ijk[1]), int(ijk[0])


# ----------------------------------------------------------------------------- rules
def _pet_rule(pet: Volume, center: np.ndarray, s: DelineationSettings, rule: str) -> tuple[np.ndarray, float]:
    dist = distance_mm(pet, center)
    near = dist <= max(s.seed_radius_mm, 0.5 * float(pet.spacing.max()))
    if not near.any():
        near[_nearest_index(pet, center)] = True
    vals = np.where(near, pet.array, -np.inf)
    flat = int(np.argmax(vals))
    seed = np.unravel_index(flat, pet.array.shape)
    seed_suv = float(pet.array[seed])
    if seed_suv < s.avid_suv:
        return np.zeros(pet.array.shape, dtype=bool), seed_suv
    thr = s.suv_threshold if rule == "suv" else s.fraction * seed_suv
    cand = (pet.array >= thr) & (dist <= s.search_radius_mm)
    return _component_with(cand, seed), seed_suv


def _ct_rule(ct: Volume, center: np.ndarray, s: DelineationSettings) -> np.ndarray:
    dist = distance_mm(ct, center)
    inside = dist <= s.ct_max_radius_mm
    soft = (ct.array >= s.ct_low_hu) & (ct.array <= s.ct_high_hu) & inside
    if not soft.any():
        return soft
    seed = _nearest_index(ct, center)
    if not soft[seed]:
        # nearest soft-tissue voxel within 3 mm of the centre
        d = np.where(soft, dist, np.inf)
        flat = int(np.argmin(d))
        if d.flat[flat] > 3.0:
            return np.zeros_like(soft)
        seed = np.unravel_index(flat, soft.shape)
    return _component_with(soft, seed)


def _supplied_mask(lesion: Lesion, center: np.ndarray, radius: float, dst: Volume, is_pet: bool = False) -> np.ndarray:
    """The lesion's mask on the crop ``dst`` (on the PET, a lesion smaller than a voxel keeps its best voxels)."""
    m = crop(lesion.mask, center, radius)
    mask = m.array > 0
    if not mask.any():
        return np.zeros(dst.array.shape, dtype=bool)
    if is_pet:
        return _pet_from_grid(mask, m, dst, center)
    return _transfer(mask, m, dst)


def mask_reach_mm(mask: Volume, center: np.ndarray) -> float:
    """Distance (mm) from ``center`` to the farthest corner of the nonzero voxels' footprint in ``mask``."""
    nz = np.nonzero(mask.array)
    if nz[0].size == 0:
        return 0.0
    lo = np.array([a.min() for a in nz[::-1]], dtype=np.float64) - 0.5  # i, j, k
    hi = np.array([a.max() for a in nz[::-1]], dtype=np.float64) + 0.5
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    return float(np.sqrt(((mask.index_to_world(corners) - np.asarray(center)) ** 2).sum(axis=1)).max())


def _crop_radius(lesion: Lesion, s: DelineationSettings, use_mask: bool) -> float:
    """The crop half-size: the settings' radius, grown to hold a supplied mask whole plus its background ring."""
    r = s.crop_radius_mm
    if use_mask and lesion.mask is not None:
        r = max(r, mask_reach_mm(lesion.mask, lesion.center_mm) + s.ring_gap_mm + s.ring_width_mm + 2.0)
    return r


def _pet_from_grid(gmask: np.ndarray, grid: Volume, pet: Volume, center: np.ndarray) -> np.ndarray:
    """A mask drawn on ``grid`` carried onto the PET crop (majority; a lesion smaller than a PET voxel
    keeps the voxels of largest overlap, else the centre voxel)."""
    frac = _fraction_on(gmask, grid, pet)
    pet_mask = frac >= 0.5
    if not pet_mask.any():
        pet_mask = frac >= 0.5 * float(frac.max()) if frac.max() > 0 else pet_mask
        if not pet_mask.any():
            pet_mask[_nearest_index(pet, center)] = True
    return pet_mask


def delineate(study: Study, lesion: Lesion, settings: DelineationSettings = DelineationSettings()) -> Delineation:
    """Delineate one lesion on crops of its study's PET (SUV) and CT (HU); see the module text for the rule."""
    s = settings
    center = lesion.center_mm
    use_mask = s.method == "mask" or (s.method == "auto" and lesion.mask is not None)
    r = _crop_radius(lesion, s, use_mask)
    pet = crop(study.pet, center, r)
    ct = crop(study.ct, center, r) if study.ct is not None else None
    grid = ct if ct is not None else pet  # supplied masks and spheres are drawn on the CT, else the PET

    pet_mask = gmask = None
    source = ""
    seed_suv = float("nan")
    if use_mask:
        if lesion.mask is None:
            warnings.warn(
                f"lesion {lesion.lesion_id}: method 'mask' but no mask supplied; using the PET rule 'fraction'",
                DelineationWarning,
                stacklevel=2,
            )
        else:
            gmask = _supplied_mask(lesion, center, r, grid, is_pet=grid is pet)
            source = "mask"
            if not gmask.any():
                warnings.warn(
                    f"lesion {lesion.lesion_id}: the supplied mask is empty near the lesion centre; "
                    f"using a {s.fallback_radius_mm:g} mm sphere",
                    DelineationWarning,
                    stacklevel=2,
                )
                gmask = None
                source = "sphere"
    if not source:
        pet_mask, gmask, source, seed_suv = _rules(pet, ct, center, s, lesion.lesion_id)
    if source == "sphere":
        gmask = distance_mm(grid, center) <= s.fallback_radius_mm
        if not gmask.any():
            gmask = np.zeros(grid.array.shape, dtype=bool)
            gmask[_nearest_index(grid, center)] = True

    if pet_mask is None:
        pet_mask = gmask if grid is pet else _pet_from_grid(gmask, grid, pet, center)
    ct_mask = None
    if ct is not None:
        ct_mask = gmask if gmask is not None else _transfer(pet_mask, pet, ct)
        if not ct_mask.any():
            ct_mask[_nearest_index(ct, center)] = True
    if np.isnan(seed_suv):
        dist = distance_mm(pet, center)
        near = dist <= max(s.seed_radius_mm, 0.5 * float(pet.spacing.max()))
        seed_suv = float(pet.array[near].max()) if near.any() else float(pet.array[_nearest_index(pet, center)])
    return Delineation(pet=pet, ct=ct, pet_mask=pet_mask, ct_mask=ct_mask, source=source, seed_suv=seed_suv)


def _rules(pet: Volume, ct: Volume | None, center: np.ndarray, s: DelineationSettings, lesion_id: str):
    """The PET rule, then the CT fallback (when there is a CT): ``(pet_mask, grid_mask, source, seed_suv)``."""
    rule = "fraction" if s.method in ("auto", "mask") else s.method
    m, seed_suv = _pet_rule(pet, center, s, rule)
    if m.any():
        return m, None, "pet", seed_suv
    if ct is not None:
        m = _ct_rule(ct, center, s)
        if m.any():
            return None, m, "ct", seed_suv
    why = "no soft tissue at the centre on CT" if ct is not None else "no CT for a fallback (PET-only study)"
    warnings.warn(
        f"lesion {lesion_id}: non-avid (SUV {seed_suv:.2f} < {s.avid_suv:g}) and {why}; "
        f"using a {s.fallback_radius_mm:g} mm sphere",
        DelineationWarning,
        stacklevel=3,
    )
    return None, None, "sphere", seed_suv
