"""DICOM series listing and reading: ordering, rescale, geometry, spacing checks, bad files."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from petcad.errors import InputError
from petcad.io.dicom import list_series, read_series
from test_io_helpers import copy_series, edit_series, new_uids


@pytest.fixture
def dro(test_data, tmp_path) -> Path:
    return copy_series(test_data / "suv_dro" / "DRO_0_0" / "PT", tmp_path / "pt")


def test_list_series_recursive_and_counts_non_dicom(test_data, tmp_path):
    copy_series(test_data / "suv_dro" / "DRO_0_0" / "PT", tmp_path / "a" / "deep" / "pt")
    (tmp_path / "a" / "notes.txt").write_text("not dicom")
    (tmp_path / "a" / "junk.dcm").write_bytes(b"\x00" * 50)
    series = list_series(tmp_path)
    assert len(series) == 1
    s = series[0]
    assert (s.modality, s.n_slices) == ("PT", 20)
    assert s.folder == tmp_path / "a" / "deep" / "pt"
    assert s.frame_of_reference_uid
    assert series.n_skipped == 2


def test_read_series_geometry_and_order(dro):
    # shuffle file names so that name order is not slice order
    files = sorted(dro.glob("*.dcm"))
    for n, f in enumerate(files):
        f.rename(dro / f"x{(n * 7) % 20:02d}_{n}.dcm")
    s = read_series(dro)
    v = s.volume
    assert v.array.dtype == np.float32 and v.array.shape == (20, 256, 256)
    np.testing.assert_allclose(v.spacing, [4, 4, 4])
    np.testing.assert_allclose(v.origin, [0, 0, 0])
    np.testing.assert_allclose(v.direction, np.eye(3), atol=1e-12)
    z = [float(d.ImagePositionPatient[2]) for d in s.datasets]
    assert z == sorted(z) and len(s.datasets) == 20
    assert "PixelData" not in s.datasets[0]
    # voxel (i, j, k) -> world is origin + spacing * ijk for this identity direction
    np.testing.assert_allclose(v.index_to_world([1, 2, 3]), [4, 8, 12])


def test_per_slice_rescale_applied_in_float(dro):
    raw = {}

    def fn(ds, k):
        ds.RescaleSlope = f"{0.5 + 0.25 * k:.4f}"
        ds.RescaleIntercept = "0.5"
        raw[k] = ds.pixel_array.astype(np.float64)

    edit_series(dro, fn)
    v = read_series(dro).volume
    for k in (0, 7, 19):
        np.testing.assert_allclose(v.array[k], raw[k] * (0.5 + 0.25 * k) + 0.5, rtol=1e-6)


def test_oblique_orientation_and_reverse_order(dro):
    c, s_ = np.cos(0.3), np.sin(0.3)
    row, col = np.array([c, s_, 0.0]), np.array([-s_, c, 0.0])
    normal = np.cross(row, col)

    def fn(ds, k):
        ds.ImageOrientationPatient = [f"{x:.10f}" for x in (*row, *col)]
        ds.ImagePositionPatient = [f"{x:.6f}" for x in (10 + normal * (100 - 4.0 * k))]  # decreasing along the normal

    edit_series(dro, fn)
    s = read_series(dro)
    np.testing.assert_allclose(s.volume.direction[:, 0], row, atol=1e-9)
    np.testing.assert_allclose(s.volume.direction[:, 2], normal, atol=1e-9)
    np.testing.assert_allclose(s.volume.spacing[2], 4.0, atol=1e-5)
    # first slice of the volume is the one with the smallest projection: k = 19 in file order
    np.testing.assert_allclose(s.volume.origin, 10 + normal * (100 - 4.0 * 19), atol=1e-5)


def test_small_irregularity_stacked_with_mean_spacing_and_warning(test_data):
    with pytest.warns(UserWarning, match="stacked as they are with the mean spacing"):
        s = read_series(test_data / "pet_ge_sts001" / "image")
    assert s.volume.array.shape == (267, 128, 128)
    d = np.diff(s.slice_positions_mm)
    assert d.min() == pytest.approx(3.19, abs=1e-3) and d.max() == pytest.approx(3.29, abs=1e-3)
    assert s.volume.spacing[2] == pytest.approx((s.slice_positions_mm[-1] - s.slice_positions_mm[0]) / 266)
    assert not s.resampled


def test_gap_is_an_error_unless_resampled(dro):
    # remove one slice: a 8 mm gap in a 4 mm series
    victim = edit_series(dro, lambda ds, k: None)[10]
    victim.unlink()
    with pytest.raises(InputError, match="missing slices"):
        read_series(dro)
    with pytest.warns(UserWarning, match="resampled"):
        s = read_series(dro, on_irregular="resample")
    assert s.resampled and s.volume.array.shape[0] == 20
    assert s.volume.spacing[2] == pytest.approx(4.0)


def test_large_irregularity_is_an_error_unless_asked(dro):
    edit_series(dro, lambda ds, k: setattr(ds, "ImagePositionPatient", [0, 0, 4.0 * k + (0.6 if k % 2 else 0.0)]))
    with pytest.raises(InputError, match="irregular slice spacing"):
        read_series(dro)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert read_series(dro, on_irregular="stack").volume.array.shape[0] == 20


def test_duplicate_position_is_an_error(dro):
    edit_series(dro, lambda ds, k: setattr(ds, "ImagePositionPatient", [0, 0, 4.0 * min(k, 18)]))
    with pytest.raises(InputError, match="duplicate slice position"):
        read_series(dro)


def test_exact_duplicate_file_is_ignored(dro):
    f = sorted(dro.glob("*.dcm"))[3]
    shutil.copy(f, dro / "copy_of_3.dcm")
    with pytest.warns(UserWarning, match="duplicate copy"):
        assert read_series(dro).volume.array.shape[0] == 20


def test_truncated_file_named(dro):
    f = sorted(dro.glob("*.dcm"))[5]
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 1000])
    with pytest.raises(InputError) as e:
        list_series(dro)
    assert e.value.where == str(f) and "truncated" in e.value.problem
    # cut inside the header too
    f.write_bytes(data[:400])
    with pytest.raises(InputError) as e:
        read_series(dro)
    assert e.value.where == str(f)


def test_no_and_several_matching_series(test_data, dro, tmp_path):
    with pytest.raises(InputError, match="no DICOM image series with modality CT"):
        read_series(dro, modality="CT")
    other = copy_series(test_data / "suv_dro" / "DRO_3_1" / "PT", tmp_path / "pt" / "other")
    uid = new_uids(other)
    with pytest.raises(InputError, match=r"2 series match .*--series UID"):
        read_series(dro, modality="PT")
    assert read_series(dro, series_uid=uid).info.series_uid == uid
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hello")
    with pytest.raises(InputError, match="no DICOM image series"):
        read_series(empty)


def test_messages_never_carry_patient_name(dro):
    def fn(ds, k):
        ds.PatientName = "Secret^Person"
        ds.PatientID = "ID-SECRET-42"

    edit_series(dro, fn)
    (dro / "sub").mkdir()
    with pytest.raises(InputError) as e:
        read_series(dro, modality="CT")
    assert "Secret" not in str(e.value) and "SECRET" not in str(e.value)
