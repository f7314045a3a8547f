"""Happy paths the review found untested: the reliability curve against scikit-learn's, and a
9-channel (CT, PET, mask planes) forward of every network."""

from __future__ import annotations

import numpy as np
import pytest


def test_reliability_curve_equals_scikit_learn():
    from sklearn.calibration import calibration_curve

    from petcad.evaluation.calibration import reliability_curve

    rng = np.random.default_rng(3)
    p = rng.beta(0.7, 0.7, 500)
    p[:5] = [0.0, 1.0, 0.1, 0.5, 0.9]  # bin edges, both ends included
    y = (rng.random(500) < p ** 1.3).astype(int)  # a miscalibrated model: the curve is not the diagonal
    mean_pred, observed, count = reliability_curve(y, p, n_bins=10)
    sk_obs, sk_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(mean_pred, sk_pred, rtol=1e-12)
    np.testing.assert_allclose(observed, sk_obs, rtol=1e-12)
    assert count.sum() == 500 and np.abs(observed - mean_pred).max() > 0.05


@pytest.mark.parametrize("name", ["wang2017", "multiview", "alexnet", "hybrid"])
def test_nine_channel_forward_of_every_network(name):
    torch = pytest.importorskip("torch")
    from petcad.models.registry import build_model

    torch.manual_seed(0)
    n_feat = 13 if name == "hybrid" else 0
    model = build_model(name, in_channels=9, n_features=n_feat).eval()
    x = torch.randn(2, 9, 51, 51)
    f = torch.randn(2, 13) if n_feat else None
    with torch.no_grad():
        out = model(x, f)
        x2 = x.clone()
        x2[:, 6:] = 0.0  # the mask planes take part in the output
        out2 = model(x2, f)
    assert out.shape == (2, 2) and torch.isfinite(out).all()
    assert not torch.allclose(out, out2)
    with pytest.raises(Exception):
        model(torch.randn(2, 6, 51, 51), f)  # a 6-channel input to a 9-channel network is refused


def test_phantom_command_writes_a_cohort(tmp_path, capsys):
    import csv

    from petcad.cli import main

    out = tmp_path / "cohort"
    assert main(["phantom", "--out", str(out), "--patients", "2", "--seed", "4", "--format", "nifti"]) == 0
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert {r["patient_id"] for r in rows} == {"P0001", "P0002"} and {r["label"] for r in rows} <= {"benign", "malignant"}
    assert all((out / r["ct"]).exists() and (out / r["pet"]).exists() and (out / r["mask"]).exists() for r in rows)
    printed = capsys.readouterr().out
    assert f"patients 2, lesions {len(rows)}" in printed and "manifest.csv" in printed
    assert main(["manifest", str(out / "manifest.csv")]) == 0


@pytest.mark.slow
def test_bench_phantom_prints_both_modes(capsys):
    import json

    from petcad.cli import main

    assert main(["bench", "phantom", "--preset", "default", "--patients", "10", "--folds", "2", "--workers", "1",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["calibration_mode"] == "with masks" and d["patients"] == 10 and d["nodes"] > 20
    assert 0.5 < d["auc_pooled"] <= 1.0 and 0.0 < d["images_only"]["auc_pooled"] <= 1.0
    assert set(d["single_feature_auc"]) >= {"suv_max", "short_axis_mm"}
