"""``petcad bench features``: milliseconds per lesion for delineation + the 13 diagnostic features.

Patients are simulated in memory (``petcad.phantom.simulate_patient``, default preset), so
the figure is the feature code alone, without file reading. Every lesion is delineated and
featurised ``--repeat`` times (passes over all lesions); the figures are the medians over the
passes of the wall-clock time per lesion and of this process's CPU time per lesion (which a
busy machine inflates much less), with delineation and features also timed apart, and the load
average. With ``--ibsi N`` the MIRP IBSI features (PET + CT) of the first N lesions are timed too.
"""

from __future__ import annotations

HELP = "time lesion delineation and diagnostic features (ms per lesion), optionally IBSI features"


def add_arguments(parser) -> None:
    parser.add_argument("--patients", type=int, default=4, help="simulated patients (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument("--method", choices=("auto", "mask", "suv", "fraction"), default="auto",
                        help="delineation method (default auto)")
    parser.add_argument("--ibsi", type=int, default=0, help="also time MIRP IBSI features on this many lesions")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over all lesions (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _timed_pass(pairs, settings) -> tuple[float, float, float, float]:
    """One pass over ``pairs``: (wall s, CPU s, CPU s in delineation, CPU s in the features)."""
    import time

    from petcad.features.delineation import delineate
    from petcad.features.diagnostic import features_from_delineation

    t0, c0 = time.perf_counter(), time.process_time()
    c_del = c_feat = 0.0
    for s, les in pairs:
        a = time.process_time()
        d = delineate(s, les, settings)
        b = time.process_time()
        features_from_delineation(d, les.lesion_id, settings)
        c_del += b - a
        c_feat += time.process_time() - b
    return time.perf_counter() - t0, time.process_time() - c0, c_del, c_feat


def run(args) -> int:
    import json
    import os
    import time
    import warnings

    import numpy as np

    from petcad.errors import InputError
    from petcad.features.delineation import DelineationSettings, delineate
    from petcad.features.diagnostic import features_from_delineation
    from petcad.phantom.cohort import patient_seeds, simulate_patient
    from petcad.study import Cohort, Lesion, Study

    if args.patients < 1:
        raise InputError("--patients", "must be at least 1")
    if args.repeat < 1:
        raise InputError("--repeat", "must be at least 1")
    load0 = [round(v, 2) for v in os.getloadavg()]
    studies = []
    for number, ss in enumerate(patient_seeds(args.seed, args.patients), start=1):
        t = simulate_patient(ss, "default", number)
        lesions = [Lesion(les.lesion_id, les.center_mm, les.label, t.patient_id, mask=les.mask) for les in t.lesions]
        studies.append(Study(t.patient_id, t.ct, t.pet, lesions))
    cohort = Cohort(studies)
    settings = DelineationSettings(method=args.method)
    pairs = list(cohort.iter_lesions())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s, les in pairs[:2]:  # warm-up
            features_from_delineation(delineate(s, les, settings), les.lesion_id, settings)
        passes = [_timed_pass(pairs, settings) for _ in range(args.repeat)]
    n = len(pairs)

    def med(i: int) -> float:
        return round(1e3 * float(np.median([p[i] for p in passes])) / n, 3)

    out = {"lesions": n, "method": args.method, "repeat": args.repeat, "diagnostic_ms_per_lesion": med(0),
           "diagnostic_cpu_ms_per_lesion": med(1), "delineation_cpu_ms_per_lesion": med(2),
           "features_cpu_ms_per_lesion": med(3), "target_ms_per_lesion": 10.0, "cpu_count": os.cpu_count(),
           "load_average_start": load0, "load_average_end": [round(v, 2) for v in os.getloadavg()]}
    if args.ibsi > 0:
        from petcad.features.ibsi import cohort_ibsi_features

        sub = Cohort([Study(s.patient_id, s.ct, s.pet, [les]) for s, les in pairs[: args.ibsi]])
        t0 = time.perf_counter()
        cohort_ibsi_features(sub, settings=settings)
        out["ibsi_lesions"] = len(sub.studies)
        out["ibsi_s_per_lesion"] = (time.perf_counter() - t0) / len(sub.studies)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}")
        print(f"(machine: {out['cpu_count']} CPUs, load average {load0[0]} at start; above the CPU count the wall-clock "
              "figure is inflated by other processes, the CPU-time figures much less)")
    return 0
