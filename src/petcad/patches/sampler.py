"""Tri-planar 2.5D patches by trilinear interpolation in physical space (a compiled numba kernel).

For patch ``t`` (lesion ``L``, transform ``T``) the world position of pixel ``(row, col)`` of
plane ``p`` is ``centre_L + R(T) @ ((col - h) s u_p + (row - h) s v_p) + shift(T)`` (see
:mod:`petcad.patches.geometry`); it is mapped to each modality's continuous voxel index
with that modality's own origin, spacing and direction, and interpolated trilinearly from
the lesion's cropped sub-volume. Voxels outside a volume take the fill value (CT -1024 HU,
PET 0 SUV, mask 0) in the interpolation. Because the map from (row, col) to voxel index is
affine, the kernel only needs a start index and two index steps per (patch, modality,
plane), computed by a small compiled function for the whole batch (with the reach of every
patch, checked against the crops). The kernel then visits the patches sorted by lesion, in
blocks of consecutive patches that a few threads claim from a shared counter (the compiled
code releases the GIL; no OpenMP); per row of a plane it first computes every pixel's voxel
offset and weights (vectorised), then gathers the 8 neighbours of each pixel and blends them.
docs/patches.md says what each step gained.
"""

from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

from petcad.errors import InputError
from petcad.patches._parallel import use_parallel
from petcad.patches.augment import warn_large_shifts
from petcad.patches.cache import FILL_VALUES, MODALITIES, LesionCache, _check_size
from petcad.patches.geometry import (
    PLANE_UV,
    PLANES,
    plane_half_width_mm,
    rotation_matrices,
    shifts_to_mm,
)

#: Channel names in output order (the first 6, or all 9 with the mask).
CHANNELS: tuple[str, ...] = tuple(f"{m}-{p}" for m in MODALITIES for p in PLANES)
CHANNELS_6: tuple[str, ...] = CHANNELS[:6]
CHANNELS_9: tuple[str, ...] = CHANNELS

#: Patches per block (consecutive in lesion order; one set of scratch rows per block).
_BLOCK = 8
#: Blocks per claim of a sampler thread.
_STEP = 2
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


@njit(fastmath=False, cache=True, inline="always")
def _plane_inside(data, off, ni, nj, b0, b1, b2, r0, r1, r2, c0, c1, c2, out, t, ch, qa, wa, wb, wc):  # pragma: no cover
    """One plane whose pixels all have their 8 neighbours inside the crop: no bounds checks.

    Per row, two passes: the first computes every pixel's voxel offset (int32) and its three
    weights into small per-thread scratch rows (branch-free arithmetic, which LLVM vectorises
    with AVX2/AVX-512); the second gathers the 8 neighbours and blends them (scalar loads with
    unsigned indices, which spares numba's negative-index wraparound). Truncation equals floor
    because every index is >= 0. Row starts are computed in float64, steps along a row in
    float32 (index error < 1e-5 voxel for crops under 1000 voxels). The arithmetic, and so every
    output value, is the same as the one-pass loop it replaced."""
    size = out.shape[2]
    ni32 = np.int32(ni)
    nij32 = np.int32(nj * ni)
    uni = np.uint64(ni)
    unij = np.uint64(nj * ni)
    one = np.uint64(1)
    plane = out[t, ch]
    s0 = np.float32(c0)
    s1 = np.float32(c1)
    s2 = np.float32(c2)
    for r in range(size):
        ri = np.float32(b0 + r * r0)
        rj = np.float32(b1 + r * r1)
        rk = np.float32(b2 + r * r2)
        for c in range(size):
            cf = np.float32(c)
            fi = ri + cf * s0
            fj = rj + cf * s1
            fk = rk + cf * s2
            i0 = np.int32(fi)
            j0 = np.int32(fj)
            k0 = np.int32(fk)
            wa[c] = fi - np.float32(i0)
            wb[c] = fj - np.float32(j0)
            wc[c] = fk - np.float32(k0)
            qa[c] = k0 * nij32 + j0 * ni32 + i0
        row = plane[r]
        for c in range(size):
            q = np.uint64(off + np.int64(qa[c]))
            wi = wa[c]
            wj = wb[c]
            wk = wc[c]
            v000 = data[q]
            v001 = data[q + one]
            v010 = data[q + uni]
            v011 = data[q + uni + one]
            q += unij
            v100 = data[q]
            v101 = data[q + one]
            v110 = data[q + uni]
            v111 = data[q + uni + one]
            a00 = v000 + wi * (v001 - v000)
            a01 = v010 + wi * (v011 - v010)
            a10 = v100 + wi * (v101 - v100)
            a11 = v110 + wi * (v111 - v110)
            e0 = a00 + wj * (a01 - a00)
            e1 = a10 + wj * (a11 - a10)
            row[np.uint64(c)] = e0 + wk * (e1 - e0)


@njit(fastmath=False, cache=True, inline="always")
def _plane_border(data, off, ni, nj, nk, fill, b0, b1, b2, r0, r1, r2, c0, c1, c2, out, t, ch):  # pragma: no cover
    """One plane reaching the crop border: neighbours outside the crop count as ``fill``."""
    size = out.shape[2]
    for r in range(size):
        for c in range(size):
            fi = b0 + r * r0 + c * c0
            fj = b1 + r * r1 + c * c1
            fk = b2 + r * r2 + c * c2
            i0f = math.floor(fi)
            j0f = math.floor(fj)
            k0f = math.floor(fk)
            wi = fi - i0f
            wj = fj - j0f
            wk = fk - k0f
            i0 = int(i0f)
            j0 = int(j0f)
            k0 = int(k0f)
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
                            acc += w * data[off + (kk * nj + jj) * ni + ii]
                        else:
                            acc += w * fill
            out[t, ch, r, c] = acc


@njit(fastmath=False, cache=True, inline="always")
def _one_patch(t, data, offsets, shapes, fills, lesion, base, drow, dcol, out, qa, wa, wb, wc):  # pragma: no cover
    """Fill ``out[t]``: every channel of patch ``t`` (``qa``, ``wa``, ``wb``, ``wc``: the thread's scratch rows)."""
    last = out.shape[2] - 1
    les = lesion[t]
    for m in range(base.shape[1]):
        off = offsets[les, m]
        ni = shapes[les, m, 0]
        nj = shapes[les, m, 1]
        nk = shapes[les, m, 2]
        for p in range(3):
            b0 = base[t, m, p, 0]
            b1 = base[t, m, p, 1]
            b2 = base[t, m, p, 2]
            r0 = drow[t, m, p, 0]
            r1 = drow[t, m, p, 1]
            r2 = drow[t, m, p, 2]
            c0 = dcol[t, m, p, 0]
            c1 = dcol[t, m, p, 1]
            c2 = dcol[t, m, p, 2]
            # the index is affine in (row, col): its extremes over the plane are at the corners
            lo0 = b0 + min(0.0, last * r0) + min(0.0, last * c0)
            hi0 = b0 + max(0.0, last * r0) + max(0.0, last * c0)
            lo1 = b1 + min(0.0, last * r1) + min(0.0, last * c1)
            hi1 = b1 + max(0.0, last * r1) + max(0.0, last * c1)
            lo2 = b2 + min(0.0, last * r2) + min(0.0, last * c2)
            hi2 = b2 + max(0.0, last * r2) + max(0.0, last * c2)
            if lo0 >= 0.0 and lo1 >= 0.0 and lo2 >= 0.0 and hi0 < ni - 1 and hi1 < nj - 1 and hi2 < nk - 1:
                _plane_inside(data, off, ni, nj, b0, b1, b2, r0, r1, r2, c0, c1, c2, out, t, m * 3 + p, qa, wa, wb, wc)
            else:
                _plane_border(data, off, ni, nj, nk, fills[m], b0, b1, b2, r0, r1, r2, c0, c1, c2, out, t, m * 3 + p)


@njit(fastmath=False, cache=True, inline="always")
def _block(b, block, order, data, offsets, shapes, fills, lesion, base, drow, dcol, out):  # pragma: no cover
    """Patches ``order[b * block : (b + 1) * block]``, with this block's scratch rows."""
    size = out.shape[2]
    qa = np.empty(size, np.int32)
    wa = np.empty(size, np.float32)
    wb = np.empty(size, np.float32)
    wc = np.empty(size, np.float32)
    for tt in range(b * block, min(order.shape[0], (b + 1) * block)):
        _one_patch(order[tt], data, offsets, shapes, fills, lesion, base, drow, dcol, out, qa, wa, wb, wc)


@njit(nogil=True, fastmath=False, cache=True)
def _trilinear_blocks(data, offsets, shapes, fills, lesion, order, base, drow, dcol, out, block, b0, b1):  # pragma: no cover
    """Blocks ``b0 .. b1 - 1`` of ``block`` consecutive patches of ``order`` (sorted by lesion, so
    that a crop stays in the core's cache), in the calling thread, without the GIL."""
    for b in range(b0, b1):
        _block(b, block, order, data, offsets, shapes, fills, lesion, base, drow, dcol, out)


def _default_threads() -> int:
    """Kernel threads: numba's configured count (``NUMBA_NUM_THREADS``, default the CPUs this process
    may use) in the process that first sampled; 1 in forked children (DataLoader workers, which are
    parallel already)."""
    return int(numba.config.NUMBA_NUM_THREADS) if use_parallel() else 1


def _pool(workers: int) -> ThreadPoolExecutor:
    """This process's pool of ``workers`` sampler threads (a forked child makes its own)."""
    pid = os.getpid()
    pool = _POOLS.get((pid, workers))
    if pool is None:
        for key in [k for k in _POOLS if k[0] != pid]:  # a forked parent's pool has no threads here
            del _POOLS[key]
        pool = _POOLS[(pid, workers)] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="petcad-sampler")
    return pool


def _run_kernel(args: tuple, n: int, threads: int) -> None:
    """Sample ``n`` patches (kernel arguments ``args``) on ``threads`` threads. The calling thread and
    ``threads - 1`` pool threads claim runs of ``_STEP`` blocks from one shared counter until none
    is left (dynamic scheduling: on a busy machine a thread that the OS pauses holds up only the
    blocks it has claimed, and no thread spins waiting for another)."""
    nb = -(-n // _BLOCK)
    threads = max(1, min(int(threads), -(-nb // _STEP)))
    if threads == 1:
        _trilinear_blocks(*args, _BLOCK, 0, nb)
        return
    claims = itertools.count(0, _STEP)  # next() on it is atomic under the GIL

    def work() -> None:
        for b0 in claims:
            if b0 >= nb:
                return
            _trilinear_blocks(*args, _BLOCK, b0, min(nb, b0 + _STEP))

    futures = [_pool(threads - 1).submit(work) for _ in range(threads - 1)]
    work()
    for f in futures:
        f.result()


@njit(fastmath=False, cache=True)
def _tables_kernel(rot, shift_mm, lesion, centers, origins, inverse, plane_uv, spacing, half, base, drow, dcol, reach):  # pragma: no cover
    """Per patch ``t``, modality ``m`` and plane ``p``: the continuous voxel index of pixel (0, 0)
    (``base``) and its steps per row (``drow``) and per column (``dcol``); and per patch the
    largest |world offset| (mm) from the lesion centre along X, Y, Z reached by the 12 plane
    corners plus the shift (``reach``, as :func:`petcad.patches.geometry.extent_mm`).
    The same sums, in the same order, as the numpy einsums they replaced."""
    n_mod = base.shape[1]
    uv = np.empty((3, 2, 3))
    rel = np.empty(3)
    for t in range(rot.shape[0]):
        les = lesion[t]
        for p in range(3):
            for q in range(2):
                for a in range(3):
                    uv[p, q, a] = rot[t, a, 0] * plane_uv[p, q, 0] + rot[t, a, 1] * plane_uv[p, q, 1] + rot[t, a, 2] * plane_uv[p, q, 2]
        for a in range(3):
            far = 0.0
            for p in range(3):
                for su in (-1.0, 1.0):
                    for sv in (-1.0, 1.0):
                        far = max(far, abs(su * half * uv[p, 0, a] + sv * half * uv[p, 1, a]))
            reach[t, a] = far + abs(shift_mm[t, a])
        for m in range(n_mod):
            for a in range(3):
                rel[a] = centers[les, a] + shift_mm[t, a] - origins[les, m, a]
            for a in range(3):
                ctr = inverse[les, m, a, 0] * rel[0] + inverse[les, m, a, 1] * rel[1] + inverse[les, m, a, 2] * rel[2]
                for p in range(3):
                    dc = spacing * (inverse[les, m, a, 0] * uv[p, 0, 0] + inverse[les, m, a, 1] * uv[p, 0, 1]
                                    + inverse[les, m, a, 2] * uv[p, 0, 2])
                    dr = spacing * (inverse[les, m, a, 0] * uv[p, 1, 0] + inverse[les, m, a, 1] * uv[p, 1, 1]
                                    + inverse[les, m, a, 2] * uv[p, 1, 2])
                    dcol[t, m, p, a] = dc
                    drow[t, m, p, a] = dr
                    base[t, m, p, a] = ctr - (half / spacing) * (dc + dr)


class PatchSampler:
    """Samples augmented tri-planar patches from a :class:`LesionCache`.

    Parameters
    ----------
    size : patch side in pixels (odd; default 51 as in the original study).
    spacing_mm : distance between pixel centres in mm (default 1.0).
    with_mask : add the three mask planes (9 channels instead of 6).
    shift_unit : ``"px"`` (default): the shift columns of a transform are patch pixels
        (``shift_mm = shift * spacing_mm``); ``"mm"``: they are millimetres.
    chunk : patches per kernel call in :meth:`sample_iter` (memory stays flat).
    threads : sampler threads per call (default None: ``NUMBA_NUM_THREADS``, i.e. the CPUs this
        process may use, in the process that first sampled; 1 in forked DataLoader workers).

    Output values are HU (CT) and SUV (PET), not normalised; mask channels are in [0, 1].
    """

    def __init__(self, size: int = 51, spacing_mm: float = 1.0, with_mask: bool = False,
                 shift_unit: str = "px", chunk: int = 512, threads: int | None = None) -> None:
        _check_size(size, spacing_mm)
        if shift_unit not in ("px", "mm"):
            raise InputError("shift_unit", f"must be 'px' or 'mm', got {shift_unit!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                    or threads < 1):
            raise InputError("threads", f"must be a positive number of threads or None, got {threads!r}")
        self.threads = None if threads is None else int(threads)
        self.size = int(size)
        self.spacing_mm = float(spacing_mm)
        self.with_mask = bool(with_mask)
        self.shift_unit = shift_unit
        self.chunk = int(chunk)

    @property
    def channels(self) -> tuple[str, ...]:
        return CHANNELS_9 if self.with_mask else CHANNELS_6

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def _tables(self, cache: LesionCache, lesion: np.ndarray, transforms: np.ndarray):
        """``(base, drow, dcol)``, each ``(n, M, 3 planes, 3)`` voxel-index tables, and the reach ``(n, 3)`` mm."""
        n, n_mod = lesion.shape[0], (3 if self.with_mask else 2)
        rot = rotation_matrices(transforms[:, :3])
        shift = shifts_to_mm(transforms, self.spacing_mm, self.shift_unit)
        base, drow, dcol = (np.empty((n, n_mod, 3, 3)) for _ in range(3))
        reach = np.empty((n, 3))
        _tables_kernel(rot, shift, lesion, cache.centers_mm, np.ascontiguousarray(cache.origins[:, :n_mod]),
                       np.ascontiguousarray(cache.inverse[:, :n_mod]), PLANE_UV, self.spacing_mm,
                       plane_half_width_mm(self.size, self.spacing_mm), base, drow, dcol, reach)
        return base, drow, dcol, reach

    def _check(self, cache: LesionCache, lesion_index, transforms) -> tuple[np.ndarray, np.ndarray]:
        lesion = np.asarray(lesion_index)
        if lesion.ndim != 1 or not np.issubdtype(lesion.dtype, np.integer):
            raise InputError("lesion_index", f"expected a 1-D integer array, got {lesion.dtype} {lesion.shape}")
        lesion = lesion.astype(np.int64, copy=False)
        t = np.asarray(transforms, dtype=np.float64)
        if t.ndim != 2 or t.shape != (lesion.shape[0], 6):
            raise InputError("transforms", f"expected shape ({lesion.shape[0]}, 6), got {t.shape}")
        if not np.all(np.isfinite(t)):
            raise InputError("transforms", "transforms must be finite")
        if lesion.size and (lesion.min() < 0 or lesion.max() >= len(cache)):
            raise InputError("lesion_index", f"indices must lie in [0, {len(cache)}), got {lesion.min()}..{lesion.max()}")
        if self.with_mask and not cache.with_mask:
            raise InputError("with_mask", "the cache was built without masks (LesionCache.from_cohort(..., with_mask=True))")
        if self.shift_unit == "px":
            warn_large_shifts(t)
        elif t.size:
            warn_large_shifts(t * np.array([1, 1, 1] + [1.0 / self.spacing_mm] * 3))
        if cache.shapes.size and int(cache.shapes.prod(axis=-1).max()) >= 2**31:
            raise InputError("LesionCache", "a crop holds 2^31 voxels or more; use a smaller size or spacing_mm")
        return lesion, t

    @staticmethod
    def _check_reach(cache: LesionCache, reach: np.ndarray) -> None:
        """Refuse transforms whose planes reach beyond the crops (``reach``: ``(n, 3)`` mm)."""
        far = float(reach.max()) if reach.size else 0.0
        if far > cache.reach_mm + 1e-6:
            raise InputError(
                "transforms",
                f"the planes reach {far:.1f} mm from the lesion centre but the cache holds "
                f"{cache.reach_mm:.1f} mm; build the LesionCache with a larger size, spacing_mm, "
                "max_rotation_deg or max_shift_mm",
            )

    def sample(self, cache: LesionCache, lesion_index: np.ndarray, transforms: np.ndarray,
               out: np.ndarray | None = None) -> np.ndarray:
        """Patches ``float32 (n, C, size, size)`` for lesions ``lesion_index`` ``(n,)`` under
        ``transforms`` ``(n, 6)`` (one kernel call). ``C`` is 6 or 9, in :attr:`channels` order."""
        lesion, t = self._check(cache, lesion_index, transforms)
        n = lesion.shape[0]
        shape = (n, self.n_channels, self.size, self.size)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
        if n == 0:
            return out
        base, drow, dcol, reach = self._tables(cache, lesion, t)
        self._check_reach(cache, reach)
        fills = np.array([FILL_VALUES[m] for m in MODALITIES[: (3 if self.with_mask else 2)]], dtype=np.float32)
        order = np.argsort(lesion, kind="stable")  # one lesion's crop stays in the core's cache
        args = (cache.data, cache.offsets, cache.shapes, fills, lesion, order, base, drow, dcol, out)
        _run_kernel(args, n, _default_threads() if self.threads is None else self.threads)
        return out

    def sample_iter(self, cache: LesionCache, lesion_index: np.ndarray, transforms: np.ndarray):
        """Yield ``(start, patches)`` chunks of :meth:`sample` of at most ``chunk`` patches each."""
        lesion = np.asarray(lesion_index)
        t = np.asarray(transforms, dtype=np.float64)
        for a in range(0, lesion.shape[0], self.chunk):
            yield a, self.sample(cache, lesion[a : a + self.chunk], t[a : a + self.chunk])


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) the sampling kernel, the index tables and the
    normalisation on tiny inputs, so that forked DataLoader workers inherit them compiled."""
    from petcad.patches.normalize import _standardize, _standardize_serial

    data = np.zeros(8, dtype=np.float32)
    z = np.zeros((1, 1, 3, 3))
    one = np.zeros(1, np.int64)
    args = (data, np.zeros((1, 1), np.int64), np.full((1, 1, 3), 2, np.int64), np.zeros(1, np.float32),
            one, one, z, z, z, np.empty((1, 3, 1, 1), np.float32), _BLOCK, 0, 1)
    _trilinear_blocks(*args)
    _tables_kernel(np.eye(3)[None], np.zeros((1, 3)), one, np.zeros((1, 3)), np.zeros((1, 1, 3)),
                   np.eye(3)[None, None], PLANE_UV, 1.0, 1.0, z.copy(), z.copy(), z.copy(), np.zeros((1, 3)))
    flat = np.zeros((1, 6, 4), np.float32)
    _standardize(flat, 1e-6)
    _standardize_serial(flat, 1e-6)
