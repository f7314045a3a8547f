"""DICOM Segmentation (SEG) objects through highdicom: list segments, read one onto a grid, write one.

Reading (:func:`read_segment`): highdicom decodes the frames (bit-packed binary
or fractional, any frame order, sparse frames: only frames holding the segment
are stored) and stacks them into a volume; that volume is placed on the image
grid you give (CT or PET) by nearest-neighbour resampling in physical space
(SimpleITK). A fractional segment is inside where its fraction is >= 0.5.

Writing (:func:`write_seg`): a label map (any grid) is sampled nearest-neighbour
at the centre of every pixel of every slice of a DICOM source series (at the
slices' true positions, so a series with slightly irregular spacing is matched
exactly) and written as a SEG that references the series' SOPInstanceUIDs,
SeriesInstanceUID, StudyInstanceUID and FrameOfReferenceUID, so a viewer opens it
on that series. Label value ``n`` is segment number ``n``.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from petcad.errors import InputError
from petcad.study import Volume

SEG_SOP = "1.2.840.10008.5.1.4.1.1.66.4"
#: Relative variation of the spacing between SEG frames accepted when stacking them (as io/dicom.py).
SEG_SPACING_RTOL = 0.05


@dataclass(frozen=True)
class SegInfo:
    """What a SEG holds: its segments ``[(number, label)]``, type and frame of reference."""

    path: Path
    segments: tuple[tuple[int, str], ...]
    segmentation_type: str  # BINARY, FRACTIONAL or LABELMAP
    frame_of_reference_uid: str
    referenced_series_uids: tuple[str, ...]


def is_seg(ds) -> bool:
    return str(ds.get("SOPClassUID", "")) == SEG_SOP or str(ds.get("Modality", "")) == "SEG"


def _highdicom(where):
    """The highdicom module, or InputError saying how to install it (it is the optional extra ``seg``)."""
    try:
        import highdicom
    except ImportError:
        raise InputError(where, "DICOM SEG needs highdicom: pip install 'petcad[seg]'") from None
    return highdicom


def _open(path: str | os.PathLike):
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(str(path))
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(path, f"not a readable DICOM file ({type(exc).__name__})") from None
    if not is_seg(ds):
        raise InputError(path, f"not a DICOM SEG (Modality {ds.get('Modality', '?')})")
    hd = _highdicom(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return hd.seg.Segmentation.from_dataset(ds, copy=False)
    except (ValueError, AttributeError, KeyError, TypeError, IndexError) as exc:
        raise InputError(path, f"malformed DICOM SEG ({type(exc).__name__}: {str(exc)[:160]})") from None


def _info(seg, path: Path) -> SegInfo:
    segments = tuple((int(n), str(seg.get_segment_description(n).segment_label)) for n in seg.segment_numbers)
    series = []
    for item in seg.get("ReferencedSeriesSequence", []):
        series.append(str(item.get("SeriesInstanceUID", "")))
    return SegInfo(path=path, segments=segments, segmentation_type=str(seg.segmentation_type.value),
                   frame_of_reference_uid=str(seg.get("FrameOfReferenceUID", "") or ""),
                   referenced_series_uids=tuple(series))


def seg_info(path: str | os.PathLike) -> SegInfo:
    """Segments, type and frame of reference of a SEG file."""
    return _info(_open(path), Path(path))


def list_segments(path: str | os.PathLike) -> list[tuple[int, str]]:
    """``[(SegmentNumber, SegmentLabel), ...]`` of a SEG file."""
    return list(seg_info(path).segments)


def _hd_to_volume(vol) -> Volume:
    """A highdicom Volume (axes slice, row, column) as a petcad Volume (array [k, j, i] = same order)."""
    arr = np.asarray(vol.array)
    if arr.ndim == 4:
        arr = arr[..., 0]
    aff = np.asarray(vol.affine, dtype=np.float64)
    cols = [aff[:3, 2], aff[:3, 1], aff[:3, 0]]  # i = column, j = row, k = slice
    spacing = np.array([np.linalg.norm(c) for c in cols])
    direction = np.stack([c / s for c, s in zip(cols, spacing)], axis=1)
    return Volume(array=np.ascontiguousarray(arr), origin=aff[:3, 3], spacing=spacing, direction=direction)


def read_segment(
    path: str | os.PathLike,
    segment: int | str | None,
    like: Volume,
    *,
    frame_of_reference_uid: str | None = None,
    threshold: float = 0.5,
) -> Volume:
    """One segment (a number, a label, or None for the only one) as a uint8 0/1 :class:`Volume` on ``like``'s grid.

    A fractional segment is inside where its fraction >= ``threshold``.
    ``frame_of_reference_uid`` is ``like``'s (when it is DICOM): a SEG in another
    frame of reference raises InputError, as do an unknown segment number, an
    empty segment and a segment that lies entirely off ``like``'s grid.
    """
    from petcad.io.masks import resolve_label
    from petcad.io.rtstruct import check_frame

    path = Path(path)
    seg = _open(path)
    info = _info(seg, path)
    number, name = resolve_label(path, info.segments, segment, "segment")
    label = f"segment {number} '{name}'"
    check_frame(path, info.frame_of_reference_uid, frame_of_reference_uid)
    src = _segment_volume(seg, number, path, label)
    inside = (src.array >= threshold).astype(np.uint8)
    if not inside.any():
        raise InputError(path, f"{label} is empty (no pixel{' at fraction >= %g' % threshold if info.segmentation_type == 'FRACTIONAL' else ''})")
    src.array = inside
    out = src if src.same_grid(like) else src.resample_to(like, interpolator="nearest", default_value=0)
    out.array = out.array.astype(np.uint8, copy=False)
    if not out.array.any():
        lo, hi = src.bounds_world()
        blo, bhi = like.bounds_world()
        raise InputError(path, f"{label} lies entirely off the image grid (segment frames span {_box(lo, hi)} mm, "
                         f"the image {_box(blo, bhi)} mm)")
    return out


def _segment_volume(seg, number: int, path: Path, label: str) -> Volume:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # one channel: 0/1 for BINARY and LABELMAP SEGs, the fraction in [0, 1] for FRACTIONAL ones
            vol = seg.get_volume(segment_numbers=[number], combine_segments=False, rescale_fractional=True,
                                 allow_missing_positions=True, rtol=SEG_SPACING_RTOL, dtype=np.float32)
    except (RuntimeError, ValueError, IndexError, KeyError) as exc:
        msg = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        if "no frames" in msg.lower() or "empty" in msg.lower():
            raise InputError(path, f"{label} is empty (no frames)") from None
        raise InputError(path, f"{label}: frames do not form a regular 3D volume ({msg})") from None
    if vol is None:
        raise InputError(path, f"{label} is empty (no frames)")
    return _hd_to_volume(vol)


def _box(lo, hi) -> str:
    return " ".join(f"{a} {lo[n]:.1f}..{hi[n]:.1f}" for n, a in enumerate("xyz"))


# ---------------------------------------------------------------------- writing
def _source_headers(source_series_dir: Path, series_uid: str | None, modality: str | None):
    """The source series' headers (pixel data deferred) sorted along the slice normal, and its info."""
    from petcad.io.dicom import select_series

    info, members = select_series(source_series_dir, series_uid=series_uid, modality=modality)
    heads = [d for _, d in members]
    for p, d in members:
        for name in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "Rows", "Columns"):
            if name not in d:
                raise InputError(p, f"missing {name}; cannot reference this image from a SEG")
    if not info.frame_of_reference_uid:
        raise InputError(source_series_dir, f"series {info.series_uid} has no FrameOfReferenceUID; a SEG cannot reference it")
    heads = [_with_type2(d) for d in heads]
    iop = np.array([float(v) for v in heads[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    pos = np.array([[float(v) for v in d.ImagePositionPatient] for d in heads])
    order = np.argsort(pos @ normal, kind="stable")
    return info, [heads[i] for i in order]


#: Type 2 patient / study attributes a SEG copies from its source (present, possibly empty); some
#: research series (e.g. the IBSI SUV DROs) leave them out.
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
          "StudyDate", "StudyTime", "ReferringPhysicianName")


def _with_type2(ds):
    """``ds`` (a copy when something is added) with missing type 2 attributes present and empty."""
    missing = [name for name in _TYPE2 if name not in ds]
    if not missing:
        return ds
    ds = copy.copy(ds)
    for name in missing:
        setattr(ds, name, "")
    return ds


def _sample_on_slices(labelmap: Volume, heads, *, fractional: bool) -> np.ndarray:
    """``labelmap`` sampled nearest-neighbour at the pixel centres of each source slice: ``(n, rows, cols)``."""
    n, rows, cols = len(heads), int(heads[0].Rows), int(heads[0].Columns)
    out = np.zeros((n, rows, cols), dtype=np.float32 if fractional else labelmap.array.dtype)
    inv = np.linalg.inv(labelmap.direction * labelmap.spacing[None, :])
    shape = np.array(labelmap.shape_ijk)
    rr, cc = np.mgrid[0:rows, 0:cols]
    for s, d in enumerate(heads):
        iop = np.array([float(v) for v in d.ImageOrientationPatient])
        ps = [float(v) for v in d.PixelSpacing]  # [between rows, between columns]
        ipp = np.array([float(v) for v in d.ImagePositionPatient])
        base = inv @ (ipp - labelmap.origin)
        u = inv @ (iop[:3] * ps[1])  # one column step
        v = inv @ (iop[3:] * ps[0])  # one row step
        idx = np.rint(base[None, None, :] + cc[..., None] * u + rr[..., None] * v).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < shape), axis=-1)
        if ok.any():
            i, j, k = idx[ok].T
            out[s][ok] = labelmap.array[k, j, i]
    return out


def write_seg(
    labelmap: Volume,
    segment_names: Mapping[int, str],
    source_series_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    fractional: bool = False,
    series_uid: str | None = None,
    modality: str | None = None,
    description: str = "petcad segmentation",
) -> Path:
    """Write a DICOM SEG of ``labelmap`` referencing the DICOM series in ``source_series_dir``.

    ``labelmap``: integer labels (0 background, ``n`` -> segment number ``n``);
    any grid: it is sampled nearest-neighbour on the source series' slices.
    ``segment_names`` names the labels; a label present but unnamed gets
    ``label n``; numbers between 1 and the largest label that are absent are
    written as empty segments so segment numbers equal label values.
    An all-zero label map with named segments gives a SEG of empty segments (a
    study without findings), with a warning. ``fractional=True``: ``labelmap`` holds one segment's fraction (probability)
    in [0, 1] and ``segment_names`` names exactly that one segment.
    ``series_uid`` / ``modality`` choose the series when the folder holds several.
    Bad input raises InputError and writes nothing; the file appears atomically.
    """
    from pydicom.sr.codedict import codes

    from petcad import __version__
    from petcad.io.atomic import atomic_path

    out = Path(out)
    hd = _highdicom(out)
    source_series_dir = Path(source_series_dir)
    if not source_series_dir.exists():
        raise InputError(source_series_dir, "no such file or folder")
    names = {int(k): str(v) for k, v in segment_names.items()}
    if any(k < 1 for k in names):
        raise InputError(None, f"segment numbers must be >= 1, got {sorted(names)}")
    info, heads = _source_headers(source_series_dir, series_uid, modality)
    if info.modality.upper() in ("SEG", "RTSTRUCT"):
        raise InputError(source_series_dir, f"series {info.series_uid} is a {info.modality}, not an image series")
    arr = np.asarray(labelmap.array)
    if fractional:
        if len(names) != 1:
            raise InputError(None, f"a fractional SEG holds one segment; got names for {len(names)}")
        vals = arr[np.isfinite(arr)]
        if not np.isfinite(arr).all() or vals.min() < 0 or vals.max() > 1:
            raise InputError(None, "fractional SEG: values must be fractions in [0, 1]")
        pixels = np.clip(_sample_on_slices(labelmap, heads, fractional=True), 0, 1)
        numbers = [next(iter(names))]
        if numbers[0] != 1:
            raise InputError(None, f"a fractional SEG's one segment is number 1, got {numbers[0]}")
        if not pixels.any():
            raise InputError(None, "the fraction map is zero on every slice of the source series (off the image?)")
        pixels = pixels[..., None]
    else:
        if not (np.issubdtype(arr.dtype, np.integer) or np.array_equal(arr, np.rint(arr))):
            raise InputError(None, "label map must hold integer labels (0 = background)")
        if arr.min() < 0:
            raise InputError(None, f"label map has negative labels ({int(arr.min())})")
        sampled = _sample_on_slices(labelmap, heads, fractional=False).astype(np.int64)
        present = sorted(int(v) for v in np.unique(sampled) if v != 0)
        if not present and arr.any():
            raise InputError(None, "the label map's labelled voxels all lie off the source series' slices")
        if not present and not names:
            raise InputError(None, "label map is empty (no labelled voxel) and no segment is named")
        if not present:
            warnings.warn(f"{out}: the label map is empty: the SEG describes {len(names)} empty segment(s)", stacklevel=2)
        numbers = list(range(1, max(present + list(names)) + 1))
        if len(numbers) > 65535:
            raise InputError(None, f"too many labels for a SEG ({len(numbers)})")
        pixels = sampled.astype(np.uint16 if numbers[-1] > 255 else np.uint8)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=names.get(n, f"label {n}")[:64],
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name="petcad", version=__version__, family=codes.DCM.ArtificialIntelligence),
        )
        for n in numbers
    ]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = hd.seg.Segmentation(
                source_images=heads,
                pixel_array=pixels,
                segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL if fractional
                else hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=descriptions,
                series_instance_uid=hd.UID(),
                series_number=9000,
                sop_instance_uid=hd.UID(),
                instance_number=1,
                manufacturer="petcad",
                manufacturer_model_name="petcad",
                software_versions=str(__version__),
                device_serial_number="none",
                series_description=description[:64],
            )
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise InputError(out, f"cannot build the SEG ({type(exc).__name__}: {str(exc)[:200]})") from None
    with atomic_path(out) as tmp:
        seg.save_as(str(tmp))
    return out
