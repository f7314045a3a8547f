"""``petcad evaluate-segmentation DIR --manifest M``: Dice, lesion-wise detection, autoPET volumes, AUC."""

from __future__ import annotations

NAME = "evaluate-segmentation"
HELP = "evaluate petcad segment outputs against the lesion masks of a manifest"
DESCRIPTION = (
    "For every study of the manifest with an output folder DIR/<patient_id>/: Dice per class, lesion-wise "
    "sensitivity (a lesion is found when at least one of its mask voxels is predicted as a tumour class) and "
    "false positives (predicted lesions touching no true lesion), the autoPET false-positive and false-negative "
    "volumes (18-connected components) and the malignant-vs-benign AUC over found lesions; per study and overall."
)


def add_arguments(parser) -> None:
    parser.add_argument("dir", help="output folder of petcad segment")
    parser.add_argument("--manifest", required=True, help="cohort manifest CSV with a mask for every lesion")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _f(v, fmt="{:.3f}") -> str:
    return "-" if v is None else fmt.format(v)


def run(args) -> int:
    import json

    from petcad.segment.metrics import evaluate_dir

    res = evaluate_dir(args.dir, args.manifest)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    o = res["overall"]
    classes = [c for c in o["dice_mean"] if c != "tumour"]
    head = f"{'study':<12}{'true':>6}{'found':>7}{'FP':>5}{'FP mL':>8}{'FN mL':>8}" + "".join(f"{'Dice ' + c:>16}" for c in classes + ["tumour"])
    print(head)
    print("-" * len(head))
    for s in res["studies"]:
        print(f"{s['patient_id']:<12}{s['n_true']:>6}{s['n_found']:>7}{s['false_positives']:>5}{s['fp_volume_ml']:>8.2f}"
              f"{s['fn_volume_ml']:>8.2f}" + "".join(f"{_f(s['dice'].get(c)):>16}" for c in classes + ["tumour"]))
    print()
    sens = ", ".join(f"{c} {v['found']}/{v['n']}" for c, v in o["sensitivity_by_label"].items())
    print(f"{o['n_studies']} studies: lesion-wise sensitivity {_f(o['sensitivity'])} ({o['n_found']}/{o['n_true']}; {sens}) "
          f"at {_f(o['false_positives_per_study'], '{:.2f}')} false positives per study; "
          f"FP volume {_f(o['fp_volume_ml_per_study'], '{:.2f}')} mL, FN volume {_f(o['fn_volume_ml_per_study'], '{:.2f}')} mL "
          f"per study; mean Dice " + ", ".join(f"{c} {_f(v)}" for c, v in o["dice_mean"].items())
          + f"; malignant-vs-benign AUC over found lesions {_f(o['auc_malignant_found'])} "
          f"({o['auc_n']['malignant']} malignant, {o['auc_n']['benign']} benign)")
    fr = o["froc"]
    print("FROC (" + fr["score"] + "): sensitivity " + ", ".join(
        f"{p['sensitivity']:.3f} at {p['fp_per_study']:g}" for p in fr["points"])
        + f" false positives per study; CPM {fr['cpm']:.3f}; thresholds (petcad segment --min-score) "
        + ", ".join(_f(p["min_score"]) for p in fr["points"]))
    if res["missing"]:
        print(f"no outputs for {len(res['missing'])} studies of the manifest (not evaluated)")
    return 0
