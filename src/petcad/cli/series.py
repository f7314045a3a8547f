"""``petcad series DIR``: list the DICOM series under a folder (SEG and RTSTRUCT with their segment / ROI names)."""

from __future__ import annotations

NAME = "series"
HELP = "list the DICOM series under a folder (modality, series UID, description, slices; SEG segments, RTSTRUCT ROIs)"


def add_arguments(parser) -> None:
    parser.add_argument("folder", metavar="DIR", help="folder searched recursively for DICOM files")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args) -> int:
    import json

    from petcad.io.dicom import list_series

    series = list_series(args.folder)
    labels = {s.series_uid: _labels(s) for s in series if s.modality.upper() in ("SEG", "RTSTRUCT")}
    if args.json:
        dicts = [s.to_dict() for s in series]
        for d in dicts:
            if d["series_uid"] in labels:
                d["labels"] = [{"file": str(f), "labels": [{"number": n, "name": name} for n, name in lab],
                                **({"error": err} if err else {})} for f, lab, err in labels[d["series_uid"]]]
        print(json.dumps({"folder": str(args.folder), "series": dicts,
                          "n_skipped_non_dicom": series.n_skipped}, indent=2))
        return 0
    if not series:
        print(f"no DICOM series under {args.folder} ({series.n_skipped} non-DICOM files skipped)")
        return 0
    rows = [("modality", "series UID", "description", "slices / labels", "folder")]
    rows += [(s.modality, s.series_uid, s.description,
              _label_text(labels[s.series_uid], s.modality) if s.series_uid in labels else str(s.n_slices), str(s.folder))
             for s in series]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4])
    if series.n_skipped:
        print(f"({series.n_skipped} non-DICOM files skipped)")
    return 0


def _labels(info) -> list[tuple[str, list[tuple[int, str]], str | None]]:
    """``(file, [(number, name)], error)`` for each file of a SEG / RTSTRUCT series."""
    from petcad.errors import InputError
    from petcad.io.masks import list_labels

    out = []
    for f in sorted(info.files):
        try:
            out.append((f, list_labels(f), None))
        except InputError as exc:
            out.append((f, [], exc.problem))
    return out


def _label_text(entries, modality: str) -> str:
    """``ROIs: 1 GTV_Mass, 2 GTV_Edema`` (per file, ``;``-separated when the series has several)."""
    word = "segments" if modality.upper() == "SEG" else "ROIs"
    parts = []
    for _, labs, err in entries:
        parts.append(f"unreadable ({err})" if err else ", ".join(f"{n} {name}" for n, name in labs) or "none")
    files = f"{len(entries)} files, " if len(entries) > 1 else ""
    return f"{files}{word}: " + "; ".join(parts)
