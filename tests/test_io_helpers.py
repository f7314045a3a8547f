"""Helpers shared by the io tests: copy and edit the shared DICOM headers in tmp_path.

Also tests of the helpers' own assumptions about the shared data (so a changed
data folder is noticed here, not as a puzzling SUV failure).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

DRO_EXPECTED = (0.20, 1.00, 4.00)


def copy_series(src: Path, dst: Path) -> Path:
    """Copy the PT files of a shared series folder to ``dst`` (returns ``dst``)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(Path(src).glob("*.dcm")):
        shutil.copy(f, dst / f.name)
    return dst


def edit_series(folder: Path, fn) -> list[Path]:
    """Apply ``fn(ds, k)`` to each file (k = slice index along z) and save it; returns files in slice order."""
    files = sorted(Path(folder).glob("*.dcm"), key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        fn(ds, k)
        ds.save_as(f)
    return files


def new_uids(folder: Path, *, modality: str | None = None, frame_uid: str | None = None, series_uid: str | None = None) -> str:
    """Give a series copy a fresh SeriesInstanceUID (and SOP UIDs); returns the series UID."""
    series_uid = series_uid or generate_uid()

    def fn(ds, k):
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        if modality:
            ds.Modality = modality
        if frame_uid:
            ds.FrameOfReferenceUID = frame_uid

    edit_series(folder, fn)
    return series_uid


def dro_mask(test_data: Path, variant: str = "DRO_0_0") -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(test_data / "suv_dro" / variant / "mask" / "DRO_mask.nii.gz"))) > 0


def roi_stats(arr: np.ndarray, mask: np.ndarray) -> tuple[float, float, float]:
    x = arr[mask]
    return float(x.min()), float(np.median(x)), float(x.max())


def suv_of(folder: Path, settings=None):
    """SUV of a DICOM PET folder (warnings silenced): ``(volume, audit)``."""
    import warnings

    from petcad.io.dicom import read_series
    from petcad.io.suv import SUVSettings, compute_suv

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compute_suv(read_series(folder), SUVSettings() if settings is None else settings)


def assert_dro(vol, mask: np.ndarray) -> None:
    """SUV min / median / max in the DRO mask are the reference 0.20 / 1.00 / 4.00."""
    lo, med, hi = roi_stats(vol.array, mask)
    assert (round(lo, 2), round(med, 2), round(hi, 2)) == DRO_EXPECTED, (lo, med, hi)


def test_shared_dro_is_what_the_helpers_assume(test_data):
    d = test_data / "suv_dro" / "DRO_0_0" / "PT"
    files = sorted(d.glob("*.dcm"))
    assert len(files) == 20
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert (ds.Units, ds.DecayCorrection) == ("BQML", "START")
    assert float(ds.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife) == pytest.approx(6586.2)
    assert dro_mask(test_data).sum() > 0
