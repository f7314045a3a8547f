"""Exact dense evaluation of the ``multiview`` network over a study, slab by slab.

What is computed: for every evaluated point ``c`` (a point of the evaluation lattice inside
the region of interest), the class probabilities that :class:`petcad.patches.sampler.PatchSampler`
(identity transform, centre ``c``) followed by the fixed normalisation and the network give
for the patch centred at ``c`` (``tests/test_segment_dense.py`` checks this to 1e-6 against the
patch path). How:

1. The evaluation lattice ``E`` has pitch ``g * s`` (``s`` = the model's patch spacing, ``g`` =
   ``stride`` in 1, 2, 4, 8). For a slab of ``E`` (a few z planes, cropped to the region's
   bounding box) the CT and PET are resampled once onto the finer lattice ``L`` of pitch ``s``
   reaching ``h = 25`` points beyond the slab (:func:`petcad.segment.lattice.resample_onto`,
   the sampler's trilinear rule and fill values) and scaled as in training.
2. Axial planes are windows of ``L``'s z planes; coronal and sagittal planes are windows of its
   y and x planes **with z reversed** (their image rows run towards -z). The stream runs over
   each plane image once with the a-trous rule of :meth:`petcad.models.networks._Stream.dense`;
   with ``g > 1`` the feature maps are subsampled by 2 after each pool whose following layers
   only read even offsets (exact: the outputs at the ``E`` points are unchanged, and everything
   after the first pool costs ``g^2`` times less); such a pool and its convolution run as one
   convolution of the space-to-depth image (:func:`_first_layer_subsampled`).
3. Each plane image is cropped to the bounding box of the region's points in it (rounded up so
   that images of equal size run as one batch); the last convolution runs only at the region's
   points, and the three 128-vectors of every point are fused (:meth:`MultiViewNet.fuse_dense`).

Memory is bounded by the slab: the resampled slab (2 x (slab g + 50) x Y x X float32), one batch of
plane images' activations (:attr:`DenseSegmenter.BATCH_PX` input pixels), and the (points x 384)
features of the slab.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from petcad.errors import InputError
from petcad.patches.normalize import fixed_normalize_planes
from petcad.segment.lattice import Lattice, resample_onto
from petcad.study import Volume

STRIDES = (1, 2, 4, 8)
HALF = 25  # (51 - 1) / 2: the window half-width in lattice points
CT_FILL, PET_FILL = -1024.0, 0.0  # the sampler's fill values (petcad.patches.cache.FILL_VALUES)


def _pool(x, d: int):
    """2 x 2 max-pool with stride 1 and dilation ``d`` (``F.max_pool2d(x, 2, 1, dilation=d)``, as a maximum
    of four shifted views: identical values, far faster on CPU)."""
    import torch

    m = torch.maximum(x[..., :-d, :], x[..., d:, :])  # separable: rows, then columns (two passes, not three)
    return torch.maximum(m[..., :-d], m[..., d:])


def _space_to_depth_kernel(weight):
    """The kernel that computes ``conv(weight)`` at the four positions of every 2 x 2 block of an image
    from its 2 x 2 space-to-depth form (:func:`torch.nn.functional.pixel_unshuffle`).

    ``weight`` ``(O, C, k, k)`` -> ``(4 O, 4 C, m, m)`` with ``m = ceil((k + 1) / 2)``; output group
    ``2 u + v`` (channels ``g O .. g O + O - 1``) is the convolution at block offset ``(u, v)``."""
    import torch

    o, c, k, _ = weight.shape
    m = -(-(k + 1) // 2)
    big = weight.new_zeros(4, o, c, 2 * m, 2 * m)
    for u in range(2):
        for v in range(2):
            big[2 * u + v, :, :, u : u + k, v : v + k] = weight
    # big[g, o, c, 2 a + p, 2 b + q] -> channel c * 4 + p * 2 + q (pixel_unshuffle's order), tap (a, b)
    big = big.view(4, o, c, m, 2, m, 2).permute(0, 1, 2, 4, 6, 3, 5)
    return big.reshape(4 * o, 4 * c, m, m).contiguous()


def _first_layer_subsampled(conv, x):
    """``conv`` -> 2 x 2 max-pool (stride 1) -> every second row and column, in one pass.

    The kept pool outputs are the maxima of the convolution over the disjoint 2 x 2 blocks of its
    map. They are computed on the space-to-depth image: one convolution gives the four positions of
    each block as four channel groups (:func:`_space_to_depth_kernel`), the maximum over the groups
    is the pool, and the bias is added after it (a maximum commutes with adding a constant). Same
    values as the stride-1 path up to float rounding (the sums run in another order), without
    writing the full-resolution map (``tests/test_segment_dense.py`` checks it for every stride and
    odd and even sizes)."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    k = conv.weight.shape[-1]
    x = F.pad(x, (0, w % 2, 0, h % 2))  # the padded row / column never reaches a kept output
    y = F.conv2d(F.pixel_unshuffle(x, 2), _space_to_depth_kernel(conv.weight))
    n, _, a, b = y.shape
    o = conv.weight.shape[0]
    rows, cols = -(-(h - k) // 2), -(-(w - k) // 2)  # the stride-1 path's sizes after pool and subsampling
    y = torch.amax(y.reshape(n, 4, o, a, b)[:, :, :, :rows, :cols], dim=1)
    return y.add_(conv.bias.view(1, o, 1, 1))


def _trunk(stream, image, stride: int):
    """All but the last convolution of the stream, a-trous, subsampled by ``stride``; returns
    (activations, dilation of the last convolution in their grid)."""
    import torch.nn.functional as F

    from petcad.models.networks import LEAK

    if stride not in STRIDES:
        raise InputError("--stride", f"must be one of {', '.join(map(str, STRIDES))}, got {stride}")
    x, d, sub = image.contiguous(), 1, 1  # d: accumulated stride (input pixels); sub: subsampling so far
    for conv in stream.convs[:-1]:
        # conv -> pool -> (subsample) -> Leaky ReLU: the same values as the patch network's conv -> pool -> Leaky
        # ReLU at every window (a monotone activation commutes with the max and with subsampling)
        if sub < stride and d == sub:  # pool of dilation 1 followed by subsampling: the fused form
            x = _first_layer_subsampled(conv, x)
            sub *= 2
        else:
            x = _pool(F.conv2d(x, conv.weight, conv.bias, dilation=d // sub), d // sub)
        d *= 2
        x = F.leaky_relu_(x.contiguous(), LEAK)
    return x, d // sub


def stream_dense(stream, image, stride: int = 1):
    """The ``multiview`` stream at every ``stride``-th window of ``image`` ``(n, C, H, W)``.

    Returns ``(n, 128, ceil((H - 50) / stride), ceil((W - 50) / stride))``: output pixel ``(r, c)``
    equals the stream on the 51 x 51 window whose top-left corner is ``(stride r, stride c)``.
    ``stride = 1`` is :meth:`petcad.models.networks._Stream.dense`.
    """
    import torch.nn.functional as F

    from petcad.models.networks import LEAK

    x, dil = _trunk(stream, image, stride)
    last = stream.convs[-1]
    return F.leaky_relu(F.conv2d(x, last.weight, last.bias, dilation=dil), LEAK).contiguous()


def stream_dense_at(stream, images, stride: int, b: np.ndarray, r: np.ndarray, c: np.ndarray):
    """The stream's 128 outputs only at output pixels ``(b, r, c)`` of :func:`stream_dense` ``(images, stride)``.

    The first three layers run densely; the last convolution (80 % of the work per output) is a
    matrix product over the gathered 4 x 4 dilated neighbourhoods of the requested pixels only.
    Returns ``(len(b), 128)``.
    """
    import torch
    import torch.nn.functional as F

    from petcad.models.networks import LEAK

    x, dil = _trunk(stream, images, stride)
    last = stream.convs[-1]
    kh, kw = last.weight.shape[2:]
    dev = x.device
    bb = torch.from_numpy(np.asarray(b, dtype=np.int64)).to(dev)[:, None, None]
    rr = torch.from_numpy(np.asarray(r, dtype=np.int64)).to(dev)[:, None, None] + dil * torch.arange(kh, device=dev)[None, :, None]
    cc = torch.from_numpy(np.asarray(c, dtype=np.int64)).to(dev)[:, None, None] + dil * torch.arange(kw, device=dev)[None, None, :]
    patches = x.permute(0, 2, 3, 1)[bb, rr, cc]  # (n, kh, kw, C)
    w = last.weight.permute(0, 2, 3, 1).reshape(last.weight.shape[0], -1)  # (128, kh kw C)
    out = torch.addmm(last.bias, patches.reshape(patches.shape[0], -1), w.T)
    return F.leaky_relu(out, LEAK)


@dataclass
class DenseResult:
    """Probabilities ``(n_points, K)`` at ``points`` ``(n_points, 3)`` (E indices k, j, i) and timings."""

    points: np.ndarray
    probs: np.ndarray
    seconds: dict = field(default_factory=dict)
    slabs: int = 0


class DenseSegmenter:
    """Dense evaluation of a ``multiview`` network (6 channels, fixed normalisation) in slabs.

    ``spacing_mm``: the model's patch pixel spacing; ``stride``: evaluation lattice pitch in
    patch pixels (1, 2, 4 or 8); ``slab``: evaluation planes along z per slab; ``device``: a torch
    device; ``threads``: torch CPU threads (None = torch's choice).
    """

    def __init__(self, model, *, spacing_mm: float = 1.0, stride: int = 2, slab: int = 32, device="cpu",
                 threads: int | None = None):
        if getattr(model, "name", "") != "multiview":
            raise InputError("--model", f"dense segmentation needs the multiview network, got {getattr(model, 'name', model)!r}")
        if getattr(model, "per_plane", 2) != 2:
            raise InputError("--model", "dense segmentation needs a 6-channel (CT + PET) multiview network, not one with mask channels")
        if stride not in STRIDES:
            raise InputError("--stride", f"must be one of {', '.join(map(str, STRIDES))}, got {stride}")
        if slab < 1:
            raise InputError("--slab", f"must be at least 1, got {slab}")
        self.model = model
        self.spacing_mm = float(spacing_mm)
        self.stride = int(stride)
        self.slab = int(slab)
        self.device = device
        self.threads = threads

    @property
    def pitch_mm(self) -> float:
        return self.spacing_mm * self.stride

    def _slab_input(self, ct: Volume, pet: Volume, lat: Lattice, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Normalised (2, Z, Y, X) fine-lattice block for E indices ``lo..hi`` (inclusive, k j i)."""
        g, h = self.stride, HALF
        shape = tuple(int(v) for v in (hi - lo) * g + 2 * h + 1)
        fine = Lattice(origin=lat.origin + lat.pitch * lo[::-1].astype(np.float64) - h * self.spacing_mm,
                       pitch=self.spacing_mm, shape=shape)
        block = np.empty((2,) + shape, dtype=np.float32)
        resample_onto(ct, fine, CT_FILL, out=block[0])
        resample_onto(pet, fine, PET_FILL, out=block[1])
        fixed_normalize_planes(block[0], block[1])
        return block

    def _plane(self, img, plane: int, rel: np.ndarray, feats) -> None:
        """Stream features of one plane at the slab points ``rel`` (k, j, i relative to the slab's
        first E point) into ``feats[plane]``.

        ``img``: the slab's normalised fine block as a tensor (2, Z, Y, X). One plane image per
        z plane (axial), y row (coronal) or x column (sagittal) holding points, cut to the bounding
        box of its own points (rounded up to a multiple of :attr:`ROUND` lattice points) plus the
        25-pixel window half-width; images of equal size run through the stream as one batch."""
        import torch

        g, h = self.stride, HALF
        n_lat = [int(v) + 1 for v in rel.max(axis=0)]  # the slab block's extent in E points (k, j, i)
        row_ax, col_ax = {0: (1, 2), 1: (0, 2), 2: (0, 1)}[plane]
        owner = rel[:, plane]
        order = np.argsort(owner, kind="stable")
        cuts = np.flatnonzero(np.diff(owner[order])) + 1
        groups: dict[tuple[int, int], list] = {}
        for sel in np.split(order, cuts):
            r0, nr = self._span(rel[sel, row_ax], n_lat[row_ax])
            c0, nc = self._span(rel[sel, col_ax], n_lat[col_ax])
            groups.setdefault((nr, nc), []).append((sel, int(owner[sel[0]]), r0, c0))
        for (nr, nc), items in groups.items():
            fine_px = ((nr - 1) * g + 2 * h + 1) * ((nc - 1) * g + 2 * h + 1)
            per_batch = max(1, self.BATCH_PX // fine_px)
            for a in range(0, len(items), per_batch):
                part = items[a : a + per_batch]
                ims, b, rows, cols = [], [], [], []
                for n, (sel, at, r0, c0) in enumerate(part):
                    rs = slice(r0 * g, (r0 + nr - 1) * g + 2 * h + 1)
                    cs = slice(c0 * g, (c0 + nc - 1) * g + 2 * h + 1)
                    if plane == 0:
                        ims.append(img[:, at * g + h, rs, cs])
                        rows.append(rel[sel, 1] - r0)
                    else:  # coronal and sagittal rows run towards -z
                        ims.append((img[:, rs, at * g + h, cs] if plane == 1 else img[:, rs, cs, at * g + h]).flip(1))
                        rows.append(r0 + nr - 1 - rel[sel, 0])
                    cols.append(rel[sel, col_ax] - c0)
                    b.append(np.full(len(sel), n, np.int64))
                out = stream_dense_at(self.model.stream, torch.stack(ims), g, np.concatenate(b), np.concatenate(rows),
                                      np.concatenate(cols))
                sel_all = np.concatenate([it[0] for it in part])
                feats[plane, torch.from_numpy(sel_all).to(feats.device)] = out

    ROUND = 8  # plane-image extents are rounded up to this many lattice points, so that images batch together
    BATCH_PX = 1 << 21  # fine pixels per stream batch (bounds the activations: about 270 MB at 32 channels)

    def _span(self, idx: np.ndarray, n: int) -> tuple[int, int]:
        """(first, count) of a run of lattice indices covering ``idx``, ``count`` rounded up to
        :attr:`ROUND` without leaving ``0 .. n - 1``."""
        lo, hi = int(idx.min()), int(idx.max())
        count = min(-(-(hi - lo + 1) // self.ROUND) * self.ROUND, n)
        return min(lo, n - count), count

    def evaluate(self, ct: Volume, pet: Volume, lat: Lattice, roi: np.ndarray, progress=None) -> DenseResult:
        """Probabilities at every ``True`` point of ``roi`` (a bool array of ``lat.shape``; ``lat.pitch``
        must equal :attr:`pitch_mm`)."""
        import torch

        from petcad.models.train import torch_settings

        if roi.shape != tuple(lat.shape):
            raise ValueError(f"roi shape {roi.shape} != lattice shape {lat.shape}")
        if abs(lat.pitch - self.pitch_mm) > 1e-9:
            raise ValueError(f"lattice pitch {lat.pitch} mm != spacing x stride {self.pitch_mm} mm")
        all_pts = np.argwhere(roi)
        n_cls = int(self.model.head.out_features)
        probs = np.zeros((len(all_pts), n_cls), dtype=np.float32)
        secs = {"resample": 0.0, "network": 0.0}
        model = self.model.to(self.device).eval()
        slabs = 0
        with torch_settings(self.threads, deterministic=False), torch.inference_mode():
            z_of = all_pts[:, 0]
            for za in range(0, lat.shape[0], self.slab):
                sel = np.flatnonzero((z_of >= za) & (z_of < za + self.slab))
                if len(sel) == 0:
                    continue
                slabs += 1
                pts = all_pts[sel]
                lo, hi = pts.min(axis=0), pts.max(axis=0)
                t0 = time.perf_counter()
                block = torch.from_numpy(self._slab_input(ct, pet, lat, lo, hi)).to(self.device)
                t1 = time.perf_counter()
                rel = pts - lo
                feats = torch.empty((3, len(rel), model.stream.out_channels), device=self.device)
                for plane in range(3):
                    self._plane(block, plane, rel, feats)
                logits = model.fuse_dense(feats[0], feats[1], feats[2])
                probs[sel] = torch.softmax(logits.float(), dim=1).cpu().numpy()
                secs["resample"] += t1 - t0
                secs["network"] += time.perf_counter() - t1
                if progress is not None:
                    progress(len(sel))
        return DenseResult(points=all_pts, probs=probs, seconds=secs, slabs=slabs)
