"""Write a synthetic CT and PET as real DICOM series with pydicom.

CT: CT Image Storage, int16 pixels, RescaleIntercept -1024 / RescaleSlope 1 (HU).
PET: PET Image Storage, Units BQML, DecayCorrection START (activity decay-corrected
to the series start), int16 pixels scaled by a per-slice RescaleSlope, with the
header fields body-weight SUV needs (PatientWeight, RadiopharmaceuticalInformation
Sequence with total dose in Bq, half-life 6588 s and start date-time, series and
acquisition date/time). Both series share a FrameOfReferenceUID. Explicit VR
little endian with file meta. Patient names and ids are synthetic
(``PHANTOM^0001`` / ``P0001``). Geometry: axial slices, ImageOrientationPatient
``1\\0\\0\\0\\1\\0`` (rows run +x, i.e. towards the patient's left; columns +y).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, PositronEmissionTomographyImageStorage, generate_uid

from petcad.study import Volume

F18_HALF_LIFE_S = 6588.0
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.10.1545.1"  # petcad (pydicom root, fixed for reproducibility)


@dataclass(frozen=True)
class ScanInfo:
    """Synthetic patient and acquisition header values (SI units noted)."""

    patient_number: int
    sex: str  # "M" / "F"
    age_years: int
    weight_kg: float
    height_m: float
    dose_bq: float  # injected activity at injection time (Bq)
    injection: dt.datetime
    series_start: dt.datetime  # scan start (series and acquisition time)
    uid_seed: int  # entropy for deterministic UIDs

    @property
    def patient_id(self) -> str:
        return f"P{self.patient_number:04d}"

    @property
    def patient_name(self) -> str:
        return f"PHANTOM^{self.patient_number:04d}"

    def uid(self, *parts) -> str:
        return generate_uid(entropy_srcs=[str(self.uid_seed), *map(str, parts)])

    @property
    def decayed_dose_bq(self) -> float:
        """Injected dose decayed to the series start (Bq): the START decay-correction reference."""
        t = (self.series_start - self.injection).total_seconds()
        return self.dose_bq * float(np.exp(-np.log(2.0) * t / F18_HALF_LIFE_S))

    @property
    def suv_to_bqml(self) -> float:
        """Bq/mL per SUV (body weight): decayed dose / weight in g."""
        return self.decayed_dose_bq / (self.weight_kg * 1000.0)


def _ds(v: float) -> str:
    s = f"{v:.10g}"
    return s if len(s) <= 16 else f"{v:.8g}"


def _common(info: ScanInfo, modality: str, sop_class: str, series_uid: str, series_number: int, desc: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.PatientName = info.patient_name
    ds.PatientID = info.patient_id
    ds.PatientSex = info.sex
    ds.PatientAge = f"{info.age_years:03d}Y"
    ds.PatientWeight = _ds(info.weight_kg)
    ds.PatientSize = _ds(info.height_m)
    ds.PatientBirthDate = ""
    ds.StudyInstanceUID = info.uid("study")
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDate = info.series_start.strftime("%Y%m%d")
    ds.StudyTime = info.injection.strftime("%H%M%S")
    ds.SeriesDate = info.series_start.strftime("%Y%m%d")
    ds.SeriesTime = info.series_start.strftime("%H%M%S")
    ds.AcquisitionDate = ds.SeriesDate
    ds.AcquisitionTime = ds.SeriesTime
    ds.ContentDate = ds.SeriesDate
    ds.ContentTime = ds.SeriesTime
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = desc
    ds.FrameOfReferenceUID = info.uid("frame")
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "petcad phantom"
    ds.PatientPosition = "FFS"
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.BodyPartExamined = "CHEST"
    return ds


def _encode(ds: Dataset) -> dict:
    """Each element of ``ds`` encoded by pydicom (explicit VR little endian): {tag: bytes}."""
    out = {}
    for elem in ds:
        fp = DicomBytesIO()
        fp.is_little_endian = True
        fp.is_implicit_VR = False
        write_data_element(fp, elem)
        out[int(elem.tag)] = fp.getvalue()
    return out


class _SeriesWriter:
    """Writes the slices of one series: the header elements shared by all slices are encoded once.

    Measured: building and writing a full pydicom Dataset per slice cost about 7 ms a slice
    (1.5 s a patient); encoding the shared elements once and only the per-slice ones per
    file brings it well under 1 ms. Every element is still encoded by pydicom, in tag order.
    """

    def __init__(self, common: Dataset):
        self.common = _encode(common)
        self.sop_class = common.SOPClassUID

    def write(self, per_slice: Dataset, pixels: bytes, path: Path) -> None:
        per_slice.add_new(0x7FE00010, "OW", pixels)
        enc = dict(self.common)
        enc.update(_encode(per_slice))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = self.sop_class
        meta.MediaStorageSOPInstanceUID = per_slice.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = IMPLEMENTATION_UID
        fp = DicomBytesIO()
        fp.is_little_endian = True
        fp.is_implicit_VR = False
        write_file_meta_info(fp, meta, enforce_standard=True)
        with open(path, "wb") as fh:
            fh.write(b"\x00" * 128 + b"DICM")
            fh.write(fp.getvalue())
            fh.write(b"".join(enc[t] for t in sorted(enc)))


def _slice_geometry(common: Dataset, per: Dataset, vol: Volume, k: int) -> None:
    pos = vol.index_to_world([0.0, 0.0, float(k)])
    per.ImagePositionPatient = [_ds(round(float(v), 4)) for v in pos]
    per.SliceLocation = _ds(round(float(pos[2]), 4))
    if common is not None:
        common.PixelSpacing = [_ds(vol.spacing[1]), _ds(vol.spacing[0])]  # row spacing (y), column spacing (x)
        common.SliceThickness = _ds(vol.spacing[2])
        common.Rows, common.Columns = vol.array.shape[1], vol.array.shape[2]


def write_ct_series(folder: Path, ct_hu: Volume, info: ScanInfo) -> None:
    """Write ``ct_hu`` (HU, axis-aligned) as one CT slice file per k into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stored = np.clip(np.rint(ct_hu.array + 1024.0), -32768, 32767).astype(np.int16)
    series_uid = info.uid("ct-series")
    ds = _common(info, "CT", CTImageStorage, series_uid, 2, "CT thorax (synthetic, low dose)")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    _slice_geometry(ds, Dataset(), ct_hu, 0)
    ds.KVP = "120"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    writer = _SeriesWriter(ds)
    for k in range(stored.shape[0]):
        per = Dataset()
        per.SOPInstanceUID = info.uid("ct", k)
        per.InstanceNumber = k + 1
        _slice_geometry(None, per, ct_hu, k)
        writer.write(per, stored[k].tobytes(), folder / f"CT{k + 1:04d}.dcm")


def write_pet_series(folder: Path, pet_suv: Volume, info: ScanInfo) -> np.ndarray:
    """Write ``pet_suv`` (SUVbw) as BQML, START-decay-corrected slices; returns the per-slice RescaleSlope."""
    folder.mkdir(parents=True, exist_ok=True)
    bqml = pet_suv.array.astype(np.float64) * info.suv_to_bqml
    smax = bqml.reshape(bqml.shape[0], -1).max(axis=1)
    slopes = np.where(smax > 0, smax / 32767.0, 1.0)
    slope_str = [_ds(s) for s in slopes]
    slopes = np.array([float(s) for s in slope_str])  # the slope exactly as written
    stored = np.clip(np.rint(bqml / slopes[:, None, None]), 0, 32767).astype(np.int16)
    series_uid = info.uid("pt-series")
    nk = stored.shape[0]
    t_inj = info.injection
    ds = _common(info, "PT", PositronEmissionTomographyImageStorage, series_uid, 3, "PET AC (synthetic FDG)")
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.NumberOfSlices = nk
    _slice_geometry(ds, Dataset(), pet_suv, 0)
    ds.SeriesType = ["WHOLE BODY", "IMAGE"]
    ds.Units = "BQML"
    ds.CountsSource = "EMISSION"
    ds.DecayCorrection = "START"
    ds.CorrectedImage = ["ATTN", "DECY", "SCAT", "RAN", "NORM", "DTIM"]
    ds.AttenuationCorrectionMethod = "CT"
    ds.ReconstructionMethod = "OSEM 3i21s"
    ds.ActualFrameDuration = 120000
    ds.FrameReferenceTime = "0"
    ds.DecayFactor = "1"
    ds.RescaleIntercept = "0"
    item = Dataset()
    item.Radiopharmaceutical = "Fludeoxyglucose"
    item.RadiopharmaceuticalStartTime = t_inj.strftime("%H%M%S")
    item.RadiopharmaceuticalStartDateTime = t_inj.strftime("%Y%m%d%H%M%S")
    item.RadionuclideTotalDose = _ds(round(info.dose_bq))
    item.RadionuclideHalfLife = _ds(F18_HALF_LIFE_S)
    item.RadionuclidePositronFraction = "0.9673"
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])
    writer = _SeriesWriter(ds)
    for k in range(nk):
        per = Dataset()
        per.SOPInstanceUID = info.uid("pt", k)
        per.InstanceNumber = k + 1
        per.ImageIndex = k + 1
        per.RescaleSlope = slope_str[k]
        _slice_geometry(None, per, pet_suv, k)
        writer.write(per, stored[k].tobytes(), folder / f"PT{k + 1:04d}.dcm")
    return slopes
