"""One entry point for lesion masks: NIfTI / NRRD / MHA images, DICOM SEG and RTSTRUCT.

* :func:`list_labels` -- ``[(number, name)]``: SEG segments, RTSTRUCT ROIs, or
  the distinct non-zero values of an image mask (named by their value).
* :func:`load_mask` -- one label as a uint8 0/1 :class:`~petcad.study.Volume` on
  the grid of ``like`` (the CT or the PET). ``label`` is a number or a name;
  ``None`` takes the only one (an image mask: every non-zero voxel), and a file
  with several raises :class:`~petcad.errors.InputError` listing them.
* :func:`load_labelmap` -- several labels as one label map (values 1..n in the
  order asked).

``path`` may also be a folder holding exactly one SEG or RTSTRUCT file.
``frame_of_reference_uid`` is the image's (when it is DICOM); a SEG or RTSTRUCT in
another frame of reference is refused. An empty label and a label entirely off
the image grid are refused too.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from petcad.errors import InputError
from petcad.study import Volume

MaskKind = Literal["image", "seg", "rtstruct"]


def _dicom_kind(path: Path) -> str | None:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=["Modality", "SOPClassUID"])
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError, AttributeError):
        return None
    from petcad.io.rtstruct import is_rtstruct
    from petcad.io.seg import is_seg

    if is_seg(ds):
        return "seg"
    if is_rtstruct(ds):
        return "rtstruct"
    return "other"


def resolve_path(path: str | os.PathLike) -> tuple[Path, MaskKind]:
    """The mask file and its kind; a folder must hold exactly one SEG or RTSTRUCT file."""
    from petcad.io.volumes import IMAGE_SUFFIXES, is_image_file

    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        found = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                if name.startswith("."):
                    continue
                kind = _dicom_kind(Path(root) / name)
                if kind in ("seg", "rtstruct"):
                    found.append((Path(root) / name, kind))
        if len(found) != 1:
            what = ", ".join(str(p) for p, _ in found) if found else "none"
            raise InputError(path, f"a mask folder must hold exactly one DICOM SEG or RTSTRUCT file (found: {what})")
        return found[0]
    if is_image_file(path):
        return path, "image"
    kind = _dicom_kind(path)
    if kind in ("seg", "rtstruct"):
        return path, kind
    raise InputError(path, "not a mask: expected a DICOM SEG, an RTSTRUCT or an image file "
                     f"({', '.join(IMAGE_SUFFIXES)})" + (" (this DICOM file is neither SEG nor RTSTRUCT)" if kind else ""))


def list_labels(path: str | os.PathLike) -> list[tuple[int, str]]:
    """``[(number, name), ...]``: SEG segments, RTSTRUCT ROIs, or an image mask's non-zero values."""
    path, kind = resolve_path(path)
    if kind == "seg":
        from petcad.io.seg import list_segments

        return list_segments(path)
    if kind == "rtstruct":
        from petcad.io.rtstruct import list_rois

        return list_rois(path)
    return [(v, str(v)) for v in _image_values(_read_label_image(path))]


def _read_label_image(path: Path) -> Volume:
    from petcad.io.volumes import read_image

    return read_image(path, modality="CT")  # raw values (float32 holds integer labels exactly)


def _image_values(vol: Volume) -> list[int]:
    vals = np.unique(vol.array)
    vals = vals[vals != 0]
    if vals.size and not np.array_equal(vals, np.rint(vals)):
        return [1]  # a non-integer (e.g. fractional) mask: one label, non-zero = inside
    return [int(v) for v in vals]


def resolve_label(path, labels: Sequence[tuple[int, str]], label: str | int | None, kind: str = "label") -> tuple[int, str]:
    """The ``(number, name)`` that ``label`` (a number, a name or None) chooses among ``labels``."""
    listing = ", ".join(f"{n} '{s}'" for n, s in labels) or "none"
    if not labels:
        raise InputError(path, f"no {kind}s in the file")
    if label is None or (isinstance(label, str) and not label.strip()):
        if len(labels) == 1:
            return labels[0]
        raise InputError(path, f"{len(labels)} {kind}s; choose one by number or name (--label; {kind}s: {listing})")
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        hits = [x for x in labels if x[0] == int(label)]
    else:
        text = str(label).strip()
        hits = [x for x in labels if x[1] == text]
        if not hits:
            hits = [x for x in labels if x[1].lower() == text.lower()]
        if not hits and text.lstrip("+-").isdigit():
            hits = [x for x in labels if x[0] == int(text)]
    if len(hits) != 1:
        why = "no" if not hits else f"{len(hits)} {kind}s named"
        raise InputError(path, f"{why} {kind} {str(label)!r} ({kind}s: {listing})")
    return hits[0]


def load_mask(
    path: str | os.PathLike,
    like: Volume,
    label: str | int | None = None,
    *,
    frame_of_reference_uid: str | None = None,
    inclusion: str = "centre",
) -> Volume:
    """The chosen label of a mask file as a uint8 0/1 :class:`Volume` on ``like``'s grid.

    See the module docstring. An image mask on another grid is resampled
    nearest-neighbour in physical space. ``inclusion`` is the RTSTRUCT
    pixel-inclusion rule (``"centre"`` or ``"touch"``, see :mod:`petcad.io.rtstruct`);
    another rule than ``"centre"`` for a SEG or an image mask raises InputError.
    """
    path, kind = resolve_path(path)
    if kind != "rtstruct" and inclusion != "centre":
        raise InputError(path, f"inclusion rule {inclusion!r} applies to RTSTRUCT contours only; this is a {kind} mask")
    if kind == "seg":
        from petcad.io.seg import read_segment

        return read_segment(path, label, like, frame_of_reference_uid=frame_of_reference_uid)
    if kind == "rtstruct":
        from petcad.io.rtstruct import list_rois, rtstruct_mask

        number, _ = resolve_label(path, list_rois(path), label, "ROI")
        return rtstruct_mask(path, number, like, frame_of_reference_uid=frame_of_reference_uid, inclusion=inclusion)
    vol = _read_label_image(path)
    values = _image_values(vol)
    if label is None:
        inside = vol.array != 0
        what = "mask"
    else:
        number, _ = resolve_label(path, [(v, str(v)) for v in values], label, "label value")
        inside = vol.array == number
        what = f"label value {number}"
    if not inside.any():
        raise InputError(path, f"{what} is empty (no non-zero voxel)")
    src = Volume(array=inside.astype(np.uint8), origin=vol.origin, spacing=vol.spacing, direction=vol.direction)
    out = src if src.same_grid(like) else src.resample_to(like, interpolator="nearest", default_value=0)
    out.array = out.array.astype(np.uint8, copy=False)
    if not out.array.any():
        raise InputError(path, f"{what} lies entirely off the image grid")
    return out


def load_labelmap(
    path: str | os.PathLike,
    like: Volume,
    labels: Sequence[str | int],
    *,
    frame_of_reference_uid: str | None = None,
    inclusion: str = "centre",
) -> tuple[Volume, list[tuple[int, int, str]], int]:
    """Several labels as one uint8/uint16 label map on ``like``'s grid.

    Returns ``(labelmap, [(value, number, name)], n_overlap)``: the n-th label
    asked gets value n (1-based); where labels overlap the later one wins and
    ``n_overlap`` counts those voxels.
    """
    path, kind = resolve_path(path)
    available = list_labels(path)
    what = {"seg": "segment", "rtstruct": "ROI"}.get(kind, "label value")
    chosen = [resolve_label(path, available, lab, what) for lab in labels]
    if len({n for n, _ in chosen}) != len(chosen):
        raise InputError(path, "the same label is asked for twice")
    dtype = np.uint8 if len(chosen) < 256 else np.uint16
    out = np.zeros(like.array.shape, dtype=dtype)
    overlap = 0
    table = []
    for value, (number, name) in enumerate(chosen, start=1):
        m = load_mask(path, like, number, frame_of_reference_uid=frame_of_reference_uid,
                      inclusion=inclusion).array.astype(bool)
        overlap += int(np.count_nonzero(m & (out != 0)))
        out[m] = value
        table.append((value, number, name))
    vol = Volume(array=out, origin=like.origin.copy(), spacing=like.spacing.copy(), direction=like.direction.copy())
    return vol, table, overlap
