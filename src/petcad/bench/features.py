"""``petcad bench features``: milliseconds per lesion for delineation + the 13 diagnostic features.

Patients are simulated in memory (``petcad.phantom.simulate_patient``, default preset), so
the figure is the feature code alone, without file reading. With ``--ibsi N`` the MIRP IBSI
features (PET + CT) of the first N lesions are timed too.
"""

from __future__ import annotations

HELP = "time lesion delineation and diagnostic features (ms per lesion), optionally IBSI features"


def add_arguments(parser) -> None:
    parser.add_argument("--patients", type=int, default=4, help="simulated patients (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument("--method", choices=("auto", "mask", "suv", "fraction"), default="auto",
                        help="delineation method (default auto)")
    parser.add_argument("--ibsi", type=int, default=0, help="also time MIRP IBSI features on this many lesions")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    import json
    import time
    import warnings

    from petcad.errors import InputError
    from petcad.features.delineation import DelineationSettings, delineate
    from petcad.features.diagnostic import features_from_delineation
    from petcad.phantom.cohort import patient_seeds, simulate_patient
    from petcad.study import Cohort, Lesion, Study

    if args.patients < 1:
        raise InputError("--patients", "must be at least 1")
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
        t0 = time.perf_counter()
        for s, les in pairs:
            features_from_delineation(delineate(s, les, settings), les.lesion_id, settings)
        dt = time.perf_counter() - t0
    out = {"lesions": len(pairs), "method": args.method, "diagnostic_ms_per_lesion": 1e3 * dt / len(pairs)}
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
    return 0
