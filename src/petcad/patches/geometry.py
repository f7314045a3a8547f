"""Geometry of the 2.5D plane triplet: plane axes, rigid transforms and their composition.

Conventions (world millimetres in DICOM LPS: +x patient left, +y posterior, +z head)
-----------------------------------------------------------------------------------
A patch is ``size x size`` pixels with ``spacing_mm`` between pixel centres; pixel
``(row, col)`` has the in-plane offset ``(col - h) * spacing * u + (row - h) * spacing * v``
from the plane centre, with ``h = (size - 1) / 2`` (``size`` is odd, so the centre pixel
sits exactly on the lesion centre). ``u`` (image column direction) and ``v`` (image row
direction, downwards) for the identity transform follow the radiological display
convention, so that panels look like what physicians see:

========  ==============  ===============  ===============================================
plane     u (columns)     v (rows)         as displayed
========  ==============  ===============  ===============================================
axial     +x              +y               patient right on the image left, anterior at top
coronal   +x              -z               patient right on the image left, head at top
sagittal  +y              -z               anterior on the image left, head at top
========  ==============  ===============  ===============================================

A transform is one row ``(rot_x, rot_y, rot_z, shift_x, shift_y, shift_z)``: rotations in
degrees about the world X, Y and Z axes (right-handed, active: a positive angle turns the
planes counter-clockwise when looking down the axis towards the origin), shifts along
world X, Y and Z (in patch pixels by default, i.e. ``shift * spacing_mm`` millimetres, or in
millimetres with ``shift_unit="mm"``). They compose in one order::

    R = Rz @ Ry @ Rx                      # rotate about X first, then Y, then Z
    world(row, col) = centre + R @ offset(row, col) + shift_mm

that is, the triplet of planes is rotated about the lesion centre (the volume is never
rotated) and then translated along the world axes. Sign: a positive ``shift_x`` of one pixel
moves the sampling centre one pixel towards +x (patient left), so the image content moves
towards -x: one column towards the image left in the axial and coronal planes (whose
columns run along +x). Likewise a positive ``shift_y`` moves axial content up one row and
sagittal content one column left; a positive ``shift_z`` moves coronal and sagittal content
down one row.
"""

from __future__ import annotations

import numpy as np

PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")

#: (u, v) = world unit vectors of the image column and row directions, per plane.
PLANE_AXES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "axial": (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])),
    "coronal": (np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0])),
    "sagittal": (np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])),
}

#: (3, 2, 3): for each plane, its (u, v) world unit vectors.
PLANE_UV: np.ndarray = np.stack([np.stack(PLANE_AXES[p]) for p in PLANES])


def rotation_matrices(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices ``R = Rz @ Ry @ Rx`` for angles ``(n, 3)`` in degrees; returns ``(n, 3, 3)``."""
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64).reshape(-1, 3))
    cx, cy, cz = np.cos(a).T
    sx, sy, sz = np.sin(a).T
    n = a.shape[0]
    one, zero = np.ones(n), np.zeros(n)
    rx = np.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], axis=-1).reshape(n, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], axis=-1).reshape(n, 3, 3)
    rz = np.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], axis=-1).reshape(n, 3, 3)
    return rz @ ry @ rx


def shifts_to_mm(transforms: np.ndarray, spacing_mm: float, shift_unit: str = "px") -> np.ndarray:
    """The shift columns of ``transforms`` ``(n, 6)`` in millimetres ``(n, 3)``."""
    if shift_unit == "px":
        return np.asarray(transforms, dtype=np.float64)[:, 3:6] * float(spacing_mm)
    if shift_unit == "mm":
        return np.asarray(transforms, dtype=np.float64)[:, 3:6].copy()
    raise ValueError(f"shift_unit must be 'px' or 'mm', got {shift_unit!r}")


def plane_half_width_mm(size: int, spacing_mm: float) -> float:
    """Distance (mm) from the plane centre to the centre of its edge pixels: ``(size - 1) / 2 * spacing``."""
    return (int(size) - 1) / 2.0 * float(spacing_mm)


def plane_world_axes(rotations: np.ndarray) -> np.ndarray:
    """World (u, v) of the three planes under rotations ``(n, 3, 3)``: returns ``(n, 3 planes, 2, 3)``."""
    return np.einsum("nab,pqb->npqa", rotations, PLANE_UV)


def extent_mm(transforms: np.ndarray, size: int, spacing_mm: float, shift_unit: str = "px") -> np.ndarray:
    """Per transform, the largest |world offset| from the lesion centre reached along X, Y, Z (mm), ``(n, 3)``.

    A linear function over a square plane peaks at a corner, so the 12 corners of the three
    planes bound every pixel centre exactly.
    """
    t = np.asarray(transforms, dtype=np.float64).reshape(-1, 6)
    h = plane_half_width_mm(size, spacing_mm)
    uv = plane_world_axes(rotation_matrices(t[:, :3]))  # (n, 3, 2, 3)
    signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.float64) * h  # (4, 2)
    corners = np.einsum("cq,npqa->npca", signs, uv)  # (n, 3, 4, 3)
    reach = np.abs(corners).reshape(t.shape[0], -1, 3).max(axis=1)
    return reach + np.abs(shifts_to_mm(t, spacing_mm, shift_unit))


def reach_bound_mm(size: int, spacing_mm: float, max_rotation_deg: float, max_shift_mm: float) -> float:
    """Half-width (mm, along each world axis) of a box around the centre holding every pixel centre
    of the three planes for any rotation with each angle within ``+-max_rotation_deg`` and any
    shift with each component within ``+-max_shift_mm``.

    Uses ``|(R o)_a| <= min(|o|, o_a + |R - I| |o|)`` with ``|R - I| = 2 sin(phi / 2)`` and the total
    rotation angle ``phi <= 3 * max_rotation_deg``; in-plane offsets satisfy ``o_a <= h`` and
    ``|o| <= sqrt(2) h``.
    """
    h = plane_half_width_mm(size, spacing_mm)
    phi = np.deg2rad(min(3.0 * abs(float(max_rotation_deg)), 180.0))
    factor = min(np.sqrt(2.0), 1.0 + np.sqrt(2.0) * 2.0 * np.sin(phi / 2.0))
    return float(factor * h + abs(float(max_shift_mm)))


def pixel_world(centers_mm: np.ndarray, transforms: np.ndarray, size: int, spacing_mm: float,
                shift_unit: str = "px") -> np.ndarray:
    """World positions (mm, LPS) of every pixel centre: ``(n, 3 planes, size, size, 3)`` for lesion
    centres ``(n, 3)`` and transforms ``(n, 6)`` (the same geometry the sampler uses)."""
    c = np.asarray(centers_mm, dtype=np.float64).reshape(-1, 3)
    t = np.asarray(transforms, dtype=np.float64).reshape(-1, 6)
    uv = plane_world_axes(rotation_matrices(t[:, :3]))  # (n, 3, 2, 3)
    off = (np.arange(int(size)) - (int(size) - 1) / 2.0) * float(spacing_mm)
    pts = off[None, None, None, :, None] * uv[:, :, None, None, 0, :] + off[None, None, :, None, None] * uv[:, :, None, None, 1, :]
    return pts + (c + shifts_to_mm(t, spacing_mm, shift_unit))[:, None, None, None, :]
