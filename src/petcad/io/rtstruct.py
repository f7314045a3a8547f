"""RTSTRUCT: list the ROIs of a structure set, rasterise one onto an image grid.

Contours are taken in physical space (mm, LPS) and rasterised onto any
:class:`~petcad.study.Volume` grid (CT or PET) whose slices are parallel to the
contour planes.

Pixel-inclusion rules
---------------------
``inclusion="centre"`` (the default) -- a voxel belongs to the ROI when its
**centre** lies inside the ROI's structure,
where the structure is the union over contour planes of the plane's region
times a slab of the contour-plane spacing centred on the plane:

* *along the slice normal*: a voxel takes the contours of the nearest contour
  plane when its centre is within half the ROI's contour-plane spacing (the
  median gap between its planes; for a one-plane ROI, half the image's slice
  spacing) of that plane; otherwise it is outside;
* *in the plane*: the even-odd rule over **all** CLOSED_PLANAR contours of that
  plane together (a contour inside another is a hole; two separate contours are
  two islands); a centre exactly on an edge follows the half-open crossing
  rule (edges are counted from their lower end, so lower-left boundaries are
  inside and upper-right ones outside).

``inclusion="touch"`` -- a voxel belongs to the ROI when its **closed box
touches or overlaps** the closed structure (conservative, "supercover"
rasterisation: every voxel the structure reaches, a shared face or corner
included, to :data:`TOUCH_TOLERANCE_VOXELS`):

* *along the slice normal*: a slice takes the union of the planes whose slab
  (plane +- half the contour-plane spacing, as above) meets the slice's slab
  (centre +- half the image's slice spacing). When the planes sit on slice
  centres one plane apart, a slice thus takes its own plane and both
  neighbours', and the first and last planes reach one slice beyond them by
  face contact;
* *in the plane*: a pixel is in when its centre is inside (even-odd, as above)
  or any contour edge touches its square.

POINT and OPEN_PLANAR contours enclose nothing and are ignored (an ROI with only
those is refused). Contours must lie in planes parallel to the image slices
(within 0.1 voxel); otherwise :class:`~petcad.errors.InputError`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from petcad.errors import InputError
from petcad.study import Volume

RTSTRUCT_SOP = "1.2.840.10008.5.1.4.1.1.481.3"
#: Largest spread of a contour along the image's slice normal, in voxels, for it to count as in-plane.
PLANE_TOLERANCE_VOXELS = 0.1
#: The pixel-inclusion rules of :func:`rasterise_roi`; the first is the default.
INCLUSION_RULES = ("centre", "touch")
#: ``"touch"``: a point this close (in voxels) to a voxel's border counts as on it.
TOUCH_TOLERANCE_VOXELS = 1e-6


@dataclass
class ROI:
    """One ROI of a structure set: its number, name and closed contours (each ``(n, 3)`` mm LPS)."""

    number: int
    name: str
    frame_of_reference_uid: str
    contours: list[np.ndarray] = field(default_factory=list, repr=False)
    n_ignored: int = 0  # POINT / OPEN_PLANAR contours


@dataclass
class StructureSet:
    """The ROIs of one RTSTRUCT file, the frame of reference and the series it references."""

    path: Path
    frame_of_reference_uid: str
    referenced_series_uids: tuple[str, ...]
    rois: list[ROI]

    def labels(self) -> list[tuple[int, str]]:
        return [(r.number, r.name) for r in self.rois]

    def roi(self, number: int) -> ROI:
        for r in self.rois:
            if r.number == number:
                return r
        raise InputError(self.path, f"no ROI number {number} (ROIs: {_names(self.labels())})")


def _names(labels) -> str:
    return ", ".join(f"{n} '{s}'" for n, s in labels) or "none"


def is_rtstruct(ds) -> bool:
    return str(ds.get("SOPClassUID", "")) == RTSTRUCT_SOP or str(ds.get("Modality", "")) == "RTSTRUCT"


def read_structure_set(path: str | os.PathLike, *, contours: bool = True) -> StructureSet:
    """Read an RTSTRUCT file: ROIs with names, numbers and (``contours=True``) closed contours."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        ds = pydicom.dcmread(str(path))
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(path, f"not a readable DICOM file ({type(exc).__name__})") from None
    if not is_rtstruct(ds):
        raise InputError(path, f"not an RTSTRUCT (Modality {ds.get('Modality', '?')})")
    for_uids, series_uids = [], []
    for item in ds.get("ReferencedFrameOfReferenceSequence", []):
        for_uids.append(str(item.get("FrameOfReferenceUID", "")))
        for study in item.get("RTReferencedStudySequence", []):
            for ser in study.get("RTReferencedSeriesSequence", []):
                series_uids.append(str(ser.get("SeriesInstanceUID", "")))
    rois: dict[int, ROI] = {}
    for item in ds.get("StructureSetROISequence", []):
        num = int(item.ROINumber)
        rois[num] = ROI(number=num, name=str(item.get("ROIName", "") or f"ROI {num}"),
                        frame_of_reference_uid=str(item.get("ReferencedFrameOfReferenceUID", "") or ""))
    if not rois:
        raise InputError(path, "RTSTRUCT has no ROIs (empty StructureSetROISequence)")
    if contours:
        for rc in ds.get("ROIContourSequence", []):
            num = int(rc.get("ReferencedROINumber", -1))
            if num not in rois:
                continue
            for c in rc.get("ContourSequence", []):
                kind = str(c.get("ContourGeometricType", "CLOSED_PLANAR"))
                data = c.get("ContourData", None)
                if kind != "CLOSED_PLANAR" or data is None or len(data) < 9:
                    rois[num].n_ignored += 1
                    continue
                pts = np.asarray([float(v) for v in data], dtype=np.float64)
                if pts.size % 3:
                    raise InputError(path, f"ROI {num}: ContourData has {pts.size} values, not a multiple of 3")
                rois[num].contours.append(pts.reshape(-1, 3))
    main_for = for_uids[0] if for_uids else ""
    for r in rois.values():
        if not r.frame_of_reference_uid:
            r.frame_of_reference_uid = main_for
    return StructureSet(path=path, frame_of_reference_uid=main_for or next(iter(rois.values())).frame_of_reference_uid,
                        referenced_series_uids=tuple(dict.fromkeys(series_uids)),
                        rois=sorted(rois.values(), key=lambda r: r.number))


def list_rois(path: str | os.PathLike) -> list[tuple[int, str]]:
    """``[(ROINumber, ROIName), ...]`` of an RTSTRUCT file (contours not parsed)."""
    return read_structure_set(path, contours=False).labels()


def rasterise_roi(roi: ROI, like: Volume, *, where: str | os.PathLike = "", inclusion: str = "centre") -> np.ndarray:
    """The ROI as a uint8 array of ``like``'s shape ``[k, j, i]`` (see the module's inclusion rules).

    ``inclusion`` is ``"centre"`` (the default) or ``"touch"``. Raises InputError
    when the rule is unknown, the ROI has no closed contour, a contour is not
    parallel to ``like``'s slices, or no voxel of ``like`` is inside.
    """
    if inclusion not in INCLUSION_RULES:
        raise InputError(where or "inclusion", f"unknown RTSTRUCT inclusion rule {inclusion!r} "
                         f"(choose {' or '.join(INCLUSION_RULES)})")
    label = f"ROI {roi.number} '{roi.name}'"
    if not roi.contours:
        extra = f" ({roi.n_ignored} POINT/OPEN_PLANAR contours ignored)" if roi.n_ignored else ""
        raise InputError(where, f"{label} is empty: no closed contour{extra}")
    nk, nj, ni = like.array.shape
    ijk = [like.world_to_index(c) for c in roi.contours]
    spread = max(float(np.ptp(p[:, 2])) for p in ijk)
    if spread > PLANE_TOLERANCE_VOXELS:
        raise InputError(where, f"{label}: a contour spans {spread:.2f} slices of the image along its slice normal; "
                         "contours must lie in planes parallel to the image's slices (use an image with axial slices)")
    planes, pt, half = _contour_planes(ijk, float(like.spacing[2]))
    fill = _even_odd_fill if inclusion == "centre" else _touch_fill
    hit = _slices_of_planes(pt, half, nk, float(like.spacing[2]), inclusion)
    out = np.zeros((nk, nj, ni), dtype=np.uint8)
    for p in np.nonzero(hit.any(axis=0))[0]:
        out[hit[:, p]] |= fill([ijk[n][:, :2] for n in planes[p]], nj, ni)
    if not out.any():
        lo = np.min([c.min(axis=0) for c in roi.contours], axis=0)
        hi = np.max([c.max(axis=0) for c in roi.contours], axis=0)
        blo, bhi = like.bounds_world()
        raise InputError(where, f"{label}: contours lie entirely off the image grid (contours span "
                         f"{_box(lo, hi)} mm, the image {_box(blo, bhi)} mm)")
    return out


def _contour_planes(ijk: list[np.ndarray], dk_mm: float) -> tuple[list[list[int]], np.ndarray, float]:
    """Contours grouped into planes: ``(contour numbers per plane, plane positions in mm, half slab in mm)``.

    Positions are along the slice normal, measured from slice 0. The half slab is
    half the median gap between planes (one plane: half the image's slice spacing).
    """
    t = np.array([float(np.mean(p[:, 2])) for p in ijk]) * dk_mm
    planes: list[list[int]] = []
    plane_t: list[float] = []
    for n in np.argsort(t, kind="stable"):
        if plane_t and abs(t[n] - plane_t[-1]) < 0.01 + 0.01 * dk_mm:
            planes[-1].append(int(n))
        else:
            planes.append([int(n)])
            plane_t.append(float(t[n]))
    pt = np.array([np.mean(t[p]) for p in planes])
    half = 0.5 * (float(np.median(np.diff(pt))) if len(pt) > 1 else dk_mm)
    return planes, pt, half


def _slices_of_planes(pt: np.ndarray, half: float, nk: int, dk_mm: float, inclusion: str) -> np.ndarray:
    """Boolean ``[slice, plane]``: which planes' regions each image slice takes (see the inclusion rules)."""
    gap = np.abs(np.arange(nk)[:, None] * dk_mm - pt[None, :])
    if inclusion == "touch":  # the slice's closed slab meets the plane's closed slab
        return gap <= half + 0.5 * dk_mm + TOUCH_TOLERANCE_VOXELS * dk_mm
    nearest = np.argmin(gap, axis=1)  # ties go to the lower plane
    hit = np.zeros(gap.shape, dtype=bool)
    rows = np.arange(nk)
    hit[rows, nearest] = gap[rows, nearest] <= half + 1e-6
    return hit


def _box(lo, hi) -> str:
    return " ".join(f"{a} {lo[n]:.1f}..{hi[n]:.1f}" for n, a in enumerate("xyz"))


def _even_odd_fill(polys: list[np.ndarray], nj: int, ni: int) -> np.ndarray:
    """Voxel centres ``(i, j)`` integer inside the polygons (continuous ``(i, j)`` vertices), even-odd rule.

    Scanline: each edge crossing the row ``y = j`` (half-open in y) at ``x``
    toggles every column ``i > x``; a centre is inside when toggled an odd number
    of times. All polygons of the plane share one count, which is the even-odd
    rule over their union (holes and islands).
    """
    acc = np.zeros((nj, ni + 1), dtype=np.int32)
    for p in polys:
        x0, y0 = p[:, 0], p[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
        # rows j with lo <= j < hi  <=>  (y0 <= j) != (y1 <= j)
        j_first = np.ceil(lo).astype(np.int64)
        j_end = np.ceil(hi).astype(np.int64)
        j_first = np.maximum(j_first, 0)
        j_end = np.minimum(j_end, nj)
        count = np.maximum(j_end - j_first, 0)
        if not count.any():
            continue
        edge = np.repeat(np.arange(len(x0)), count)
        offs = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        rows = j_first[edge] + offs
        xe0, ye0, xe1, ye1 = x0[edge], y0[edge], x1[edge], y1[edge]
        x = xe0 + (rows - ye0) * (xe1 - xe0) / (ye1 - ye0)
        cols = np.clip(np.floor(x).astype(np.int64) + 1, 0, ni)
        np.add.at(acc, (rows, cols), 1)
    return (np.cumsum(acc[:, :ni], axis=1) & 1).astype(np.uint8)


def _touch_fill(polys: list[np.ndarray], nj: int, ni: int) -> np.ndarray:
    """Pixels ``(i, j)`` whose closed square ``[i-0.5, i+0.5] x [j-0.5, j+0.5]`` meets the even-odd region.

    A square meets the closed region when its centre is inside (:func:`_even_odd_fill`)
    or a contour edge touches it (otherwise the square lies wholly in or wholly out
    of the region). Each edge is cut at every pixel-border line it crosses; each piece
    then lies in one closed square, which holds both ends of the piece, so the squares
    holding the vertices and the cut points (a point on a border, to
    :data:`TOUCH_TOLERANCE_VOXELS`, is in the squares on both sides) are exactly the
    squares the edge touches.
    """
    out = _even_odd_fill(polys, nj, ni).astype(bool)
    pts = np.concatenate([_edge_points(p, (ni, nj)) for p in polys])
    tol = TOUCH_TOLERANCE_VOXELS
    i_lo, i_hi = np.ceil(pts[:, 0] - 0.5 - tol), np.floor(pts[:, 0] + 0.5 + tol)
    j_lo, j_hi = np.ceil(pts[:, 1] - 0.5 - tol), np.floor(pts[:, 1] + 0.5 + tol)
    for i in (i_lo, i_hi):
        for j in (j_lo, j_hi):
            ok = (i >= 0) & (i < ni) & (j >= 0) & (j < nj)
            out[j[ok].astype(np.int64), i[ok].astype(np.int64)] = True
    return out.astype(np.uint8)


def _edge_points(p: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(n, 2)`` points of a closed polygon's edges: its vertices and where the edges cross pixel-border lines.

    ``size`` is the grid's ``(ni, nj)``: only border lines from -0.5 to n - 0.5 are cut at.
    """
    a = p[:, :2]
    d = np.roll(a, -1, axis=0) - a
    ts = [np.zeros(len(a))]
    edges = [np.arange(len(a))]
    for ax in (0, 1):  # border lines x = m + 0.5 (ax 0) and y = m + 0.5 (ax 1), only those near the grid
        lo = np.minimum(a[:, ax], a[:, ax] + d[:, ax])
        hi = np.maximum(a[:, ax], a[:, ax] + d[:, ax])
        first = np.maximum(np.ceil(lo - 0.5), -1)
        last = np.minimum(np.floor(hi - 0.5), size[ax] - 1)
        count = np.where(d[:, ax] != 0, np.maximum(last - first + 1, 0), 0).astype(np.int64)
        e = np.repeat(np.arange(len(a)), count)
        m = first[e] + np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        ts.append((m + 0.5 - a[e, ax]) / d[e, ax])
        edges.append(e)
    t, e = np.concatenate(ts), np.concatenate(edges)
    return a[e] + t[:, None] * d[e]


def rtstruct_mask(
    path: str | os.PathLike,
    number: int,
    like: Volume,
    *,
    frame_of_reference_uid: str | None = None,
    inclusion: str = "centre",
) -> Volume:
    """ROI ``number`` of the RTSTRUCT at ``path`` as a uint8 0/1 :class:`Volume` on ``like``'s grid.

    ``frame_of_reference_uid`` is ``like``'s (when it is DICOM): a structure set
    in another frame of reference raises InputError. ``inclusion``: ``"centre"``
    (default) or ``"touch"`` (see the module docstring).
    """
    ss = read_structure_set(path)
    roi = ss.roi(number)
    check_frame(path, roi.frame_of_reference_uid or ss.frame_of_reference_uid, frame_of_reference_uid)
    arr = rasterise_roi(roi, like, where=path, inclusion=inclusion)
    outside = sum(int(np.count_nonzero(~like.contains(c))) for c in roi.contours)
    if outside:
        total = sum(len(c) for c in roi.contours)
        warnings.warn(f"{path}: ROI {roi.number} '{roi.name}': {outside} of {total} contour points lie outside the "
                      "image; the mask is cut at the image border", stacklevel=2)
    if roi.n_ignored:
        warnings.warn(f"{path}: ROI {roi.number}: {roi.n_ignored} POINT/OPEN_PLANAR contours ignored", stacklevel=2)
    return Volume(array=arr, origin=like.origin.copy(), spacing=like.spacing.copy(), direction=like.direction.copy())


def check_frame(path, mask_uid: str | None, image_uid: str | None) -> None:
    """InputError when both frame-of-reference UIDs are known and differ."""
    if mask_uid and image_uid and mask_uid != image_uid:
        raise InputError(path, f"references FrameOfReferenceUID {mask_uid}, but the image is in {image_uid}: "
                         "the mask was drawn on another patient frame")
