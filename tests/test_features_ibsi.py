"""IBSI compliance of the MIRP-based texture features on the IBSI 1 digital phantom."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from conftest import require_module

require_module("mirp")

CHECKED_FAMILIES = {
    "Morphology", "Statistics", "Intensity histogram", "Intensity volume histogram",
    "Co-occurrence matrix (3D, averaged)", "Run length matrix (3D, averaged)", "Size zone matrix (3D)",
    "Distance zone matrix (3D)", "Neighbourhood grey tone difference matrix (3D)",
    "Neighbouring grey level dependence matrix (3D)",
}


@pytest.mark.slow
@pytest.mark.data
def test_digital_phantom_within_tolerance(test_data):
    from petcad.features.ibsi import check_digital_phantom

    rows = check_digital_phantom(test_data / "ibsi_digital_phantom")
    bad = [r for r in rows if not r["ok"]]
    assert not bad, bad
    fam = Counter(r["family"] for r in rows)
    assert set(fam) == CHECKED_FAMILIES, fam
    assert fam["Co-occurrence matrix (3D, averaged)"] == 25 and fam["Statistics"] == 18
    assert len(rows) >= 160


def test_significant_digit_rounding():
    from petcad.features.ibsi import _sig_round

    assert _sig_round(1494.6, "1490") == 1490
    assert _sig_round(0.50312, "0.503") == 0.503
    assert _sig_round(-0.3551, "-0.355") == -0.355
    assert _sig_round(567.0, "567") == 567
    assert _sig_round(2.1467, "2.15") == 2.15


def test_cohort_ibsi_features_one_lesion():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_features_diagnostic import make_study

    from petcad.features.ibsi import cohort_ibsi_features
    from petcad.study import Cohort

    study, _ = make_study(mask="true")
    names, X = cohort_ibsi_features(Cohort([study]))
    assert X.shape == (1, len(names)) and len(names) > 100
    assert any(n.startswith("pet_cm_") for n in names) and any(n.startswith("ct_szm_") for n in names)
    # a uniform 40 HU lesion: CT statistics mean is 40 HU, PET max is 6 SUV
    f = dict(zip(names, X[0]))
    assert f["ct_stat_mean"] == pytest.approx(40.0)
    assert f["pet_stat_max"] == pytest.approx(6.0)
