"""Per-lesion cropped CT / PET (/ mask) sub-volumes, packed for the sampler.

Only a box around each lesion centre is kept, each modality on its own native grid (the PET
stays on its coarser grid; nothing is resampled except an optional mask that is not on the
CT grid). The box is big enough for every pixel of the three planes at the stated maximum
rotation and shift (see :func:`petcad.patches.geometry.reach_bound_mm`), plus one voxel for
trilinear interpolation. Where the box reaches beyond a volume it is padded with the fill
value (CT -1024 HU, i.e. air; PET 0 SUV; mask 0), which is exactly what the sampler
returns outside a volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from petcad.errors import InputError
from petcad.patches.geometry import reach_bound_mm
from petcad.study import POSITIVE_LABEL, Cohort, Study, Volume

#: Values outside a volume: CT in HU (air), PET in SUV, mask.
FILL_VALUES: dict[str, float] = {"CT": -1024.0, "PET": 0.0, "mask": 0.0}
MODALITIES: tuple[str, ...] = ("CT", "PET", "mask")


def _check_size(size: int, spacing_mm: float) -> None:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0 or size % 2 == 0:
        raise InputError("size", f"patch size must be a positive odd number of pixels, got {size!r}")
    if not np.isfinite(spacing_mm) or spacing_mm <= 0:
        raise InputError("spacing", f"pixel spacing must be a positive number of mm, got {spacing_mm!r}")


def _crop(vol: Volume, center_mm: np.ndarray, reach_mm: float, fill: float) -> Volume:
    """The box of ``vol`` holding every world point within ``reach_mm`` (per axis) of the centre,
    plus one voxel, on ``vol``'s own grid; padded with ``fill`` beyond the volume."""
    signs = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], dtype=np.float64)
    ijk = vol.world_to_index(center_mm[None, :] + reach_mm * signs)
    lo = np.floor(ijk.min(axis=0)).astype(np.int64) - 1
    hi = np.ceil(ijk.max(axis=0)).astype(np.int64) + 1  # inclusive
    shape_ijk = hi - lo + 1
    out = np.full(shape_ijk[::-1], fill, dtype=np.float32)
    n = np.asarray(vol.shape_ijk, dtype=np.int64)
    a = np.maximum(lo, 0)
    b = np.minimum(hi, n - 1)
    if np.all(b >= a):
        src = vol.array[a[2] : b[2] + 1, a[1] : b[1] + 1, a[0] : b[0] + 1]
        d = a - lo
        out[d[2] : d[2] + src.shape[0], d[1] : d[1] + src.shape[1], d[0] : d[0] + src.shape[2]] = src
    origin = vol.index_to_world(lo.astype(np.float64))
    return Volume(array=out, origin=origin, spacing=vol.spacing.copy(), direction=vol.direction.copy())


@dataclass
class LesionCache:
    """Cropped sub-volumes of many lesions, packed in one float32 buffer for the sampler.

    Attributes
    ----------
    lesion_ids, patient_ids, labels : one string per lesion.
    y : int64 per lesion, 1 = malignant, 0 = any other label, -1 = unlabelled point.
    centers_mm : ``(n, 3)`` lesion centres, world mm (LPS).
    crops : per lesion, a list of cropped :class:`Volume` (CT, PET[, mask]) whose arrays are
        views into the packed buffer.
    reach_mm : half-width (mm, along each world axis) around each centre that the crops hold.
    size, spacing_mm, max_rotation_deg, max_shift_mm : the settings the crops were sized for.
    """

    lesion_ids: list[str]
    patient_ids: list[str]
    labels: list[str]
    y: np.ndarray
    centers_mm: np.ndarray
    crops: list[list[Volume]]
    reach_mm: float
    size: int
    spacing_mm: float
    max_rotation_deg: float
    max_shift_mm: float
    with_mask: bool
    # packed tables for the kernel (built in __post_init__)
    data: np.ndarray = field(init=False, repr=False)
    offsets: np.ndarray = field(init=False, repr=False)
    shapes: np.ndarray = field(init=False, repr=False)
    origins: np.ndarray = field(init=False, repr=False)
    inverse: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64)
        self.centers_mm = np.asarray(self.centers_mm, dtype=np.float64).reshape(-1, 3)
        n, m = len(self.crops), self.n_modalities
        sizes = [v.array.size for crop in self.crops for v in crop]
        self.offsets = np.zeros((n, m), dtype=np.int64)
        if sizes:
            self.offsets.reshape(-1)[1:] = np.cumsum(sizes)[:-1]
        self.data = np.empty(int(sum(sizes)), dtype=np.float32)
        self.shapes = np.zeros((n, m, 3), dtype=np.int64)  # (ni, nj, nk)
        self.origins = np.zeros((n, m, 3))
        self.inverse = np.zeros((n, m, 3, 3))
        for li, crop in enumerate(self.crops):
            for mi, vol in enumerate(crop):
                off, cnt = self.offsets[li, mi], vol.array.size
                self.data[off : off + cnt] = vol.array.reshape(-1)
                vol.array = self.data[off : off + cnt].reshape(vol.array.shape)  # a view, no second copy
                self.shapes[li, mi] = vol.shape_ijk
                self.origins[li, mi] = vol.origin
                self.inverse[li, mi] = np.linalg.inv(vol.direction * vol.spacing[None, :])

    # ----------------------------------------------------------------- building
    @classmethod
    def from_cohort(
        cls,
        cohort: Cohort,
        size: int = 51,
        spacing_mm: float = 1.0,
        max_rotation_deg: float = 10.0,
        max_shift_mm: float | None = None,
        with_mask: bool = False,
    ) -> "LesionCache":
        """Crop every lesion of ``cohort``.

        ``size`` (pixels, odd) and ``spacing_mm`` are the patch geometry the crops must serve;
        ``max_rotation_deg`` (degrees, each axis) and ``max_shift_mm`` (mm, each axis; default
        2 patch pixels = ``2 * spacing_mm``, the original study's grid) the largest transform.
        Larger transforms are refused by the sampler. ``with_mask`` keeps each lesion's mask
        on the CT grid (a lesion without a mask is an error).
        """
        items = [(s, les.center_mm, les.lesion_id, les.patient_id, les.label, les.mask)
                 for s, les in cohort.iter_lesions()]
        return cls._build(items, size, spacing_mm, max_rotation_deg, max_shift_mm, with_mask)

    @classmethod
    def from_study(
        cls,
        study: Study,
        centers_mm: np.ndarray,
        size: int = 51,
        spacing_mm: float = 1.0,
        max_rotation_deg: float = 10.0,
        max_shift_mm: float | None = None,
    ) -> "LesionCache":
        """Crops around arbitrary world points ``(n, 3)`` (mm) of one study, for prediction.

        Points are unlabelled (label ``""``, ``y = -1``) and named ``point0``, ``point1``, ...
        """
        centers = np.asarray(centers_mm, dtype=np.float64)
        if centers.ndim != 2 or centers.shape[1] != 3:
            raise InputError("centers_mm", f"expected an (n, 3) array of world points, got shape {centers.shape}")
        items = [(study, c, f"point{i}", study.patient_id, "", None) for i, c in enumerate(centers)]
        return cls._build(items, size, spacing_mm, max_rotation_deg, max_shift_mm, False)

    @classmethod
    def _build(cls, items, size, spacing_mm, max_rotation_deg, max_shift_mm, with_mask) -> "LesionCache":
        _check_size(size, spacing_mm)
        if max_shift_mm is None:
            max_shift_mm = 2.0 * float(spacing_mm)
        reach = reach_bound_mm(size, spacing_mm, max_rotation_deg, max_shift_mm)
        crops, ids, pids, labels, centers = [], [], [], [], []
        for study, center, lid, pid, label, mask in items:
            center = np.asarray(center, dtype=np.float64)
            if not np.all(np.isfinite(center)):
                raise InputError(lid, "lesion centre is not a finite point")
            study.require_ct("2.5D patches")
            for name, vol in (("CT", study.ct), ("PET", study.pet)):
                if not bool(vol.contains(center)):
                    raise InputError(lid, f"lesion centre {np.round(center, 1).tolist()} mm lies outside the {name} volume")
            crop = [_crop(study.ct, center, reach, FILL_VALUES["CT"]), _crop(study.pet, center, reach, FILL_VALUES["PET"])]
            if with_mask:
                if mask is None:
                    raise InputError(lid, "with_mask is set but the lesion has no mask")
                crop.append(_mask_on(crop[0], mask))
            crops.append(crop)
            ids.append(str(lid))
            pids.append(str(pid))
            labels.append(str(label))
            centers.append(center)
        y = np.array([1 if lab == POSITIVE_LABEL else (-1 if lab == "" else 0) for lab in labels], dtype=np.int64)
        return cls(
            lesion_ids=ids, patient_ids=pids, labels=labels, y=y, centers_mm=np.array(centers).reshape(-1, 3),
            crops=crops, reach_mm=reach, size=int(size), spacing_mm=float(spacing_mm),
            max_rotation_deg=float(max_rotation_deg), max_shift_mm=float(max_shift_mm), with_mask=bool(with_mask),
        )

    # --------------------------------------------------------------- inspection
    def __len__(self) -> int:
        return len(self.lesion_ids)

    @property
    def n_modalities(self) -> int:
        return 3 if self.with_mask else 2

    @property
    def memory_mb(self) -> float:
        """Size of the packed sub-volumes in MB (10^6 bytes)."""
        return self.data.nbytes / 1e6

    def subset(self, indices) -> "LesionCache":
        """A new cache with the given lesions (copies their crops)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        crops = [[Volume(v.array.copy(), v.origin, v.spacing, v.direction) for v in self.crops[i]] for i in idx]
        return LesionCache(
            lesion_ids=[self.lesion_ids[i] for i in idx], patient_ids=[self.patient_ids[i] for i in idx],
            labels=[self.labels[i] for i in idx], y=self.y[idx], centers_mm=self.centers_mm[idx], crops=crops,
            reach_mm=self.reach_mm, size=self.size, spacing_mm=self.spacing_mm,
            max_rotation_deg=self.max_rotation_deg, max_shift_mm=self.max_shift_mm, with_mask=self.with_mask,
        )


def _mask_on(ct_crop: Volume, mask: Volume) -> Volume:
    """The lesion mask on the CT crop's grid (cropped directly when on the CT grid, else nearest-neighbour)."""
    # Is the crop grid a sub-grid of the mask grid? Then crop by index (no interpolation).
    lo = mask.world_to_index(ct_crop.origin)
    if (
        np.allclose(mask.spacing, ct_crop.spacing, atol=1e-4)
        and np.allclose(mask.direction, ct_crop.direction, atol=1e-4)
        and np.allclose(lo, np.round(lo), atol=1e-3)
    ):
        lo = np.round(lo).astype(np.int64)
        out = np.zeros(ct_crop.array.shape, dtype=np.float32)
        n = np.asarray(mask.shape_ijk, dtype=np.int64)
        hi = lo + np.asarray(ct_crop.shape_ijk) - 1
        a, b = np.maximum(lo, 0), np.minimum(hi, n - 1)
        if np.all(b >= a):
            src = mask.array[a[2] : b[2] + 1, a[1] : b[1] + 1, a[0] : b[0] + 1]
            d = a - lo
            out[d[2] : d[2] + src.shape[0], d[1] : d[1] + src.shape[1], d[0] : d[0] + src.shape[2]] = src != 0
        return Volume(out, ct_crop.origin, ct_crop.spacing, ct_crop.direction)
    res = Volume((mask.array != 0).astype(np.uint8), mask.origin, mask.spacing, mask.direction).resample_to(
        ct_crop, interpolator="nearest", default_value=0
    )
    return Volume(res.array.astype(np.float32), ct_crop.origin, ct_crop.spacing, ct_crop.direction)
