"""The comparison's two modes (images only / with masks), reproducibility, the demo's README section,
and the physician-facing parts of the report (issue 14 items 1, 3 and 6)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from petcad.cli import main
from petcad.errors import InputError
from petcad.evaluation.compare import CompareSettings, compare
from petcad.features.delineation import DelineationSettings


# --------------------------------------------------------------------------- settings (no data)
def test_mode_resolves_the_delineation():
    s = CompareSettings(methods=("rf",))
    assert s.mode == "images" and s.delineation.method == "fraction"  # auto never reads a supplied mask
    s = CompareSettings(methods=("rf",), mode="masks")
    assert s.delineation.method == "mask"
    s = CompareSettings(methods=("rf",), delineation=DelineationSettings(method="suv"))
    assert s.delineation.method == "suv" and "SUV >= 2.5" in s.as_dict()["mode_description"]
    d = s.as_dict()
    assert d["mode"] == "images" and d["mode_title"] == "images only"
    with pytest.raises(InputError, match="--with-masks"):
        CompareSettings(methods=("rf",), delineation=DelineationSettings(method="mask"))
    with pytest.raises(InputError, match="--delineation"):
        CompareSettings(methods=("rf",), mode="masks", delineation=DelineationSettings(method="fraction"))
    with pytest.raises(InputError, match="unknown mode"):
        CompareSettings(methods=("rf",), mode="both")


def test_default_methods_are_the_original_table():
    import argparse

    from petcad.cli import compare as cli_compare

    p = argparse.ArgumentParser()
    cli_compare.add_arguments(p)
    args = p.parse_args(["m.csv", "--out", "o"])
    s = cli_compare.settings_from_args(args)
    assert s.methods == ("rf", "svm", "adaboost", "mlp", "cnn") == CompareSettings().methods
    assert s.mode == "images"
    assert cli_compare.settings_from_args(p.parse_args(["m.csv", "--out", "o", "--with-masks"])).mode == "masks"


# --------------------------------------------------------------------------- the demo's README section
def test_readme_section_check(tmp_path):
    from petcad.cli.demo import BEGIN, END, compare_readme, readme_section

    section = "**Images only: x**\n\n```\nmethod AUC\nrf 0.9\n```\n"
    readme = tmp_path / "README.md"
    readme.write_text(f"# t\n\ntext\n\n{BEGIN}\n{section}{END}\n\nmore\n", encoding="utf-8")
    assert readme_section(readme) == section.rstrip("\n")
    assert compare_readme(readme, section) == ""
    diff = compare_readme(readme, section.replace("0.9", "0.8"))
    assert "-rf 0.9" in diff and "+rf 0.8" in diff
    bad = tmp_path / "bad.md"
    bad.write_text(f"{END}\n{BEGIN}\n", encoding="utf-8")
    with pytest.raises(InputError, match="demo-table:begin"):
        readme_section(bad)
    with pytest.raises(InputError, match="not found"):
        readme_section(tmp_path / "none.md")


def test_demo_check_readme_refused_before_the_run(tmp_path, capsys):
    rc = main(["demo", "--out", str(tmp_path / "d"), "--check-readme", str(tmp_path / "nope.md"), "--no-progress"])
    assert rc == 2 and "README not found" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()  # nothing generated
    rc = main(["demo", "--out", str(tmp_path / "d"), "--modes", "images,other", "--no-progress"])
    assert rc == 2 and "--modes" in capsys.readouterr().err


# --------------------------------------------------------------------------- modes on a real cohort
@pytest.fixture(scope="module")
def cohort(small_cohort):
    from petcad.io.manifest import load_cohort

    return load_cohort(small_cohort, allowed_labels=None)


TINY = dict(n_splits=2, n_repeats=1, cnn_epochs=1, cnn_samples_per_epoch=64, n_boot=50, n_jobs=1, inner_splits=2)


@pytest.fixture
def channel_spy(monkeypatch):
    """Records the number of input channels of every CNN the comparison trains."""
    from petcad.models.estimator import CNNClassifier

    seen = []
    fit = CNNClassifier.fit

    def spy(self, data, indices=None, log=None):
        seen.append(data.n_channels)
        return fit(self, data, indices, log)

    monkeypatch.setattr(CNNClassifier, "fit", spy)
    return seen


@pytest.mark.slow
def test_same_seed_same_predictions_and_images_only(cohort, channel_spy):
    """Reproducible: the same compare (with a CNN) twice gives identical predictions; images only:
    no supplied mask is used for the features, the CNN sees 6 channels."""
    assert any(les.mask is not None for _, les in cohort.iter_lesions())  # the manifest has masks ...
    s = CompareSettings(methods=("rf", "cnn"), **TINY)
    a = compare(cohort, s)
    b = compare(cohort, s)
    for m in s.methods:
        np.testing.assert_array_equal(a.probabilities[m], b.probabilities[m], err_msg=m)
        np.testing.assert_array_equal(a.predictions[m], b.predictions[m], err_msg=m)
    for ra, rb in zip(a.table, b.table):  # the same figures (NaN where undefined, e.g. p of the best)
        assert ra.keys() == rb.keys()
        np.testing.assert_array_equal([ra[k] for k in ra if k != "method"], [rb[k] for k in rb if k != "method"])
    assert "mask" not in set(a.lesions.sources)  # ... and images only does not use them
    assert a.summary["mode"] == "images only"
    assert channel_spy and set(channel_spy) == {6}
    assert a.machine["threads"] == 1 and (a.machine["device"] == "cpu" or a.machine["device"].startswith("cuda"))
    # a different seed trains another network (the test can fail)
    c = compare(cohort, CompareSettings(methods=("cnn",), seed=1, **TINY))
    assert not np.array_equal(a.probabilities["cnn"], c.probabilities["cnn"])


@pytest.mark.slow
def test_with_masks_uses_the_masks_and_9_channels(cohort, channel_spy):
    r = compare(cohort, CompareSettings(methods=("rf", "cnn"), mode="masks", **TINY))
    assert set(r.lesions.sources) == {"mask"}
    assert set(channel_spy) == {9}
    assert r.summary["mode"] == "with masks"


def _without_masks(src: Path, dst: Path) -> Path:
    with open(src, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    keep = [k for k in rows[0] if k not in ("mask", "mask_label")]
    for r in rows:
        for k in ("ct", "pet"):
            r[k] = str((src.parent / r[k]).resolve())
    with open(dst, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=keep, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return dst


def test_with_masks_needs_masks(small_cohort, tmp_path, capsys):
    man = _without_masks(Path(small_cohort), tmp_path / "nomask.csv")
    rc = main(["compare", str(man), "--out", str(tmp_path / "o"), "--methods", "rf", "--folds", "2", "--repeats", "1",
               "--with-masks", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "--with-masks" in err and "have no mask" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "table.csv").exists()


def test_bench_phantom_features_in_both_modes():
    """bench phantom measures one simulation in both modes; the calibration figure's (masks) is the default."""
    from petcad.bench.phantom import CALIBRATION_MODE, phantom_feature_sets, phantom_features

    names, X, y, g = phantom_feature_sets(1, seed=3, preset="default", workers=1)
    assert set(X) == {"masks", "images"} and X["masks"].shape == X["images"].shape == (len(y), len(names))
    assert not np.allclose(X["masks"], X["images"], equal_nan=True)  # another delineation, other features
    assert CALIBRATION_MODE == "masks"
    _, Xm, ym, _ = phantom_features(1, seed=3, preset="default", workers=1)
    np.testing.assert_array_equal(Xm, X["masks"])
    np.testing.assert_array_equal(ym, y)


# --------------------------------------------------------------------------- the report a physician reads
def test_report_names_mode_metrics_intervals_and_machine(small_cohort, tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["compare", str(small_cohort), "--out", str(out), "--methods", "rf,svm", "--folds", "2", "--repeats",
               "1", "--bootstrap", "50", "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "estimated run time: about" in printed and "an estimate" in printed
    assert printed.index("estimated run time") < printed.index("method ")  # printed before the table
    assert "Images only:" in printed and "TPR = sensitivity" in printed
    assert "has lesion masks; this table does not use them" in printed
    meta = json.loads((out / "settings.json").read_text(encoding="utf-8"))
    assert meta["mode"] == "images" and meta["title"].startswith("Images only")
    assert meta["settings"]["delineation"]["method"] == "fraction"
    assert meta["machine"]["threads"] == 2 and meta["machine"]["device"] == "cpu"
    assert meta["estimated_s"] > 0
    assert (out / "table.md").read_text(encoding="utf-8").startswith("**Images only:")
    html = (out / "report.html").read_text(encoding="utf-8")
    for text in ("sensitivity TPR", "specificity SPC", "AUC (95 % CI DeLong)", "AUC 95 % CI (patient bootstrap)",
                 "How to read this table", "patient bootstrap resamples whole", "Machine (threads and device)",
                 "outer folds", "lesions per label"):
        assert text in html, text
    assert '{"' not in html  # settings and data as tables, not JSON


def test_report_zh_names_the_mode_and_how_to_read(small_cohort, tmp_path):
    out = tmp_path / "zh"
    rc = main(["compare", str(small_cohort), "--out", str(out), "--methods", "rf", "--folds", "2", "--repeats", "1",
               "--bootstrap", "50", "--lang", "zh", "--no-progress", "--with-masks"])
    assert rc == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    for text in ("使用掩膜", "如何阅读此表", "敏感度 TPR", "特异度 SPC", "DeLong", "按患者 bootstrap", "外层折数"):
        assert text in html, text
    assert json.loads((out / "settings.json").read_text(encoding="utf-8"))["mode"] == "masks"


def test_calibration_legend_is_outside_the_axes(monkeypatch):
    """The calibration figure's legend sits below the axes (off the curves)."""
    from types import SimpleNamespace

    from petcad.evaluation import report as R

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    P = {m: np.clip(y * 0.5 + rng.uniform(0, 0.5, (1, 60)), 0, 1) for m in ("rf", "svm", "adaboost", "mlp", "cnn")}
    res = SimpleNamespace(table=[{"method": m, "brier": 0.2} for m in P], probabilities=P,
                          lesions=SimpleNamespace(y=y))
    captured = {}
    orig = R._figure_bytes

    def grab(fig):
        ax = fig.axes[0]
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        captured["legend"] = ax.get_legend().get_window_extent(renderer)
        captured["axes"] = ax.xaxis.get_tightbbox(renderer)  # the x axis with its tick labels and its label
        return orig(fig)

    monkeypatch.setattr(R, "_figure_bytes", grab)
    png = R.calibration_png(res)
    assert png[:4] == b"\x89PNG"
    assert captured["legend"].y1 <= captured["axes"].y0  # entirely below the plot and its x axis labels


def test_estimate_skips_a_method_the_fold_cannot_fit():
    """Too few lesions of a class for the SVM's inner calibration: the estimate must not crash (the run
    itself then stops with one clear line)."""
    from types import SimpleNamespace

    from petcad.evaluation.estimate import classical_costs

    rng = np.random.default_rng(0)
    y = np.array([0] * 9 + [1])
    table = SimpleNamespace(X=rng.normal(size=(10, 3)), y=y)
    fold = SimpleNamespace(train=np.arange(10))
    costs = classical_costs(table, fold, ["rf", "svm"], seed=0)
    assert costs["svm"] == 0.0 and costs["rf"] > 0.0
