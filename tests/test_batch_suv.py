"""``petcad suv ROOT --batch``: every PET series of a tree, resumable, sharded, and on a local Dask cluster."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from petcad.cli import main

DROS = ["DRO_0_0", "DRO_1_0", "DRO_2_0", "DRO_2_4", "DRO_3_1", "DRO_4_2"]


@pytest.fixture(scope="module")
def dro_root(test_data, tmp_path_factory):
    """The six shared DRO PET series in one tree (PT folders only)."""
    root = tmp_path_factory.mktemp("dro_tree")
    for d in DROS:
        shutil.copytree(test_data / "suv_dro" / d / "PT", root / d / "PT")
    return root


def _in_mask(path, mask):
    from petcad.io.volumes import read_image

    v = read_image(path)
    m = read_image(mask, modality="mask")
    inside = v.array[m.array > 0]
    return round(float(inside.min()), 2), round(float(np.median(inside)), 2), round(float(inside.max()), 2)


@pytest.mark.data
def test_batch_suv_every_series_resume_and_shards(dro_root, test_data, tmp_path, capsys):
    out = tmp_path / "suv"
    assert main(["suv", str(dro_root), "--batch", "--out", str(out), "--shard", "1/3"]) == 0
    first = {p.parent.parent.name for p in out.rglob("audit.json")}
    assert 0 < len(first) < 6  # the other shards' studies are not done yet
    done = []
    for k in (2, 3):
        assert main(["suv", str(dro_root), "--batch", "--out", str(out), "--shard", f"{k}/3", "--json"]) == 0
        done += json.loads(capsys.readouterr().out)["done"]
    assert sorted(k.split("/")[0] for k in done) == sorted(set(DROS) - first)
    mask = test_data / "suv_dro" / "DRO_0_0" / "mask" / "DRO_mask.nii.gz"
    for d in DROS:
        audit = json.loads((out / d / "PT" / "audit.json").read_text())
        assert audit["study"] == f"{d}/PT"
        assert _in_mask(out / d / "PT" / "suv.nii.gz", mask) == (0.2, 1.0, 4.0), d
    # resume: nothing left to do; a deleted output is redone alone
    (out / "DRO_2_4" / "PT" / "audit.json").unlink()
    assert main(["suv", str(dro_root), "--batch", "--out", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["done"] == ["DRO_2_4/PT"] and len(rep["skipped"]) == 5


@pytest.mark.data
@pytest.mark.slow
def test_batch_suv_on_dask_equals_in_process(dro_root, tmp_path):
    pytest.importorskip("distributed")
    from petcad.io.volumes import read_image

    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["suv", str(dro_root), "--batch", "--out", str(a)]) == 0
    assert main(["suv", str(dro_root), "--batch", "--out", str(b), "--scheduler", "local:2"]) == 0
    for d in DROS:
        np.testing.assert_array_equal(read_image(a / d / "PT" / "suv.nii.gz").array,
                                      read_image(b / d / "PT" / "suv.nii.gz").array)
        ja, jb = (json.loads((x / d / "PT" / "audit.json").read_text()) for x in (a, b))
        assert ja["factor"] == jb["factor"]


@pytest.mark.data
def test_batch_suv_bad_input(dro_root, test_data, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["suv", str(dro_root), "--batch", "--out", str(out), "--weight", "70"]) == 2
    assert "--weight" in capsys.readouterr().err and not out.exists()
    assert main(["suv", str(dro_root / "DRO_0_0" / "PT"), "--out", str(tmp_path / "x.nii.gz"), "--shard", "1/2"]) == 2
    assert "--shard: only with --batch" in capsys.readouterr().err
    assert main(["suv", str(test_data / "suv_dro" / "DRO_0_0" / "RS"), "--batch", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no PET series" in err and len(err.strip().splitlines()) == 1
