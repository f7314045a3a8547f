"""Augmentation policies for the plane triplet: grid, random, none.

A transform is a row ``(rot_x, rot_y, rot_z, shift_x, shift_y, shift_z)``: rotations in
degrees about world X, Y, Z and shifts along world X, Y, Z in patch pixels (the sampler's
``shift_unit="mm"`` reads them as millimetres instead). See :mod:`petcad.patches.geometry`
for the composition order and signs. Parameters are drawn here and applied by
:class:`petcad.patches.sampler.PatchSampler` (drawing is kept apart from applying, as in
TorchIO), so a drawn set can be stored, logged and replayed.

Besides the rigid transforms of the triplet, each plane may be mirrored and turned by
quarter turns on its own (:func:`draw_dihedral`, :func:`apply_dihedral`): the eight
symmetries of the square (the dihedral group D4), drawn independently for the axial,
coronal and sagittal planes. A lesion's uptake, density and size do not depend on which
way up its neighbourhood is shown, so these views are as true as the original ones; on
the phantom they are what stops the networks from memorising the training lesions
(docs/models.md gives the measured effect). Because every patch is centred on the lesion
with an odd side, a quarter turn or a mirror moves pixels exactly: no interpolation.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np

#: Shifts beyond this many patch pixels may move a small lesion out of the patch.
SHIFT_WARN_PX = 10.0

#: The original study's values: 3 angles x 3 shifts on each of 3 axes = 3^6 = 729 variants.
DEFAULT_ROTATIONS: tuple[float, ...] = (-10.0, 0.0, 10.0)
DEFAULT_SHIFTS: tuple[float, ...] = (-2.0, 0.0, 2.0)

Values = Union[Sequence[float], Sequence[Sequence[float]]]


def _per_axis(values: Values, what: str) -> list[np.ndarray]:
    """One value list for all three axes, or three lists (X, Y, Z)."""
    if np.isscalar(values):
        values = [values]
    vals = list(values)
    if vals and all(not np.isscalar(v) for v in vals):
        if len(vals) != 3:
            raise ValueError(f"{what}: give one value list or three (X, Y, Z), got {len(vals)} lists")
        out = [np.asarray(v, dtype=np.float64).reshape(-1) for v in vals]
    else:
        out = [np.asarray(vals, dtype=np.float64).reshape(-1)] * 3
    for v in out:
        if v.size == 0:
            raise ValueError(f"{what}: empty value list")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{what}: values must be finite")
    return out


def warn_large_shifts(transforms: np.ndarray, limit_px: float = SHIFT_WARN_PX) -> None:
    """Warn (``UserWarning``) when any shift exceeds ``limit_px`` patch pixels in magnitude."""
    t = np.asarray(transforms)
    if t.size and np.max(np.abs(t[:, 3:6])) > limit_px:
        warnings.warn(
            f"shifts beyond +-{limit_px:g} pixels (largest {np.max(np.abs(t[:, 3:6])):g}): "
            "the lesion may leave the patch",
            UserWarning,
            stacklevel=3,
        )


def grid_transforms(rotations: Values = DEFAULT_ROTATIONS, shifts: Values = DEFAULT_SHIFTS) -> np.ndarray:
    """Every combination of the given rotations (degrees) and shifts (pixels): ``(n, 6)`` float64.

    ``rotations`` and ``shifts`` are each one value list used for X, Y and Z, or three lists
    (X, Y, Z). The defaults give the original study's 3^6 = 729 variants; the first column
    varies slowest (itertools.product order: rot_x, rot_y, rot_z, shift_x, shift_y, shift_z).
    """
    axes = _per_axis(rotations, "rotations") + _per_axis(shifts, "shifts")
    out = np.array(list(itertools.product(*axes)), dtype=np.float64).reshape(-1, 6)
    warn_large_shifts(out)
    return out


def random_transforms(
    rng: np.random.Generator, n: int, max_rotation_deg: float = 10.0, max_shift: float = 2.0
) -> np.ndarray:
    """``n`` transforms with each angle uniform in ``+-max_rotation_deg`` degrees and each shift
    uniform in ``+-max_shift`` pixels: ``(n, 6)`` float64."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (seeded by the caller)")
    lim = np.array([abs(max_rotation_deg)] * 3 + [abs(max_shift)] * 3, dtype=np.float64)
    out = rng.uniform(-1.0, 1.0, size=(int(n), 6)) * lim
    warn_large_shifts(np.array([[0.0, 0.0, 0.0, max_shift, 0.0, 0.0]]))
    return out


@dataclass
class AugmentPolicy:
    """How to draw plane-triplet transforms.

    kind : ``"grid"`` (draw rows of :func:`grid_transforms` of ``rotations`` x ``shifts``
        uniformly, or enumerate them all with :meth:`all`), ``"random"`` (each angle uniform in
        ``+-max_rotation_deg`` degrees, each shift uniform in ``+-max_shift`` pixels) or
        ``"none"`` (identity).
    """

    kind: str = "grid"
    rotations: Values = field(default_factory=lambda: DEFAULT_ROTATIONS)
    shifts: Values = field(default_factory=lambda: DEFAULT_SHIFTS)
    max_rotation_deg: float = 10.0
    max_shift: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in ("grid", "random", "none"):
            raise ValueError(f"AugmentPolicy kind must be grid, random or none, got {self.kind!r}")
        self._grid = grid_transforms(self.rotations, self.shifts) if self.kind == "grid" else None
        if self.kind == "random":
            warn_large_shifts(np.array([[0, 0, 0, self.max_shift, 0, 0]], dtype=float))

    def all(self) -> np.ndarray:
        """Every transform of the policy: the full grid, or one identity row for ``none``."""
        if self.kind == "grid":
            return self._grid.copy()
        if self.kind == "none":
            return np.zeros((1, 6))
        raise ValueError("a random policy has no finite list of transforms; use draw(rng, n)")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` transforms ``(n, 6)`` drawn with ``rng`` (nothing global is used)."""
        if self.kind == "none":
            return np.zeros((int(n), 6))
        if self.kind == "grid":
            return self._grid[rng.integers(0, len(self._grid), size=int(n))]
        return random_transforms(rng, n, self.max_rotation_deg, self.max_shift)

    def from_uniform(self, u: np.ndarray) -> np.ndarray:
        """Transforms ``(n, 6)`` from uniforms ``u`` ``(n, 6)`` in [0, 1): a grid row chosen by
        ``u[:, 0]``, or each parameter ``(2 u - 1) * max`` for ``random``."""
        u = np.asarray(u, dtype=np.float64).reshape(-1, 6)
        if self.kind == "none":
            return np.zeros((u.shape[0], 6))
        if self.kind == "grid":
            return self._grid[np.minimum((u[:, 0] * len(self._grid)).astype(np.int64), len(self._grid) - 1)]
        lim = np.array([abs(self.max_rotation_deg)] * 3 + [abs(self.max_shift)] * 3)
        return (2.0 * u - 1.0) * lim

    def max_extent(self) -> tuple[float, float]:
        """(largest |angle| in degrees, largest |shift| in pixels) this policy can produce."""
        if self.kind == "none":
            return 0.0, 0.0
        if self.kind == "random":
            return abs(self.max_rotation_deg), abs(self.max_shift)
        return float(np.abs(self._grid[:, :3]).max()), float(np.abs(self._grid[:, 3:]).max())

    def settings(self) -> dict:
        """Plain settings for reports."""
        d = {"kind": self.kind}
        if self.kind == "grid":
            d.update(rotations=np.asarray(self.rotations, dtype=object).tolist(),
                     shifts=np.asarray(self.shifts, dtype=object).tolist(), n_variants=len(self._grid))
        elif self.kind == "random":
            d.update(max_rotation_deg=self.max_rotation_deg, max_shift=self.max_shift)
        return d


#: Number of symmetries of the square: codes 0..7 (bit 2 = mirror left-right, bits 0-1 = quarter turns).
N_DIHEDRAL = 8


def draw_dihedral(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 3)`` int64 codes in ``0..7``, one per plane (axial, coronal, sagittal), drawn with ``rng``."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (seeded by the caller)")
    return rng.integers(0, N_DIHEDRAL, size=(int(n), 3))


def apply_dihedral(patches: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Mirror / turn each plane of ``patches`` ``(n, C, N, N)`` in place by ``codes`` ``(n, 3)``.

    Plane ``p`` is channels ``p, p + 3 (, p + 6)`` (CT, PET and mask of that plane),
    all moved alike. Code ``c``: mirror the columns when ``c & 4``, then turn by
    ``(c & 3)`` quarter turns counter-clockwise (``numpy.rot90`` on the last two axes).
    Code 0 is the identity. Returns ``patches``.
    """
    x = patches
    codes = np.asarray(codes, dtype=np.int64)
    if x.ndim != 4 or x.shape[1] % 3 or x.shape[2] != x.shape[3]:
        raise ValueError(f"apply_dihedral: expected square patches (n, 3k, N, N), got {x.shape}")
    if codes.shape != (x.shape[0], 3):
        raise ValueError(f"apply_dihedral: expected codes of shape ({x.shape[0]}, 3), got {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= N_DIHEDRAL):
        raise ValueError("apply_dihedral: codes must be in 0..7")
    for p in range(3):
        ch = np.arange(p, x.shape[1], 3)
        for c in range(1, N_DIHEDRAL):
            sel = np.flatnonzero(codes[:, p] == c)
            if not len(sel):
                continue
            sub = x[sel[:, None], ch[None, :]]  # (m, k, N, N) copy
            if c & 4:
                sub = sub[..., ::-1]
            x[sel[:, None], ch[None, :]] = np.rot90(sub, c & 3, axes=(2, 3))
    return x

