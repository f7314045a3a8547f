"""petcad bench features: the per-lesion times it reports, and bad options."""

from __future__ import annotations

import json

from petcad.cli import main


def test_bench_features_json(capsys):
    assert main(["bench", "features", "--json", "--patients", "1", "--repeat", "2"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["lesions"] >= 1 and res["repeat"] == 2
    for key in ("diagnostic_ms_per_lesion", "diagnostic_cpu_ms_per_lesion", "delineation_cpu_ms_per_lesion",
                "features_cpu_ms_per_lesion"):
        assert res[key] > 0, key
    # delineation and features are timed apart inside the same passes
    assert res["delineation_cpu_ms_per_lesion"] + res["features_cpu_ms_per_lesion"] <= res["diagnostic_cpu_ms_per_lesion"] * 1.05 + 0.05
    assert len(res["load_average_start"]) == 3


def test_bench_features_bad_repeat(capsys):
    assert main(["bench", "features", "--repeat", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--repeat" in err[0]
