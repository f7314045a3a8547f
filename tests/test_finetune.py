"""Fine-tuning across data sets: ``petcad train --init-weights RUN_DIR`` loads the layers that match by name
and shape, reinitialises the rest, resizes the head when the label set differs, and says so in the run log."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from petcad.cli import main  # noqa: E402
from petcad.errors import InputError  # noqa: E402
from petcad.models.checkpoint import load_init_weights, read_tensors  # noqa: E402
from petcad.models.config import TrainConfig  # noqa: E402
from petcad.models.data import LesionData  # noqa: E402
from petcad.models.estimator import CNNClassifier  # noqa: E402
from petcad.models.registry import build_model  # noqa: E402
from petcad.models.train import train  # noqa: E402

TRUNK = ["fc.1", "features.0", "features.3"]


pytestmark = pytest.mark.usefixtures("torch_two_threads")


def patch_data(classes, n=36, seed=0) -> LesionData:
    """Precomputed 6 x 51 x 51 patches in HU / SUV whose PET level depends on the class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(classes)
    x = rng.normal(0, 1, (n, 6, 51, 51)).astype(np.float32) * 50
    x[:, 3:] = np.abs(x[:, 3:]) / 50 + 2.0 * y[:, None, None, None]
    return LesionData(cache=None, patches=x, y=y, groups=np.arange(n) // 3, classes=classes)


def _cfg(**kw) -> TrainConfig:
    base = dict(model="wang2017", epochs=1, batch_size=12, augment="none", dihedral=False, min_samples_per_epoch=0,
                val_fraction=0.25, device="cpu", threads=2, seed=0)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ft") / "source"
    train(patch_data(("benign", "malignant")), None, _cfg(), run_dir=run)
    return run


def test_load_init_weights_by_name_shape_and_label(source_run):
    src, _ = read_tensors(source_run / "model.safetensors")
    torch.manual_seed(5)
    net = build_model("wang2017", n_classes=3)
    fresh_head = net.head.weight.detach().clone()
    rep = load_init_weights(net, source_run, ["benign", "malignant", "primary"])
    assert rep["layers_loaded"] == TRUNK and rep["layers_reinitialised"] == ["head"]
    assert rep["head_classes_loaded"] == ["benign", "malignant"] and rep["source_classes"] == ["benign", "malignant"]
    sd = net.state_dict()
    for k in ("features.0.weight", "features.3.bias", "fc.1.weight"):
        assert torch.equal(sd[k], src[k])
    assert torch.equal(sd["head.weight"][:2], src["head.weight"]) and torch.equal(sd["head.bias"][:2], src["head.bias"])
    assert torch.equal(sd["head.weight"][2], fresh_head[2])  # the new class keeps its fresh initialisation

    # same labels in another order (binary with --positive benign): rows follow the label names
    net = build_model("wang2017")
    rep = load_init_weights(net, source_run, ["malignant", "benign"])
    assert torch.equal(net.head.weight[0], src["head.weight"][1]) and torch.equal(net.head.weight[1], src["head.weight"][0])
    # another binary label set: nothing of the head is carried over
    torch.manual_seed(5)
    net = build_model("wang2017")
    fresh = net.head.weight.detach().clone()
    rep = load_init_weights(net, source_run, ["A", "G"])
    assert rep["head_classes_loaded"] == [] and torch.equal(net.head.weight, fresh)
    # the same label set: everything loads
    rep = load_init_weights(build_model("wang2017"), source_run, ["benign", "malignant"])
    assert rep["reinitialised"] == [] and "head" in rep["layers_loaded"]
    # another network: nothing matches
    with pytest.raises(InputError, match="no layer of model.safetensors matches the network multiview"):
        load_init_weights(build_model("multiview"), source_run, ["benign", "malignant"])
    with pytest.raises(InputError, match="no such run directory"):
        load_init_weights(build_model("wang2017"), source_run / "nope", ["benign", "malignant"])


def test_finetune_three_labels_from_a_binary_run_logs_what_loaded(source_run, tmp_path):
    run = tmp_path / "ft"
    data = patch_data(("benign", "malignant", "primary"), n=36, seed=1)
    res = train(data, None, _cfg(init_weights=str(source_run), epochs=2, seed=1), run_dir=run)
    log = (run / "train.log").read_text()
    assert f"init weights from {source_run} (wang2017, labels benign, malignant)" in log
    assert "layers loaded: fc.1, features.0, features.3" in log and "layers reinitialised: head" in log
    assert "rows carried over for: benign, malignant" in log and "epoch 2/2" in log
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["classes"] == ["benign", "malignant", "primary"] and cfg["init_report"]["layers_loaded"] == TRUNK
    assert res.init_report["source"] == str(source_run)
    clf = CNNClassifier.load(run, device="cpu")
    assert clf.labels_ == ("benign", "malignant", "primary")
    assert clf.predict_proba(data).shape == (36, 3)
    # resuming does not load the init weights again (the resume point has the trained weights)
    res2 = train(data, None, _cfg(init_weights=str(source_run), epochs=3, seed=1), run_dir=run, resume=True)
    assert len(res2.history) == 3 and (run / "train.log").read_text().count("init weights from") == 1


def _write_manifest(out: Path, n_patients=4, seed=0) -> Path:
    """Small NIfTI studies with Gaussian lesions (malignant: larger and hotter) and their manifest."""
    import SimpleITK as sitk

    from petcad.study import Volume

    rng = np.random.default_rng(seed)
    shape, sp = (30, 50, 50), np.array([1.5, 1.5, 2.5])
    kk, jj, ii = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in range(n_patients):
        ct = rng.normal(-200, 150, shape).astype(np.float32)
        pet = rng.gamma(4, 0.2, shape).astype(np.float32)
        for k in range(4):
            c = np.array([12 + 8 * k, 25, 15])
            mal = (k + p) % 2 == 0
            d2 = (((ii - c[0]) * sp[0]) ** 2 + ((jj - c[1]) * sp[1]) ** 2 + ((kk - c[2]) * sp[2]) ** 2) / (6 if mal else 4) ** 2
            pet += ((6 if mal else 2.5) * np.exp(-d2)).astype(np.float32)
            rows.append([f"P{p}", f"P{p}_ct.nii.gz", f"P{p}_pet.nii.gz", f"P{p}L{k}", *(c * sp), "malignant" if mal else "benign"])
        for name, arr in (("ct", ct), ("pet", pet)):
            sitk.WriteImage(Volume(arr, np.zeros(3), sp).to_sitk(), str(out / f"P{p}_{name}.nii.gz"))
    with open(out / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "ct", "pet", "lesion_id", "x", "y", "z", "label"])
        w.writerows(rows)
    return out / "manifest.csv"


def test_cli_train_init_weights_run_dir(source_run, tmp_path, capsys):
    manifest = _write_manifest(tmp_path / "cohort")
    args = ["train", str(manifest), "--epochs", "1", "--batch-size", "8", "--min-samples-per-epoch", "0",
            "--threads", "2", "--no-progress", "--device", "cpu"]
    assert main(args + ["--out", str(tmp_path / "run"), "--init-weights", str(source_run)]) == 0
    out = capsys.readouterr().out
    assert "init weights: loaded 8 tensors; skipped 0 by shape or labels" in out
    assert "layers loaded: fc.1, features.0, features.3, head" in out
    assert "layers loaded: fc.1, features.0, features.3, head" in (tmp_path / "run" / "train.log").read_text()
    # bad sources: one line, exit 2, no run written
    assert main(args + ["--out", str(tmp_path / "r2"), "--init-weights", str(tmp_path / "missing")]) == 2
    assert "no such run directory or weights file" in capsys.readouterr().err
    assert main(args + ["--out", str(tmp_path / "r3"), "--model", "multiview", "--init-weights", str(source_run)]) == 2
    assert "matches the network multiview" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3" / "model.safetensors").exists()
