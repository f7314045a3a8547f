"""``petcad features`` as a cohort run: study by study, sharded, resumable, and the same on a Dask cluster."""

from __future__ import annotations

import pytest

from petcad.cli import main


@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory):
    from petcad.phantom import generate_cohort

    return generate_cohort(tmp_path_factory.mktemp("batch_phantom"), n_patients=4, seed=3, preset="default",
                           fmt="nifti")


def test_shards_then_merge_equal_one_run(tiny_cohort, tmp_path, capsys):
    whole, sharded = tmp_path / "whole.csv", tmp_path / "sharded.csv"
    assert main(["features", str(tiny_cohort), "--out", str(whole)]) == 0
    assert "table of all 4 studies written" in capsys.readouterr().out
    for k in (1, 2, 3):
        assert main(["features", str(tiny_cohort), "--out", str(sharded), "--shard", f"{k}/3"]) == 0
        printed = capsys.readouterr().out
        if k < 3:  # the table is written only when every study has its part
            assert ("still to do" in printed) == (not sharded.exists())
    assert sharded.read_text() == whole.read_text()
    # resume: a re-run finds every study done and rewrites the same table
    assert main(["features", str(tiny_cohort), "--out", str(sharded)]) == 0
    assert "0 lesions of 0 studies computed now" in capsys.readouterr().out
    assert sharded.read_text() == whole.read_text()
    # parts made with other settings are never merged with new ones
    assert main(["features", str(tiny_cohort), "--out", str(sharded), "--delineation", "suv"]) == 2
    assert "other settings" in capsys.readouterr().err


@pytest.mark.slow
def test_dask_local_cluster_equals_in_process(tiny_cohort, tmp_path):
    pytest.importorskip("distributed")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["features", str(tiny_cohort), "--out", str(a)]) == 0
    assert main(["features", str(tiny_cohort), "--out", str(b), "--scheduler", "local:2"]) == 0
    assert a.read_text() == b.read_text() and a.read_text().count("\n") > 4
