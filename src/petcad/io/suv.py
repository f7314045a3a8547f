"""All SUV logic: units, decay correction, times, body-size normalisation, and the audit.

The conversion follows the QIBA vendor-neutral pseudo-code (FDG-PET/CT profile,
appendix G) and what real headers need (modelled on MIRP's PET reader):

``SUV = (stored * RescaleSlope + RescaleIntercept) * factor``, with a factor per
slice (the rescale is applied per slice by :func:`petcad.io.dicom.read_series`).

Units (0054,1001)
    ``BQML``  activity concentration in Bq/mL: ``factor = norm / decayed_dose``.
    ``CNTS``  Philips: the private SUV scale factor (7053,1000) gives SUVbw per
              slice; without it, the activity concentration scale factor
              (7053,1009) turns the values into Bq/mL and BQML follows.
    ``GML``   already SUV of the type in SUVType (0054,1006), BW when absent;
    ``CM2ML`` already SUVbsa in cm²/mL (converted to petcad's m²/L, x 0.1).
              Already-normalised units pass through when the asked type is the
              stored one, and are re-normalised (``SUV_new = SUV_old * norm_new /
              norm_old``) when weight/height/sex allow; otherwise InputError.

Decay correction (0054,1102)
    ``START`` images decay-corrected to the scan start. Scan datetime (QIBA):
              SeriesDate/SeriesTime when not after the earliest acquisition
              datetime of the series; otherwise (post-processed series) the GE
              private scan datetime (0009,100d) when present, else the earliest
              AcquisitionDate/AcquisitionTime of all slices.
              ``decay_factor = 2 ** (-(scan - injection) / half_life)``.
    ``ADMIN`` images decay-corrected to the injection: decay factor 1.
    ``NONE``  no decay correction: per slice, the decay from injection to that
              slice's AcquisitionDateTime (or AcquisitionDate+Time), averaged over
              its ActualFrameDuration (0018,1242) when present:
              ``f = 2**(-t/T) * (1 - exp(-lambda D)) / (lambda D)``.

Injection datetime: RadiopharmaceuticalStartDateTime (0018,1078), else
RadiopharmaceuticalStartTime (0018,1072) on the SeriesDate; a start time later
than the scan time is taken to be on the day before (injection before midnight,
scan after it). Dose: RadionuclideTotalDose (0018,1074) in Bq; a value below
1e4 is taken to be in MBq (no PET injection is below 10 kBq; no MBq dose is
above 1e4) and multiplied by 1e6, with a warning. Half-life: (0018,1075) in s,
else from the radionuclide code (F-18 6586.2 s, Ga-68 4062.6 s, ...).

Normalisations (W weight in kg, H height in cm, BMI = W / (H/100)²):
    ``bw``         W (as g: x 1000)                         SUV in g/mL
    ``lbm``        James: M 1.10 W - 128 (W/H)², F 1.07 W - 148 (W/H)²   g/mL
    ``lbm_janma``  Janmahasatian: M 9270 W / (6680 + 216 BMI), F 9270 W / (8780 + 244 BMI)  g/mL
    ``bsa``        Du Bois: 0.007184 W^0.425 H^0.725 (m²);  SUVbsa = C[kBq/mL] BSA[m²] / D[MBq]  (m²/L)
    ``ibw``        Devine: M 50 + 2.3 kg per inch over 5 ft, F 45.5 + 2.3 kg per inch   g/mL

Missing information raises :class:`~petcad.errors.InputError` naming the tag
and the command-line option that supplies it. Patient names and IDs are never
read into the audit.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from petcad.errors import InputError
from petcad.study import Volume

SUVType = Literal["bw", "lbm", "lbm_janma", "bsa", "ibw"]
SUV_TYPES: tuple[str, ...] = ("bw", "lbm", "lbm_janma", "bsa", "ibw")

#: DICOM SUVType (0054,1006) -> petcad suv_type
_DICOM_SUV_TYPE = {"BW": "bw", "LBM": "lbm", "LBMJAMES128": "lbm", "LBMJANMA": "lbm_janma", "BSA": "bsa", "IBW": "ibw"}

#: Half-lives (s) by radionuclide code value (SNOMED/SRT) and by name fragment.
HALF_LIFE_S = {
    "F-18": 6586.2, "Ga-68": 4062.6, "C-11": 1223.4, "N-13": 597.9, "O-15": 122.24,
    "Cu-64": 45721.1, "Zr-89": 282276.0, "Rb-82": 76.38, "I-124": 360806.4, "Y-86": 53064.0,
}
_CODE_TO_NUCLIDE = {
    "C-111A1": "F-18", "C-131A3": "Ga-68", "C-105A1": "C-11", "C-107A1": "N-13", "C-B1038": "O-15",
    "C-127A2": "Cu-64", "C-128A4": "Zr-89", "C-159A2": "Rb-82", "C-114A4": "I-124", "C-162A7": "Y-86",
}
#: dose values below this (in the header's number) are taken to be MBq
MBQ_THRESHOLD = 1e4

OPTION_FOR = {
    "weight": "--weight KG",
    "height": "--height M",
    "dose": "--dose MBQ",
    "injection": "--injection-time HH:MM[:SS] or ISO datetime",
    "sex": "--sex M|F",
    "half_life": "--half-life S",
}


@dataclass
class SUVSettings:
    """How to compute SUV; any value given here overrides the header.

    suv_type : bw | lbm (James) | lbm_janma (Janmahasatian) | bsa (Du Bois) | ibw (Devine).
    weight_kg : patient weight in kg.  height_m : height in m.
    dose_bq : injected activity in Bq at the injection time.
    injection_datetime : injection date and time (a ``datetime`` or an ISO string;
        a bare time ``HH:MM[:SS]`` is placed on the series date like StartTime).
    sex : ``M`` or ``F`` (needed by lbm, lbm_janma, ibw).
    half_life_s : radionuclide half-life in s.
    """

    suv_type: str = "bw"
    weight_kg: float | None = None
    height_m: float | None = None
    dose_bq: float | None = None
    injection_datetime: dt.datetime | str | None = None
    sex: str | None = None
    half_life_s: float | None = None

    def __post_init__(self) -> None:
        if self.suv_type not in SUV_TYPES:
            raise InputError("--type", f"unknown SUV type {self.suv_type!r}; choose one of {', '.join(SUV_TYPES)}")
        for name in ("weight_kg", "height_m", "dose_bq", "half_life_s"):
            v = getattr(self, name)
            if v is not None and not (float(v) > 0 and math.isfinite(float(v))):
                opt = {"weight_kg": "--weight", "height_m": "--height", "dose_bq": "--dose", "half_life_s": "--half-life"}[name]
                raise InputError(opt, f"{name} must be a positive number, got {v}")
        if self.sex is not None and str(self.sex).upper() not in ("M", "F"):
            raise InputError("--sex", f"sex must be M or F, got {self.sex!r}")


@dataclass
class SUVAudit:
    """Every value used to turn the PET into SUV, for a physicist to check.

    Times are ISO strings; ``factor`` is the SUV factor (first slice; g/Bq for
    bw/lbm/ibw from BQML, i.e. SUV per Bq/mL), ``factors`` one per slice.
    ``header`` holds every DICOM header value read (keyword: value) and
    ``sources`` says for each quantity whether it came from the header, an
    override, or a derivation.
    """

    suv_type: str
    output_units: str
    input_units: str
    decay_correction: str
    factor: float
    factors: list[float]
    decay_factor: float | None
    decay_time_s: float | None
    half_life_s: float | None
    injection_datetime: str | None
    scan_datetime: str | None
    scan_time_rule: str | None
    series_datetime: str | None
    acquisition_datetime_earliest: str | None
    weight_kg: float | None
    height_m: float | None
    sex: str | None
    dose_bq: float | None
    decayed_dose_bq: float | None
    normalisation: float | None
    normalisation_units: str | None
    header: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    software: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ header helpers
def _get(ds, tag_or_kw, default=None):
    """A header value (keyword or tag), ``default`` when absent or empty."""
    if ds is None:
        return default
    try:
        if isinstance(tag_or_kw, str):
            v = getattr(ds, tag_or_kw, None)
        else:
            el = ds.get(tag_or_kw)
            v = None if el is None else el.value
    except Exception:
        return default
    if v is None or (isinstance(v, (str, bytes)) and not v.strip()):
        return default
    return v


def _float(v) -> float | None:
    if v is None:
        return None
    try:
        if isinstance(v, bytes):
            v = v.decode("ascii", "ignore").strip("\x00 ")
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _str(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode("ascii", "ignore")
    s = str(v).strip().strip("\x00").strip()
    return s or None


def parse_da_tm(date: str | None, time: str | None) -> dt.datetime | None:
    """DICOM DA (YYYYMMDD) + TM (HHMMSS.FFFFFF, parts optional) to a naive datetime."""
    date, time = _str(date), _str(time)
    if not date or not time:
        return None
    try:
        d = dt.datetime.strptime(date[:8], "%Y%m%d")
    except ValueError:
        return None
    t = _parse_tm(time)
    return None if t is None else d + t


def _parse_tm(tm: str) -> dt.timedelta | None:
    tm = tm.replace(":", "").strip()
    frac = 0.0
    if "." in tm:
        tm, f = tm.split(".", 1)
        try:
            frac = float("0." + f) if f else 0.0
        except ValueError:
            return None
    if not tm.isdigit() or len(tm) not in (2, 4, 6):
        return None
    h = int(tm[0:2])
    m = int(tm[2:4]) if len(tm) >= 4 else 0
    s = int(tm[4:6]) if len(tm) >= 6 else 0
    if h > 23 or m > 59 or s > 60:
        return None
    return dt.timedelta(hours=h, minutes=m, seconds=s + frac)


def parse_dt(value: str | None) -> dt.datetime | None:
    """DICOM DT (YYYYMMDDHHMMSS.FFFFFF, optional &ZZXX offset dropped) to a naive datetime."""
    s = _str(value)
    if not s:
        return None
    for sep in ("+", "-"):
        if sep in s[8:]:
            s = s[: 8 + s[8:].index(sep)]
    if len(s) < 8:
        return None
    return parse_da_tm(s[:8], s[8:] or "000000")


def parse_injection(value: dt.datetime | str | None, series_date: dt.date | None) -> tuple[dt.datetime | None, bool]:
    """An override injection time: datetime, ISO string, or bare ``HH:MM[:SS]``.

    Returns (datetime, date_was_given).
    """
    if value is None:
        return None, False
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None), True
    s = str(value).strip()
    try:
        parsed = dt.datetime.fromisoformat(s)
        return parsed.replace(tzinfo=None), True
    except ValueError:
        pass
    t = _parse_tm(s)
    if t is None:
        raise InputError("--injection-time", f"cannot read {s!r}: give HH:MM[:SS] or an ISO date and time")
    if series_date is None:
        raise InputError("--injection-time", "a bare time needs the series date (SeriesDate missing); give an ISO datetime")
    return dt.datetime.combine(series_date, dt.time()) + t, False


def _iso(x: dt.datetime | None) -> str | None:
    return None if x is None else x.isoformat(timespec="milliseconds")


def _private(ds, group: int, elem: int, creator: str | None):
    """A private element by creator (block-independent), falling back to the raw tag."""
    if creator:
        try:
            block = ds.private_block(group, creator)
            return block[elem & 0xFF].value
        except (KeyError, ValueError):
            pass
    el = ds.get((group, elem))
    return None if el is None else el.value


# ------------------------------------------------------------------ normalisation
def body_normalisation(suv_type: str, *, weight_kg: float | None, height_m: float | None, sex: str | None) -> tuple[float, str]:
    """The normaliser of ``suv_type``: (value, units) with mass in g or BSA in m² x 1e3.

    ``SUV = C[Bq/mL] * value / D[Bq]``: for bw/lbm/lbm_janma/ibw value is a mass
    in g (SUV in g/mL); for bsa it is BSA[m²] * 1e3 so that SUVbsa is in m²/L
    (= C[kBq/mL] * BSA[m²] / D[MBq]).
    Raises InputError naming what is missing.
    """
    if weight_kg is None and suv_type != "ibw":
        raise InputError("PatientWeight (0010,1030)", f"missing patient weight; needed for SUV{suv_type}; give {OPTION_FOR['weight']}")
    if suv_type == "bw":
        return weight_kg * 1000.0, "g"
    if height_m is None:
        raise InputError("PatientSize (0010,1020)", f"missing patient height; needed for SUV{suv_type}; give {OPTION_FOR['height']}")
    h_cm = height_m * 100.0
    if suv_type == "bsa":
        bsa = 0.007184 * weight_kg**0.425 * h_cm**0.725
        return bsa * 1000.0, "m2*1e3"
    if sex not in ("M", "F"):
        raise InputError("PatientSex (0010,0040)", f"patient sex is {sex or 'missing'}; SUV{suv_type} needs M or F; give {OPTION_FOR['sex']}")
    if suv_type == "lbm":
        lbm = 1.10 * weight_kg - 128.0 * (weight_kg / h_cm) ** 2 if sex == "M" else 1.07 * weight_kg - 148.0 * (weight_kg / h_cm) ** 2
        return lbm * 1000.0, "g"
    if suv_type == "lbm_janma":
        bmi = weight_kg / height_m**2
        lbm = 9270.0 * weight_kg / (6680.0 + 216.0 * bmi) if sex == "M" else 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)
        return lbm * 1000.0, "g"
    if suv_type == "ibw":
        inches_over_5ft = (h_cm - 152.4) / 2.54
        ibw = (50.0 if sex == "M" else 45.5) + 2.3 * inches_over_5ft
        return ibw * 1000.0, "g"
    raise InputError("--type", f"unknown SUV type {suv_type!r}")


def output_units(suv_type: str) -> str:
    return "m2/L" if suv_type == "bsa" else "g/mL"


# ------------------------------------------------------------------ main entry
def compute_suv(series, settings: SUVSettings = SUVSettings()) -> tuple[Volume, SUVAudit]:
    """Convert a PET :class:`~petcad.io.dicom.DicomSeries` to SUV.

    Returns the SUV volume (float32, the PET's geometry) and the audit. For a
    resampled series (irregular slices interpolated) the per-slice factors
    must be equal, else InputError.
    """
    import pydicom
    import numpy

    ds_list = series.datasets
    if not ds_list:
        raise InputError(series.info.folder, "series has no slices")
    where = str(series.info.folder)
    ds0 = ds_list[0]
    header: dict = {}
    sources: dict = {}
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        warnings.warn(msg, stacklevel=3)

    modality = _str(_get(ds0, "Modality"))
    header["Modality"] = modality
    if modality not in (None, "PT"):
        raise InputError(where, f"SUV needs a PET series (Modality PT), this one is {modality}")
    units = (_str(_get(ds0, "Units")) or "").upper()
    header["Units"] = units or None
    if not units:
        raise InputError(f"{where}: Units (0054,1001)", "missing PET units; cannot compute SUV")
    decay_corr = (_str(_get(ds0, "DecayCorrection")) or "").upper()
    header["DecayCorrection"] = decay_corr or None
    corrected = _get(ds0, "CorrectedImage")
    header["CorrectedImage"] = None if corrected is None else ([str(x) for x in corrected] if not isinstance(corrected, str) else [corrected])
    header["Manufacturer"] = _str(_get(ds0, "Manufacturer"))
    header["SUVType"] = _str(_get(ds0, "SUVType"))
    header["RescaleSlope_per_slice"] = [float(getattr(d, "RescaleSlope", 1.0) or 1.0) for d in ds_list]
    header["RescaleIntercept_per_slice"] = [float(getattr(d, "RescaleIntercept", 0.0) or 0.0) for d in ds_list]

    # body size
    w_hdr = _float(_get(ds0, "PatientWeight"))
    h_hdr = _float(_get(ds0, "PatientSize"))
    sex_hdr = _str(_get(ds0, "PatientSex"))
    header.update(PatientWeight=w_hdr, PatientSize=h_hdr, PatientSex=sex_hdr)
    weight = settings.weight_kg if settings.weight_kg is not None else w_hdr
    sources["weight"] = "override" if settings.weight_kg is not None else ("header" if w_hdr else "missing")
    if weight is not None and weight <= 0:
        weight = None
    if weight is not None and weight >= 1000.0 and settings.weight_kg is None:
        note(f"PatientWeight {weight} looks like grams; divided by 1000 to kg")
        weight = weight / 1000.0
    height = settings.height_m if settings.height_m is not None else h_hdr
    sources["height"] = "override" if settings.height_m is not None else ("header" if h_hdr else "missing")
    if height is not None and height <= 0:
        height = None
    if height is not None and height > 3.0 and settings.height_m is None:
        note(f"PatientSize {height} looks like cm; divided by 100 to m")
        height = height / 100.0
    sex = (settings.sex or sex_hdr or "").upper() or None
    sources["sex"] = "override" if settings.sex else ("header" if sex_hdr else "missing")

    # radiopharmaceutical
    seq = _get(ds0, "RadiopharmaceuticalInformationSequence")
    rp = seq[0] if seq is not None and len(seq) else None
    dose_hdr = _float(_get(rp, "RadionuclideTotalDose")) if rp is not None else None
    hl_hdr = _float(_get(rp, "RadionuclideHalfLife")) if rp is not None else None
    start_dt_hdr = _str(_get(rp, "RadiopharmaceuticalStartDateTime")) if rp is not None else None
    start_tm_hdr = _str(_get(rp, "RadiopharmaceuticalStartTime")) if rp is not None else None
    nuclide = None
    if rp is not None:
        code_seq = _get(rp, "RadionuclideCodeSequence")
        if code_seq is not None and len(code_seq):
            cv = _str(_get(code_seq[0], "CodeValue"))
            cm = _str(_get(code_seq[0], "CodeMeaning"))
            header["RadionuclideCodeValue"], header["RadionuclideCodeMeaning"] = cv, cm
            nuclide = _CODE_TO_NUCLIDE.get(cv or "")
            if nuclide is None and cm:
                key = cm.replace("^", "").replace("-", "").replace(" ", "").lower()
                for name in HALF_LIFE_S:
                    el, mass = name.split("-")
                    if key in (f"{mass}{el}".lower(), f"{el}{mass}".lower()) or key.endswith(f"{mass}{el}".lower()) or f"{mass}{el}".lower() in key:
                        nuclide = name
                        break
        header["Radiopharmaceutical"] = _str(_get(rp, "Radiopharmaceutical"))
    header.update(RadionuclideTotalDose=dose_hdr, RadionuclideHalfLife=hl_hdr,
                  RadiopharmaceuticalStartDateTime=start_dt_hdr, RadiopharmaceuticalStartTime=start_tm_hdr)

    # times
    series_dt = parse_da_tm(_get(ds0, "SeriesDate"), _get(ds0, "SeriesTime"))
    header["SeriesDate"], header["SeriesTime"] = _str(_get(ds0, "SeriesDate")), _str(_get(ds0, "SeriesTime"))
    acq_times: list[dt.datetime | None] = []
    for d in ds_list:
        a = parse_dt(_get(d, "AcquisitionDateTime"))
        if a is None:
            a = parse_da_tm(_get(d, "AcquisitionDate") or _get(d, "SeriesDate"), _get(d, "AcquisitionTime"))
        acq_times.append(a)
    header["AcquisitionDateTime_per_slice"] = [_iso(a) for a in acq_times]
    valid_acq = [a for a in acq_times if a is not None]
    acq_earliest = min(valid_acq) if valid_acq else None
    ge_private = _private(ds0, 0x0009, 0x100D, "GEMS_PETD_01")
    ge_scan_dt = parse_dt(_str(ge_private)) if ge_private is not None else None
    header["GE_private_scan_datetime_0009_100d"] = _str(ge_private)
    frame_ms = _float(_get(ds0, "ActualFrameDuration"))
    header["ActualFrameDuration"] = frame_ms
    header["FrameReferenceTime"] = _float(_get(ds0, "FrameReferenceTime"))

    n = len(ds_list)
    target = settings.suv_type

    def need_dose() -> float:
        if settings.dose_bq is not None:
            sources["dose"] = "override"
            return float(settings.dose_bq)
        if dose_hdr is None or dose_hdr <= 0:
            raise InputError(f"{where}: RadionuclideTotalDose (0018,1074)", f"missing injected dose; give {OPTION_FOR['dose']}")
        sources["dose"] = "header"
        if dose_hdr < MBQ_THRESHOLD:
            note(f"RadionuclideTotalDose {dose_hdr:g} is below {MBQ_THRESHOLD:g}: taken to be MBq, x 1e6 to Bq")
            sources["dose"] = "header (MBq -> Bq)"
            return dose_hdr * 1e6
        return dose_hdr

    def need_half_life() -> float:
        if settings.half_life_s is not None:
            sources["half_life"] = "override"
            return float(settings.half_life_s)
        if hl_hdr is not None and hl_hdr > 0:
            sources["half_life"] = "header"
            return hl_hdr
        if nuclide is not None:
            sources["half_life"] = f"radionuclide code ({nuclide})"
            return HALF_LIFE_S[nuclide]
        raise InputError(f"{where}: RadionuclideHalfLife (0018,1075)", f"missing half-life and unknown radionuclide; give {OPTION_FOR['half_life']}")

    def need_injection(ref: dt.datetime | None) -> dt.datetime:
        sd = series_dt.date() if series_dt else (ref.date() if ref else None)
        if settings.injection_datetime is not None:
            inj, dated = parse_injection(settings.injection_datetime, sd)
            sources["injection"] = "override"
        elif start_dt_hdr and parse_dt(start_dt_hdr) is not None:
            inj, dated = parse_dt(start_dt_hdr), True
            sources["injection"] = "header RadiopharmaceuticalStartDateTime"
        elif start_tm_hdr and sd is not None and _parse_tm(start_tm_hdr) is not None:
            inj, dated = dt.datetime.combine(sd, dt.time()) + _parse_tm(start_tm_hdr), False
            sources["injection"] = "header RadiopharmaceuticalStartTime + SeriesDate"
        else:
            raise InputError(
                f"{where}: RadiopharmaceuticalStartDateTime (0018,1078)",
                f"missing injection time (no StartDateTime, no StartTime with SeriesDate); give {OPTION_FOR['injection']}",
            )
        if ref is not None and not dated and inj > ref:
            inj -= dt.timedelta(days=1)
            note(f"injection time {inj.time()} is after the scan time {ref.time()} on the same date: "
                 "taken to be the day before (injection before midnight)")
            sources["injection"] += " (previous day: crosses midnight)"
        if ref is not None and inj > ref + dt.timedelta(seconds=1):
            raise InputError(f"{where}: RadiopharmaceuticalStartDateTime (0018,1078)",
                             f"injection {_iso(inj)} is after the scan start {_iso(ref)}; give {OPTION_FOR['injection']}")
        return inj

    dose = half_life = inj = scan = None
    decay_factor = decay_time = decayed_dose = None
    scan_rule = None
    norm_value = norm_units = None
    bw_factor = np.ones(n, dtype=np.float64)  # per slice: value -> SUVbw (or the stored SUV type)
    stored_type = "bw"

    def scan_datetime() -> dt.datetime:
        nonlocal scan_rule
        if series_dt is not None and (acq_earliest is None or series_dt <= acq_earliest):
            scan_rule = "SeriesDate/SeriesTime (not after the earliest acquisition time)"
            return series_dt
        if ge_scan_dt is not None:
            scan_rule = "GE private scan datetime (0009,100d) (series time after acquisition time)"
            return ge_scan_dt
        if acq_earliest is not None:
            scan_rule = ("earliest AcquisitionDate/AcquisitionTime of the series"
                         + (" (series time after acquisition time)" if series_dt is not None else " (no SeriesTime)"))
            return acq_earliest
        raise InputError(f"{where}: SeriesTime (0008,0031)", f"missing series and acquisition times; give {OPTION_FOR['injection']} and check the series")

    def bqml_factor(activity_scale: np.ndarray) -> np.ndarray:
        """per-slice factor: value * activity_scale -> Bq/mL -> SUVbw."""
        nonlocal dose, half_life, inj, scan, decay_factor, decay_time, decayed_dose, scan_rule
        if weight is None:
            raise InputError(f"{where}: PatientWeight (0010,1030)", f"missing patient weight; give {OPTION_FOR['weight']}")
        dose = need_dose()
        if decay_corr == "ADMIN":
            decay_factor, decay_time = 1.0, 0.0
            decayed_dose = dose
            try:  # times are informative only for ADMIN
                scan = scan_datetime()
            except InputError:
                scan = None
            if settings.injection_datetime is not None or start_dt_hdr or start_tm_hdr:
                try:
                    inj = need_injection(scan)
                except InputError:
                    inj = None
            return activity_scale * (weight * 1000.0 / dose)
        half_life = need_half_life()
        lam = math.log(2.0) / half_life
        if decay_corr == "START":
            scan = scan_datetime()
            inj = need_injection(scan)
            decay_time = (scan - inj).total_seconds()
            decay_factor = 2.0 ** (-decay_time / half_life)
            decayed_dose = dose * decay_factor
            return activity_scale * (weight * 1000.0 / decayed_dose)
        if decay_corr == "NONE":
            if any(a is None for a in acq_times):
                raise InputError(f"{where}: AcquisitionTime (0008,0032)", "DecayCorrection NONE needs each slice's acquisition time")
            scan = acq_earliest
            scan_rule = "per-slice AcquisitionDate/AcquisitionTime (DecayCorrection NONE)"
            inj = need_injection(acq_earliest)
            t = np.array([(a - inj).total_seconds() for a in acq_times])
            f = 2.0 ** (-t / half_life)
            frames = np.array([_float(_get(d, "ActualFrameDuration")) or 0.0 for d in ds_list]) / 1000.0
            with np.errstate(divide="ignore", invalid="ignore"):
                avg = np.where(frames > 0, (1.0 - np.exp(-lam * frames)) / (lam * np.where(frames > 0, frames, 1.0)), 1.0)
            if not np.all(frames > 0):
                note("ActualFrameDuration missing on some slices: decay taken at the acquisition start")
            f = f * avg
            decay_time = float(t[0])
            decay_factor = float(f[0])
            decayed_dose = dose * decay_factor
            return activity_scale * (weight * 1000.0 / (dose * f))
        raise InputError(f"{where}: DecayCorrection (0054,1102)",
                         f"unknown decay correction {decay_corr or '(missing)'}; expected START, ADMIN or NONE")

    corr = {str(c).upper() for c in (header["CorrectedImage"] or [])}
    if units in ("BQML", "CNTS") and header["CorrectedImage"] is not None:
        lacking = [c for c in ("ATTN", "DECY") if c not in corr and not (c == "DECY" and decay_corr in ("NONE", "ADMIN"))]
        if lacking:
            note(f"CorrectedImage (0028,0051) lacks {', '.join(lacking)}: QIBA expects attenuation- and "
                 "decay-corrected images for SUV")
    if units == "BQML":
        bw_factor = bqml_factor(np.ones(n))
    elif units == "CNTS":
        ssf = np.array([_float(_private(d, 0x7053, 0x1000, "Philips PET Private Group")) or 0.0 for d in ds_list])
        acsf = np.array([_float(_private(d, 0x7053, 0x1009, "Philips PET Private Group")) or 0.0 for d in ds_list])
        header["Philips_SUV_scale_factor_7053_1000_per_slice"] = ssf.tolist()
        header["Philips_activity_concentration_scale_factor_7053_1009_per_slice"] = acsf.tolist()
        if np.all(ssf > 0):
            bw_factor = ssf
            sources["factor"] = "Philips SUV scale factor (7053,1000)"
            if target != "bw" and weight is None:
                raise InputError(f"{where}: PatientWeight (0010,1030)", f"SUV{target} from the Philips SUVbw factor needs the weight; give {OPTION_FOR['weight']}")
        elif np.all(acsf > 0):
            bw_factor = bqml_factor(acsf)
            sources["factor"] = "Philips activity concentration scale factor (7053,1009), then as BQML"
        else:
            raise InputError(f"{where}: (7053,1000)", "Units CNTS without the Philips SUV scale factor (7053,1000) "
                             "or activity concentration scale factor (7053,1009): cannot compute SUV")
    elif units in ("GML", "CM2ML"):
        stored_type = "bsa" if units == "CM2ML" else _DICOM_SUV_TYPE.get((header["SUVType"] or "BW").upper())
        if stored_type is None:
            raise InputError(f"{where}: SUVType (0054,1006)", f"unknown SUV type {header['SUVType']!r} for Units GML")
        bw_factor = np.full(n, 0.1 if units == "CM2ML" else 1.0)  # CM2ML (cm²/mL) -> m²/L
        sources["factor"] = f"already SUV{stored_type} (Units {units}): passed through"
    else:
        raise InputError(f"{where}: Units (0054,1001)", f"unsupported PET units {units!r}; supported: BQML, CNTS, GML, CM2ML")

    # from SUVbw (or the stored type) to the asked type
    if target == stored_type:
        factors = bw_factor
        if target != "bw":
            norm_value, norm_units = None, None
        else:
            if weight is not None:
                norm_value, norm_units = weight * 1000.0, "g"
    else:
        try:
            norm_new, norm_units = body_normalisation(target, weight_kg=weight, height_m=height, sex=sex)
            norm_old, _ = body_normalisation(stored_type, weight_kg=weight, height_m=height, sex=sex)
        except InputError as exc:
            if units in ("GML", "CM2ML"):
                raise InputError(f"{where}: {exc.where}", f"image is already SUV{stored_type} (Units {units}); "
                                 f"SUV{target} cannot be derived: {exc.problem}") from None
            raise InputError(f"{where}: {exc.where}", exc.problem) from None
        norm_value = norm_new
        factors = bw_factor * (norm_new / norm_old)

    arr = series.volume.array
    if series.resampled:
        if not np.allclose(factors, factors[0], rtol=1e-9):
            raise InputError(where, "slices were resampled but SUV factors differ per slice; read with on_irregular='stack'")
        suv = arr * np.float32(factors[0])
    else:
        if arr.shape[0] != n:
            raise InputError(where, f"volume has {arr.shape[0]} slices but {n} headers")
        suv = arr * factors.astype(np.float32)[:, None, None]
    suv = np.ascontiguousarray(suv, dtype=np.float32)
    out = Volume(array=suv, origin=series.volume.origin, spacing=series.volume.spacing, direction=series.volume.direction)

    audit = SUVAudit(
        suv_type=target,
        output_units=output_units(target),
        input_units=units,
        decay_correction=decay_corr or None,
        factor=float(factors[0]),
        factors=[float(f) for f in factors],
        decay_factor=None if decay_factor is None else float(decay_factor),
        decay_time_s=None if decay_time is None else float(decay_time),
        half_life_s=half_life,
        injection_datetime=_iso(inj),
        scan_datetime=_iso(scan),
        scan_time_rule=scan_rule,
        series_datetime=_iso(series_dt),
        acquisition_datetime_earliest=_iso(acq_earliest),
        weight_kg=weight,
        height_m=height,
        sex=sex,
        dose_bq=dose,
        decayed_dose_bq=decayed_dose,
        normalisation=norm_value,
        normalisation_units=norm_units,
        header=header,
        sources=sources,
        notes=notes,
        software={"petcad": _version(), "pydicom": pydicom.__version__, "numpy": numpy.__version__},
    )
    return out, audit


def _version() -> str:
    try:
        from petcad import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return "unknown"
