"""``petcad predict --manifest`` as a cohort run: study by study, sharded, resumable, the same on Dask."""

from __future__ import annotations

import pytest

from petcad.cli import main


@pytest.fixture(scope="module")
def cohort_and_run(tmp_path_factory):
    from petcad.phantom import generate_cohort

    base = tmp_path_factory.mktemp("batch_predict")
    manifest = generate_cohort(base / "cohort", n_patients=4, seed=5, preset="default", fmt="nifti")
    run = base / "run"
    assert main(["train", str(manifest), "--out", str(run), "--epochs", "1", "--batch-size", "16",
                 "--min-samples-per-epoch", "32", "--threads", "1", "--seed", "0"]) == 0
    return manifest, run


def test_shards_resume_and_merge(cohort_and_run, tmp_path, capsys):
    manifest, run = cohort_and_run
    whole, sharded = tmp_path / "whole.csv", tmp_path / "sharded.csv"
    assert main(["predict", "--model", str(run), "--manifest", str(manifest), "--out", str(whole)]) == 0
    for k in (1, 2, 3):
        assert main(["predict", "--model", str(run), "--manifest", str(manifest), "--out", str(sharded),
                     "--shard", f"{k}/3"]) == 0
    assert sharded.read_text() == whole.read_text() and whole.read_text().count("\n") > 4
    capsys.readouterr()
    assert main(["predict", "--model", str(run), "--manifest", str(manifest), "--out", str(sharded)]) == 0
    assert "0 studies processed, 4 already done" in capsys.readouterr().err
    assert main(["predict", "--model", str(run), "--manifest", str(manifest), "--out", str(sharded), "--tta"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert main(["predict", "--model", str(run), "--ct", "a", "--pet", "b", "--at", "1,2,3", "--shard", "1/2"]) == 2
    assert "--shard: only with --manifest" in capsys.readouterr().err


@pytest.mark.slow
def test_dask_equals_in_process(cohort_and_run, tmp_path):
    pytest.importorskip("distributed")
    manifest, run = cohort_and_run
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["predict", "--model", str(run), "--manifest", str(manifest), "--out", str(a)]) == 0
    assert main(["predict", "--model", str(run), "--manifest", str(manifest), "--out", str(b),
                 "--scheduler", "local:2", "--threads", "1"]) == 0
    assert a.read_text() == b.read_text()
