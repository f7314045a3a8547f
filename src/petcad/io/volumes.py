"""NIfTI / NRRD / MHA images through SimpleITK.

CT images are assumed to be in HU and PET images already in SUV unless told
(``pet_units``). NIfTI's RAS-on-disk convention is handled by SimpleITK, which
returns origin and direction in LPS mm, petcad's world frame.

NaN and infinite voxels are refused by name. For NIfTI the file's own bytes are
scanned (:func:`nifti_nonfinite`): ITK's NIfTI reader (vendored nifticlib
``nifti_read_buffer``, ITK 5.x as in SimpleITK 2.5) silently turns every NaN and
+-Inf of a float image into 0, so a NaN in a NIfTI file would otherwise read as
0 without a word (NRRD and MHA keep NaN, checked after reading).

Two-file formats (``.mhd`` + ``.raw``/``.zraw``, ``.nhdr`` + ``.raw.gz``) are
written into a temporary folder and moved next to the target, data file first
and header last (:func:`petcad.io.atomic.atomic_fileset`), so the header names
the data file by its final name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from petcad.errors import InputError
from petcad.io.atomic import atomic_fileset, atomic_path
from petcad.study import Volume

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Formats that keep the voxels in a second file named in the header.
TWO_FILE_SUFFIXES = (".nhdr", ".mhd")
#: NIfTI datatype codes of floating-point voxels: numpy dtype of one component.
_NIFTI_FLOAT = {16: "f4", 64: "f8", 32: "f4", 1792: "f8"}  # float32, float64, complex64, complex128


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a NIfTI / NRRD / MHA file (by suffix)."""
    name = str(path).lower()
    return any(name.endswith(s) for s in IMAGE_SUFFIXES)


def read_image(
    path: str | os.PathLike,
    *,
    modality: Literal["CT", "PT", "mask"] = "CT",
    pet_units: Literal["suv", "bqml"] = "suv",
    allow_nan: bool = False,
) -> Volume:
    """Read a 3D image file into a :class:`Volume` (float32; uint8 for ``modality="mask"``).

    ``modality`` ``CT`` (values in HU), ``PT`` (values in SUV; ``pet_units="bqml"``
    is refused here because SUV needs the DICOM header: read the DICOM series),
    or ``mask`` (nonzero = inside, returned as uint8 0/1). NaN voxels raise
    :class:`InputError` unless ``allow_nan``.
    """
    import SimpleITK as sitk

    path = Path(path)
    if modality not in ("CT", "PT", "mask"):
        raise ValueError(f"modality must be CT, PT or mask, not {modality!r}")
    if not path.is_file():
        raise InputError(path, "no such file")
    if not is_image_file(path):
        raise InputError(path, f"not a NIfTI/NRRD/MHA file (expected one of {', '.join(IMAGE_SUFFIXES)})")
    if modality == "PT" and pet_units != "suv":
        raise InputError(path, f"PET image in {pet_units} cannot be converted to SUV without DICOM headers; "
                         "give the PET DICOM folder instead")
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1][:160] if str(exc).strip() else "unreadable"
        raise InputError(path, f"cannot read image ({first})") from None
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, f"expected a scalar image, got {img.GetNumberOfComponentsPerPixel()} components per voxel")
    if img.GetDimension() == 4 and img.GetSize()[3] == 1:
        img = img[:, :, :, 0]
    if img.GetDimension() != 3:
        raise InputError(path, f"expected a 3D image, got {img.GetDimension()}D")
    n_nan, n_inf = nifti_nonfinite(path) if _is_nifti(path) else (0, 0)
    if modality == "mask":
        arr = sitk.GetArrayFromImage(img)
        if np.issubdtype(arr.dtype, np.floating):
            n_nan, n_inf = max(n_nan, int(np.isnan(arr).sum())), max(n_inf, int(np.isinf(arr).sum()))
        if n_nan or n_inf:
            raise InputError(path, f"mask has {_nonfinite_text(n_nan, n_inf)} voxels")
        vol = Volume.from_sitk(img, dtype=None)
        vol.array = (arr != 0).astype(np.uint8)
        return vol
    vol = Volume.from_sitk(img, dtype=np.float32)
    n_nan = max(n_nan, int(np.isnan(vol.array).sum()))
    n_inf = max(n_inf, int(np.isinf(vol.array).sum()))
    if n_inf or (n_nan and not allow_nan):
        raise InputError(path, f"{_nonfinite_text(n_nan, n_inf)} voxels in the image")
    return vol


def _nonfinite_text(n_nan: int, n_inf: int) -> str:
    return " and ".join(t for t in (n_nan and f"{n_nan} NaN", n_inf and f"{n_inf} infinite") if t)


def _is_nifti(path: Path) -> bool:
    name = str(path).lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def nifti_nonfinite(path: str | os.PathLike, chunk_bytes: int = 1 << 24) -> tuple[int, int]:
    """``(NaN count, infinite count)`` of the voxels as stored in a NIfTI-1/-2 file (``.nii`` or ``.nii.gz``).

    Reads the header and streams the voxel bytes (16 MiB at a time); integer
    datatypes give ``(0, 0)`` without reading the voxels. ITK's reader replaces
    these values by 0, so this is the only way to see them through SimpleITK.
    """
    import gzip
    import struct

    path = Path(path)
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(540)
            info = _nifti_layout(head)
            if info is None:
                return 0, 0
            dtype, n_values, offset = info
            if offset > len(head):
                fh.read(offset - len(head))
            data = head[offset:]
            n_nan = n_inf = 0
            left = n_values * dtype.itemsize
            step = max(dtype.itemsize, chunk_bytes - chunk_bytes % dtype.itemsize)
            while left > 0:
                want = min(step, left)
                if len(data) < want:
                    data += fh.read(want - len(data))
                take = min(len(data), left)
                take -= take % dtype.itemsize
                if take == 0:
                    break  # file shorter than its header says (SimpleITK has read it already)
                a = np.frombuffer(data[:take], dtype=dtype)
                n_nan += int(np.count_nonzero(np.isnan(a)))
                n_inf += int(np.count_nonzero(np.isinf(a)))
                left -= take
                data = data[take:]
    except (OSError, EOFError, struct.error, ValueError) as exc:
        raise InputError(path, f"cannot read NIfTI voxels ({type(exc).__name__})") from None
    return n_nan, n_inf


def _nifti_layout(head: bytes):
    """``(numpy dtype of one float component, number of components, voxel offset)``, or None (not float)."""
    import struct

    for endian in "<>":
        size = struct.unpack(endian + "i", head[:4])[0] if len(head) >= 4 else 0
        if size == 348 and len(head) >= 348:
            dim = struct.unpack(endian + "8h", head[40:56])
            code = struct.unpack(endian + "h", head[70:72])[0]
            offset = int(struct.unpack(endian + "f", head[108:112])[0])
            break
        if size == 540 and len(head) >= 540:
            code = struct.unpack(endian + "h", head[12:14])[0]
            dim = struct.unpack(endian + "8q", head[16:80])
            offset = int(struct.unpack(endian + "q", head[168:176])[0])
            break
    else:
        return None
    if code not in _NIFTI_FLOAT:
        return None
    n = 1
    for d in dim[1 : max(1, min(int(dim[0]), 7)) + 1]:
        n *= max(int(d), 1)
    if code in (32, 1792):
        n *= 2  # complex: two components
    offset = offset if offset > 0 else (352 if size == 348 else 544)
    return np.dtype(endian + _NIFTI_FLOAT[code]), n, offset


def write_image(volume: Volume, path: str | os.PathLike, *, compress: bool = True) -> Path:
    """Write ``volume`` to ``path`` (format from the suffix), atomically."""
    import SimpleITK as sitk

    path = Path(path)
    if not is_image_file(path):
        raise InputError(path, f"output must end in one of {', '.join(IMAGE_SUFFIXES)}")
    img = volume.to_sitk()
    two_files = any(str(path).lower().endswith(s) for s in TWO_FILE_SUFFIXES)
    with (atomic_fileset(path) if two_files else atomic_path(path)) as tmp:
        try:
            sitk.WriteImage(img, str(tmp), compress)
        except RuntimeError as exc:
            raise InputError(path, f"cannot write image ({str(exc).strip().splitlines()[-1][:160]})") from None
    return path
