"""SUV by the IBSI SUV manual's rules (``../shared/docs/suv-rules.md``), on header variants built from the DRO.

Each variant edits copies of the shared DRO headers (``../shared/data/suv_dro``)
so that the true SUVbw stays 0.20 / 1.00 / 4.00 in the mask: a wrong formula,
time, unit or factor shows as a wrong ROI figure. The expected normalisers are
written out here from the manual, not taken from petcad. Command-line values go
through :func:`petcad.cli.main`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import warnings

import numpy as np
import pytest

from petcad.cli import main
from petcad.errors import InputError
from petcad.io.suv import (
    SUV_TYPES,
    SUVSettings,
    backcompute_reference_times,
    body_normalisation,
    frame_average_offset_s,
)
from test_io_helpers import DRO_EXPECTED, assert_dro, copy_series, dro_mask, edit_series, roi_stats, suv_of

F18 = 6586.2
LAM = math.log(2) / F18
W, H = 70.0, 175.0  # the DRO patient (PatientSex O)


@pytest.fixture
def dro(test_data, tmp_path):
    return copy_series(test_data / "suv_dro" / "DRO_0_0" / "PT", tmp_path / "pt")


@pytest.fixture
def gml(test_data, tmp_path):
    return copy_series(test_data / "suv_dro" / "DRO_2_0" / "PT", tmp_path / "gml")


@pytest.fixture(scope="module")
def mask(test_data):
    return dro_mask(test_data)


def scale_slope(ds, r: float) -> None:
    ds.RescaleSlope = f"{float(ds.RescaleSlope) * r:.10g}"


def rp(ds):
    return ds.RadiopharmaceuticalInformationSequence[0]


def t_ave(frame_s: float) -> float:
    """Manual: T_ave = (1/λ) ln(λT / (1 - e^(-λT)))."""
    x = LAM * frame_s
    return math.log(x / (1 - math.exp(-x))) / LAM


# the manual's normalisers (kg), W kg, H cm
MANUAL = {
    "LBM": {"M": lambda w, h: 1.10 * w - 120 * (w / h) ** 2, "F": lambda w, h: 1.07 * w - 148 * (w / h) ** 2},
    "LBMJAMES128": {"M": lambda w, h: 1.10 * w - 128 * (w / h) ** 2, "F": lambda w, h: 1.07 * w - 148 * (w / h) ** 2},
    "LBMJANMA": {"M": lambda w, h: 9270 * w / (6680 + 216 * w / (h / 100) ** 2),
                 "F": lambda w, h: 9270 * w / (8780 + 244 * w / (h / 100) ** 2)},
    "IBW": {"M": lambda w, h: 48.0 + 1.06 * (h - 152), "F": lambda w, h: 45.5 + 0.91 * (h - 152)},
}


def manual_mass(suv_type: str, sex: str, w: float = W, h: float = H) -> float:
    f = MANUAL[suv_type]
    return (f["M"](w, h) + f["F"](w, h)) / 2 if sex == "O" else f[sex](w, h)


# ------------------------------------------------------------------ already-normalised images
@pytest.mark.parametrize("sex", ["M", "F", "O"])
@pytest.mark.parametrize("dicom_type", ["LBM", "LBMJAMES128", "LBMJANMA", "IBW"])
def test_gml_lean_and_ideal_masses_to_suvbw(gml, mask, dicom_type, sex):
    x = manual_mass(dicom_type, sex)

    def fn(ds, k):
        ds.SUVType = dicom_type
        ds.PatientSex = sex
        scale_slope(ds, x / W)  # stored = SUVbw * X / W

    edit_series(gml, fn)
    vol, a = suv_of(gml)
    assert_dro(vol, mask)
    assert a.suv_type == "bw" and "converted to SUVbw" in a.sources["factor"]
    assert (a.sex_rule is not None and "mean of the male" in a.sex_rule) == (sex == "O")
    assert (sex == "O") == any("PatientSex O" in n for n in a.notes)


def test_gml_stored_type_kept_when_asked(gml, mask):
    # LBM (Morgan) stored, lbm_morgan asked: passed through, no body size needed
    edit_series(gml, lambda ds, k: (setattr(ds, "SUVType", "LBM"), delattr(ds, "PatientSize")))
    vol, a = suv_of(gml, SUVSettings(suv_type="lbm_morgan"))
    assert_dro(vol, mask)
    assert a.factor == 1.0


def test_cm2ml_to_suvbw_du_bois(gml, mask):
    bsa_cm2 = 0.007184 * H**0.725 * W**0.425 * 1e4

    def fn(ds, k):
        ds.Units = "CM2ML"
        scale_slope(ds, bsa_cm2 / (W * 1000))  # stored = SUVbw * BSA[cm2] / W[g]

    edit_series(gml, fn)
    vol, a = suv_of(gml)
    assert_dro(vol, mask)


def test_sex_o_mean_for_computed_types(dro, mask):
    # the DRO's sex is O: SUVibw = SUVbw * IBW_mean / W, said in the audit
    base, _ = suv_of(dro)
    vol, a = suv_of(dro, SUVSettings(suv_type="ibw"))
    np.testing.assert_allclose(vol.array, base.array * manual_mass("IBW", "O") / W, rtol=1e-5)
    assert a.sex == "O" and "mean of the male" in a.sex_rule
    assert a.normalisation == pytest.approx(1000 * manual_mass("IBW", "O"))


def test_normaliser_not_positive_is_an_error(dro):
    # James (male) for a heavy, short patient: 1.10*200 - 128*(200/150)^2 = -7.6 kg
    with pytest.raises(InputError, match=r"--weight / --height: .*-7\.\d+ kg.*normaliser <= 0"):
        suv_of(dro, SUVSettings(suv_type="lbm", sex="M", weight_kg=200, height_m=1.5))
    with pytest.raises(InputError, match="normaliser <= 0"):
        body_normalisation("lbm", weight_kg=200, height_m=1.5, sex="O")  # the male half is negative


def test_lean_mass_above_body_weight_is_an_error():
    # James (male), 20 kg at 180 cm: 22 - 128*(20/180)^2 = 20.4 kg > 20 kg
    with pytest.raises(InputError, match="above the body weight"):
        body_normalisation("lbm", weight_kg=20, height_m=1.8, sex="M")
    assert body_normalisation("ibw", weight_kg=20, height_m=1.8, sex="M").value > 20000  # IBW may exceed W


# ------------------------------------------------------------------ reference time
def test_worked_example_of_the_manual():
    assert frame_average_offset_s(180.0, F18) == pytest.approx(89.86, abs=0.005)
    t = backcompute_reference_times([dt.datetime(2025, 1, 1, 10, 15, 0)], np.array([300_000.0]), np.array([180_000.0]), F18)[0]
    assert abs((t - dt.datetime(2025, 1, 1, 10, 11, 29, 860000)).total_seconds()) < 0.005


def _acq_for_reference(ref: dt.datetime, frame_ref_s: float, frame_s: float) -> str:
    """AcquisitionTime that back-computes to ``ref``."""
    acq = ref + dt.timedelta(seconds=frame_ref_s - t_ave(frame_s))
    return acq.strftime("%H%M%S.%f")


def test_series_time_after_acquisition_backcomputes(dro, mask):
    # post-processed series (SeriesTime 12:00), no GE tag: back-computed from each slice's times, all giving 11:00
    def fn(ds, k):
        ds.SeriesTime = "120000.000000"
        ds.FrameReferenceTime = str(600.0 * 1000 + 1000.0 * k)
        ds.AcquisitionTime = _acq_for_reference(dt.datetime(2025, 1, 1, 11), 600.0 + k, 300.0)

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert a.scan_time_rule.startswith("back-computed") and "series time after acquisition time" in a.scan_time_rule
    assert a.scan_datetime.startswith("2025-01-01T11:00:00.0") or a.scan_datetime.startswith("2025-01-01T10:59:59.9")
    assert a.reference_time_candidates["backcomputed_slices"] == 20
    assert not any("differ" in n for n in a.notes)


def test_ge_private_before_backcomputation(dro, mask):
    def fn(ds, k):
        ds.SeriesTime = "120000.000000"
        ds.AcquisitionTime = "113000.000000"  # back-computes to 11:29:59.6: ignored, GE tag first
        block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
        block.add_new(0x0D, "DT", "20250101110000.00")

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert "GE private scan datetime (0009,100D)" in a.scan_time_rule
    assert a.reference_time_candidates["backcomputed"].startswith("2025-01-01T11:29:59")


def test_reference_time_backcompute_option(dro, mask):
    # SeriesTime 10:50 (wrong, e.g. rewritten by anonymisation); the frame times say 11:00
    def fn(ds, k):
        ds.SeriesTime = "105000.000000"
        ds.AcquisitionTime = _acq_for_reference(dt.datetime(2025, 1, 1, 11), 150.0, 300.0)

    edit_series(dro, fn)
    vol_q, a_q = suv_of(dro)
    assert a_q.scan_time_rule.startswith("SeriesDate/SeriesTime") and a_q.reference_time_method == "qiba"
    assert roi_stats(vol_q.array, mask)[2] < 3.9  # the series time gives 10 min more decay
    vol, a = suv_of(dro, SUVSettings(reference_time="backcompute"))
    assert_dro(vol, mask)
    assert "--reference-time backcompute" in a.scan_time_rule and a.reference_time_method == "backcompute"


def test_backcompute_disagreement_is_noted(dro, mask):
    # every slice says 11:00:00 as AcquisitionTime with the same FrameReferenceTime, except the last: 20 s off
    def fn(ds, k):
        ds.SeriesTime = "120000.000000"
        ds.AcquisitionTime = _acq_for_reference(dt.datetime(2025, 1, 1, 11), 150.0 + (20 if k == 19 else 0), 300.0)

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert any("back-computed reference times differ by 20.0 s" in n for n in a.notes)


def test_backcompute_needs_frame_times(dro):
    edit_series(dro, lambda ds, k: delattr(ds, "FrameReferenceTime"))
    with pytest.raises(InputError, match=r"FrameReferenceTime \(0054,1300\).*--reference-time qiba"):
        suv_of(dro, SUVSettings(reference_time="backcompute"))


def test_earliest_acquisition_is_the_last_resort(dro, mask):
    def fn(ds, k):
        ds.SeriesTime = "120000.000000"
        del ds.FrameReferenceTime

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert a.scan_time_rule.startswith("earliest AcquisitionDate/AcquisitionTime")
    assert any("wrong for cropped series" in n for n in a.notes)


# ------------------------------------------------------------------ decay correction NONE
def test_decay_none_frame_averaged_per_slice(dro, mask):
    # each slice its own time and frame length: SUV = m P W / D · λT / (1 - e^(-λT)) · e^(λ(t_acq - t_adm))
    ref_factor = math.exp(-LAM * 3600)  # the DRO's values are decay-corrected to 11:00

    def fn(ds, k):
        t, frame = 3000 + 90 * k, 60.0 + 30 * k
        ds.DecayCorrection = "NONE"
        ds.CorrectedImage = [c for c in ds.CorrectedImage if c != "DECY"]
        ds.AcquisitionTime = (dt.datetime(2025, 1, 1, 10) + dt.timedelta(seconds=t)).strftime("%H%M%S.%f")
        ds.ActualFrameDuration = str(int(frame * 1000))
        x = LAM * frame
        measured = math.exp(-LAM * t) * (1 - math.exp(-x)) / x  # frame-average activity / activity at injection
        scale_slope(ds, measured / ref_factor)

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert a.scan_time_rule.startswith("per-slice")


# ------------------------------------------------------------------ units
VOXEL_ML = 4 * 4 * 4 / 1000  # PixelSpacing 4 x 4 mm, SliceThickness 4 mm


@pytest.mark.parametrize("dcal", [True, False])
def test_cps(dro, mask, dcal):
    dcf = 2.5

    def fn(ds, k):
        ds.Units = "CPS"
        if dcal:
            ds.CorrectedImage = list(ds.CorrectedImage) + ["DCAL"]
            scale_slope(ds, VOXEL_ML)  # Bq/mL = CPS / voxel volume
        else:
            ds.DoseCalibrationFactor = str(dcf)
            scale_slope(ds, VOXEL_ML / dcf)  # Bq/mL = CPS x DCF / voxel volume

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert ("CorrectedImage has DCAL" in a.sources["factor"]) == dcal
    assert ("DoseCalibrationFactor 2.5" in a.sources["factor"]) != dcal


def test_cps_refused_without_calibration_or_corrections(dro):
    edit_series(dro, lambda ds, k: setattr(ds, "Units", "CPS"))
    with pytest.raises(InputError, match=r"DoseCalibrationFactor \(0054,1322\).*without DCAL"):
        suv_of(dro)
    edit_series(dro, lambda ds, k: setattr(ds, "CorrectedImage", ["NORM", "DECY", "DCAL"]))
    with pytest.raises(InputError, match=r"CorrectedImage \(0028,0051\).*lacks ATTN"):
        suv_of(dro)


def test_cnts_without_philips_factors_as_cps(dro, mask):
    frame_s = 300.0  # the DRO's ActualFrameDuration

    def fn(ds, k):
        ds.Units = "CNTS"
        ds.CorrectedImage = list(ds.CorrectedImage) + ["DCAL"]
        scale_slope(ds, VOXEL_ML * frame_s)  # counts = CPS x T

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert any("taken as counts per second" in n for n in a.notes)


@pytest.mark.parametrize("units, why", [("PROPCNTS", "proportional"), ("PROPCPS", "proportional"), ("1CM", "attenuation map")])
def test_units_refused_by_name(dro, units, why):
    edit_series(dro, lambda ds, k: setattr(ds, "Units", units))
    with pytest.raises(InputError, match=rf"Units \(0054,1001\): Units {units} is .*{why}.*cannot compute SUV"):
        suv_of(dro)


def test_rescale_intercept_refused(dro):
    edit_series(dro, lambda ds, k: setattr(ds, "RescaleIntercept", "5" if k == 3 else "0"))
    with pytest.raises(InputError, match=r"RescaleIntercept \(0028,1052\): is 5 on 1 of 20 slices"):
        suv_of(dro)


# ------------------------------------------------------------------ weight, height, dose in the header
def test_header_weight_in_grams(dro, mask):
    edit_series(dro, lambda ds, k: setattr(ds, "PatientWeight", "70000"))
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert a.weight_kg == 70 and a.sources["weight"] == "header (grams -> kg)"
    assert any("read as grams" in n for n in a.notes)


def test_header_weight_neither_kg_nor_grams(dro):
    edit_series(dro, lambda ds, k: setattr(ds, "PatientWeight", "850"))
    with pytest.raises(InputError, match=r"PatientWeight \(0010,1030\): weight 850 is not a plausible.*--weight"):
        suv_of(dro)


def test_header_height_neither_m_nor_cm(dro):
    edit_series(dro, lambda ds, k: setattr(ds, "PatientSize", "18"))
    vol, _ = suv_of(dro)  # SUVbw does not need the height
    with pytest.raises(InputError, match=r"PatientSize \(0010,1020\): height 18 is neither.*--height"):
        suv_of(dro, SUVSettings(suv_type="lbm"))


def test_header_dose_unit_by_magnitude(dro, mask):
    _, a = suv_of(dro)
    assert a.sources["dose"] == "header (Bq by magnitude)"
    edit_series(dro, lambda ds, k: setattr(rp(ds), "RadionuclideTotalDose", "368.08"))
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert a.sources["dose"] == "header (MBq by magnitude -> Bq)" and any("read as MBq" in n for n in a.notes)
    edit_series(dro, lambda ds, k: setattr(rp(ds), "RadionuclideTotalDose", "368080"))  # neither
    with pytest.raises(InputError, match=r"RadionuclideTotalDose \(0018,1074\): dose 368080 is neither.*--dose"):
        suv_of(dro)


# ------------------------------------------------------------------ settings (API) are strict
def test_settings_strict_and_entries_by_magnitude():
    with pytest.raises(InputError, match="--weight"):
        SUVSettings(weight_kg=71000)
    with pytest.raises(InputError, match="--height"):
        SUVSettings(height_m=180)
    with pytest.raises(InputError, match="--dose"):
        SUVSettings(dose_bq=400)
    with pytest.raises(InputError, match="--reference-time"):
        SUVSettings(reference_time="series")
    s = SUVSettings.from_entries(weight=71000, height_cm=1.8, dose_mbq=4e8, sex="o")
    assert (s.weight_kg, s.height_m, s.dose_bq, s.sex) == (71, 1.8, 4e8, "O")
    assert len(s.entry_notes) == 3
    assert SUVSettings.from_entries(height_cm=180, dose_mbq=400).entry_notes == ()


def test_cli_type_choices_match_the_library():
    from petcad.cli._suv_options import SUV_TYPE_CHOICES

    assert SUV_TYPE_CHOICES == SUV_TYPES


# ------------------------------------------------------------------ command line
def run_cli(capsys, *argv):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def suv_json(capsys, dro, tmp_path, *opts):
    out = tmp_path / "suv.nii.gz"
    code, stdout, err = run_cli(capsys, "suv", dro, "--out", out, "--json", *opts)
    assert code == 0, err
    return json.loads(stdout), err


def assert_bad_option(capsys, dro, tmp_path, option, *opts, contains=()):
    out = tmp_path / "bad.nii.gz"
    code, stdout, err = run_cli(capsys, "suv", dro, "--out", out, *opts)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"petcad: error: {option}") or option in lines[0], lines[0]
    for c in contains:
        assert c in lines[0], lines[0]
    assert "Traceback" not in err and not out.exists()


def test_cli_height_cm_is_documented_metres_converted(dro, tmp_path, capsys):
    d, err = suv_json(capsys, dro, tmp_path, "--type", "lbm", "--sex", "M", "--height", "180")
    assert d["height_m"] == pytest.approx(1.8) and d["notes"] == []
    assert d["normalisation"] == pytest.approx(1000 * manual_mass("LBMJAMES128", "M", 70, 180))
    d, err = suv_json(capsys, dro, tmp_path, "--type", "lbm", "--sex", "M", "--height", "1.8")
    assert d["height_m"] == pytest.approx(1.8)
    assert "--height 1.8 read as metres: 180 cm" in d["notes"] and "--height 1.8 read as metres" in err


def test_cli_weight_grams_and_dose_bq(dro, tmp_path, capsys, test_data, mask):
    d, err = suv_json(capsys, dro, tmp_path, "--weight", "70000", "--dose", "368080000",
                      "--mask", test_data / "suv_dro" / "DRO_0_0" / "mask" / "DRO_mask.nii.gz")
    assert d["weight_kg"] == 70 and d["dose_bq"] == pytest.approx(368.08e6)
    assert tuple(round(d["roi"][k], 2) for k in ("min", "median", "max")) == DRO_EXPECTED
    assert any("read as grams" in n for n in d["notes"]) and any("read as Bq" in n for n in d["notes"])
    assert "read as grams" in err and "read as Bq" in err
    d, _ = suv_json(capsys, dro, tmp_path, "--dose", "368.08")
    assert d["dose_bq"] == pytest.approx(368.08e6) and d["notes"] == []


@pytest.mark.parametrize(
    "opts, option, contains",
    [
        (["--height", "18"], "--height", ["neither metres", "nor centimetres"]),
        (["--height", "300"], "--height", ["neither metres"]),
        (["--weight", "850"], "--weight", ["not a plausible patient weight"]),
        (["--weight", "-70"], "--weight", ["positive"]),
        (["--dose", "50000"], "--dose", ["neither a plausible activity in MBq"]),
        (["--dose", "0"], "--dose", ["positive"]),
        (["--type", "lbm", "--sex", "M", "--weight", "20", "--height", "180"], "--weight / --height",
         ["above the body weight"]),
        (["--type", "lbm", "--sex", "M", "--weight", "200", "--height", "150"], "--weight / --height",
         ["normaliser <= 0"]),
        (["--type", "lbm", "--sex", "M", "--weight", "300"], "--weight / PatientSize (0010,1020)", ["normaliser <= 0"]),
    ],
    ids=["height-18", "height-300", "weight-850", "weight-negative", "dose-50000", "dose-0", "lbm-above-weight", "lbm-negative",
         "lbm-negative-header-height"],
)
def test_cli_bad_values(dro, tmp_path, capsys, opts, option, contains):
    assert_bad_option(capsys, dro, tmp_path, option, *opts, contains=contains)


def test_cli_reference_time_option(dro, tmp_path, capsys):
    d, _ = suv_json(capsys, dro, tmp_path, "--reference-time", "backcompute")
    assert d["reference_time_method"] == "backcompute" and "back-computed" in d["scan_time_rule"]
    # the DRO's FrameReferenceTime is T/2 (150 s), not T_ave (149.6 s): t_ref 0.4 s before 11:00
    assert d["scan_datetime"] == "2025-01-01T10:59:59.605"
    d, _ = suv_json(capsys, dro, tmp_path)
    assert d["reference_time_method"] == "qiba" and d["scan_datetime"] == "2025-01-01T11:00:00.000"


def test_cli_info_prints_sex_rule_height_and_reference_method(test_data, tmp_path, capsys):
    from test_io_helpers import new_uids

    pet = copy_series(test_data / "suv_dro" / "DRO_0_0" / "PT", tmp_path / "pet")
    ct = copy_series(test_data / "suv_dro" / "DRO_0_0" / "PT", tmp_path / "ct")
    new_uids(ct, modality="CT")
    code, out, err = run_cli(capsys, "info", ct, pet, "--type", "ibw", "--height", "1.75")
    assert code == 0, err
    for text in ("height 175 cm (1.75 m), sex O", "sex rule: PatientSex O: SUVibw normaliser is the mean",
                 "--reference-time qiba]", "source of height: override"):
        assert text in out, (text, out)
    assert "--height 1.75 read as metres: 175 cm" in err
