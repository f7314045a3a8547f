"""Batch runs: shards partition a cohort, finished studies are skipped, failures are collected, Dask = in-process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from petcad.batch import StudyTask, in_shard, merge_parts, parse_shard, part_path, run_tasks
from petcad.batch.shard import Shard
from petcad.errors import InputError
from petcad.io.atomic import write_text

KEYS = [f"PET-{i:04d}" for i in range(200)]


def test_shards_partition_the_cohort_evenly_and_stably():
    n = 7
    owners = {k: [i for i in range(1, n + 1) if in_shard(k, Shard(i, n))] for k in KEYS}
    assert all(len(v) == 1 for v in owners.values())  # every study in exactly one shard
    sizes = [sum(v == [i] for v in owners.values()) for i in range(1, n + 1)]
    assert min(sizes) >= 15 and max(sizes) <= 45, sizes  # 200 / 7 = 28.6 expected
    # stable: a study's shard depends on its key alone (the order and the other studies play no part)
    assert [in_shard("PET-0003", Shard(i, n)) for i in range(1, n + 1)] == [i == owners["PET-0003"][0]
                                                                           for i in range(1, n + 1)]
    assert all(in_shard(k, Shard()) for k in KEYS)


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "1/2/3"])
def test_bad_shard_is_an_input_error(text):
    with pytest.raises(InputError, match="--shard"):
        parse_shard(text)


def test_parse_shard():
    assert parse_shard("3/10") == Shard(3, 10) and parse_shard(None) == Shard(1, 1)


def _write_square(task: StudyTask) -> dict:
    """A study task: fails on bad input, else writes its output file."""
    value = int(task.payload)
    if value < 0:
        raise InputError(f"study {task.key}", "negative input")
    write_text(task.outputs[0], f"{value * value}\n")
    return {"square": value * value}


def _tasks(tmp: Path, values) -> list[StudyTask]:
    return [StudyTask(f"S{i}", (tmp / f"S{i}.txt",), v) for i, v in enumerate(values)]


def test_resume_skips_finished_studies(tmp_path):
    tasks = _tasks(tmp_path, range(6))
    first = run_tasks(_write_square, tasks[:4])
    assert sorted(first.done) == ["S0", "S1", "S2", "S3"] and first.results["S3"] == {"square": 9}
    (tmp_path / "S1.txt").unlink()  # as if that study's job had been killed
    again = run_tasks(_write_square, tasks)
    assert sorted(again.done) == ["S1", "S4", "S5"] and sorted(again.skipped) == ["S0", "S2", "S3"]
    assert (tmp_path / "S5.txt").read_text() == "25\n"


def test_shards_together_do_every_study_once(tmp_path):
    tasks = _tasks(tmp_path, range(30))
    done = []
    for i in (1, 2, 3):
        r = run_tasks(_write_square, tasks, shard=Shard(i, 3))
        assert r.not_in_shard == 30 - len(r.done)
        done += r.done
    assert sorted(done) == sorted(t.key for t in tasks)


def test_failed_study_does_not_stop_the_others(tmp_path):
    tasks = _tasks(tmp_path, [1, -1, 3])
    with pytest.raises(InputError, match=r"1 of 3 studies failed.*study S1.*negative input"):
        run_tasks(_write_square, tasks)
    assert (tmp_path / "S0.txt").exists() and (tmp_path / "S2.txt").exists()
    assert not (tmp_path / "S1.txt").exists()
    with pytest.raises(InputError, match="appears twice"):
        run_tasks(_write_square, [tasks[0], tasks[0]])


def test_parts_merge_only_when_complete(tmp_path):
    out = tmp_path / "features.csv"
    keys = ["b", "a/c", "a_c"]
    assert len({part_path(out, k) for k in keys}) == 3  # distinct keys keep distinct part files
    write_text(part_path(out, "b"), "id,v\nb1,1\nb2,2\n")
    write_text(part_path(out, "a/c"), "id,v\n")  # a study without rows
    assert merge_parts(out, keys) == 1 and not out.exists()
    write_text(part_path(out, "a_c"), "id,v\nx,9\n")
    assert merge_parts(out, keys) == 0
    assert out.read_text() == "id,v\nb1,1\nb2,2\nx,9\n"
    write_text(part_path(out, "a_c"), "id,w\nx,9\n")  # another column: the union, cells left empty
    assert merge_parts(out, keys) == 0
    assert out.read_text() == "id,v,w\nb1,1,\nb2,2,\nx,,9\n"


def test_parts_made_with_other_settings_are_refused(tmp_path):
    from petcad.batch import check_parts_settings

    out = tmp_path / "f.csv"
    check_parts_settings(out, {"set": "diagnostic"})
    check_parts_settings(out, {"set": "diagnostic"})  # the same run again: fine
    with pytest.raises(InputError, match="other settings"):
        check_parts_settings(out, {"set": "all"})


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_outputs(tmp_path):
    pytest.importorskip("distributed")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    try:
        a, b = tmp_path / "a", tmp_path / "b"
        local = run_tasks(_write_square, _tasks(a, [1, 2, 3, 4]))
        dask = run_tasks(_write_square, _tasks(b, [1, 2, 3, 4]), scheduler="local:2")
        with pytest.raises(InputError, match="study S1.*negative input"):  # errors come back from the workers
            run_tasks(_write_square, _tasks(tmp_path / "c", [1, -2]), scheduler="local:2")
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert dask.backend.startswith("dask") and sorted(dask.done) == sorted(local.done)
    assert dask.results == local.results
    assert all((a / f).read_text() == (b / f).read_text() for f in ("S0.txt", "S3.txt"))
    assert (tmp_path / "c" / "S0.txt").exists()


def test_unreachable_scheduler_is_an_input_error(tmp_path):
    pytest.importorskip("distributed")
    with pytest.raises(InputError, match="--scheduler"):
        run_tasks(_write_square, _tasks(tmp_path, [1]), scheduler="local:zero")
