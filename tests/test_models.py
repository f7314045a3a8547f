"""Tests of petcad.models: networks, training, checkpoints, resume after kill -9, DDP, prediction, bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from petcad.cli import main as cli_main  # noqa: E402
from petcad.errors import InputError  # noqa: E402
from petcad.models.data import LesionData  # noqa: E402
from petcad.models.estimator import CNNClassifier  # noqa: E402
from petcad.models.registry import MODELS, build_model, count_parameters  # noqa: E402
from petcad.study import Cohort, Lesion, Study, Volume  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


pytestmark = pytest.mark.usefixtures("torch_two_threads")


# ---------------------------------------------------------------------------- synthetic data
def blob_cohort(n_patients: int = 12, lesions_per: int = 6, seed: int = 0) -> Cohort:
    """In-memory PET/CT studies with Gaussian lesions: malignant = larger and hotter (heavy overlap)."""
    rng = np.random.default_rng(seed)
    shape, sp = (36, 60, 60), np.array([1.5, 1.5, 2.5])
    kk, jj, ii = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    studies = []
    for p in range(n_patients):
        ct = rng.normal(40, 15, shape).astype(np.float32)
        pet = rng.gamma(4, 0.2, shape).astype(np.float32)
        lesions = []
        for k in range(lesions_per):
            mal = (k + p) % 2 == 0
            c = np.array([rng.uniform(18, 42), rng.uniform(18, 42), rng.uniform(11, 25)])
            r = rng.uniform(5, 8) if mal else rng.uniform(3, 5.5)
            suv = rng.uniform(4, 8) if mal else rng.uniform(1.5, 4.5)
            d2 = (((ii - c[0]) * sp[0]) ** 2 + ((jj - c[1]) * sp[1]) ** 2 + ((kk - c[2]) * sp[2]) ** 2) / r**2
            pet += (suv * np.exp(-d2)).astype(np.float32)
            ct += np.where(d2 < 1, 20.0, 0.0).astype(np.float32)
            lesions.append(Lesion(f"P{p}L{k}", c * sp, "malignant" if mal else "benign", f"P{p}"))
        studies.append(Study(f"P{p}", Volume(ct, np.zeros(3), sp), Volume(pet, np.zeros(3), sp), lesions))
    return Cohort(studies)


def write_cohort(cohort: Cohort, out: Path) -> Path:
    """Write the cohort as NIfTI files plus a manifest CSV; return the manifest path."""
    import SimpleITK as sitk

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in cohort.studies:
        sitk.WriteImage(s.ct.to_sitk(), str(out / f"{s.patient_id}_ct.nii.gz"))
        sitk.WriteImage(s.pet.to_sitk(), str(out / f"{s.patient_id}_pet.nii.gz"))
        for les in s.lesions:
            x, y, z = les.center_mm
            rows.append([s.patient_id, f"{s.patient_id}_ct.nii.gz", f"{s.patient_id}_pet.nii.gz", les.lesion_id,
                         f"{x:.3f}", f"{y:.3f}", f"{z:.3f}", les.label])
    with open(out / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "ct", "pet", "lesion_id", "x", "y", "z", "label"])
        w.writerows(rows)
    return out / "manifest.csv"


@pytest.fixture(scope="module")
def blob_data() -> LesionData:
    return LesionData.from_cohort(blob_cohort(16, 6, seed=3))


@pytest.fixture(scope="module")
def blob_manifest(tmp_path_factory) -> Path:
    return write_cohort(blob_cohort(8, 5, seed=11), tmp_path_factory.mktemp("blobs"))


def _env() -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    return env


# ---------------------------------------------------------------------------- networks
@pytest.mark.parametrize("name", sorted(MODELS))
def test_networks_forward_embed_and_gradients(name):
    from petcad.models.networks import AlexNet25D

    torch.manual_seed(0)
    # a narrow AlexNet for the gradient check (the full one: 57 M parameters, checked below without grad)
    m = AlexNet25D(width=64) if name == "alexnet" else build_model(name, n_features=5)
    x = torch.randn(3, 6, 51, 51)
    f = torch.randn(3, 5) if name == "hybrid" else None
    out = m(x, f)
    assert out.shape == (3, 2)
    assert m.embed(x, f).shape == (3, m.embed_dim)
    out[:, 1].sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    with pytest.raises(ValueError):
        m(torch.randn(2, 6, 49, 49), f if f is None else f[:2])


def test_parameter_counts_match_docs():
    # the figures quoted in docs/models.md
    assert count_parameters(build_model("wang2017")) == 2_054_572
    assert count_parameters(build_model("multiview")) == 212_594
    full = build_model("alexnet").eval()
    assert count_parameters(full) == 57_035_266
    with torch.no_grad():
        assert full(torch.randn(2, 6, 51, 51)).shape == (2, 2)
    assert count_parameters(build_model("hybrid", n_features=13)) == 2_086_596
    assert (REPO / "docs" / "models.md").read_text().count("2,054,572") >= 1


def test_he_initialisation_scale():
    torch.manual_seed(1)
    m = build_model("wang2017")
    w = m.features[0].weight
    fan_in = w[0].numel()
    expected = (2.0 / (1 + 0.01**2) / fan_in) ** 0.5
    assert abs(float(w.detach().std()) - expected) / expected < 0.1
    assert float(m.head.weight.detach().std()) < 0.02


def test_multiview_dense_evaluation_is_exact():
    torch.manual_seed(2)
    m = build_model("multiview").eval()
    img = torch.randn(1, 2, 75, 64)
    with torch.no_grad():
        dense = m.dense_planes(img)
        assert dense.shape == (1, 128, 25, 14)
        for r, c in [(0, 0), (7, 3), (24, 13), (11, 9)]:
            patch = m.stream(img[:, :, r : r + 51, c : c + 51])[0, :, 0, 0]
            assert torch.allclose(dense[0, :, r, c], patch, atol=1e-4)
        # per-voxel fusion equals the patch network on a 6-channel patch built from three planes
        planes = torch.randn(3, 1, 2, 51, 51)
        x = torch.cat([planes[:, 0, 0], planes[:, 0, 1]], 0)[None]  # CT a/c/s, PET a/c/s
        feats = [m.dense_planes(planes[p])[0, :, 0, 0] for p in range(3)]
        assert torch.allclose(m.fuse_dense(*feats), m(x)[0], atol=1e-4)


# ---------------------------------------------------------------------------- training
def _holdout(data: LesionData, n_test_patients: int):
    pats = np.unique(data.groups)
    test = np.isin(data.groups, pats[:n_test_patients])
    return np.flatnonzero(~test), np.flatnonzero(test)


def test_wang2017_learns_on_held_out_patients(blob_data):
    from sklearn.metrics import roc_auc_score

    tr, te = _holdout(blob_data, 5)
    clf = CNNClassifier(model="wang2017", epochs=6, batch_size=16, seed=0, threads=2, patience=6,
                        min_samples_per_epoch=0).fit(blob_data, tr)
    p = clf.predict_proba(blob_data, te)
    assert p.shape == (len(te), 2) and np.allclose(p.sum(1), 1)
    losses = [h["train_loss"] for h in clf.history_]
    assert min(losses[-3:]) < losses[0]
    # 30 held-out lesions of 5 unseen patients: AUC >= 0.8 by chance has p < 0.001
    assert roc_auc_score(blob_data.y[te], p[:, 1]) >= 0.8
    Z = clf.deep_features(blob_data, te)
    assert Z.shape == (len(te), 500) and np.isfinite(Z).all()


def test_training_is_deterministic_for_a_seed(blob_data):
    idx = np.arange(40)
    kw = dict(model="multiview", epochs=2, batch_size=8, seed=5, threads=2, val_fraction=0.25, min_samples_per_epoch=0)
    a = CNNClassifier(**kw).fit(blob_data, idx).predict_proba(blob_data, idx[:10])
    b = CNNClassifier(**kw).fit(blob_data, idx).predict_proba(blob_data, idx[:10])
    c = CNNClassifier(**{**kw, "seed": 6}).fit(blob_data, idx).predict_proba(blob_data, idx[:10])
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_validation_split_is_patient_level_and_inside_indices():
    from petcad.models.train import patient_split

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 5)
    y = rng.integers(0, 2, 100)
    tr, va = patient_split(y, groups, 0.2, seed=3)
    assert len(va) > 0 and not set(groups[tr]) & set(groups[va])
    assert sorted(np.concatenate([tr, va])) == list(range(100))


def test_hybrid_uses_features_and_standardises_with_training_statistics(blob_data):
    rng = np.random.default_rng(0)
    feats = np.column_stack([blob_data.y * 3.0 + rng.normal(0, 1, len(blob_data)) + 100.0, rng.normal(5, 2, len(blob_data))])
    data = LesionData(cache=blob_data.cache, y=blob_data.y, groups=blob_data.groups, features=feats,
                      feature_names=("suvmax", "noise"))
    tr, te = _holdout(data, 4)
    clf = CNNClassifier(model="hybrid", epochs=2, batch_size=16, seed=0, threads=2, min_samples_per_epoch=0).fit(data, tr)
    assert np.allclose(clf.config_["feature_mean"], feats[tr].mean(0))
    assert clf.predict_proba(data, te).shape == (len(te), 2)
    no_feats = LesionData(cache=blob_data.cache, y=blob_data.y, groups=blob_data.groups)
    with pytest.raises(InputError):
        clf.predict_proba(no_feats, te)
    with pytest.raises(InputError):
        CNNClassifier(model="hybrid", epochs=1).fit(no_feats, tr)
    # missing features are imputed with the training-fold median; the test lesions move no statistic
    bad = feats.copy()
    bad[tr[0], 0] = np.nan
    bad[te, 1] = np.nan
    bad[te[:3], 0] = 1e9
    fit_bad = CNNClassifier(model="hybrid", epochs=1, batch_size=16, seed=0, threads=2, min_samples_per_epoch=0)
    fit_bad.fit(LesionData(cache=blob_data.cache, y=blob_data.y, groups=blob_data.groups, features=bad), tr)
    train_col0 = np.delete(feats[tr, 0], 0)
    assert fit_bad.scaler_.median[0] == pytest.approx(np.median(train_col0))
    assert fit_bad.scaler_.median[1] == pytest.approx(np.median(feats[tr, 1]))
    imputed = np.where(np.arange(len(tr)) == 0, np.median(train_col0), feats[tr, 0])
    assert fit_bad.scaler_.mean[0] == pytest.approx(imputed.mean())
    z = fit_bad.scaler_.transform(bad[te[3:4]])
    assert np.isfinite(z).all() and z[0, 1] == pytest.approx((fit_bad.scaler_.median[1] - fit_bad.scaler_.mean[1])
                                                            / fit_bad.scaler_.std[1], rel=1e-5)
    from petcad.models.train import FeatureScaler

    with pytest.raises(InputError, match="no finite value"):
        FeatureScaler.fit(np.column_stack([feats[tr, 0], np.full(len(tr), np.nan)]))


def test_tta_is_the_mean_softmax_over_the_729_grid_variants(blob_data):
    import itertools

    clf = CNNClassifier(model="wang2017", epochs=1, batch_size=16, seed=0, threads=2, min_samples_per_epoch=0).fit(blob_data, np.arange(60))
    idx = [70, 71]
    tta = clf.predict_proba(blob_data, idx, tta=True)
    # the grid by hand: -10, 0, +10 degrees about each axis times -2, 0, +2 pixels along each axis
    steps = [r + s for r in itertools.product((-10.0, 0.0, 10.0), repeat=3) for s in itertools.product((-2.0, 0.0, 2.0), repeat=3)]
    grid = np.array(steps)
    assert len(np.unique(grid, axis=0)) == 729
    clf.model_.eval()
    device = next(clf.model_.parameters()).device
    probs = []
    with torch.no_grad():
        for i in idx:  # every variant through the network, softmax, then the mean of the probabilities
            logits = clf.model_(blob_data.sample_tensor(np.full(len(grid), i), grid, device=device), None).double()
            probs.append(torch.softmax(logits, dim=1).cpu().numpy())
    probs = np.array(probs)
    np.testing.assert_allclose(tta, probs.mean(axis=1), rtol=0, atol=2e-6)
    # the variants disagree enough that a part of the grid, or the mean of the logits, would show
    spread = probs[:, :, 1].max(axis=1) - probs[:, :, 1].min(axis=1)
    assert spread.min() > 0.05, spread
    plain = clf.predict_proba(blob_data, idx)
    np.testing.assert_allclose(plain, probs[:, steps.index((0.0,) * 6)], rtol=0, atol=2e-6)  # the identity variant


# ---------------------------------------------------------------------------- checkpoints and bad input
def test_cli_train_writes_checkpoints_and_predict_manifest(blob_manifest, tmp_path):
    run = tmp_path / "run"
    rc = cli_main([ "train", str(blob_manifest), "--model", "wang2017", "--out", str(run), "--epochs", "2",
                    "--batch-size", "16", "--threads", "2", "--no-progress", "--min-samples-per-epoch", "0"])
    assert rc == 0
    for name in ("model.safetensors", "last.safetensors", "state.json", "config.json", "metrics.csv"):
        assert (run / name).is_file(), name
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == "wang2017" and cfg["patch_size"] == 51 and len(cfg["data_hash"]) == 64
    assert cfg["channels"][0] == "CT-axial" and "torch" in cfg["versions"]
    assert cfg["normalization"] == "fixed" and cfg["dihedral"] is True and cfg["dropout"] == 0.5
    loaded = CNNClassifier.load(run)
    assert loaded.get_params()["dihedral"] is True and loaded.get_params()["dropout"] == 0.5
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,train_loss,val_loss,val_auc") and len(lines) == 3
    assert not list(run.glob(".*tmp*"))
    out = tmp_path / "pred.csv"
    assert cli_main(["predict", "--model", str(run), "--manifest", str(blob_manifest), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["patient_id", "lesion_id", "label", "probability"] and len(rows) == 40
    assert all(0 <= float(r["probability"]) <= 1 for r in rows)
    # point mode gives the same probability as the manifest mode at a lesion centre
    m = list(csv.DictReader(blob_manifest.open()))[0]
    res = subprocess.run([PY, "-m", "petcad", "predict", "--model", str(run), "--ct", str(blob_manifest.parent / m["ct"]),
                          "--pet", str(blob_manifest.parent / m["pet"]), "--at", f"{m['x']},{m['y']},{m['z']}", "--json"],
                         capture_output=True, text=True, env=_env(), timeout=120)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)[0]["probability"]
    assert abs(got - float(rows[0]["probability"])) < 1e-4


def test_bad_inputs_give_input_error_and_exit_2(blob_manifest, tmp_path, capsys):
    # unknown model name
    with pytest.raises(InputError):
        build_model("resnet")
    assert cli_main(["train", str(blob_manifest), "--model", "resnet", "--out", str(tmp_path / "r")]) == 2
    # model directory without config
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="config"):
        CNNClassifier.load(empty)
    assert cli_main(["predict", "--model", str(empty), "--manifest", str(blob_manifest), "--out", str(tmp_path / "p.csv")]) == 2
    # a trained run whose weights file is corrupt
    run = tmp_path / "run"
    assert cli_main(["train", str(blob_manifest), "--out", str(run), "--epochs", "1", "--batch-size", "16",
                     "--threads", "2", "--no-progress", "--min-samples-per-epoch", "0"]) == 0
    (run / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(InputError, match="safetensors"):
        CNNClassifier.load(run)
    assert cli_main(["predict", "--model", str(run), "--manifest", str(blob_manifest), "--out", str(tmp_path / "p.csv")]) == 2
    assert not (tmp_path / "p.csv").exists()
    # resume with another cohort: hash mismatch
    other = write_cohort(blob_cohort(8, 5, seed=12), tmp_path / "other")  # same ids and file names, other lesions
    assert cli_main(["train", str(other), "--out", str(run), "--epochs", "2", "--resume", "--no-progress"]) == 2
    # training into a used run directory without --resume
    assert cli_main(["train", str(blob_manifest), "--out", str(run), "--epochs", "2", "--no-progress"]) == 2
    # resume with other augmentation settings
    assert cli_main(["train", str(blob_manifest), "--out", str(run), "--epochs", "2", "--resume", "--no-progress",
                     "--batch-size", "16", "--min-samples-per-epoch", "0", "--no-dihedral"]) == 2
    # dropout out of range
    assert cli_main(["train", str(blob_manifest), "--out", str(tmp_path / "d"), "--dropout", "1.5"]) == 2
    assert not (tmp_path / "d").exists()
    # bad point
    assert cli_main(["predict", "--model", str(run), "--ct", "a", "--pet", "b", "--at", "1,2"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "unknown model 'resnet'" in err and "data hash mismatch" in err and "no config.json" in err
    assert "different settings: dihedral\n" in err and "--dropout: must be in [0, 1)" in err


def test_weights_load_without_unpickling_and_partial_init(tmp_path):
    from petcad.models.checkpoint import load_weights_into, read_tensors

    torch.manual_seed(0)
    src = build_model("wang2017", in_channels=3)  # conv1 has 3 input channels: shape mismatch
    path = tmp_path / "pre.pt"
    torch.save({"module." + k: v for k, v in src.state_dict().items()}, path)
    dst = build_model("wang2017")
    rep = load_weights_into(dst, path, strict=False)
    assert "features.0.weight" in rep["missing"] and any("features.0.weight" in s for s in rep["skipped_shape"])
    assert "features.3.weight" in rep["loaded"]
    assert torch.equal(dst.features[3].weight, src.features[3].weight)
    with pytest.raises(InputError):
        load_weights_into(build_model("wang2017"), path, strict=True)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    evil = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, evil, _use_new_zipfile_serialization=True)
    with pytest.raises(InputError):
        read_tensors(evil)
    assert not (tmp_path / "pwned").exists()


def test_init_weights_option_reports_what_loaded(blob_manifest, tmp_path, capsys):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    sd = build_model("wang2017").state_dict()
    sd["features.0.weight"] = torch.zeros(20, 3, 5, 5)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "init.safetensors"))
    rc = cli_main(["train", str(blob_manifest), "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "16",
                   "--threads", "2", "--no-progress", "--min-samples-per-epoch", "0", "--init-weights", str(tmp_path / "init.safetensors")])
    assert rc == 0
    out = capsys.readouterr().out
    # features.0 (weight and bias) is reinitialised: its weight has another shape in the file
    assert "init weights: loaded 6 tensors; skipped 1 by shape or labels" in out and "layers reinitialised: features.0" in out


# ---------------------------------------------------------------------------- resume after kill -9
TRAIN_ARGS = ["--model", "wang2017", "--epochs", "4", "--batch-size", "8", "--seed", "3", "--threads", "1",
              "--no-progress", "--patience", "10", "--min-samples-per-epoch", "0"]


@pytest.mark.slow
def test_resume_after_kill_gives_the_same_final_weights(blob_manifest, tmp_path):
    from safetensors.torch import load_file

    ref, run = tmp_path / "ref", tmp_path / "run"
    cmd = [PY, "-m", "petcad", "train", str(blob_manifest)] + TRAIN_ARGS
    res = subprocess.run(cmd + ["--out", str(ref)], capture_output=True, text=True, env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr
    # start again, kill -9 as soon as the first epoch is checkpointed (mid-way through epoch 2)
    proc = subprocess.Popen(cmd + ["--out", str(run)], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not (run / "state.json").exists() and time.time() - t0 < 200:
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = json.loads((run / "state.json").read_text())
    assert 1 <= state["epoch"] < 4
    res = subprocess.run(cmd + ["--out", str(run), "--resume"], capture_output=True, text=True, env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"resuming after epoch {state['epoch']}" in res.stderr
    for name in ("last.safetensors", "model.safetensors"):
        a, b = load_file(str(ref / name)), load_file(str(run / name))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    ra = [r.split(",")[:4] for r in (ref / "metrics.csv").read_text().splitlines()]
    rb = [r.split(",")[:4] for r in (run / "metrics.csv").read_text().splitlines()]
    assert ra == rb and len(ra) == 5


# ---------------------------------------------------------------------------- DDP
@pytest.mark.slow
def test_ddp_two_cpu_processes_train_one_epoch(blob_manifest, tmp_path):
    run = tmp_path / "ddp"
    cmd = [PY, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "0", "--rdzv-backend", "c10d",
           "--rdzv-endpoint", "127.0.0.1:0", "-m", "petcad.models.ddp", str(blob_manifest), "--model", "wang2017",
           "--out", str(run), "--epochs", "1", "--batch-size", "16", "--threads", "1", "--device", "cpu", "--no-progress",
           "--min-samples-per-epoch", "0"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "(2 processes)" in res.stdout
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 1
    assert (run / "model.safetensors").is_file() and (run / "last.safetensors").is_file()
    assert len((run / "metrics.csv").read_text().splitlines()) == 2
    assert CNNClassifier.load(run).config_["model"] == "wang2017"


# ---------------------------------------------------------------------------- benchmark command
def test_bench_model_json(capsys):
    rc = cli_main(["bench", "model", "--json", "--models", "wang2017,multiview", "--seconds", "0.2",
                   "--batch", "32", "--train-batch", "16"])
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["wang2017", "multiview"]
    for r in rows:
        for k in ("train_samples_per_s", "latency_ms_single", "latency_ms_batched", "loader_patches_per_s",
                  "torch_loader_patches_per_s"):
            assert r[k] > 0
        assert r["training_loader"] == "numba"  # on the CPU; the torch path on CUDA
    assert cli_main(["bench", "model", "--models", "lenet"]) == 2


# ---------------------------------------------------------------------------- the phantom cohort (DICOM)
@pytest.mark.slow
def test_short_training_on_the_phantom_cohort(small_cohort, tmp_path):
    """Train on 5 of the 8 DICOM phantom patients through the real readers; the loss must fall."""
    from sklearn.metrics import roc_auc_score

    from petcad.models.data import load_manifest_data

    _, data = load_manifest_data(small_cohort)
    pats = np.unique(data.groups)
    test = np.isin(data.groups, pats[:3])
    clf = CNNClassifier(model="wang2017", epochs=3, batch_size=32, seed=0, threads=2, val_fraction=0.0,
                        min_samples_per_epoch=512, run_dir=tmp_path / "run").fit(data, np.flatnonzero(~test))
    losses = [h["train_loss"] for h in clf.history_]
    # below the chance log-loss (ln 2 = 0.693 with balanced classes) and clearly falling; dropout and
    # per-plane mirrors / turns keep the training loss well above zero on purpose
    assert losses[-1] < 0.65 and losses[-1] < 0.85 * losses[0], losses
    p = clf.predict_proba(data, np.flatnonzero(test))[:, 1]
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    auc = roc_auc_score(data.y[test], p)  # a loose sanity bound only (few held-out lesions)
    assert auc > 0.5, auc
    assert (tmp_path / "run" / "model.safetensors").is_file()
