"""NIfTI / NRRD / MHA reading and writing, and load_study."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pydicom.uid import generate_uid

from petcad.errors import InputError
from petcad.io.loader import load_study
from petcad.io.volumes import read_image, write_image
from petcad.study import Volume
from test_io_helpers import copy_series, new_uids


def _oblique_volume() -> Volume:
    rng = np.random.default_rng(0)
    c, s = np.cos(0.2), np.sin(0.2)
    direction = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    return Volume(rng.normal(size=(5, 6, 7)).astype(np.float32), origin=[-10.5, 3.0, 100.0],
                  spacing=[0.8, 0.9, 2.5], direction=direction)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_round_trip_keeps_values_and_geometry(tmp_path, suffix):
    v = _oblique_volume()
    p = write_image(v, tmp_path / f"img{suffix}")
    w = read_image(p, modality="CT")
    assert w.same_grid(v)
    np.testing.assert_array_equal(w.array, v.array)
    assert w.array.dtype == np.float32
    # a world point maps to the same voxel in both
    np.testing.assert_allclose(w.world_to_index(v.index_to_world([1, 2, 3])), [1, 2, 3], atol=1e-5)
    assert [f.name for f in tmp_path.iterdir()] == [f"img{suffix}"]  # no temporary left


def test_nan_and_bad_files(tmp_path):
    arr = np.zeros((3, 3, 3), np.float32)
    arr[0, 0, 0] = np.nan
    p = write_image(Volume(arr, [0, 0, 0], [1, 1, 1]), tmp_path / "nan.mha")
    with pytest.raises(InputError, match="1 NaN voxels"):
        read_image(p, modality="PT")
    assert np.isnan(read_image(p, modality="CT", allow_nan=True).array).sum() == 1
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="cannot read image") as e:
        read_image(bad)
    assert e.value.where == str(bad)
    (tmp_path / "x.png").write_text("x")
    with pytest.raises(InputError, match="not a NIfTI/NRRD/MHA"):
        read_image(tmp_path / "x.png")
    with pytest.raises(InputError, match="bqml"):
        read_image(p, modality="PT", pet_units="bqml")


def test_mask_reading_is_binary(tmp_path):
    arr = np.zeros((3, 4, 5), np.int16)
    arr[1, 2, 3] = 7
    p = write_image(Volume(arr, [0, 0, 0], [1, 1, 1]), tmp_path / "m.nrrd")
    m = read_image(p, modality="mask")
    assert m.array.dtype == np.uint8 and m.array.sum() == 1 and m.array[1, 2, 3] == 1


def test_load_study_dicom_pet_image_ct(test_data, tmp_path):
    pet_dir = test_data / "suv_dro" / "DRO_0_0" / "PT"
    ct = write_image(Volume(np.zeros((4, 4, 4), np.float32), [0, 0, 0], [64, 64, 20]), tmp_path / "ct.nii.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = load_study(ct, pet_dir, patient_id="P1")
    assert st.patient_id == "P1" and st.pet.array.shape == (20, 256, 256)
    assert st.suv["factor"] == pytest.approx(70000 / (368.08e6 * 2 ** (-3600 / 6586.2)))
    assert st.pet_on_ct_grid().same_grid(st.ct)


def test_load_study_frame_check(test_data, tmp_path):
    pet = copy_series(test_data / "suv_dro" / "DRO_0_0" / "PT", tmp_path / "pet")
    ct = copy_series(test_data / "suv_dro" / "DRO_0_0" / "PT", tmp_path / "ct")
    new_uids(ct, modality="CT", frame_uid=generate_uid())
    with pytest.raises(InputError, match="FrameOfReferenceUID differs"):
        load_study(ct, pet, patient_id="P1")
    st = load_study(ct, pet, patient_id="P1", allow_frame_mismatch=True)
    assert st.ct.array.shape == st.pet.array.shape
    # CT and PET in one folder: each picked by modality
    both = tmp_path / "both"
    copy_series(pet, both / "pet")
    copy_series(ct, both / "ct")
    st = load_study(both, both, patient_id="P1", allow_frame_mismatch=True)
    assert st.suv["input_units"] == "BQML"
