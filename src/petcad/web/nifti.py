"""NIfTI-1 bytes of a :class:`petcad.study.Volume`, for the browser (NiiVue).

petcad's world frame is DICOM LPS; NIfTI's is RAS, so the affine's first two rows are negated
(the same convention SimpleITK and nibabel use). The voxel order is unchanged: ``array[k, j, i]``
in C order is NIfTI's i-fastest order. Only the sform is set (code 1, scanner).
"""

from __future__ import annotations

import numpy as np

from petcad.study import Volume

_DTYPES = {np.dtype(np.uint8): 2, np.dtype(np.int16): 4, np.dtype(np.float32): 16}

_HEADER = np.dtype([
    ("sizeof_hdr", "<i4"), ("data_type", "S10"), ("db_name", "S18"), ("extents", "<i4"), ("session_error", "<i2"),
    ("regular", "S1"), ("dim_info", "u1"), ("dim", "<i2", 8), ("intent_p", "<f4", 3), ("intent_code", "<i2"),
    ("datatype", "<i2"), ("bitpix", "<i2"), ("slice_start", "<i2"), ("pixdim", "<f4", 8), ("vox_offset", "<f4"),
    ("scl_slope", "<f4"), ("scl_inter", "<f4"), ("slice_end", "<i2"), ("slice_code", "u1"), ("xyzt_units", "u1"),
    ("cal_max", "<f4"), ("cal_min", "<f4"), ("slice_duration", "<f4"), ("toffset", "<f4"), ("glmax", "<i4"),
    ("glmin", "<i4"), ("descrip", "S80"), ("aux_file", "S24"), ("qform_code", "<i2"), ("sform_code", "<i2"),
    ("quatern", "<f4", 3), ("qoffset", "<f4", 3), ("srow_x", "<f4", 4), ("srow_y", "<f4", 4), ("srow_z", "<f4", 4),
    ("intent_name", "S16"), ("magic", "S4"),
])
assert _HEADER.itemsize == 348


def ras_affine(vol: Volume) -> np.ndarray:
    """4x4 voxel (i, j, k) -> RAS mm matrix of ``vol``."""
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ vol.index_to_world_matrix


def to_nifti_bytes(vol: Volume, dtype=None, description: str = "petcad") -> bytes:
    """An uncompressed single-file NIfTI-1 (``.nii``) of ``vol`` as ``dtype`` (uint8, int16 or float32;
    default the array's). Integer targets are rounded and clipped to their range."""
    arr = np.asarray(vol.array)
    dt = np.dtype(dtype or arr.dtype)
    if dt not in _DTYPES:
        raise ValueError(f"NIfTI export supports uint8, int16 and float32, not {dt}")
    if dt.kind in "iu" and arr.dtype.kind == "f":
        info = np.iinfo(dt)
        arr = np.clip(np.rint(arr), info.min, info.max)
    data = np.ascontiguousarray(arr, dtype=dt.newbyteorder("<"))
    h = np.zeros((), dtype=_HEADER)
    h["sizeof_hdr"] = 348
    h["regular"] = b"r"
    ni, nj, nk = vol.shape_ijk
    h["dim"] = [3, ni, nj, nk, 1, 1, 1, 1]
    h["datatype"] = _DTYPES[dt]
    h["bitpix"] = dt.itemsize * 8
    h["pixdim"] = [1.0, *vol.spacing, 1.0, 1.0, 1.0, 1.0]
    h["vox_offset"] = 352.0
    h["scl_slope"] = 1.0
    h["xyzt_units"] = 2  # mm
    h["descrip"] = description.encode("ascii", "replace")[:79]
    h["sform_code"] = 1
    aff = ras_affine(vol)
    h["srow_x"], h["srow_y"], h["srow_z"] = aff[0], aff[1], aff[2]
    h["magic"] = b"n+1"
    return h.tobytes() + b"\0\0\0\0" + data.tobytes()
