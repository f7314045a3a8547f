"""Lesion list and evaluation metrics of petcad.segment on hand-made label maps."""

from __future__ import annotations

import numpy as np
import pytest

from petcad.segment.lesions import PEAK_RADIUS_MM, columns, lesion_table, peak_map
from petcad.segment.metrics import autopet_volumes, dice
from petcad.study import Volume


def _grid(arr, spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0)):
    return Volume(arr, origin=np.array(origin), spacing=np.array(spacing))


def test_lesion_table_volumes_suv_and_classes():
    lab = np.zeros((20, 20, 20), np.uint8)
    lab[2:5, 2:5, 2:5] = 2  # 27 voxels, malignant
    lab[10:12, 10:14, 10:12] = 1  # 16 voxels, benign
    lab[11, 12, 11] = 2  # touching: the same lesion
    labels = _grid(lab)
    probs = [np.where(lab == 0, 1.0, 0.1).astype(np.float32), np.where(lab == 1, 0.7, 0.0).astype(np.float32),
             np.where(lab == 2, 0.9, 0.2).astype(np.float32)]
    probs[0][lab > 0] = 1.0 - probs[1][lab > 0] - probs[2][lab > 0]
    pet_arr = np.ones((20, 20, 20), np.float32)
    pet_arr[2:5, 2:5, 2:5] = 5.0
    pet_arr[3, 3, 3] = 8.0
    pet = _grid(pet_arr)
    rows, comp = lesion_table(labels, probs, pet, ["none", "benign", "malignant"])
    assert comp.max() == 2 and len(rows) == 2
    a, b = rows
    assert list(a) == columns(["none", "benign", "malignant"])
    assert a["volume_ml"] == pytest.approx(27 * 8 / 1000.0)
    assert (a["x"], a["y"], a["z"]) == pytest.approx((6.0, 6.0, 6.0))
    assert a["suv_max"] == pytest.approx(8.0) and a["suv_mean"] == pytest.approx((26 * 5 + 8) / 27)
    assert a["predicted"] == "malignant"
    assert b["volume_ml"] == pytest.approx(16 * 8 / 1000.0)  # the malignant voxel inside the benign block merged
    assert b["predicted"] == "benign" and b["suv_max"] == pytest.approx(1.0)
    # SUVpeak: 1 mL sphere (radius 6.2 mm) on a 2 mm grid around the hottest voxel: mean of 5 and 8 and 1s
    pk = peak_map(pet)
    assert pk[3, 3, 3] < 8.0 and a["suv_peak"] == pytest.approx(pk[2:5, 2:5, 2:5].max())
    assert PEAK_RADIUS_MM == pytest.approx(6.2035, abs=1e-3)


def test_peak_of_a_uniform_region_is_its_value():
    pet = _grid(np.full((15, 15, 15), 3.0, np.float32))
    assert peak_map(pet)[7, 7, 7] == pytest.approx(3.0)


def test_dice_and_autopet_volumes():
    pred = np.zeros((10, 10, 10), bool)
    truth = np.zeros_like(pred)
    truth[1:3, 1:3, 1:3] = True  # 8 voxels, found
    pred[2:4, 2:4, 2:4] = True  # 8 voxels, overlaps 1 voxel
    truth[7:9, 7:9, 7:9] = True  # 8 voxels, missed -> false negative
    pred[5, 0, 0] = True  # 1 voxel, false positive
    pred[6, 1, 1] = True  # touches (5, 0, 0) only by a corner: another component with 18-connectivity
    assert dice(pred, truth) == pytest.approx(2 * 1 / (10 + 16))
    fp, fn = autopet_volumes(pred, truth, voxel_ml=0.5)
    assert fp == pytest.approx(2 * 0.5) and fn == pytest.approx(8 * 0.5)
    assert dice(np.zeros(3, bool), np.zeros(3, bool)) is None


def test_too_large_a_slab_is_refused_before_any_work():
    from petcad.errors import InputError
    from petcad.segment.lattice import Lattice
    from petcad.segment.run import _check_memory, available_bytes

    if available_bytes() is None:
        pytest.skip("available memory unknown on this system")

    class Huge:
        stride, slab = 2, 10**7

    lat = Lattice(np.zeros(3), 2.0, (4, 30, 30))
    with pytest.raises(InputError, match="--slab"):
        _check_memory(np.ones(lat.shape, bool), lat, _grid(np.zeros((2, 2, 2), np.float32)), 3, Huge, "study")
