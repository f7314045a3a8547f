"""``petcad import NAME ROOT --out manifest.csv``: a public cohort, as it arrives on disk, to a manifest."""

from __future__ import annotations

NAME = "import"
HELP = "turn a public cohort (lung-pet-ct-dx, autopet) or a DICOM tree with SEG/RTSTRUCT into a lesion manifest"
DESCRIPTION = (
    "Read ROOT in the layout of NAME and write a lesion manifest (one row per lesion, paths relative to it): "
    "lung-pet-ct-dx = the TCIA download tree plus Annotation/<patient>/<SOPInstanceUID>.xml (PASCAL-VOC boxes); "
    "autopet = <patient>/<study>/{SUV,CTres,SEG}.nii.gz (+ fdg_metadata.csv), lesions = 18-connected components "
    "of SEG, masks written to <out stem>_masks/, studies without lesions to <out stem>_negatives.csv; "
    "dicom = DICOM studies with SEG or RTSTRUCT beside CT and PET, one row per segment / ROI. What is skipped is "
    "counted and reported on stderr. Layouts and rules: docs/cohorts.md."
)

NAMES = ("lung-pet-ct-dx", "autopet", "dicom")


def add_arguments(parser) -> None:
    parser.add_argument("name", metavar="NAME", choices=NAMES, help="cohort layout: " + ", ".join(NAMES))
    parser.add_argument("root", metavar="ROOT", help="the cohort's folder")
    parser.add_argument("--out", required=True, metavar="CSV", help="manifest to write")
    parser.add_argument("--annotations", metavar="DIR",
                        help="lung-pet-ct-dx: the Annotation folder (default: ROOT/Annotation, or one found under ROOT)")
    parser.add_argument("--without-pet", choices=("keep", "skip"), default="keep",
                        help="lung-pet-ct-dx: a patient without a PET series keeps rows with an empty pet (default; "
                             "petcad manifest then names them) or is skipped")
    parser.add_argument("--metadata", metavar="CSV",
                        help="autopet: fdg_metadata.csv with the diagnosis per study (default ROOT/fdg_metadata.csv)")
    parser.add_argument("--labels", metavar="CSV",
                        help="dicom: label per patient and segment / ROI (columns patient_id, name, label; "
                             "name '*' = every segment of the patient)")
    parser.add_argument("--default-label", default="lesion",
                        help="dicom: the label of a segment the --labels CSV does not name (default 'lesion')")


def _check_options(args) -> None:
    from petcad.errors import InputError

    only = {"--annotations": ("lung-pet-ct-dx", args.annotations), "--metadata": ("autopet", args.metadata),
            "--labels": ("dicom", args.labels)}
    for opt, (name, value) in only.items():
        if value is not None and args.name != name:
            raise InputError(opt, f"applies to {name} only, not {args.name}")


def run(args) -> int:
    import sys

    from petcad.cohorts.common import write_result
    from petcad.errors import InputError

    _check_options(args)
    if args.name == "autopet":
        from petcad.cohorts.autopet import import_autopet

        res = import_autopet(args.root, args.out, metadata=args.metadata)
    elif args.name == "lung-pet-ct-dx":
        from petcad.cohorts.lung_pet_ct_dx import import_lung_pet_ct_dx

        res = import_lung_pet_ct_dx(args.root, annotations=args.annotations, without_pet=args.without_pet)
    else:
        from petcad.cohorts.dicom_tree import import_dicom_tree

        res = import_dicom_tree(args.root, labels_csv=args.labels, default_label=args.default_label)
    for note in res.notes:
        print(f"petcad: warning: {note}", file=sys.stderr)
    if not res.rows:
        counted = "; ".join(f"{k}: {v}" for k, v in res.counts.items()) or "nothing counted"
        raise InputError(args.root, f"no lesions found, nothing written ({counted})")
    written = write_result(res, args.out)
    labels: dict[str, int] = {}
    for r in res.rows:
        labels[r["label"]] = labels.get(r["label"], 0) + 1
    print(f"{written['manifest']}: {len(res.rows)} lesions of {len({r['patient_id'] for r in res.rows})} patients"
          + (", labels " + ", ".join(f"{k} {v}" for k, v in sorted(labels.items())) if labels else ""))
    for key, n in res.counts.items():
        print(f"  {key}: {n}")
    for what in ("masks", "negatives"):
        if what in written:
            print(f"  {what}: {written[what]}")
    if labels:
        print(f"check it: petcad manifest {written['manifest']} --labels {','.join(sorted(labels))}")
    return 0
