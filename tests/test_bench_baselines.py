"""``petcad bench model --auc MANIFEST --baselines``: the classical methods on the networks' hold-out,
in the table's mode (images only / with masks; issue 14: every row of one table sees the same information)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from petcad.cli import main as cli_main
from test_compare_modes import _without_masks

pytest.importorskip("torch")


def _bench(manifest, *extra: str) -> list[str]:
    return ["bench", "model", "--auc", str(manifest), "--seed", "0", "--test-fraction", "0.3", *extra]


@pytest.fixture(scope="module")
def by_hand(small_cohort) -> dict[str, dict[str, float]]:
    """Per delineation rule (fraction: images only, mask: with masks), the AUC of the same split and
    classifiers fitted here on features computed here."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupShuffleSplit

    from petcad.evaluation.classifiers import TunedClassifier
    from petcad.features.delineation import DelineationSettings
    from petcad.features.diagnostic import cohort_features
    from petcad.io.manifest import load_cohort

    cohort = load_cohort(small_cohort, allowed_labels=None)
    y = np.array([les.label == "malignant" for _, les in cohort.iter_lesions()], dtype=int)
    groups = np.asarray(cohort.patient_ids())
    out = {}
    for rule in ("fraction", "mask"):
        _, X, sources = cohort_features(cohort, DelineationSettings(method=rule), return_sources=True)
        assert ("mask" in sources) == (rule == "mask")
        X = np.where(np.isfinite(X), X, np.nan)
        tr, te = next(GroupShuffleSplit(n_splits=1, test_size=0.3, random_state=0).split(X, y, groups))
        out[rule] = {}
        for m in ("rf", "svm"):
            q = TunedClassifier(m, inner_splits=3, seed=0).fit(X[tr], y[tr], groups[tr]).predict_proba(X[te])[:, 1]
            out[rule][m] = round(float(roc_auc_score(y[te], q)), 4)
    # the modes' features give other figures on this cohort, so the rows can tell the modes apart
    assert out["fraction"] != out["mask"]
    return out


@pytest.mark.parametrize("mode, option, rule", [("images", [], "fraction"), ("masks", ["--with-mask"], "mask")])
def test_baseline_rows_are_the_classifiers_on_the_same_split_in_the_tables_mode(small_cohort, by_hand, capsys, mode,
                                                                                 option, rule):
    assert cli_main(_bench(small_cohort, "--json", "--models", "none", "--baselines", "rf,svm", *option)) == 0
    out = json.loads(capsys.readouterr().out)
    s = out["settings"]
    assert s["mode"] == mode and s["mode_title"] == {"images": "images only", "masks": "with masks"}[mode]
    assert s["baselines"] == ["rf", "svm"] and s["channels"] == (9 if option else 6)
    assert ("mask" in s["delineation"]) == (mode == "masks")
    rows = {r["model"]: r for r in out["results"]}
    assert list(rows) == ["rf", "svm"]
    assert {m: r["auc"] for m, r in rows.items()} == by_hand[rule]
    for r in rows.values():
        assert r["mode"] == mode and r["features"] == "13 diagnostic features" and r["p_vs_networks"] == {}
        assert 0 <= r["delong_lo"] <= r["auc"] <= r["delong_hi"] <= 1 and 0 <= r["bootstrap_lo"] <= r["bootstrap_hi"] <= 1


def test_the_table_names_its_mode(small_cohort, capsys):
    assert cli_main(_bench(small_cohort, "--models", "", "--baselines", "rf")) == 0
    text = capsys.readouterr().out
    assert "table: images only: classical features from petcad's delineation of the images" in text
    assert "\nrf " in text and "random forest on the 13 diagnostic features" in text
    assert cli_main(_bench(small_cohort, "--models", "none", "--baselines", "rf", "--with-masks")) == 0
    assert "table: with masks: classical features from the supplied lesion masks" in capsys.readouterr().out


class _Stop(Exception):
    pass


def test_hybrid_network_gets_the_baselines_features(small_cohort, monkeypatch):
    """The hybrid network's 13 features are the images-only ones in the default table (not the masks')."""
    from petcad.evaluation.compare import CompareSettings, prepare_lesions
    from petcad.io.manifest import load_cohort
    from petcad.models.estimator import CNNClassifier

    seen = []

    def spy(self, data, indices=None, log=None):
        seen.append((data.features, data.n_channels))
        raise _Stop

    monkeypatch.setattr(CNNClassifier, "fit", spy)
    with pytest.raises(_Stop):
        cli_main(_bench(small_cohort, "--models", "hybrid", "--baselines", "rf"))
    cohort = load_cohort(small_cohort, allowed_labels=None)
    images = prepare_lesions(cohort, CompareSettings(mode="images"))[0].diagnostic
    masks = prepare_lesions(cohort, CompareSettings(mode="masks"))[0].diagnostic
    (features, channels), = seen
    assert channels == 6 and not np.allclose(images, masks, equal_nan=True)
    np.testing.assert_array_equal(features, images)


def test_bad_input_is_one_line_and_exit_2(small_cohort, tmp_path, capsys):
    assert cli_main(_bench(small_cohort, "--models", "none")) == 2  # nothing to measure
    assert cli_main(_bench(small_cohort, "--models", "none", "--baselines", "knn")) == 2
    assert cli_main(_bench(small_cohort, "--models", "none", "--baselines", "rf,rf")) == 2
    assert cli_main(["bench", "model", "--baselines", "rf"]) == 2  # hold-out mode only
    assert cli_main(["bench", "model", "--models", "none"]) == 2  # no network to time
    bare = _without_masks(Path(small_cohort), tmp_path / "nomask.csv")  # with masks, on a manifest without them
    capsys.readouterr()
    assert cli_main(_bench(bare, "--models", "none", "--baselines", "rf", "--with-mask")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no mask" in err and "Traceback" not in err
