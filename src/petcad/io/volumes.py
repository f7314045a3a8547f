"""NIfTI / NRRD / MHA images through SimpleITK.

CT images are assumed to be in HU and PET images already in SUV unless told
(``pet_units``). NIfTI's RAS-on-disk convention is handled by SimpleITK, which
returns origin and direction in LPS mm, petcad's world frame.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from petcad.errors import InputError
from petcad.io.atomic import atomic_path
from petcad.study import Volume

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


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
    if modality == "mask":
        arr = sitk.GetArrayFromImage(img)
        if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
            raise InputError(path, f"mask has {int(np.isnan(arr).sum())} NaN voxels")
        vol = Volume.from_sitk(img, dtype=None)
        vol.array = (arr != 0).astype(np.uint8)
        return vol
    vol = Volume.from_sitk(img, dtype=np.float32)
    if not allow_nan:
        bad = np.isnan(vol.array)
        if bad.any():
            raise InputError(path, f"{int(bad.sum())} NaN voxels in the image")
    return vol


def write_image(volume: Volume, path: str | os.PathLike, *, compress: bool = True) -> Path:
    """Write ``volume`` to ``path`` (format from the suffix), atomically."""
    import SimpleITK as sitk

    path = Path(path)
    if not is_image_file(path):
        raise InputError(path, f"output must end in one of {', '.join(IMAGE_SUFFIXES)}")
    img = volume.to_sitk()
    with atomic_path(path) as tmp:
        try:
            sitk.WriteImage(img, str(tmp), compress)
        except RuntimeError as exc:
            raise InputError(path, f"cannot write image ({str(exc).strip().splitlines()[-1][:160]})") from None
    return path
