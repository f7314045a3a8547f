"""The world lattice of the patch pixels and exact trilinear resampling onto it.

A 2.5D patch of pixel spacing ``s`` (identity transform) samples its planes at world points
``centre + (col - h) s u + (row - h) s v`` with ``u, v`` among +x, +y, -z (see
:mod:`petcad.patches.geometry`). If the centre lies on a world lattice of pitch ``s`` whose
axes are the world axes, every pixel of its three planes is a point of the same lattice. So
an image resampled once onto the lattice (trilinear, the sampler's fill value outside the
volume) holds every patch of every lattice point: the axial plane of point ``(K, J, I)`` is
``L[K, J-h:J+h+1, I-h:I+h+1]``, and the coronal and sagittal planes are the same windows of
the z-flipped lattice (their rows run towards -z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from petcad.study import Volume


@dataclass(frozen=True)
class Lattice:
    """Axis-aligned world lattice: point ``(k, j, i)`` (array order) lies at ``origin + pitch * (i, j, k)`` mm."""

    origin: np.ndarray  # (3,) world mm (x, y, z) of point (0, 0, 0)
    pitch: float  # mm
    shape: tuple[int, int, int]  # (nz, ny, nx)

    def world(self, kji: np.ndarray) -> np.ndarray:
        """World mm ``(..., 3)`` of lattice indices ``(..., 3)`` given in (k, j, i) order."""
        kji = np.asarray(kji, dtype=np.float64)
        return self.origin + self.pitch * kji[..., ::-1]

    def volume(self, array: np.ndarray) -> Volume:
        """``array`` (this lattice's shape) as a :class:`Volume` (identity direction)."""
        return Volume(array=array, origin=np.asarray(self.origin, float), spacing=np.full(3, float(self.pitch)))

    def sub(self, lo_kji, shape) -> "Lattice":
        """The part starting at index ``lo_kji`` with ``shape`` (may reach outside this one)."""
        lo = np.asarray(lo_kji, dtype=np.float64)
        return Lattice(origin=self.origin + self.pitch * lo[::-1], pitch=self.pitch, shape=tuple(int(v) for v in shape))


def covering_lattice(vol: Volume, pitch: float, anchor_mm: np.ndarray | None = None) -> Lattice:
    """The lattice of pitch ``pitch`` through ``anchor_mm`` (default: ``vol``'s first voxel centre)
    whose points cover ``vol``'s voxel-centre bounding box."""
    lo, hi = vol.bounds_world()
    anchor = lo if anchor_mm is None else np.asarray(anchor_mm, dtype=np.float64)
    a = np.floor((lo - anchor) / pitch + 1e-9)
    b = np.ceil((hi - anchor) / pitch - 1e-9)
    origin = anchor + a * pitch
    n = (b - a + 1).astype(np.int64)
    return Lattice(origin=origin, pitch=float(pitch), shape=(int(n[2]), int(n[1]), int(n[0])))


@njit(parallel=True, cache=True)
def _resample(data, base, dx, dy, dz, fill, out):  # pragma: no cover - compiled
    """``out[z, y, x]`` = trilinear value of ``data`` at continuous index ``base + x dx + y dy + z dz``
    (i, j, k order); neighbours outside ``data`` count as ``fill`` (the sampler's border rule)."""
    nk, nj, ni = data.shape
    for z in prange(out.shape[0]):
        for y in range(out.shape[1]):
            for x in range(out.shape[2]):
                fi = base[0] + x * dx[0] + y * dy[0] + z * dz[0]
                fj = base[1] + x * dx[1] + y * dy[1] + z * dz[1]
                fk = base[2] + x * dx[2] + y * dy[2] + z * dz[2]
                i0f = np.floor(fi)
                j0f = np.floor(fj)
                k0f = np.floor(fk)
                wi = fi - i0f
                wj = fj - j0f
                wk = fk - k0f
                i0 = int(i0f)
                j0 = int(j0f)
                k0 = int(k0f)
                if i0 >= 0 and j0 >= 0 and k0 >= 0 and i0 + 1 < ni and j0 + 1 < nj and k0 + 1 < nk:
                    a00 = data[k0, j0, i0] + wi * (data[k0, j0, i0 + 1] - data[k0, j0, i0])
                    a01 = data[k0, j0 + 1, i0] + wi * (data[k0, j0 + 1, i0 + 1] - data[k0, j0 + 1, i0])
                    a10 = data[k0 + 1, j0, i0] + wi * (data[k0 + 1, j0, i0 + 1] - data[k0 + 1, j0, i0])
                    a11 = data[k0 + 1, j0 + 1, i0] + wi * (data[k0 + 1, j0 + 1, i0 + 1] - data[k0 + 1, j0 + 1, i0])
                    e0 = a00 + wj * (a01 - a00)
                    e1 = a10 + wj * (a11 - a10)
                    out[z, y, x] = e0 + wk * (e1 - e0)
                    continue
                acc = 0.0
                for dk in range(2):
                    kk = k0 + dk
                    w_k = wk if dk == 1 else 1.0 - wk
                    for dj in range(2):
                        jj = j0 + dj
                        w_jk = w_k * (wj if dj == 1 else 1.0 - wj)
                        for di in range(2):
                            ii = i0 + di
                            w = w_jk * (wi if di == 1 else 1.0 - wi)
                            if 0 <= ii < ni and 0 <= jj < nj and 0 <= kk < nk:
                                acc += w * data[kk, jj, ii]
                            else:
                                acc += w * fill
                out[z, y, x] = acc


def resample_onto(vol: Volume, lat: Lattice, fill: float, out: np.ndarray | None = None) -> np.ndarray:
    """``vol`` trilinearly interpolated at every point of ``lat`` (float32, ``lat.shape``); points whose
    neighbours fall outside ``vol`` blend in ``fill``, exactly as :class:`petcad.patches.sampler.PatchSampler`."""
    inv = np.linalg.inv(vol.direction * vol.spacing[None, :])
    base = inv @ (np.asarray(lat.origin, float) - vol.origin)
    steps = inv * lat.pitch  # column a = index step per lattice step along world axis a
    if out is None:
        out = np.empty(lat.shape, dtype=np.float32)
    data = vol.array if vol.array.dtype == np.float32 else vol.array.astype(np.float32)
    _resample(np.ascontiguousarray(data), base, np.ascontiguousarray(steps[:, 0]), np.ascontiguousarray(steps[:, 1]),
              np.ascontiguousarray(steps[:, 2]), float(fill), out)
    return out
