"""All SUV logic: units, decay correction, reference time, body-size normalisation, and the audit.

The rules are those of the IBSI SUV manual (Vácha et al., restated in
``../shared/docs/suv-rules.md``), which builds on the QIBA vendor-neutral
pseudo-code and the DICOM standard; ``docs/io.md`` lists every rule with the
header fields it reads. In short:

``SUV = (stored * RescaleSlope) * factor``, a factor per slice (the rescale is
applied per slice by :func:`petcad.io.dicom.read_series`; a non-zero
RescaleIntercept makes a PET series unusable and is refused).

Units (0054,1001): ``BQML`` Bq/mL; ``CNTS`` (Philips) through the private SUV
scale factor (7053,1000), else the activity concentration scale factor
(7053,1009), else counts / ActualFrameDuration = CPS; ``CPS`` / voxel volume
(and x DoseCalibrationFactor (0054,1322) without DCAL in CorrectedImage);
``GML`` already an SUV of SUVType (0054,1006) (BW when empty) and ``CM2ML``
already SUVbsa: both converted to SUVbw with ``stored * W / X``. ``PROPCNTS``,
``PROPCPS``, ``1CM`` and anything else are refused by name.

Decay correction (0054,1102): ``START`` decays the dose to the reference time
(QIBA order: SeriesTime unless later than the acquisition time, then the GE
private scan datetime (0009,100D), then the back-computation from
AcquisitionTime, FrameReferenceTime and ActualFrameDuration, then the earliest
AcquisitionTime; or always the back-computation with
``reference_time="backcompute"``); ``ADMIN`` needs no decay; ``NONE`` uses each
slice's own time, averaged over its frame.

Body-size normalisers (W kg, H cm): body weight, lean body mass (James:
``lbm``; Morgan: ``lbm_morgan``; Janmahasatian: ``lbm_janma``), body surface
area (Du Bois: ``bsa``, reported in m²/L) and ideal body weight (Sugawara:
``ibw``). PatientSex ``O`` takes the mean of the male and female values. A
normaliser <= 0, or a lean body mass above the body weight, is an error.

Values are recognised by magnitude and every recognition is a note in the
audit: PatientWeight over 1000 is grams, PatientSize over 3 is cm, a
RadionuclideTotalDose below 1e4 is MBq. Missing or implausible information
raises :class:`~petcad.errors.InputError` naming the tag and the command-line
option that supplies it. Patient names and IDs are never read into the audit.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from petcad.errors import InputError
from petcad.study import Volume

#: petcad SUV types: bw, lbm (James, the DICOM default "lbm"), lbm_morgan, lbm_janma, bsa, ibw (Sugawara)
SUV_TYPES: tuple[str, ...] = ("bw", "lbm", "lbm_morgan", "lbm_janma", "bsa", "ibw")
TYPE_NAMES = {
    "bw": "body weight", "lbm": "lean body mass (James)", "lbm_morgan": "lean body mass (Morgan)",
    "lbm_janma": "lean body mass (Janmahasatian)", "bsa": "body surface area (Du Bois)",
    "ibw": "ideal body weight (Sugawara)",
}
#: how the decay reference time of a START series is found
REFERENCE_TIME_METHODS: tuple[str, ...] = ("qiba", "backcompute")

#: DICOM SUVType (0054,1006) -> petcad suv_type
DICOM_SUV_TYPE = {"BW": "bw", "LBM": "lbm_morgan", "LBMJAMES128": "lbm", "LBMJANMA": "lbm_janma",
                  "IBW": "ibw", "BSA": "bsa"}

#: Units that cannot be turned into activity concentration, with the reason.
NOT_CONVERTIBLE_UNITS = {
    "PROPCNTS": "counts proportional to activity, with no calibration to Bq/mL",
    "PROPCPS": "counts per second proportional to activity, with no calibration to Bq/mL",
    "1CM": "an attenuation map (1/cm), not an activity image",
    "NPS": "a number of particles per second, with no calibration to Bq/mL",
    "MGMINML": "a metabolic rate (mg/min/mL), not an activity image",
    "UMOLMINML": "a metabolic rate (umol/min/mL), not an activity image",
}

#: Half-lives (s) by radionuclide code value (SNOMED/SRT) and by name fragment.
HALF_LIFE_S = {
    "F-18": 6586.2, "Ga-68": 4062.6, "C-11": 1223.4, "N-13": 597.9, "O-15": 122.24,
    "Cu-64": 45721.1, "Zr-89": 282276.0, "Rb-82": 76.38, "I-124": 360806.4, "Y-86": 53064.0,
}
_CODE_TO_NUCLIDE = {
    "C-111A1": "F-18", "C-131A3": "Ga-68", "C-105A1": "C-11", "C-107A1": "N-13", "C-B1038": "O-15",
    "C-127A2": "Cu-64", "C-128A4": "Zr-89", "C-159A2": "Rb-82", "C-114A4": "I-124", "C-162A7": "Y-86",
}

# ----------------------------------------------------------------- plausible values, units by magnitude
#: a weight over this is grams (header and command line)
GRAMS_ABOVE = 1000.0
WEIGHT_KG_RANGE = (1.0, 700.0)
HEIGHT_M_RANGE = (0.4, 2.75)
HEIGHT_CM_RANGE = (40.0, 275.0)
#: a dose number below this is MBq (no PET injection is under 10 kBq, no MBq dose above 10 GBq)
MBQ_THRESHOLD = 1e4
#: a dose in Bq must lie in this range (1 MBq .. 100 GBq); 1e4 .. 1e6 is neither plausible MBq nor Bq
DOSE_BQ_RANGE = (1e6, 1e11)
#: back-computed reference times that differ by more than this (s) across slices get a note
BACKCOMPUTE_SPREAD_S = 1.0

OPTION_FOR = {
    "weight": "--weight KG",
    "height": "--height CM",
    "dose": "--dose MBQ",
    "injection": "--injection-time HH:MM[:SS] or ISO datetime",
    "sex": "--sex M|F|O",
    "half_life": "--half-life S",
}


def _finite_positive(value, where: str, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(where, f"{what} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise InputError(where, f"{what} must be a positive number, got {value!r}")
    return v


def weight_kg_from(value, where: str, *, hint: str = "") -> tuple[float, str | None]:
    """A weight in kg from a number in kg, or in g when over 1000: ``(kg, note or None)``."""
    v = _finite_positive(value, where, "weight")
    kg, note = v, None
    if v > GRAMS_ABOVE:
        kg = v / 1000.0
        note = f"{where} {v:g} is over {GRAMS_ABOVE:g}: read as grams, {kg:g} kg"
    lo, hi = WEIGHT_KG_RANGE
    if not lo <= kg <= hi:
        raise InputError(where, f"weight {v:g} is not a plausible patient weight in kg ({lo:g}-{hi:g}) "
                         f"or in g (over {GRAMS_ABOVE:g}){hint}")
    return kg, note


def height_m_from(value, where: str, *, unit: str = "m", hint: str = "") -> tuple[float, str | None]:
    """A height in m from a number in m (0.4-2.75) or cm (40-275): ``(m, note or None)``.

    ``unit`` is the documented unit of the source (``m`` for PatientSize, ``cm``
    for ``--height``); a value recognised in the other unit gets a note.
    """
    v = _finite_positive(value, where, "height")
    if HEIGHT_M_RANGE[0] <= v <= HEIGHT_M_RANGE[1]:
        m, read_as = v, "m"
    elif HEIGHT_CM_RANGE[0] <= v <= HEIGHT_CM_RANGE[1]:
        m, read_as = v / 100.0, "cm"
    else:
        raise InputError(where, f"height {v:g} is neither metres ({HEIGHT_M_RANGE[0]:g}-{HEIGHT_M_RANGE[1]:g}) "
                         f"nor centimetres ({HEIGHT_CM_RANGE[0]:g}-{HEIGHT_CM_RANGE[1]:g}){hint}")
    note = None if read_as == unit else f"{where} {v:g} read as {'metres' if read_as == 'm' else 'centimetres'}: {m * 100:g} cm"
    return m, note


def dose_bq_from(value, where: str, *, unit: str = "Bq", hint: str = "") -> tuple[float, str | None]:
    """An activity in Bq from a number in MBq (below 1e4) or Bq (1e6 .. 1e11): ``(Bq, note or None)``.

    ``unit`` is the documented unit of the source (``Bq`` for the header,
    ``MBq`` for ``--dose``); a value recognised in the other unit gets a note.
    """
    v = _finite_positive(value, where, "dose")
    if v < MBQ_THRESHOLD:
        bq, read_as = v * 1e6, "MBq"
    elif DOSE_BQ_RANGE[0] <= v <= DOSE_BQ_RANGE[1]:
        bq, read_as = v, "Bq"
    else:
        raise InputError(where, f"dose {v:g} is neither a plausible activity in MBq (below {MBQ_THRESHOLD:g}) "
                         f"nor in Bq ({DOSE_BQ_RANGE[0]:g}-{DOSE_BQ_RANGE[1]:g}){hint}")
    note = None if read_as == unit else f"{where} {v:g} read as {read_as} by its magnitude: {bq / 1e6:g} MBq"
    return bq, note


# ----------------------------------------------------------------- settings and audit
@dataclass(frozen=True)
class SUVSettings:
    """How to compute SUV; any value given here overrides the header.

    suv_type : one of :data:`SUV_TYPES`.
    weight_kg : patient weight in kg (1-700).  height_m : height in m (0.4-2.75).
    dose_bq : injected activity in Bq at the injection time (1e6-1e11).
    injection_datetime : injection date and time (a ``datetime`` or an ISO string;
        a bare time ``HH:MM[:SS]`` is placed on the series date like StartTime).
    sex : ``M``, ``F`` or ``O`` (O: mean of the male and female normalisers).
    half_life_s : radionuclide half-life in s.
    reference_time : ``qiba`` (the QIBA order) or ``backcompute`` (always from
        AcquisitionTime, FrameReferenceTime and ActualFrameDuration).
    entry_notes : how entered values were read (from :meth:`from_entries`); copied into the audit.

    Values here are strict (a weight of 71000 kg is an error); :meth:`from_entries`
    reads command-line numbers whose unit is recognised by magnitude.
    """

    suv_type: str = "bw"
    weight_kg: float | None = None
    height_m: float | None = None
    dose_bq: float | None = None
    injection_datetime: dt.datetime | str | None = None
    sex: str | None = None
    half_life_s: float | None = None
    reference_time: str = "qiba"
    entry_notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.suv_type not in SUV_TYPES:
            raise InputError("--type", f"unknown SUV type {self.suv_type!r}; choose one of {', '.join(SUV_TYPES)}")
        if self.reference_time not in REFERENCE_TIME_METHODS:
            raise InputError("--reference-time", f"unknown method {self.reference_time!r}; choose one of "
                             f"{', '.join(REFERENCE_TIME_METHODS)}")
        checks = (("weight_kg", "--weight", WEIGHT_KG_RANGE, "kg"), ("height_m", "--height", HEIGHT_M_RANGE, "m"),
                  ("dose_bq", "--dose", DOSE_BQ_RANGE, "Bq"), ("half_life_s", "--half-life", (1e-3, 1e12), "s"))
        for name, opt, (lo, hi), unit in checks:
            v = getattr(self, name)
            if v is None:
                continue
            v = _finite_positive(v, opt, name)
            if not lo <= v <= hi:
                raise InputError(opt, f"{name} {v:g} is outside {lo:g}-{hi:g} {unit}")
        if self.sex is not None:
            sex = str(self.sex).upper()
            if sex not in ("M", "F", "O"):
                raise InputError("--sex", f"sex must be M, F or O, got {self.sex!r}")
            object.__setattr__(self, "sex", sex)

    @classmethod
    def from_entries(
        cls,
        *,
        suv_type: str = "bw",
        weight: float | None = None,
        height_cm: float | None = None,
        dose_mbq: float | None = None,
        injection_time: dt.datetime | str | None = None,
        sex: str | None = None,
        half_life_s: float | None = None,
        reference_time: str = "qiba",
    ) -> "SUVSettings":
        """Settings from values as people type them (the command line), checked like header values.

        weight in kg (over 1000: grams, converted with a note); height in cm
        (0.4-2.75: metres, converted with a note; anything else outside 40-275
        cm is an error); dose in MBq (1e6 or more: Bq, with a note; 1e4-1e6 is
        an error). Errors name the option.
        """
        notes: list[str] = []
        kw: dict = {}
        if weight is not None:
            kw["weight_kg"], n = weight_kg_from(weight, "--weight")
            notes += [n] if n else []
        if height_cm is not None:
            kw["height_m"], n = height_m_from(height_cm, "--height", unit="cm")
            notes += [n] if n else []
        if dose_mbq is not None:
            kw["dose_bq"], n = dose_bq_from(dose_mbq, "--dose", unit="MBq")
            notes += [n] if n else []
        return cls(suv_type=suv_type, injection_datetime=injection_time, sex=sex, half_life_s=half_life_s,
                   reference_time=reference_time, entry_notes=tuple(notes), **kw)


@dataclass
class SUVAudit:
    """Every value used to turn the PET into SUV, for a physicist to check.

    Times are ISO strings; ``factor`` is the SUV factor (first slice; g/Bq for
    bw/lbm/ibw from BQML, i.e. SUV per Bq/mL), ``factors`` one per slice.
    ``scan_datetime`` is the decay reference time and ``scan_time_rule`` the
    rule that gave it; ``reference_time_candidates`` every candidate found.
    ``header`` holds every DICOM header value read (keyword: value) and
    ``sources`` says for each quantity whether it came from the header, an
    override, or a derivation. ``notes`` are the warnings (also emitted as
    Python warnings).
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
    reference_time_method: str
    reference_time_candidates: dict
    series_datetime: str | None
    acquisition_datetime_earliest: str | None
    weight_kg: float | None
    height_m: float | None
    sex: str | None
    sex_rule: str | None
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
class Normaliser(NamedTuple):
    """``SUV = C[Bq/mL] * value / D[Bq]``; ``sex_rule`` says how PatientSex O was handled (else None)."""

    value: float
    units: str
    sex_rule: str | None = None


# (male, female) formulas, W in kg, H in cm, result in kg
_SEXED: dict[str, tuple[Callable[[float, float], float], Callable[[float, float], float]]] = {
    "lbm": (lambda w, h: 1.10 * w - 128.0 * (w / h) ** 2, lambda w, h: 1.07 * w - 148.0 * (w / h) ** 2),
    "lbm_morgan": (lambda w, h: 1.10 * w - 120.0 * (w / h) ** 2, lambda w, h: 1.07 * w - 148.0 * (w / h) ** 2),
    "lbm_janma": (lambda w, h: 9270.0 * w / (6680.0 + 216.0 * w / (h / 100.0) ** 2),
                  lambda w, h: 9270.0 * w / (8780.0 + 244.0 * w / (h / 100.0) ** 2)),
    "ibw": (lambda w, h: 48.0 + 1.06 * (h - 152.0), lambda w, h: 45.5 + 0.91 * (h - 152.0)),
}


def body_normalisation(suv_type: str, *, weight_kg: float | None, height_m: float | None, sex: str | None) -> Normaliser:
    """The normaliser of ``suv_type``: mass in g, or for bsa BSA[m²] x 1e3 (SUVbsa in m²/L).

    ``SUV = C[Bq/mL] * value / D[Bq]``. Sex ``O`` takes the mean of the male and
    female values. Raises InputError naming what is missing, and when the value
    comes out <= 0 or a lean body mass above the body weight.
    """
    if suv_type not in SUV_TYPES:
        raise InputError("--type", f"unknown SUV type {suv_type!r}")
    if weight_kg is None and suv_type != "ibw":
        raise InputError("PatientWeight (0010,1030)", f"missing patient weight; needed for SUV{suv_type}; give {OPTION_FOR['weight']}")
    if suv_type == "bw":
        return Normaliser(weight_kg * 1000.0, "g")
    if height_m is None:
        raise InputError("PatientSize (0010,1020)", f"missing patient height; needed for SUV{suv_type}; give {OPTION_FOR['height']}")
    h_cm = height_m * 100.0
    body = f"weight {weight_kg:g} kg, height {h_cm:g} cm" if weight_kg is not None else f"height {h_cm:g} cm"
    check = f"check PatientWeight (0010,1030) and PatientSize (0010,1020), or give {OPTION_FOR['weight']} and {OPTION_FOR['height']}"
    if suv_type == "bsa":
        bsa = 0.007184 * weight_kg**0.425 * h_cm**0.725
        return Normaliser(bsa * 1000.0, "m2*1e3")
    if sex not in ("M", "F", "O"):
        raise InputError("PatientSex (0010,0040)", f"patient sex is {sex or 'missing'}; SUV{suv_type} needs M, F or O; give {OPTION_FOR['sex']}")
    male, female = _SEXED[suv_type]
    values = {"M": male(weight_kg, h_cm), "F": female(weight_kg, h_cm)}
    used = ("M", "F") if sex == "O" else (sex,)
    for s in used:
        if not values[s] > 0:
            raise InputError("PatientWeight/PatientSize", f"the {TYPE_NAMES[suv_type]} formula ({'male' if s == 'M' else 'female'}) "
                             f"gives {values[s]:.3g} kg for {body}: no SUV from a normaliser <= 0; {check}")
    kg = sum(values[s] for s in used) / len(used)
    if suv_type.startswith("lbm") and kg > weight_kg:
        raise InputError("PatientWeight/PatientSize", f"the {TYPE_NAMES[suv_type]} comes out {kg:.3g} kg, above the body "
                         f"weight ({body}); {check}")
    rule = None
    if sex == "O":
        rule = (f"PatientSex O: SUV{suv_type} normaliser is the mean of the male ({values['M']:.4g} kg) and female "
                f"({values['F']:.4g} kg) values, {kg:.4g} kg (IBSI SUV manual)")
    return Normaliser(kg * 1000.0, "g", rule)


def output_units(suv_type: str) -> str:
    return "m2/L" if suv_type == "bsa" else "g/mL"


def frame_average_offset_s(frame_s: float, half_life_s: float) -> float:
    """The time after the frame start at which the activity equals its frame average:
    ``(1/λ) ln(λT / (1 - e^(-λT)))`` (T = frame duration, s)."""
    lam = math.log(2.0) / half_life_s
    x = lam * frame_s
    return math.log(x / -math.expm1(-x)) / lam if x > 0 else 0.0


# ------------------------------------------------------------------ the header
@dataclass
class PetHeader:
    """The header values of a PET series that SUV needs (first slice, or per slice)."""

    where: str
    n: int
    units: str
    decay: str
    corrected: list[str] | None
    suv_type: str | None
    weight: float | None
    height: float | None
    sex: str | None
    dose: float | None
    half_life: float | None
    nuclide: str | None
    start_dt: str | None
    start_tm: str | None
    series_dt: dt.datetime | None
    acq: list[dt.datetime | None]
    ge_scan_dt: dt.datetime | None
    frame_ms: np.ndarray  # per slice, nan when missing
    frame_ref_ms: np.ndarray  # per slice, nan when missing
    dose_calibration: float | None
    voxel_ml: float | None
    intercepts: np.ndarray
    philips_suv: np.ndarray  # (7053,1000) per slice, 0 when missing
    philips_acsf: np.ndarray  # (7053,1009) per slice, 0 when missing
    values: dict  # every header value read, for the audit

    @property
    def acq_earliest(self) -> dt.datetime | None:
        valid = [a for a in self.acq if a is not None]
        return min(valid) if valid else None


def _nuclide(rp, values: dict) -> str | None:
    code_seq = _get(rp, "RadionuclideCodeSequence")
    if code_seq is None or not len(code_seq):
        return None
    cv, cm = _str(_get(code_seq[0], "CodeValue")), _str(_get(code_seq[0], "CodeMeaning"))
    values["RadionuclideCodeValue"], values["RadionuclideCodeMeaning"] = cv, cm
    nuclide = _CODE_TO_NUCLIDE.get(cv or "")
    if nuclide is None and cm:
        key = cm.replace("^", "").replace("-", "").replace(" ", "").lower()
        for name in HALF_LIFE_S:
            el, mass = name.split("-")
            if key in (f"{mass}{el}".lower(), f"{el}{mass}".lower()) or f"{mass}{el}".lower() in key:
                return name
    return nuclide


def _voxel_ml(ds0, series) -> tuple[float | None, str | None]:
    ps = _get(ds0, "PixelSpacing")
    thick = _float(_get(ds0, "SliceThickness"))
    try:
        px = float(ps[0]) * float(ps[1]) if ps is not None else float(series.volume.spacing[0] * series.volume.spacing[1])
    except (TypeError, ValueError, IndexError):
        return None, None
    if thick is not None and thick > 0:
        return px * thick / 1000.0, "PixelSpacing x SliceThickness"
    return px * float(series.volume.spacing[2]) / 1000.0, "PixelSpacing x slice spacing (no SliceThickness)"


def read_pet_header(series) -> PetHeader:
    """The SUV-relevant header values of a :class:`~petcad.io.dicom.DicomSeries`."""
    ds_list = series.datasets
    where = str(series.info.folder)
    if not ds_list:
        raise InputError(where, "series has no slices")
    ds0 = ds_list[0]
    v: dict = {}
    v["Modality"] = _str(_get(ds0, "Modality"))
    if v["Modality"] not in (None, "PT"):
        raise InputError(where, f"SUV needs a PET series (Modality PT), this one is {v['Modality']}")
    v["Units"] = (_str(_get(ds0, "Units")) or "").upper() or None
    v["DecayCorrection"] = (_str(_get(ds0, "DecayCorrection")) or "").upper() or None
    corrected = _get(ds0, "CorrectedImage")
    v["CorrectedImage"] = None if corrected is None else ([str(x) for x in corrected] if not isinstance(corrected, str) else [corrected])
    v["Manufacturer"] = _str(_get(ds0, "Manufacturer"))
    v["SUVType"] = _str(_get(ds0, "SUVType"))
    v["RescaleSlope_per_slice"] = [float(getattr(d, "RescaleSlope", 1.0) or 1.0) for d in ds_list]
    v["RescaleIntercept_per_slice"] = [float(getattr(d, "RescaleIntercept", 0.0) or 0.0) for d in ds_list]
    v.update(PatientWeight=_float(_get(ds0, "PatientWeight")), PatientSize=_float(_get(ds0, "PatientSize")),
             PatientSex=_str(_get(ds0, "PatientSex")))
    seq = _get(ds0, "RadiopharmaceuticalInformationSequence")
    rp = seq[0] if seq is not None and len(seq) else None
    v.update(RadionuclideTotalDose=_float(_get(rp, "RadionuclideTotalDose")),
             RadionuclideHalfLife=_float(_get(rp, "RadionuclideHalfLife")),
             RadiopharmaceuticalStartDateTime=_str(_get(rp, "RadiopharmaceuticalStartDateTime")),
             RadiopharmaceuticalStartTime=_str(_get(rp, "RadiopharmaceuticalStartTime")),
             Radiopharmaceutical=_str(_get(rp, "Radiopharmaceutical")))
    nuclide = _nuclide(rp, v) if rp is not None else None
    v["SeriesDate"], v["SeriesTime"] = _str(_get(ds0, "SeriesDate")), _str(_get(ds0, "SeriesTime"))
    acq = []
    for d in ds_list:
        a = parse_dt(_get(d, "AcquisitionDateTime"))
        acq.append(a if a is not None else parse_da_tm(_get(d, "AcquisitionDate") or _get(d, "SeriesDate"), _get(d, "AcquisitionTime")))
    v["AcquisitionDateTime_per_slice"] = [_iso(a) for a in acq]
    ge = _private(ds0, 0x0009, 0x100D, "GEMS_PETD_01")
    v["GE_private_scan_datetime_0009_100d"] = _str(ge)
    frame_ms = np.array([np.nan if (x := _float(_get(d, "ActualFrameDuration"))) is None else x for d in ds_list])
    frame_ref = np.array([np.nan if (x := _float(_get(d, "FrameReferenceTime"))) is None else x for d in ds_list])
    v["ActualFrameDuration"], v["FrameReferenceTime"] = _float(_get(ds0, "ActualFrameDuration")), _float(_get(ds0, "FrameReferenceTime"))
    v["ActualFrameDuration_per_slice"] = [None if np.isnan(x) else float(x) for x in frame_ms]
    v["FrameReferenceTime_per_slice"] = [None if np.isnan(x) else float(x) for x in frame_ref]
    v["DoseCalibrationFactor"] = _float(_get(ds0, "DoseCalibrationFactor"))
    voxel_ml, voxel_rule = _voxel_ml(ds0, series)
    v["voxel_volume_ml"], v["voxel_volume_rule"] = voxel_ml, voxel_rule
    philips = "Philips PET Private Group"
    ssf = np.array([_float(_private(d, 0x7053, 0x1000, philips)) or 0.0 for d in ds_list])
    acsf = np.array([_float(_private(d, 0x7053, 0x1009, philips)) or 0.0 for d in ds_list])
    if v["Units"] == "CNTS":
        v["Philips_SUV_scale_factor_7053_1000_per_slice"] = ssf.tolist()
        v["Philips_activity_concentration_scale_factor_7053_1009_per_slice"] = acsf.tolist()
    return PetHeader(
        where=where, n=len(ds_list), units=v["Units"] or "", decay=v["DecayCorrection"] or "",
        corrected=v["CorrectedImage"], suv_type=v["SUVType"], weight=v["PatientWeight"], height=v["PatientSize"],
        sex=v["PatientSex"], dose=v["RadionuclideTotalDose"], half_life=v["RadionuclideHalfLife"], nuclide=nuclide,
        start_dt=v["RadiopharmaceuticalStartDateTime"], start_tm=v["RadiopharmaceuticalStartTime"],
        series_dt=parse_da_tm(v["SeriesDate"], v["SeriesTime"]), acq=acq,
        ge_scan_dt=parse_dt(_str(ge)) if ge is not None else None, frame_ms=frame_ms, frame_ref_ms=frame_ref,
        dose_calibration=v["DoseCalibrationFactor"], voxel_ml=voxel_ml,
        intercepts=np.array(v["RescaleIntercept_per_slice"]), philips_suv=ssf, philips_acsf=acsf, values=v,
    )


# ------------------------------------------------------------------ reference time
def backcompute_reference_times(acq: list[dt.datetime | None], frame_ref_ms: np.ndarray, frame_ms: np.ndarray,
                                half_life_s: float) -> list[dt.datetime | None]:
    """Per slice ``t_ref = t_acq + (1/λ) ln(λT / (1 - e^(-λT))) - Δt`` (None where a value is missing).

    ``Δt`` FrameReferenceTime and ``T`` ActualFrameDuration, both in ms.
    """
    out: list[dt.datetime | None] = []
    for a, ref, dur in zip(acq, frame_ref_ms, frame_ms):
        if a is None or not np.isfinite(ref) or not np.isfinite(dur) or dur <= 0:
            out.append(None)
            continue
        offset = frame_average_offset_s(dur / 1000.0, half_life_s) - ref / 1000.0
        out.append(a + dt.timedelta(seconds=offset))
    return out


class _Ref(NamedTuple):
    time: dt.datetime
    rule: str
    candidates: dict


def _backcomputed(h: PetHeader, half_life: float) -> tuple[dt.datetime | None, dict, str | None]:
    """The back-computed reference time (from the earliest-acquired slice), the candidates' summary,
    and a note when the slices disagree (to be said when the time is used)."""
    times = backcompute_reference_times(h.acq, h.frame_ref_ms, h.frame_ms, half_life)
    valid = [(a, -1 if not np.isfinite(r) else r, t) for a, r, t in zip(h.acq, h.frame_ref_ms, times) if t is not None]
    if not valid:
        return None, {}, None
    chosen = min(valid)[2]  # the slice acquired first (then the smallest FrameReferenceTime)
    ts = [t for _, _, t in valid]
    spread = (max(ts) - min(ts)).total_seconds()
    summary = {"backcomputed": _iso(chosen), "backcomputed_min": _iso(min(ts)), "backcomputed_max": _iso(max(ts)),
               "backcomputed_slices": len(ts)}
    disagree = None
    if spread > BACKCOMPUTE_SPREAD_S:
        disagree = (f"back-computed reference times differ by {spread:.1f} s across slices ({_iso(min(ts))} .. "
                    f"{_iso(max(ts))}): AcquisitionTime / FrameReferenceTime do not follow the DICOM meaning; "
                    "the first-acquired slice's is used")
    return chosen, summary, disagree


def reference_time(h: PetHeader, method: str, half_life: float, note) -> _Ref:
    """The decay reference time of a START series, by the QIBA order or always back-computed."""
    earliest = h.acq_earliest
    back, summary, disagree = _backcomputed(h, half_life)
    cands = {"series": _iso(h.series_dt), "ge_private_0009_100d": _iso(h.ge_scan_dt),
             "acquisition_earliest": _iso(earliest), **summary}
    if method == "backcompute":
        if back is None:
            raise InputError(f"{h.where}: FrameReferenceTime (0054,1300)", "--reference-time backcompute needs each "
                             "slice's AcquisitionTime (0008,0032), FrameReferenceTime (0054,1300) and ActualFrameDuration "
                             "(0018,1242); use --reference-time qiba")
        if disagree:
            note(disagree)
        return _Ref(back, "back-computed from AcquisitionTime, FrameReferenceTime and ActualFrameDuration "
                          "(--reference-time backcompute)", cands)
    if h.series_dt is not None and (earliest is None or h.series_dt <= earliest):
        return _Ref(h.series_dt, "SeriesDate/SeriesTime (not after the earliest acquisition time)", cands)
    why = " (series time after acquisition time)" if h.series_dt is not None else " (no SeriesTime)"
    if h.ge_scan_dt is not None:
        return _Ref(h.ge_scan_dt, "GE private scan datetime (0009,100D)" + why, cands)
    if back is not None:
        if disagree:
            note(disagree)
        return _Ref(back, "back-computed from AcquisitionTime, FrameReferenceTime and ActualFrameDuration" + why, cands)
    if earliest is not None:
        note("reference time is the earliest AcquisitionTime: wrong for cropped series and multi-injection studies")
        return _Ref(earliest, "earliest AcquisitionDate/AcquisitionTime of the series" + why, cands)
    raise InputError(f"{h.where}: SeriesTime (0008,0031)", f"missing series and acquisition times; give {OPTION_FOR['injection']} and check the series")


# ------------------------------------------------------------------ the conversion
@dataclass
class _Body:
    weight_kg: float | None = None
    weight_problem: str | None = None
    height_m: float | None = None
    height_problem: str | None = None
    sex: str | None = None


class _Conversion:
    """One series' conversion: resolves each quantity once, recording where it came from."""

    def __init__(self, series, settings: SUVSettings):
        self.settings = settings
        self.h = read_pet_header(series)
        self.where = self.h.where
        self.sources: dict = {}
        self.notes: list[str] = []
        for n in settings.entry_notes:  # how command-line values were read
            self.note(n)
        self.body = self._body()
        self.dose = self.half_life = self.inj = self.ref = None
        self.decay_factor = self.decay_time = self.decayed_dose = None
        self.sex_rule: str | None = None

    def note(self, msg: str) -> None:
        self.notes.append(msg)
        warnings.warn(msg, stacklevel=4)

    # -- body size
    def _body(self) -> _Body:
        s, h, b = self.settings, self.h, _Body()
        if s.weight_kg is not None:
            b.weight_kg, self.sources["weight"] = s.weight_kg, "override"
        elif h.weight is not None and h.weight > 0:
            self.sources["weight"] = "header"
            try:
                b.weight_kg, n = weight_kg_from(h.weight, "PatientWeight (0010,1030)")
                if n:
                    self.note(n)
                    self.sources["weight"] = "header (grams -> kg)"
            except InputError as exc:
                b.weight_problem = f"{exc.problem}; give {OPTION_FOR['weight']}"
        else:
            self.sources["weight"] = "missing"
        if s.height_m is not None:
            b.height_m, self.sources["height"] = s.height_m, "override"
        elif h.height is not None and h.height > 0:
            self.sources["height"] = "header"
            try:
                b.height_m, n = height_m_from(h.height, "PatientSize (0010,1020)", unit="m")
                if n:
                    self.note(n)
                    self.sources["height"] = "header (cm -> m)"
            except InputError as exc:
                b.height_problem = f"{exc.problem}; give {OPTION_FOR['height']}"
        else:
            self.sources["height"] = "missing"
        b.sex = (s.sex or h.sex or "").upper() or None
        self.sources["sex"] = "override" if s.sex else ("header" if h.sex else "missing")
        return b

    def weight(self) -> float:
        if self.body.weight_kg is not None:
            return self.body.weight_kg
        problem = self.body.weight_problem or f"missing patient weight; give {OPTION_FOR['weight']}"
        raise InputError(f"{self.where}: PatientWeight (0010,1030)", problem)

    def normaliser(self, suv_type: str) -> Normaliser:
        if suv_type != "bw" and self.body.height_m is None and self.body.height_problem:
            raise InputError(f"{self.where}: PatientSize (0010,1020)", self.body.height_problem)
        weight = self.weight() if suv_type != "ibw" else self.body.weight_kg
        try:
            norm = body_normalisation(suv_type, weight_kg=weight, height_m=self.body.height_m, sex=self.body.sex)
        except InputError as exc:
            where = exc.where
            if where == "PatientWeight/PatientSize":  # name where the values came from
                w = "--weight" if self.sources.get("weight") == "override" else "PatientWeight (0010,1030)"
                h = "--height" if self.sources.get("height") == "override" else "PatientSize (0010,1020)"
                where = f"{w} / {h}"
            raise InputError(f"{self.where}: {where}", exc.problem) from None
        if norm.sex_rule and norm.sex_rule not in self.notes:
            self.sex_rule = norm.sex_rule if self.sex_rule is None else f"{self.sex_rule}; {norm.sex_rule}"
            self.note(norm.sex_rule)
        return norm

    # -- dose, half-life, injection
    def need_dose(self) -> float:
        if self.settings.dose_bq is not None:
            self.sources["dose"] = "override"
            return float(self.settings.dose_bq)
        d = self.h.dose
        if d is None or d <= 0:
            raise InputError(f"{self.where}: RadionuclideTotalDose (0018,1074)", f"missing injected dose; give {OPTION_FOR['dose']}")
        bq, n = dose_bq_from(d, f"{self.where}: RadionuclideTotalDose (0018,1074)", unit="Bq",
                             hint=f"; give {OPTION_FOR['dose']}")
        if n:
            self.note(n.replace(f"{self.where}: ", ""))
        self.sources["dose"] = "header (MBq by magnitude -> Bq)" if n else "header (Bq by magnitude)"
        return bq

    def need_half_life(self) -> float:
        if self.settings.half_life_s is not None:
            self.sources["half_life"] = "override"
            return float(self.settings.half_life_s)
        if self.h.half_life is not None and self.h.half_life > 0:
            self.sources["half_life"] = "header"
            return self.h.half_life
        if self.h.nuclide is not None:
            self.sources["half_life"] = f"radionuclide code ({self.h.nuclide})"
            return HALF_LIFE_S[self.h.nuclide]
        raise InputError(f"{self.where}: RadionuclideHalfLife (0018,1075)",
                         f"missing half-life and unknown radionuclide; give {OPTION_FOR['half_life']}")

    def need_injection(self, ref: dt.datetime | None) -> dt.datetime:
        h, s = self.h, self.settings
        sd = h.series_dt.date() if h.series_dt else (ref.date() if ref else None)
        if s.injection_datetime is not None:
            inj, dated = parse_injection(s.injection_datetime, sd)
            self.sources["injection"] = "override"
        elif h.start_dt and parse_dt(h.start_dt) is not None:
            inj, dated = parse_dt(h.start_dt), True
            self.sources["injection"] = "header RadiopharmaceuticalStartDateTime"
        elif h.start_tm and sd is not None and _parse_tm(h.start_tm) is not None:
            inj, dated = dt.datetime.combine(sd, dt.time()) + _parse_tm(h.start_tm), False
            self.sources["injection"] = "header RadiopharmaceuticalStartTime + SeriesDate"
        else:
            raise InputError(f"{self.where}: RadiopharmaceuticalStartDateTime (0018,1078)",
                             f"missing injection time (no StartDateTime, no StartTime with SeriesDate); give {OPTION_FOR['injection']}")
        if ref is not None and not dated and inj > ref:
            inj -= dt.timedelta(days=1)
            self.note(f"injection time {inj.time()} is after the scan time {ref.time()} on the same date: "
                      "taken to be the day before (injection before midnight)")
            self.sources["injection"] += " (previous day: crosses midnight)"
        if ref is not None and inj > ref + dt.timedelta(seconds=1):
            raise InputError(f"{self.where}: RadiopharmaceuticalStartDateTime (0018,1078)",
                             f"injection {_iso(inj)} is after the scan start {_iso(ref)}; give {OPTION_FOR['injection']}")
        return inj

    # -- Bq/mL -> SUVbw by decay correction
    def bqml_factor(self, activity_scale: np.ndarray) -> np.ndarray:
        """Per slice: stored value x activity_scale = Bq/mL; returns the factor to SUVbw."""
        h = self.h
        w_g = self.weight() * 1000.0
        self.dose = self.need_dose()
        if h.decay == "ADMIN":
            return self._admin(activity_scale, w_g)
        self.half_life = self.need_half_life()
        if h.decay == "START":
            self.ref = reference_time(h, self.settings.reference_time, self.half_life, self.note)
            self.inj = self.need_injection(self.ref.time)
            self.decay_time = (self.ref.time - self.inj).total_seconds()
            self.decay_factor = 2.0 ** (-self.decay_time / self.half_life)
            self.decayed_dose = self.dose * self.decay_factor
            return activity_scale * (w_g / self.decayed_dose)
        if h.decay == "NONE":
            return activity_scale * (w_g / (self.dose * self._none_decay()))
        raise InputError(f"{self.where}: DecayCorrection (0054,1102)",
                         f"unknown decay correction {h.decay or '(missing)'}; expected START, ADMIN or NONE")

    def _admin(self, activity_scale: np.ndarray, w_g: float) -> np.ndarray:
        self.decay_factor, self.decay_time, self.decayed_dose = 1.0, 0.0, self.dose
        try:  # times are informative only for ADMIN
            self.ref = reference_time(self.h, "qiba", self.h.half_life or HALF_LIFE_S["F-18"], lambda m: None)
            self.inj = self.need_injection(self.ref.time)
        except InputError:
            pass
        return activity_scale * (w_g / self.dose)

    def _none_decay(self) -> np.ndarray:
        """Per slice: activity at the slice's frame (average over T) / activity at injection."""
        h = self.h
        if any(a is None for a in h.acq):
            raise InputError(f"{self.where}: AcquisitionTime (0008,0032)", "DecayCorrection NONE needs each slice's acquisition time")
        earliest = h.acq_earliest
        self.ref = _Ref(earliest, "per-slice AcquisitionDate/AcquisitionTime (DecayCorrection NONE)", {"acquisition_earliest": _iso(earliest)})
        self.inj = self.need_injection(earliest)
        lam = math.log(2.0) / self.half_life
        t = np.array([(a - self.inj).total_seconds() for a in h.acq])
        frames = np.where(np.isfinite(h.frame_ms) & (h.frame_ms > 0), h.frame_ms, 0.0) / 1000.0
        if not np.all(frames > 0):
            self.note("ActualFrameDuration (0018,1242) missing on some slices: their decay is taken at the acquisition start")
        x = lam * frames
        avg = np.where(x > 0, -np.expm1(-x) / np.where(x > 0, x, 1.0), 1.0)  # (1 - e^(-λT)) / (λT)
        f = np.exp(-lam * t) * avg
        self.decay_time, self.decay_factor = float(t[0]), float(f[0])
        self.decayed_dose = self.dose * self.decay_factor
        return f

    # -- units
    def _check_corrections(self, strict: bool) -> None:
        corr = {c.upper() for c in (self.h.corrected or [])}
        lacking = [c for c in ("ATTN", "DECY") if c not in corr and not (c == "DECY" and self.h.decay in ("NONE", "ADMIN"))]
        if strict and (self.h.corrected is None or lacking):
            raise InputError(f"{self.where}: CorrectedImage (0028,0051)",
                             f"Units {self.h.units} needs attenuation- and decay-corrected images; CorrectedImage "
                             f"{'is missing' if self.h.corrected is None else 'lacks ' + ', '.join(lacking)}: cannot compute SUV")
        if lacking and self.h.corrected is not None:
            self.note(f"CorrectedImage (0028,0051) lacks {', '.join(lacking)}: QIBA expects attenuation- and "
                      "decay-corrected images for SUV")

    def _cps_scale(self, what: str) -> np.ndarray:
        """stored CPS -> Bq/mL: / voxel volume, and x DoseCalibrationFactor without DCAL."""
        h = self.h
        self._check_corrections(strict=True)
        if h.voxel_ml is None or h.voxel_ml <= 0:
            raise InputError(f"{self.where}: PixelSpacing (0028,0030)", f"Units {h.units}: the voxel volume is unknown")
        if "DCAL" in {c.upper() for c in h.corrected or []}:
            self.sources["factor"] = f"{what} / voxel volume {h.voxel_ml:.6g} mL (CorrectedImage has DCAL), then as BQML"
            return np.full(h.n, 1.0 / h.voxel_ml)
        if h.dose_calibration is None or h.dose_calibration <= 0:
            raise InputError(f"{self.where}: DoseCalibrationFactor (0054,1322)",
                             f"Units {h.units} without DCAL in CorrectedImage needs the DoseCalibrationFactor; it is "
                             "missing: cannot compute SUV")
        self.sources["factor"] = (f"{what} x DoseCalibrationFactor {h.dose_calibration:g} / voxel volume "
                                  f"{h.voxel_ml:.6g} mL (no DCAL), then as BQML")
        return np.full(h.n, h.dose_calibration / h.voxel_ml)

    def _cnts(self) -> np.ndarray:
        h = self.h
        if np.all(h.philips_suv > 0):
            self.sources["factor"] = "Philips SUV scale factor (7053,1000)"
            self._check_corrections(strict=False)
            return h.philips_suv
        if np.all(h.philips_acsf > 0):
            self.sources["factor"] = "Philips activity concentration scale factor (7053,1009), then as BQML"
            self._check_corrections(strict=False)
            return self.bqml_factor(h.philips_acsf)
        if not np.all(np.isfinite(h.frame_ms) & (h.frame_ms > 0)):
            raise InputError(f"{self.where}: (7053,1000)", "Units CNTS without the Philips SUV scale factor (7053,1000), "
                             "the activity concentration scale factor (7053,1009) or ActualFrameDuration (0018,1242): "
                             "cannot compute SUV")
        self.note("Units CNTS without the Philips scale factors (7053,1000) / (7053,1009): counts / ActualFrameDuration "
                  "taken as counts per second (CPS)")
        per_s = 1000.0 / h.frame_ms
        return self.bqml_factor(per_s * self._cps_scale("counts / ActualFrameDuration [s]"))

    def stored_factor(self) -> tuple[np.ndarray, str]:
        """Per slice factor from the stored value to SUV of the stored type, and that type."""
        h = self.h
        if not h.units:
            raise InputError(f"{self.where}: Units (0054,1001)", "missing PET units; cannot compute SUV")
        bad = np.flatnonzero(h.intercepts != 0)
        if bad.size:
            raise InputError(f"{self.where}: RescaleIntercept (0028,1052)",
                             f"is {h.intercepts[bad[0]]:g} on {bad.size} of {h.n} slices; PET needs 0, the series is "
                             "unusable for SUV")
        if h.units == "BQML":
            self._check_corrections(strict=False)
            return self.bqml_factor(np.ones(h.n)), "bw"
        if h.units == "CNTS":
            return self._cnts(), "bw"
        if h.units == "CPS":
            return self.bqml_factor(self._cps_scale("counts per second")), "bw"
        if h.units in ("GML", "CM2ML"):
            return self._already_suv()
        why = NOT_CONVERTIBLE_UNITS.get(h.units, "not a unit petcad can convert")
        raise InputError(f"{self.where}: Units (0054,1001)", f"Units {h.units} is {why}: cannot compute SUV "
                         "(supported: BQML, CNTS, CPS, GML, CM2ML)")

    def _already_suv(self) -> tuple[np.ndarray, str]:
        h = self.h
        if h.units == "CM2ML":
            self.sources["factor"] = "already SUVbsa (Units CM2ML, cm2/mL): x 0.1 to m2/L"
            return np.full(h.n, 0.1), "bsa"
        dicom_type = (h.suv_type or "BW").upper()
        stored = DICOM_SUV_TYPE.get(dicom_type)
        if stored is None or stored == "bsa":
            raise InputError(f"{self.where}: SUVType (0054,1006)", f"SUVType {h.suv_type!r} with Units GML is not one of "
                             "BW, LBM, LBMJAMES128, LBMJANMA, IBW (a BSA SUV has Units CM2ML)")
        self.sources["factor"] = f"already SUV{stored} (Units GML, SUVType {dicom_type})"
        return np.ones(h.n), stored

    def to_target(self, factors: np.ndarray, stored: str) -> tuple[np.ndarray, float | None, str | None]:
        """From SUV of the stored type (via SUVbw: ``stored * W / X``) to the asked type."""
        target = self.settings.suv_type
        if target == stored:
            if target == "bw":
                return factors, (None if self.body.weight_kg is None else self.body.weight_kg * 1000.0), "g"
            return factors, None, None
        norm_bw = self.normaliser("bw")
        if stored != "bw":
            norm_stored = self.normaliser(stored)
            factors = factors * (norm_bw.value / norm_stored.value)
            self.sources["factor"] += f"; converted to SUVbw with W / {TYPE_NAMES[stored]}"
        if target == "bw":
            return factors, norm_bw.value, norm_bw.units
        norm = self.normaliser(target)
        return factors * (norm.value / norm_bw.value), norm.value, norm.units


def compute_suv(series, settings: SUVSettings = SUVSettings()) -> tuple[Volume, SUVAudit]:
    """Convert a PET :class:`~petcad.io.dicom.DicomSeries` to SUV.

    Returns the SUV volume (float32, the PET's geometry) and the audit. For a
    resampled series (irregular slices interpolated) the per-slice factors
    must be equal, else InputError.
    """
    import pydicom

    c = _Conversion(series, settings)
    factors, stored = c.stored_factor()
    factors, norm_value, norm_units = c.to_target(factors, stored)
    if not np.all(np.isfinite(factors) & (factors > 0)):
        raise InputError(c.where, "SUV factor is not a positive number on some slices; check the header values in the audit")
    arr = series.volume.array
    if series.resampled:
        if not np.allclose(factors, factors[0], rtol=1e-9):
            raise InputError(c.where, "slices were resampled but SUV factors differ per slice; read with --on-irregular stack")
        suv = arr * np.float32(factors[0])
    else:
        if arr.shape[0] != c.h.n:
            raise InputError(c.where, f"volume has {arr.shape[0]} slices but {c.h.n} headers")
        suv = arr * factors.astype(np.float32)[:, None, None]
    out = Volume(array=np.ascontiguousarray(suv, dtype=np.float32), origin=series.volume.origin,
                 spacing=series.volume.spacing, direction=series.volume.direction)
    target = settings.suv_type
    audit = SUVAudit(
        suv_type=target, output_units=output_units(target), input_units=c.h.units, decay_correction=c.h.decay or None,
        factor=float(factors[0]), factors=[float(f) for f in factors],
        decay_factor=None if c.decay_factor is None else float(c.decay_factor),
        decay_time_s=None if c.decay_time is None else float(c.decay_time), half_life_s=c.half_life,
        injection_datetime=_iso(c.inj), scan_datetime=None if c.ref is None else _iso(c.ref.time),
        scan_time_rule=None if c.ref is None else c.ref.rule, reference_time_method=settings.reference_time,
        reference_time_candidates={} if c.ref is None else c.ref.candidates,
        series_datetime=_iso(c.h.series_dt), acquisition_datetime_earliest=_iso(c.h.acq_earliest),
        weight_kg=c.body.weight_kg, height_m=c.body.height_m, sex=c.body.sex, sex_rule=c.sex_rule,
        dose_bq=c.dose, decayed_dose_bq=c.decayed_dose, normalisation=norm_value, normalisation_units=norm_units,
        header=c.h.values, sources=c.sources, notes=c.notes,
        software={"petcad": _version(), "pydicom": pydicom.__version__, "numpy": np.__version__},
    )
    return out, audit


def _version() -> str:
    try:
        from petcad import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return "unknown"
