"""``petcad suv PET_DICOM_DIR --out suv.nii.gz``: convert a PET DICOM series to SUV."""

from __future__ import annotations

from petcad.cli._batch_options import add_batch_options, run_batch
from petcad.cli._suv_options import add_suv_options, settings_from_args
from petcad.io.options import add_on_irregular_option

NAME = "suv"
HELP = "convert a PET DICOM series to SUV (bw, lbm, lbm_morgan, lbm_janma, bsa, ibw) and write it with the PET geometry"


def add_arguments(parser) -> None:
    parser.add_argument("pet", metavar="PET_DICOM_DIR", help="folder holding the PET DICOM series (with --batch: a "
                        "folder tree of studies)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="output image (.nii.gz, .nii, .nrrd, .mha); with --batch an output folder")
    parser.add_argument("--batch", action="store_true",
                        help="every PET series under PET_DICOM_DIR, one at a time: OUT/<series folder>/suv.nii.gz and "
                             "audit.json; studies already written are skipped (resume)")
    add_batch_options(parser)
    parser.add_argument("--series", metavar="UID", help="SeriesInstanceUID when the folder holds several PET series")
    add_on_irregular_option(parser)
    parser.add_argument("--mask", metavar="FILE",
                        help="binary mask image (any grid; nearest-neighbour in physical space): print SUV min/median/max inside it")
    add_suv_options(parser)
    parser.add_argument("--json", action="store_true", help="print the SUV audit as JSON")


def run(args) -> int:
    import json

    import numpy as np

    from petcad.cli._options import collected_warnings

    from petcad.io.dicom import read_series
    from petcad.io.suv import compute_suv
    from petcad.io.volumes import is_image_file, write_image
    from petcad.errors import InputError

    if args.batch:
        return _run_batch(args)
    if args.shard or args.scheduler:
        raise InputError("--shard" if args.shard else "--scheduler", "only with --batch (a folder of studies)")
    if not is_image_file(args.out):
        raise InputError(args.out, "output must end in .nii.gz, .nii, .nrrd, .nhdr, .mha or .mhd")
    settings = settings_from_args(args)
    with collected_warnings() as warned:  # to stderr, and into the JSON audit
        series = read_series(args.pet, series_uid=args.series, modality=None if args.series else "PT",
                             on_irregular=args.on_irregular)
        vol, audit = compute_suv(series, settings)
        if not np.isfinite(vol.array).all():
            raise InputError(args.pet, f"{int((~np.isfinite(vol.array)).sum())} NaN or infinite voxels after SUV conversion")
        roi = None  # (errors inside this block print no warnings: the error is the one line)
        if args.mask:
            from petcad.io.volumes import read_image

            m = read_image(args.mask, modality="mask")
            if not m.same_grid(vol):
                m = m.resample_to(vol, interpolator="nearest")
            inside = vol.array[m.array > 0]
            if inside.size == 0:
                raise InputError(args.mask, "mask does not overlap the PET volume")
            roi = {"mask": str(args.mask), "n_voxels": int(inside.size), "min": float(inside.min()),
                   "median": float(np.median(inside)), "max": float(inside.max()), "mean": float(inside.mean())}
    write_image(vol, args.out)
    d = audit.to_dict()
    d["output"] = str(args.out)
    d["series_uid"] = series.info.series_uid
    d["reader_notes"] = series.notes
    d["geometry"] = {"shape_ijk": list(vol.shape_ijk), "spacing_mm": vol.spacing.tolist(),
                     "origin_mm": vol.origin.tolist(), "direction": vol.direction.reshape(-1).tolist()}
    d["suv_stats"] = {"min": float(vol.array.min()), "max": float(vol.array.max())}
    d["roi"] = roi
    d["warnings"] = warned
    if args.json:
        print(json.dumps(d, indent=2, default=str))
    else:
        print(f"wrote {args.out}: SUV{audit.suv_type} ({audit.output_units}), factor {audit.factor:.6g}, "
              f"max {d['suv_stats']['max']:.4g}")
        if roi:
            print(f"in {roi['mask']} ({roi['n_voxels']} voxels): SUV min {roi['min']:.4f}, median {roi['median']:.4f}, "
                  f"max {roi['max']:.4f}, mean {roi['mean']:.4f}")
        for n in series.notes + audit.notes:
            print(f"note: {n}")
    return 0


def _run_batch(args) -> int:
    from petcad.batch.suv import pet_series_tasks, suv_task
    from petcad.errors import InputError

    per_patient = [o for o, v in (("--weight", args.weight), ("--height", args.height), ("--dose", args.dose),
                                  ("--injection-time", args.injection_time), ("--series", args.series),
                                  ("--mask", args.mask)) if v is not None]
    if per_patient:
        raise InputError(per_patient[0], "is one study's value; --batch reads each study's own header")
    tasks = pet_series_tasks(args.pet, args.out, settings_from_args(args), args.on_irregular)
    report = run_batch(suv_task, tasks, args, progress=not args.json)
    if args.json:
        import json

        print(json.dumps({"done": report.done, "skipped": report.skipped, "not_in_shard": report.not_in_shard,
                          "results": report.results}, indent=2))
    return 0
