"""A :class:`~petcad.study.Study` from a CT and a PET, each a DICOM folder or an image file.

DICOM CT is read in HU (per-slice rescale), DICOM PET converted to SUV by
:mod:`petcad.io.suv` (the audit goes to ``Study.suv``); image files are taken as
HU and SUV. CT and PET DICOM series must share a FrameOfReferenceUID, else
:class:`~petcad.errors.InputError` (``allow_frame_mismatch=True`` overrides,
for images registered by other means).

Plausibility checks on every study: CT and PET whose boxes do not overlap in
space are an error naming both (another patient's or another study's images);
a CT with no value below -100 HU (no fat, lung or air: a PET or SUV image given
as the CT, or a CT whose rescale was not applied) gets a warning, kept in
:attr:`LoadedImage.notes`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

from petcad.errors import InputError
from petcad.io.suv import SUVSettings, compute_suv
from petcad.io.volumes import is_image_file, read_image
from petcad.study import Lesion, Study, Volume


@dataclass
class LoadedImage:
    """One side of a study: the volume, and for DICOM the series and the SUV audit."""

    volume: Volume
    path: Path
    series: object | None = None  # petcad.io.dicom.DicomSeries
    suv_audit: dict | None = None
    notes: list[str] = field(default_factory=list)  # reader and plausibility warnings

    @property
    def frame_of_reference_uid(self) -> str | None:
        return None if self.series is None else (self.series.info.frame_of_reference_uid or None)


def _read(path: Path, modality: str, series_uid: str | None, on_irregular: str):
    """``(volume, series)`` from an image file (series ``None``) or the one ``modality`` series of a DICOM folder."""
    from petcad.io.dicom import read_series

    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_file() and is_image_file(path):
        return read_image(path, modality=modality), None
    s = read_series(path, series_uid=series_uid, modality=None if series_uid else modality, on_irregular=on_irregular)
    if s.info.modality not in (modality, ""):
        raise InputError(path, f"series {s.info.series_uid} is {s.info.modality}, expected {modality}")
    _check_finite(s.volume, path)
    return s.volume, s


def load_ct(
    path: str | os.PathLike,
    *,
    series_uid: str | None = None,
    on_irregular: Literal["error", "resample", "stack"] = "error",
) -> LoadedImage:
    """CT in HU from a DICOM folder (the one CT series, or ``series_uid``) or an image file."""
    path = Path(path)
    volume, series = _read(path, "CT", series_uid, on_irregular)
    notes = list(series.notes) if series is not None else []
    hu = ct_values_note(volume)
    if hu:
        notes.append(hu)
        warnings.warn(f"{path}: {hu}", stacklevel=2)
    return LoadedImage(volume=volume, path=path, series=series, notes=notes)


#: A CT in HU holds fat (about -100 HU), lung or air (-1000 HU) somewhere; one with nothing below this is suspicious.
HU_LOWEST_EXPECTED = -100.0


def ct_values_note(volume: Volume) -> str | None:
    """A warning when a CT's values do not look like HU (nothing below -100 HU), else None."""
    lo, hi = float(volume.array.min()), float(volume.array.max())
    if lo < HU_LOWEST_EXPECTED:
        return None
    return (f"CT values span {lo:.4g} .. {hi:.4g}, none below {HU_LOWEST_EXPECTED:g} HU (no fat, lung or air): "
            "not HU-like; is it a PET/SUV image, or a CT without its rescale?")


def load_pet(
    path: str | os.PathLike,
    *,
    suv: SUVSettings = SUVSettings(),
    series_uid: str | None = None,
    on_irregular: Literal["error", "resample", "stack"] = "error",
) -> LoadedImage:
    """PET in SUV from a DICOM folder (converted, with audit) or an image file (assumed SUV)."""
    path = Path(path)
    volume, series = _read(path, "PT", series_uid, on_irregular)
    if series is None:
        return LoadedImage(volume=volume, path=path)
    volume, audit = compute_suv(series, suv)
    return LoadedImage(volume=volume, path=path, series=series, suv_audit=audit.to_dict(), notes=list(series.notes))


def _check_finite(vol: Volume, path) -> None:
    import numpy as np

    bad = ~np.isfinite(vol.array)
    if bad.any():
        raise InputError(path, f"{int(bad.sum())} NaN or infinite voxels in the image")


def check_frames(ct: LoadedImage, pet: LoadedImage, *, allow_frame_mismatch: bool = False) -> None:
    """InputError when both are DICOM with different FrameOfReferenceUIDs (unless allowed)."""
    a, b = ct.frame_of_reference_uid, pet.frame_of_reference_uid
    if a and b and a != b and not allow_frame_mismatch:
        raise InputError(
            pet.path,
            f"PET FrameOfReferenceUID differs from the CT's ({ct.path}): the images are not in one patient frame; "
            "register them, or pass --allow-frame-mismatch if they are already aligned",
        )


def _box(vol: Volume) -> tuple:
    """World bounding box (min, max) of the voxels' outer faces (centres +- half a voxel)."""
    import numpy as np

    n = np.asarray(vol.shape_ijk, dtype=float)
    corners = np.array([[a, b, c] for a in (-0.5, n[0] - 0.5) for b in (-0.5, n[1] - 0.5) for c in (-0.5, n[2] - 0.5)])
    w = vol.index_to_world(corners)
    return w.min(axis=0), w.max(axis=0)


def check_overlap(ct: LoadedImage, pet: LoadedImage) -> None:
    """InputError naming both files when the CT and PET boxes do not overlap in space (mm, LPS)."""
    (clo, chi), (plo, phi) = _box(ct.volume), _box(pet.volume)
    if all(max(clo[a], plo[a]) < min(chi[a], phi[a]) for a in range(3)):
        return

    def box(lo, hi):
        return ", ".join(f"{ax} {a:.1f}..{b:.1f}" for ax, a, b in zip("xyz", lo, hi))

    raise InputError(
        pet.path,
        f"PET does not overlap the CT {ct.path} in space (PET {box(plo, phi)}; CT {box(clo, chi)} mm): "
        "images of another patient or study?",
    )


def load_study(
    ct: str | os.PathLike | None,
    pet: str | os.PathLike,
    *,
    patient_id: str,
    lesions: Sequence[Lesion] = (),
    suv: SUVSettings = SUVSettings(),
    ct_series: str | None = None,
    pet_series: str | None = None,
    allow_frame_mismatch: bool = False,
    on_irregular: Literal["error", "resample", "stack"] = "error",
) -> Study:
    """Read a CT (HU) and a PET (SUV) into a :class:`Study`.

    ``ct`` / ``pet`` are DICOM folders or NIfTI/NRRD/MHA files; ``ct_series`` /
    ``pet_series`` choose a SeriesInstanceUID when a folder holds several.
    ``patient_id`` is the caller's pseudonym (never read from headers).
    ``ct=None`` (or ``""``) reads a PET-only study (``Study.ct`` is ``None``).
    """
    pet_only = ct is None or str(ct) == ""
    c = None if pet_only else load_ct(ct, series_uid=ct_series, on_irregular=on_irregular)
    p = load_pet(pet, suv=suv, series_uid=pet_series, on_irregular=on_irregular)
    if c is not None:
        check_frames(c, p, allow_frame_mismatch=allow_frame_mismatch)
        check_overlap(c, p)
    frames = {u for u in (None if c is None else c.frame_of_reference_uid, p.frame_of_reference_uid) if u}
    frame = frames.pop() if len(frames) == 1 else ""  # none, or CT and PET allowed to differ: no one frame
    return Study(patient_id=str(patient_id), ct=None if c is None else c.volume, pet=p.volume, lesions=list(lesions),
                 suv=p.suv_audit or {}, frame_of_reference_uid=frame)
