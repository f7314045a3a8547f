"""``petcad mask``: a DICOM SEG / RTSTRUCT / image mask onto an image grid, or a label map to a DICOM SEG.

::

    petcad mask SEG_OR_RTSTRUCT --like IMAGE [--label NAME_OR_NUMBER ...] --out mask.nii.gz
    petcad mask --to-seg LABELMAP --like PET_OR_CT_SERIES --out seg.dcm [--names 1=lesion,2=node]
"""

from __future__ import annotations

from petcad.io.options import add_on_irregular_option

NAME = "mask"
HELP = "turn a DICOM SEG / RTSTRUCT into a mask on an image grid, or a label map into a DICOM SEG"
DESCRIPTION = (
    "Read one segment / ROI (or several, as a label map 1..n in the order given) of a DICOM SEG, an RTSTRUCT or an "
    "image mask onto the grid of IMAGE (a DICOM series folder or an image file), or with --to-seg write a label map "
    "as a DICOM SEG referencing a DICOM series. RTSTRUCT rule (--inclusion centre, the default): a voxel is inside "
    "when its centre is inside the contours (even-odd) of the nearest contour plane, within half the contour-plane "
    "spacing; --inclusion touch takes every voxel the structure touches or overlaps."
)


def add_arguments(parser) -> None:
    parser.add_argument("source", metavar="SEG_OR_RTSTRUCT", nargs="?",
                        help="DICOM SEG or RTSTRUCT file (or a folder holding exactly one), or an image mask")
    parser.add_argument("--to-seg", metavar="LABELMAP",
                        help="write LABELMAP (an image file of integer labels, 0 = background) as a DICOM SEG instead")
    parser.add_argument("--like", required=True, metavar="IMAGE",
                        help="the image whose grid the mask is put on: a DICOM series folder or an image file "
                             "(with --to-seg: the DICOM series folder the SEG references)")
    parser.add_argument("--series", metavar="UID", help="SeriesInstanceUID when the --like folder holds several image series")
    parser.add_argument("--label", action="append", metavar="NAME_OR_NUMBER",
                        help="segment / ROI to take (repeat for a label map of several); default: the only one")
    parser.add_argument("--names", metavar="N=NAME,...", help="--to-seg: segment names, e.g. 1=lesion,2=node")
    parser.add_argument("--fractional", action="store_true",
                        help="--to-seg: LABELMAP holds fractions in [0, 1] of one segment (a FRACTIONAL SEG)")
    parser.add_argument("--inclusion", choices=("centre", "touch"), default="centre",
                        help="RTSTRUCT pixel-inclusion rule: 'centre' (default): the voxel centre is inside the "
                             "structure; 'touch': the structure touches or overlaps any part of the voxel "
                             "(see docs/io.md)")
    add_on_irregular_option(parser)
    parser.add_argument("--out", required=True, metavar="FILE", help="output: an image file (.nii.gz ...), or with --to-seg a .dcm")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from petcad.errors import InputError

    if bool(args.source) == bool(args.to_seg):
        raise InputError("petcad mask", "give either SEG_OR_RTSTRUCT or --to-seg LABELMAP (one of them)")
    if args.to_seg:
        if args.label:
            raise InputError("--label", "not used with --to-seg (name the segments with --names)")
        if args.inclusion != "centre":
            raise InputError("--inclusion", "only used when reading an RTSTRUCT, not with --to-seg")
        return _to_seg(args)
    if args.names or args.fractional:
        raise InputError("--names" if args.names else "--fractional", "only used with --to-seg")
    return _to_mask(args)


def _read_like(args):
    """``(volume, frame_of_reference_uid or None, description)`` of --like."""
    from pathlib import Path

    from petcad.errors import InputError
    from petcad.io.dicom import read_series
    from petcad.io.volumes import is_image_file, read_image

    like = Path(args.like)
    if not like.exists():
        raise InputError(args.like, "no such file or folder")
    if like.is_file() and is_image_file(like):
        if args.series:
            raise InputError("--series", "only used when --like is a DICOM folder")
        return read_image(like, modality="CT", allow_nan=True), None, str(like)
    s = read_series(like, series_uid=args.series, on_irregular=args.on_irregular)
    return s.volume, (s.info.frame_of_reference_uid or None), f"{s.info.modality} series {s.info.series_uid}"


def _to_mask(args) -> int:
    import json
    import sys

    import numpy as np

    from petcad.errors import InputError
    from petcad.io.masks import load_labelmap, load_mask, resolve_path
    from petcad.io.volumes import is_image_file, write_image

    if not is_image_file(args.out):
        raise InputError(args.out, "output must end in .nii.gz, .nii, .nrrd, .nhdr, .mha or .mhd")
    path, kind = resolve_path(args.source)
    if kind != "rtstruct" and args.inclusion != "centre":
        raise InputError("--inclusion", f"only used with an RTSTRUCT; {path} is a {kind} mask")
    like, frame, like_desc = _read_like(args)
    voxel_ml = float(np.prod(like.spacing)) / 1000.0
    if args.label and len(args.label) > 1:
        vol, table, overlap = load_labelmap(path, like, args.label, frame_of_reference_uid=frame,
                                            inclusion=args.inclusion)
        labels = [{"value": v, "number": n, "name": name, "voxels": int(np.count_nonzero(vol.array == v))}
                  for v, n, name in table]
    else:
        from petcad.io.masks import list_labels, resolve_label

        what = {"seg": "segment", "rtstruct": "ROI"}.get(kind, "label value")
        if kind == "image" and not args.label:
            number, name = 1, "non-zero"
        else:
            number, name = resolve_label(path, list_labels(path), args.label[0] if args.label else None, what)
        vol = load_mask(path, like, None if kind == "image" and not args.label else number, frame_of_reference_uid=frame,
                        inclusion=args.inclusion)
        labels = [{"value": 1, "number": number, "name": name, "voxels": int(np.count_nonzero(vol.array))}]
        overlap = 0
    write_image(vol, args.out)
    for lab in labels:
        lab["volume_ml"] = round(lab["voxels"] * voxel_ml, 3)
    report = {"output": str(args.out), "source": str(path), "kind": kind, "like": like_desc,
              **({"inclusion": args.inclusion} if kind == "rtstruct" else {}),
              "shape_ijk": list(vol.shape_ijk), "labels": labels, "overlap_voxels": overlap}
    for lab in labels:
        if lab["voxels"] == 0:
            print(f"petcad: warning: {lab['number']} '{lab['name']}' is entirely covered by later labels; "
                  "give it last to keep it", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"wrote {args.out}: {kind} {path.name} on the grid of {like_desc} {tuple(vol.shape_ijk)}")
    for lab in labels:
        print(f"  value {lab['value']}: {lab['number']} '{lab['name']}', {lab['voxels']} voxels ({lab['volume_ml']:.3f} mL)")
    if overlap:
        print(f"  {overlap} voxels belong to several labels; the later label was kept")
    return 0


def _parse_names(text: str | None) -> dict[int, str]:
    from petcad.errors import InputError

    names: dict[int, str] = {}
    if not text:
        return names
    for part in text.split(","):
        if not part.strip():
            continue
        num, sep, name = part.partition("=")
        if not sep or not num.strip().isdigit() or not name.strip():
            raise InputError("--names", f"expected N=NAME[,N=NAME...], got {part.strip()!r}")
        if int(num) < 1:
            raise InputError("--names", f"segment numbers start at 1, got {num.strip()}")
        names[int(num)] = name.strip()
    return names


def _to_seg(args) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from petcad.errors import InputError
    from petcad.io.seg import list_segments, write_seg
    from petcad.io.volumes import is_image_file, read_image

    if is_image_file(args.out):
        raise InputError(args.out, "a DICOM SEG is written to a .dcm file, not an image file")
    if Path(args.like).is_file():
        raise InputError(args.like, "--to-seg needs --like to be the DICOM series folder the SEG references")
    names = _parse_names(args.names)
    labelmap = read_image(args.to_seg, modality="CT")
    if args.fractional:
        names = names or {1: "segment 1"}
    else:
        arr = labelmap.array
        if not np.array_equal(arr, np.rint(arr)) or arr.min() < 0:
            raise InputError(args.to_seg, "label map must hold non-negative integer labels (0 = background); "
                             "for fractions use --fractional")
        labelmap.array = arr.astype(np.int64 if arr.max() > 65535 else np.uint16)
    write_seg(labelmap, names, args.like, args.out, fractional=args.fractional, series_uid=args.series)
    segments = list_segments(args.out)
    report = {"output": str(args.out), "labelmap": str(args.to_seg), "references": str(args.like),
              "fractional": bool(args.fractional), "segments": [{"number": n, "name": s} for n, s in segments]}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"wrote {args.out}: DICOM SEG ({'FRACTIONAL' if args.fractional else 'BINARY'}) of {len(segments)} "
              f"segments referencing {args.like}: " + ", ".join(f"{n} '{s}'" for n, s in segments))
    return 0
