"""petcad patches: npz export, labelled panels (en / zh), bad input; petcad bench patches options."""

from __future__ import annotations

import json

import numpy as np
import pytest

from petcad.cli import main
from petcad.patches.cache import LesionCache
from petcad.patches.sampler import PatchSampler
from petcad.study import Cohort, Lesion, Study, Volume


@pytest.fixture(scope="module")
def nifti_cohort(tmp_path_factory):
    """Two lesions of one synthetic patient written as NIfTI with a manifest; returns (manifest, study)."""
    import SimpleITK as sitk

    d = tmp_path_factory.mktemp("patches_cli")
    rng = np.random.default_rng(0)
    k, j, i = np.indices((30, 50, 50))
    ct = Volume((rng.normal(0, 20, (30, 50, 50)) + 10 * i).astype(np.float32), [-30, -30, -40], [1.2, 1.2, 2.5])
    pet = Volume((rng.gamma(2, 1, (20, 16, 16))).astype(np.float32), [-32, -32, -42], [4.0, 4.0, 3.75])
    sitk.WriteImage(ct.to_sitk(), str(d / "ct.nii.gz"))
    sitk.WriteImage(pet.to_sitk(), str(d / "pet.nii.gz"))
    rows = ["patient_id,ct,pet,lesion_id,x,y,z,label", "P1,ct.nii.gz,pet.nii.gz,P1-L1,0.5,1.0,-5.0,malignant",
            "P1,ct.nii.gz,pet.nii.gz,P1-L2,-3.0,2.0,0.0,benign"]
    (d / "manifest.csv").write_text("\n".join(rows) + "\n")
    bad = rows[:2] + ["P1,ct.nii.gz,pet.nii.gz,P1-L9,500,0,0,benign"]
    (d / "outside.csv").write_text("\n".join(bad) + "\n")
    lesions = [Lesion("P1-L1", [0.5, 1.0, -5.0], "malignant", "P1"), Lesion("P1-L2", [-3.0, 2.0, 0.0], "benign", "P1")]
    return d / "manifest.csv", Study("P1", ct, pet, lesions)


def test_export_raw_patches_and_panels(nifti_cohort, tmp_path):
    manifest, study = nifti_cohort
    out = tmp_path / "out"
    assert main(["patches", str(manifest), "--out", str(out), "--no-normalize", "--png", "--size", "21"]) == 0
    z = np.load(out / "P1-L1.npz")
    assert z["patches"].shape == (1, 6, 21, 21) and z["patches"].dtype == np.float32
    assert list(z["channels"]) == ["CT-axial", "CT-coronal", "CT-sagittal", "PET-axial", "PET-coronal", "PET-sagittal"]
    assert not z["transforms"].any() and str(z["label"]) == "malignant"
    cache = LesionCache.from_cohort(Cohort([study]), size=21, max_rotation_deg=0.0, max_shift_mm=0.0)
    direct = PatchSampler(size=21).sample(cache, np.array([0]), np.zeros((1, 6)))
    np.testing.assert_allclose(z["patches"], direct, atol=1e-3)  # HU and SUV as read back from NIfTI
    png = (out / "P1-L2.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    meta = json.loads((out / "patches.json").read_text())
    assert meta["n_lesions"] == 2 and meta["normalize"] is False and "numpy" in meta["versions"]
    assert not list(out.glob(".*tmp*"))  # atomic writes leave nothing behind


def test_export_grid_normalised_zh(nifti_cohort, tmp_path):
    manifest, _ = nifti_cohort
    out = tmp_path / "grid"
    assert main(["patches", str(manifest), "--out", str(out), "--augment", "grid", "--size", "11", "--png",
                 "--lang", "zh"]) == 0
    z = np.load(out / "P1-L2.npz")
    assert z["patches"].shape == (729, 6, 11, 11) and len(np.unique(z["transforms"], axis=0)) == 729
    np.testing.assert_allclose(z["patches"].mean(axis=(2, 3)), 0, atol=1e-4)
    assert (out / "P1-L2.png").stat().st_size > 5000
    out2 = tmp_path / "random"
    args = ["patches", str(manifest), "--out", str(out2), "--augment", "random", "--n-random", "4", "--size", "11",
            "--seed", "3", "--shift-unit", "mm", "--max-shift", "1.5"]
    assert main(args) == 0
    t = np.load(out2 / "P1-L1.npz")["transforms"]
    assert t.shape == (4, 6) and np.abs(t[:, 3:]).max() <= 1.5
    assert main(args[:3] + [str(tmp_path / "random2")] + args[4:]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "random2" / "P1-L1.npz")["patches"],
                                  np.load(out2 / "P1-L1.npz")["patches"])


@pytest.mark.parametrize("extra, where", [
    (["--size", "50"], "size"),
    (["--size", "0"], "size"),
    (["--spacing", "-1"], "spacing"),
    (["--augment", "random", "--n-random", "0"], "--n-random"),
    (["--ct-window", "100"], "--ct-window"),
])
def test_bad_options_exit_2(nifti_cohort, tmp_path, capsys, extra, where):
    manifest, _ = nifti_cohort
    assert main(["patches", str(manifest), "--out", str(tmp_path / "x")] + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("petcad: error: ") and where in err[0]
    assert not (tmp_path / "x").exists() or not list((tmp_path / "x").iterdir())


def test_lesion_outside_volume_exit_2(nifti_cohort, tmp_path, capsys):
    manifest, _ = nifti_cohort
    assert main(["patches", str(manifest.parent / "outside.csv"), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "outside" in err and "Traceback" not in err


def test_large_shift_warns(nifti_cohort, tmp_path):
    manifest, _ = nifti_cohort
    with pytest.warns(UserWarning, match="may leave the patch"):
        assert main(["patches", str(manifest), "--out", str(tmp_path / "w"), "--augment", "grid", "--rotations", "0",
                     "--shifts", "12", "--size", "5"]) == 0


def test_bench_json(nifti_cohort, capsys):
    manifest, _ = nifti_cohort
    assert main(["bench", "patches", "--json", "--manifest", str(manifest), "--naive", "1", "--loader-batches", "1",
                 "--chunk", "256", "--rounds", "1", "--grid-sample-patches", "64", "--torch-patches", "8",
                 "--profile"]) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("petcad_patches_per_s", "naive_patches_per_s", "ratio", "peak_rss_mb", "loader_patches_per_s",
                "grid_sample_patches_per_s", "ratio_vs_grid_sample", "torch_path_patches_per_s"):
        assert res[key] > 0, key
    # grid_sample on the same crops and the torch path make the same patches as petcad
    assert res["grid_sample_vs_petcad_max_abs_diff"]["CT_HU"] < 0.05
    assert res["grid_sample_vs_petcad_max_abs_diff"]["PET_SUV"] < 1e-3
    assert res["torch_path_vs_petcad_max_abs_diff"] == 0.0
    assert res["profile"]["checks_and_tables_us_per_patch"] > 0 and len(res["profile"]["kernel_patches_per_s"]) == 5
    assert res["variants"]["729"]["patches"] == 2 * 729 and res["n_lesions"] == 2
    # the naive way (whole-volume SimpleITK resample, then slicing) gives the same patches
    assert res["naive_vs_petcad_max_abs_diff"]["CT_HU"] < 0.05 and res["naive_vs_petcad_max_abs_diff"]["PET_SUV"] < 1e-3


def test_bench_against_unknown_revision(nifti_cohort, capsys):
    manifest, _ = nifti_cohort
    assert main(["bench", "patches", "--manifest", str(manifest), "--against", "no-such-revision-xyz"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--against" in err[0] and "no-such-revision-xyz" in err[0]
