"""SUV: the shared reference data (IBSI DRO, real GE series) and every header variant.

Variants with no shared file are built by editing copies of the DRO headers
with pydicom; each keeps the true SUV of the DRO (0.20 / 1.00 / 4.00 in the
mask), so a wrong time, factor or unit shows as a wrong ROI figure.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from petcad.errors import InputError
from petcad.io.dicom import read_series
from petcad.io.suv import SUVSettings, body_normalisation, compute_suv
from test_io_helpers import assert_dro, copy_series, dro_mask, edit_series, suv_of

F18 = 6586.2


@pytest.fixture
def dro(test_data, tmp_path):
    return copy_series(test_data / "suv_dro" / "DRO_0_0" / "PT", tmp_path / "pt")


@pytest.fixture(scope="module")
def mask(test_data):
    return dro_mask(test_data)


def rp(ds):
    return ds.RadiopharmaceuticalInformationSequence[0]


# ------------------------------------------------------------------ shared variants (API level)
@pytest.mark.parametrize("variant", ["DRO_0_0", "DRO_1_0", "DRO_2_0", "DRO_2_4", "DRO_3_1", "DRO_4_2"])
def test_shared_dro_variants(test_data, variant, mask):
    vol, audit = suv_of(test_data / "suv_dro" / variant / "PT")
    assert_dro(vol, mask)
    assert audit.suv_type == "bw" and audit.output_units == "g/mL"


def test_dro_default_audit_values(test_data):
    _, a = suv_of(test_data / "suv_dro" / "DRO_0_0" / "PT")
    assert a.decay_time_s == pytest.approx(3600.0)
    assert a.decay_factor == pytest.approx(2 ** (-3600 / F18))
    assert a.factor == pytest.approx(70000 / (368.08e6 * 2 ** (-3600 / F18)))
    assert a.header["RadionuclideTotalDose"] == pytest.approx(368.08e6)
    assert a.injection_datetime.startswith("2025-01-01T10:00")
    assert "PatientName" not in a.header and "PatientID" not in a.header


def test_midnight_crossing_shared(test_data):
    _, a = suv_of(test_data / "suv_dro" / "DRO_4_2" / "PT")
    assert a.injection_datetime.startswith("2025-01-01T23:30")
    assert a.decay_time_s == pytest.approx(3600.0)


# ------------------------------------------------------------------ built variants
def test_cnts_philips_activity_concentration_scale_factor(dro, mask):
    def fn(ds, k):
        ds.Units = "CNTS"
        block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
        block.add_new(0x09, "DS", "2.0")  # (7053,1009) activity concentration scale factor
        ds.RescaleSlope = "0.5"

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert "7053,1009" in a.sources["factor"]


def test_cnts_without_philips_tags_or_calibration_is_an_error(dro):
    # counts -> CPS needs DCAL or the DoseCalibrationFactor (the DRO has neither)
    edit_series(dro, lambda ds, k: setattr(ds, "Units", "CNTS"))
    with pytest.raises(InputError, match=r"DoseCalibrationFactor \(0054,1322\)"):
        suv_of(dro)


def test_cnts_philips_suv_factor_to_lbm(test_data):
    # DRO_2_4: Units CNTS with (7053,1000); lbm needs height and sex (sex O in the header)
    vol_bw, _ = suv_of(test_data / "suv_dro" / "DRO_2_4" / "PT")
    vol, a = suv_of(test_data / "suv_dro" / "DRO_2_4" / "PT", SUVSettings(suv_type="lbm", sex="M"))
    lbm = 1.10 * 70 - 128 * (70 / 175) ** 2
    np.testing.assert_allclose(vol.array, vol_bw.array * lbm / 70, rtol=1e-5)


def test_decay_correction_admin_built(dro, mask):
    # values decay-corrected to the injection: activity / decay factor
    f = 2 ** (-3600 / F18)

    def fn(ds, k):
        ds.DecayCorrection = "ADMIN"
        ds.RescaleSlope = f"{1 / f:.12g}"

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert a.decay_factor == 1.0


def test_decay_correction_none_per_slice_times(dro, mask):
    lam = math.log(2) / F18
    D = 300.0  # ActualFrameDuration 300000 ms in the DRO
    f_ref = 2 ** (-3600 / F18)

    def fn(ds, k):
        ds.DecayCorrection = "NONE"
        ds.CorrectedImage = [c for c in ds.CorrectedImage if c != "DECY"]
        t = 3600 + 40 * k
        ds.AcquisitionTime = f"11{(40 * k) // 60:02d}{(40 * k) % 60:02d}.000000"
        f_k = 2 ** (-t / F18) * (1 - math.exp(-lam * D)) / (lam * D)
        ds.RescaleSlope = f"{f_k / f_ref:.14g}"

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert len(set(a.factors)) == 20 and a.factors[19] > a.factors[0]
    assert "per-slice" in a.scan_time_rule


def test_dose_in_mbq(dro, mask):
    edit_series(dro, lambda ds, k: setattr(rp(ds), "RadionuclideTotalDose", "368.08"))
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert a.dose_bq == pytest.approx(368.08e6)
    assert any("MBq" in n for n in a.notes)


def test_start_time_with_series_date(dro, mask):
    edit_series(dro, lambda ds, k: delattr(rp(ds), "RadiopharmaceuticalStartDateTime"))
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert "SeriesDate" in a.sources["injection"]


def test_midnight_crossing_built(dro, mask):
    def fn(ds, k):
        del rp(ds).RadiopharmaceuticalStartDateTime
        rp(ds).RadiopharmaceuticalStartTime = "233000.000000"
        ds.SeriesDate = ds.AcquisitionDate = ds.StudyDate = "20250102"
        ds.SeriesTime = ds.AcquisitionTime = "003000.000000"

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert a.injection_datetime.startswith("2025-01-01T23:30")


def test_series_time_later_than_acquisition_time(dro, mask):
    def fn(ds, k):
        ds.SeriesTime = "120000.000000"  # e.g. a post-processed series
        ds.AcquisitionTime = f"1100{k:02d}.000000"  # earliest 11:00:00
        del ds.FrameReferenceTime  # no back-computation possible: the last QIBA rule

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert a.scan_datetime.startswith("2025-01-01T11:00:00")
    assert "earliest" in a.scan_time_rule


def test_ge_private_scan_datetime(dro, mask):
    def fn(ds, k):
        ds.SeriesTime = "120000.000000"
        ds.AcquisitionTime = "113000.000000"
        block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
        block.add_new(0x0D, "DT", "20250101110000.00")  # (0009,100d)

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert "GE private" in a.scan_time_rule
    assert a.header["GE_private_scan_datetime_0009_100d"].startswith("20250101110000")


@pytest.mark.parametrize("half_life_in_header", [True, False])
def test_ga68_half_life(dro, mask, half_life_in_header):
    ga = 4062.6
    ratio = 2 ** (-3600 / ga) / 2 ** (-3600 / F18)

    def fn(ds, k):
        r = rp(ds)
        if half_life_in_header:
            r.RadionuclideHalfLife = str(ga)
        else:
            del r.RadionuclideHalfLife
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "C-131A3", "SRT", "^68^Gallium"
        r.RadionuclideCodeSequence = Sequence([code])
        ds.RescaleSlope = f"{ratio:.14g}"

    edit_series(dro, fn)
    vol, a = suv_of(dro)
    assert_dro(vol, mask)
    assert a.half_life_s == pytest.approx(ga)
    assert a.sources["half_life"] == ("header" if half_life_in_header else "radionuclide code (Ga-68)")


def test_gml_passthrough_and_derived_types(test_data, mask):
    folder = test_data / "suv_dro" / "DRO_2_0" / "PT"
    vol, a = suv_of(folder)
    assert_dro(vol, mask)
    assert a.factor == 1.0 and a.input_units == "GML"
    vol_ibw, _ = suv_of(folder, SUVSettings(suv_type="ibw", sex="F"))
    ibw = 45.5 + 0.91 * (175 - 152)  # Sugawara
    np.testing.assert_allclose(vol_ibw.array, vol.array * ibw / 70, rtol=1e-5)
    vol_o, a = suv_of(folder, SUVSettings(suv_type="ibw"))  # header sex is O: mean of male and female
    ibw_o = (48.0 + 1.06 * 23 + 45.5 + 0.91 * 23) / 2
    np.testing.assert_allclose(vol_o.array, vol.array * ibw_o / 70, rtol=1e-5)
    assert "mean of the male" in a.sex_rule


def test_cm2ml_passthrough_as_bsa(test_data, tmp_path):
    folder = copy_series(test_data / "suv_dro" / "DRO_2_0" / "PT", tmp_path / "cm2ml")
    edit_series(folder, lambda ds, k: setattr(ds, "Units", "CM2ML"))
    base, _ = suv_of(test_data / "suv_dro" / "DRO_2_0" / "PT")
    vol, a = suv_of(folder, SUVSettings(suv_type="bsa"))
    np.testing.assert_allclose(vol.array, base.array * 0.1, rtol=1e-6)  # cm2/mL -> m2/L
    assert a.output_units == "m2/L"
    vol_bw, a = suv_of(folder)  # CM2ML to SUVbw: stored * W[g] / BSA[cm2]
    bsa_cm2 = 0.007184 * 70**0.425 * 175**0.725 * 1e4
    np.testing.assert_allclose(vol_bw.array, base.array * 70000 / bsa_cm2, rtol=1e-5)
    assert a.output_units == "g/mL" and "converted to SUVbw" in a.sources["factor"]


def test_body_normalisation_formulas():
    w, h = 71.0, 1.63
    assert body_normalisation("bw", weight_kg=w, height_m=h, sex="M")[0] == pytest.approx(71000)
    assert body_normalisation("lbm", weight_kg=w, height_m=h, sex="M")[0] == pytest.approx(1000 * (1.10 * w - 128 * (w / 163) ** 2))
    assert body_normalisation("lbm", weight_kg=w, height_m=h, sex="F")[0] == pytest.approx(1000 * (1.07 * w - 148 * (w / 163) ** 2))
    bmi = w / h**2
    assert body_normalisation("lbm_janma", weight_kg=w, height_m=h, sex="F")[0] == pytest.approx(1000 * 9270 * w / (8780 + 244 * bmi))
    assert body_normalisation("bsa", weight_kg=w, height_m=h, sex=None)[0] == pytest.approx(1000 * 0.007184 * w**0.425 * 163**0.725)
    assert body_normalisation("ibw", weight_kg=w, height_m=h, sex="M")[0] == pytest.approx(1000 * (48.0 + 1.06 * (163 - 152)))
    assert body_normalisation("ibw", weight_kg=w, height_m=h, sex="F")[0] == pytest.approx(1000 * (45.5 + 0.91 * (163 - 152)))
    assert body_normalisation("lbm_morgan", weight_kg=w, height_m=h, sex="M")[0] == pytest.approx(1000 * (1.10 * w - 120 * (w / 163) ** 2))


# ------------------------------------------------------------------ missing information
@pytest.mark.parametrize(
    "edit, tag, option",
    [
        (lambda ds, k: delattr(ds, "PatientWeight"), "PatientWeight", "--weight"),
        (lambda ds, k: delattr(rp(ds), "RadionuclideTotalDose"), "RadionuclideTotalDose", "--dose"),
        (lambda ds, k: (delattr(rp(ds), "RadiopharmaceuticalStartDateTime"), delattr(rp(ds), "RadiopharmaceuticalStartTime")),
         "RadiopharmaceuticalStartDateTime", "--injection-time"),
        (lambda ds, k: (delattr(ds, "SeriesTime"), delattr(ds, "AcquisitionTime")), "SeriesTime", "--injection-time"),
    ],
)
def test_missing_information_names_tag_and_option(dro, edit, tag, option):
    edit_series(dro, edit)
    with pytest.raises(InputError) as e:
        suv_of(dro)
    assert tag in str(e.value) and option in str(e.value)


def test_overrides_supply_missing_values(dro, mask):
    def fn(ds, k):
        del ds.PatientWeight
        del rp(ds).RadionuclideTotalDose
        del rp(ds).RadiopharmaceuticalStartDateTime
        del rp(ds).RadiopharmaceuticalStartTime

    edit_series(dro, fn)
    vol, a = suv_of(dro, SUVSettings(weight_kg=70, dose_bq=368.08e6, injection_datetime="10:00"))
    assert_dro(vol, mask)
    assert a.sources["weight"] == "override" and a.sources["injection"] == "override"
    vol, _ = suv_of(dro, SUVSettings(weight_kg=70, dose_bq=368.08e6, injection_datetime="2025-01-01T10:00:00"))
    assert_dro(vol, mask)


def test_lbm_needs_sex(dro):
    edit_series(dro, lambda ds, k: delattr(ds, "PatientSex"))
    with pytest.raises(InputError, match=r"PatientSex.*--sex"):
        suv_of(dro, SUVSettings(suv_type="lbm"))


def test_bad_settings():
    with pytest.raises(InputError, match="unknown SUV type"):
        SUVSettings(suv_type="suvmax")
    with pytest.raises(InputError, match="--weight"):
        SUVSettings(weight_kg=-3)


# ------------------------------------------------------------------ the real GE series
@pytest.fixture(scope="module")
def ge(test_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        series = read_series(test_data / "pet_ge_sts001" / "image")
    from petcad.io.volumes import read_image

    ref = read_image(test_data / "pet_ge_sts001" / "reference_suv" / "nifti" / "image" / "image.nii.gz", modality="PT")
    roi = read_image(test_data / "pet_ge_sts001" / "reference_suv" / "nifti" / "mask" / "mask.nii.gz", modality="mask")
    assert ref.same_grid(roi)
    # match by physical position: in-plane by index, along z by the original slice positions
    k, j, i = np.indices(ref.array.shape)
    world = ref.index_to_world(np.stack([i, j, k], -1).reshape(-1, 3))
    ijk = np.rint(series.volume.world_to_index(world)).astype(int)
    # nearest original slice (the reference grid is regular at 3.27 mm, the slices are not: <= 0.05 mm apart)
    kk = np.abs(series.slice_positions_mm[None, :] - np.unique(world[:, 2])[:, None]).argmin(axis=1)
    kk = kk[np.searchsorted(np.unique(world[:, 2]), world[:, 2])]
    assert np.all(np.abs(series.slice_positions_mm[kk] - world[:, 2]) < 0.05)
    idx = (kk, ijk[:, 1], ijk[:, 0])
    return series, ref, roi.array > 0, idx


def _on_ref(vol, ref, idx):
    return vol.array[idx].reshape(ref.array.shape)


def test_ge_suvbw_equals_reference_voxelwise(ge):
    series, ref, roi, idx = ge
    vol, a = compute_suv(series, SUVSettings())
    ours = _on_ref(vol, ref, idx)
    assert np.abs(ours - ref.array).max() < 1e-3
    assert a.factor == pytest.approx(2.42903e-4, rel=1e-5)
    x = ours[roi]
    assert 7.9 <= x.max() <= 8.0 and round(float(x.max()), 2) == 7.91
    assert 0.15 <= x.min() <= 0.20 and round(float(x.min()), 3) == 0.169
    assert round(float(np.median(x)), 2) == 2.49


@pytest.mark.parametrize("suv_type, lo, hi", [("lbm", 5.9, 6.1), ("bsa", 0.195, 0.200), ("ibw", 6.6, 6.7)])
def test_ge_roi_max_other_types(ge, suv_type, lo, hi):
    series, ref, roi, idx = ge
    vol, a = compute_suv(series, SUVSettings(suv_type=suv_type))
    assert lo <= _on_ref(vol, ref, idx)[roi].max() <= hi


def test_ge_backcompute_is_said_to_disagree(ge):
    # GE writes AcquisitionTime = series start on every slice and FrameReferenceTime = the bed's start offset
    # (0, 243, ... 1215 s): the back-computation disagrees across beds; QIBA's order never reaches it here
    series, ref, roi, idx = ge
    _, a = compute_suv(series, SUVSettings())
    assert a.scan_time_rule.startswith("SeriesDate/SeriesTime") and not any("back-computed" in n for n in a.notes)
    assert a.reference_time_candidates["backcomputed_min"].startswith("2000-09-07T11:01:55.7")
    vol, b = compute_suv(series, SUVSettings(reference_time="backcompute"))
    assert any("differ by 1215.0 s" in n for n in b.notes)
    assert b.scan_datetime.startswith("2000-09-07T11:22:10.7")  # bed 0: 11:20:11 + T_ave(240 s) - 0
    assert round(float(_on_ref(vol, ref, idx)[roi].max()), 2) == 8.01


def test_ge_activity_concentration_at_injection(ge):
    # README: Bq/mL max 43,300-43,400 in GTV_Mass: the activity decay-corrected to the injection time
    series, ref, roi, idx = ge
    _, a = compute_suv(series, SUVSettings())
    bqml = _on_ref(series.volume, ref, idx)[roi]
    assert 43300 <= bqml.max() / a.decay_factor <= 43400


def test_note_when_not_attenuation_corrected(dro, mask):
    edit_series(dro, lambda ds, k: setattr(ds, "CorrectedImage", [c for c in ds.CorrectedImage if c != "ATTN"]))
    vol, a = suv_of(dro)
    assert_dro(vol, mask)  # still computed, but said
    assert any("lacks ATTN" in n for n in a.notes)


def test_unknown_units_and_decay_correction(dro):
    edit_series(dro, lambda ds, k: setattr(ds, "DecayCorrection", "WEIRD"))
    with pytest.raises(InputError, match=r"DecayCorrection \(0054,1102\).*START, ADMIN or NONE"):
        suv_of(dro)
    edit_series(dro, lambda ds, k: setattr(ds, "Units", "MGMINML"))
    with pytest.raises(InputError, match=r"Units MGMINML is a metabolic rate.*cannot compute SUV"):
        suv_of(dro)
