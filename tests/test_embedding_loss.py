"""The embedding ("classifiability") losses: values on hand-made batches, training with them, checkpoint and resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from petcad.cli import main as cli_main  # noqa: E402
from petcad.errors import InputError  # noqa: E402
from petcad.models.config import TrainConfig  # noqa: E402
from petcad.models.data import LesionData  # noqa: E402
from petcad.models.embedding import embedding_loss, fisher_loss, supcon_loss  # noqa: E402
from petcad.models.estimator import CNNClassifier  # noqa: E402
from test_models import blob_cohort, write_cohort  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_two_threads")


def _batch(shift: float, n: int = 8, d: int = 5, seed: int = 0):
    """Two classes of ``n`` points each, N(0, 1) in ``d`` dimensions, class 1 moved by ``shift`` along axis 0."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(2 * n, d, generator=g, dtype=torch.float64)
    z[n:, 0] += shift
    return z, torch.tensor([0] * n + [1] * n)


# ---------------------------------------------------------------------------- loss values
def test_fisher_is_within_over_total_scatter_and_lower_when_classes_separate():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [14.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1])
    # by hand: class means 1 and 12, grand mean 6.5; S_w = (1 + 1 + 4 + 4) / 4 = 2.5,
    # S_b = (2 * 5.5^2 + 2 * 5.5^2) / 4 = 30.25
    assert float(fisher_loss(z, y)) == pytest.approx(2.5 / (2.5 + 30.25), rel=1e-9)
    values = [float(fisher_loss(*_batch(s))) for s in (0.0, 1.0, 3.0, 10.0)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert 0.0 <= values[-1] < 0.2 and 0.8 < values[0] <= 1.0
    zz, yy = _batch(2.0)
    assert float(fisher_loss(7.0 * zz, yy)) == pytest.approx(float(fisher_loss(zz, yy)), rel=1e-9)  # scale-free
    assert float(fisher_loss(zz, torch.zeros(16, dtype=torch.long))) == 0.0  # one class: no term


def _supcon_reference(z: np.ndarray, y: np.ndarray, t: float) -> float:
    """Khosla et al. (2020), eq. 2 (L_out), written as loops."""
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    total, anchors = 0.0, 0
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        pos = [p for p in others if y[p] == y[i]]
        if not pos:
            continue
        denom = sum(math.exp(z[i] @ z[a] / t) for a in others)
        total += -sum(math.log(math.exp(z[i] @ z[p] / t) / denom) for p in pos) / len(pos)
        anchors += 1
    return total / anchors


def test_supcon_matches_the_paper_formula_and_decreases_as_classes_separate():
    z, y = _batch(1.5, n=5, d=4, seed=2)
    y = torch.tensor([0, 0, 1, 1, 2, 0, 1, 1, 2, 2])  # three classes, unequal sizes
    assert float(supcon_loss(z, y, temperature=0.1)) == pytest.approx(_supcon_reference(z.numpy(), y.numpy(), 0.1), rel=1e-9)
    assert float(supcon_loss(z, y, temperature=0.5)) == pytest.approx(_supcon_reference(z.numpy(), y.numpy(), 0.5), rel=1e-9)
    values = [float(supcon_loss(*_batch(s))) for s in (0.0, 1.0, 3.0, 10.0)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    # a lone lesion of its class has no positive: it is no anchor, but still a negative of the others
    z3, y3 = _batch(3.0, n=4)
    y3 = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2])
    assert float(supcon_loss(z3, y3)) == pytest.approx(_supcon_reference(z3.numpy(), y3.numpy(), 0.1), rel=1e-9)
    assert float(supcon_loss(z3, torch.zeros(8, dtype=torch.long))) == 0.0


def test_losses_have_finite_gradients_and_unknown_kind_is_refused():
    z, y = _batch(1.0)
    z.requires_grad_(True)
    (embedding_loss("supcon", z, y) + embedding_loss("fisher", z, y)).backward()
    assert torch.isfinite(z.grad).all() and float(z.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="unknown embedding loss"):
        embedding_loss("triplet", z, y)


def test_config_validates_the_option():
    assert TrainConfig(embedding_loss="fisher").validate().embedding_weight == TrainConfig.embedding_weight
    with pytest.raises(InputError, match="--embedding-loss"):
        TrainConfig(embedding_loss="triplet").validate()
    for w in (0.0, -1.0, float("nan")):
        with pytest.raises(InputError, match="--embedding-weight"):
            TrainConfig(embedding_loss="supcon", embedding_weight=w).validate()


# ---------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def tiny_data() -> LesionData:
    return LesionData.from_cohort(blob_cohort(6, 6, seed=3))


def _clf(**kw):
    base = dict(model="wang2017", epochs=1, batch_size=12, seed=4, threads=2, min_samples_per_epoch=0, val_fraction=0.25)
    return CNNClassifier(**{**base, **kw})


def test_training_with_an_embedding_loss_is_deterministic_and_changes_the_network(tiny_data):
    idx = np.arange(len(tiny_data))
    a = _clf(embedding_loss="fisher").fit(tiny_data, idx)
    b = _clf(embedding_loss="fisher").fit(tiny_data, idx)
    plain = _clf().fit(tiny_data, idx)
    sup = _clf(embedding_loss="supcon", embedding_weight=1.0).fit(tiny_data, idx)
    pa, pb = a.predict_proba(tiny_data, idx), b.predict_proba(tiny_data, idx)
    assert np.array_equal(pa, pb)
    assert np.array_equal(a.deep_features(tiny_data, idx), b.deep_features(tiny_data, idx))
    assert not np.allclose(pa, plain.predict_proba(tiny_data, idx))
    assert not np.allclose(sup.predict_proba(tiny_data, idx), plain.predict_proba(tiny_data, idx))
    for clf in (a, sup):
        for h in clf.history_:  # the term is logged apart, and the total loss includes it weighted
            assert 0 < h["train_embedding_loss"] and h["train_loss"] > clf.embedding_weight * h["train_embedding_loss"]
    assert all(0 < h["train_embedding_loss"] <= 1 for h in a.history_)  # the Fisher ratio
    assert "train_embedding_loss" not in plain.history_[0]
    assert a.config_["embedding_loss"] == "fisher" and "Fisher" in a.config_["embedding_loss_text"]
    assert plain.config_["embedding_loss_text"] == "cross-entropy only"


def test_the_option_is_in_the_checkpoint_and_resume_keeps_it(tiny_data, tmp_path):
    idx = np.arange(len(tiny_data))
    run = tmp_path / "run"
    _clf(embedding_loss="supcon", embedding_weight=0.3, run_dir=run).fit(tiny_data, idx)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["embedding_loss"] == "supcon" and cfg["embedding_weight"] == 0.3
    loaded = CNNClassifier.load(run, device="cpu")
    assert (loaded.embedding_loss, loaded.embedding_weight) == ("supcon", 0.3)
    # resume with the same loss continues; a run of 2 epochs straight gives the same weights
    resumed = _clf(embedding_loss="supcon", embedding_weight=0.3, epochs=2, run_dir=run, resume=True).fit(tiny_data, idx)
    straight = _clf(embedding_loss="supcon", embedding_weight=0.3, epochs=2).fit(tiny_data, idx)
    assert len(resumed.history_) == 2
    assert np.array_equal(resumed.predict_proba(tiny_data, idx), straight.predict_proba(tiny_data, idx))
    # another loss or weight: refused, naming the setting
    with pytest.raises(InputError, match="embedding_loss"):
        _clf(embedding_loss="fisher", embedding_weight=0.3, epochs=3, run_dir=run, resume=True).fit(tiny_data, idx)
    with pytest.raises(InputError, match="embedding_weight"):
        _clf(embedding_loss="supcon", embedding_weight=0.4, epochs=3, run_dir=run, resume=True).fit(tiny_data, idx)


def test_a_checkpoint_from_before_the_option_resumes_as_cross_entropy_only(tiny_data, tmp_path):
    idx = np.arange(len(tiny_data))
    run = tmp_path / "old"
    _clf(run_dir=run).fit(tiny_data, idx)
    cfg = json.loads((run / "config.json").read_text())
    for k in ("embedding_loss", "embedding_weight", "embedding_loss_text"):
        del cfg[k]
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="embedding_loss"):
        _clf(embedding_loss="fisher", epochs=2, run_dir=run, resume=True).fit(tiny_data, idx)
    assert len(_clf(epochs=2, run_dir=run, resume=True).fit(tiny_data, idx).history_) == 2


# ---------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory):
    return write_cohort(blob_cohort(8, 5, seed=11), tmp_path_factory.mktemp("emb"))


def test_cli_options_and_bad_values(tiny_manifest, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli_main(["train", str(tiny_manifest), "--out", str(run), "--epochs", "1", "--batch-size", "16",
                     "--threads", "2", "--no-progress", "--min-samples-per-epoch", "0",
                     "--embedding-loss", "fisher", "--embedding-weight", "0.25"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["embedding_loss"], cfg["embedding_weight"]) == ("fisher", 0.25)
    capsys.readouterr()
    assert cli_main(["train", str(tiny_manifest), "--out", str(tmp_path / "w"), "--embedding-loss", "supcon",
                     "--embedding-weight", "-1"]) == 2
    assert not (tmp_path / "w").exists()
    assert cli_main(["bench", "model", "--auc", str(tiny_manifest), "--embedding-loss", "none,triplet"]) == 2
    assert cli_main(["bench", "model", "--auc", str(tiny_manifest), "--deep-baselines", "knn"]) == 2
    assert cli_main(["bench", "model", "--deep-baselines", "svm"]) == 2  # hold-out mode only
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "--embedding-weight" in err and "--embedding-loss" in err and "--deep-baselines" in err
    with pytest.raises(SystemExit):
        cli_main(["train", str(tiny_manifest), "--out", str(tmp_path / "x"), "--embedding-loss", "triplet"])


@pytest.mark.slow
def test_bench_model_reports_deep_feature_baselines_with_and_without_the_loss(tiny_manifest, capsys):
    rc = cli_main(["bench", "model", "--json", "--auc", str(tiny_manifest), "--models", "wang2017", "--epochs", "1",
                   "--min-samples-per-epoch", "0", "--batch-size", "16", "--test-fraction", "0.4",
                   "--embedding-loss", "none,fisher", "--deep-baselines", "svm"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["model"]: r for r in out["results"]}
    assert list(rows) == ["wang2017", "wang2017/svm", "wang2017+fisher", "wang2017+fisher/svm"]
    assert out["settings"]["embedding_losses"] == ["none", "fisher"]
    assert out["settings"]["deep_baselines"] == ["svm"]
    for name in ("wang2017/svm", "wang2017+fisher/svm"):
        r = rows[name]
        assert r["deep_features_of"] == name.split("/")[0] and 0 <= r["p_vs_network"] <= 1
        assert 0 <= r["delong_lo"] <= r["auc"] <= r["delong_hi"] <= 1 and r["best_params"]
    assert rows["wang2017+fisher"]["embedding_loss"] == "fisher"
    # with the loss: the paired test against the same network / classifier without it
    assert 0 <= rows["wang2017+fisher"]["p_vs_no_loss"] <= 1 and 0 <= rows["wang2017+fisher/svm"]["p_vs_no_loss"] <= 1
    assert "p_vs_no_loss" not in rows["wang2017"] and "p_vs_no_loss" not in rows["wang2017/svm"]


@pytest.mark.slow
def test_compare_trains_its_networks_with_the_loss_and_records_it(tiny_manifest, tmp_path, monkeypatch, capsys):
    import petcad.models.estimator as est

    seen = []
    real_train = est.train

    def spy(data, indices, cfg, **kw):
        seen.append((cfg.embedding_loss, cfg.embedding_weight))
        return real_train(data, indices, cfg, **kw)

    monkeypatch.setattr(est, "train", spy)
    out = tmp_path / "cmp"
    assert cli_main(["compare", str(tiny_manifest), "--out", str(out), "--methods", "cnn-rf", "--folds", "2",
                     "--repeats", "1", "--cnn-epochs", "1", "--cnn-samples-per-epoch", "1", "--bootstrap", "20",
                     "--no-progress", "--cnn-embedding-loss", "supcon", "--cnn-embedding-weight", "0.25"]) == 0
    assert seen == [("supcon", 0.25)] * 2  # one network per fold
    settings = json.loads((out / "settings.json").read_text())["settings"]
    assert (settings["cnn_embedding_loss"], settings["cnn_embedding_weight"]) == ("supcon", 0.25)
    capsys.readouterr()
    assert cli_main(["compare", str(tiny_manifest), "--out", str(tmp_path / "bad"), "--methods", "cnn-rf",
                     "--cnn-embedding-loss", "fisher", "--cnn-embedding-weight", "0"]) == 2
    assert "--cnn-embedding-weight" in capsys.readouterr().err and not (tmp_path / "bad").exists()
