"""The FROC of evaluate-segmentation against a brute-force count."""

from __future__ import annotations

import itertools

import numpy as np

from petcad.segment.metrics import FROC_RATES, froc


def _studies(rng, n_studies=4):
    out = []
    for _ in range(n_studies):
        dets = [{"score": float(rng.choice([0.2, 0.5, 0.7, 0.9, rng.random()])), "true_positive": bool(rng.random() < 0.4)}
                for _ in range(rng.integers(0, 8))]
        tp_scores = [d["score"] for d in dets if d["true_positive"]]
        lesions = []
        for _ in range(rng.integers(1, 5)):
            hits = [s for s in tp_scores if rng.random() < 0.5]
            lesions.append({"found": bool(hits), "best_score": max(hits) if hits else None})
        out.append({"detections": dets, "lesions": lesions})
    return out


def _brute(studies, t):
    """(false positives per study, sensitivity) keeping the detections scoring >= t."""
    fp = sum(1 for s in studies for d in s["detections"] if d["score"] >= t and not d["true_positive"])
    les = [f for s in studies for f in s["lesions"]]
    found = sum(1 for f in les if f["best_score"] is not None and f["best_score"] >= t)
    return fp / len(studies), found / len(les)


def test_froc_points_are_the_best_brute_force_operating_points():
    rng = np.random.default_rng(3)
    for _ in range(30):
        studies = _studies(rng)
        scores = sorted({d["score"] for s in studies for d in s["detections"]} | {np.inf})
        curve = [(t, *_brute(studies, t)) for t in scores]
        res = froc(studies)
        assert [p["fp_per_study"] for p in res["points"]] == list(FROC_RATES)
        for p in res["points"]:
            ok = [c for c in curve if c[1] <= p["fp_per_study"]]
            assert p["sensitivity"] == max(c[2] for c in ok)
            if p["min_score"] is not None:  # the printed threshold reproduces the operating point
                assert _brute(studies, p["min_score"]) == (p["fp_per_study_at_threshold"], p["sensitivity"])
                assert p["fp_per_study_at_threshold"] <= p["fp_per_study"]
        assert res["cpm"] == np.mean([p["sensitivity"] for p in res["points"]])
        sens = [p["sensitivity"] for p in res["points"]]
        assert all(a <= b for a, b in itertools.pairwise(sens))


def test_froc_by_hand():
    studies = [
        {"detections": [{"score": 0.9, "true_positive": True}, {"score": 0.8, "true_positive": False},
                        {"score": 0.3, "true_positive": False}],
         "lesions": [{"found": True, "best_score": 0.9}, {"found": False, "best_score": None}]},
        {"detections": [{"score": 0.6, "true_positive": True}, {"score": 0.7, "true_positive": False}],
         "lesions": [{"found": True, "best_score": 0.6}]},
    ]
    pts = {p["fp_per_study"]: p for p in froc(studies)["points"]}
    # threshold 0.9: 1 of 3 found, 0 FP; 0.8: 1 FP in 2 studies; 0.7: 2 FP -> 1 per study; 0.6: 2 of 3 found
    assert pts[0.125]["sensitivity"] == 1 / 3 and pts[0.125]["min_score"] == 0.9
    assert pts[0.5]["sensitivity"] == 1 / 3
    assert pts[1.0]["sensitivity"] == 2 / 3 and pts[1.0]["min_score"] == 0.6
    assert pts[8.0]["sensitivity"] == 2 / 3 and pts[8.0]["fp_per_study_at_threshold"] == 1.0
