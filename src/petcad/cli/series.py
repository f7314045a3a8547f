"""``petcad series DIR``: list the DICOM series under a folder."""

from __future__ import annotations

NAME = "series"
HELP = "list the DICOM series under a folder (modality, series UID, description, slices)"


def add_arguments(parser) -> None:
    parser.add_argument("folder", metavar="DIR", help="folder searched recursively for DICOM files")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args) -> int:
    import json

    from petcad.io.dicom import list_series

    series = list_series(args.folder)
    if args.json:
        print(json.dumps({"folder": str(args.folder), "series": [s.to_dict() for s in series],
                          "n_skipped_non_dicom": series.n_skipped}, indent=2))
        return 0
    if not series:
        print(f"no DICOM series under {args.folder} ({series.n_skipped} non-DICOM files skipped)")
        return 0
    rows = [("modality", "series UID", "description", "slices", "folder")]
    rows += [(s.modality, s.series_uid, s.description, str(s.n_slices), str(s.folder)) for s in series]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4])
    if series.n_skipped:
        print(f"({series.n_skipped} non-DICOM files skipped)")
    return 0
