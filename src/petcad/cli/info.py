"""``petcad info CT PET``: geometry of both images, frame-of-reference check, SUV audit."""

from __future__ import annotations

from petcad.cli._suv_options import add_suv_options, settings_from_args
from petcad.io.options import add_on_irregular_option

NAME = "info"
HELP = "geometry of a CT and a PET, frame-of-reference check, and the SUV audit (weight, dose, times, decay, factor)"


def add_arguments(parser) -> None:
    parser.add_argument("ct", metavar="CT", help="CT DICOM folder or image file (HU)")
    parser.add_argument("pet", metavar="PET", help="PET DICOM folder or image file (SUV)")
    parser.add_argument("--ct-series", metavar="UID", help="CT SeriesInstanceUID when the folder holds several")
    parser.add_argument("--pet-series", metavar="UID", help="PET SeriesInstanceUID when the folder holds several")
    parser.add_argument("--allow-frame-mismatch", action="store_true",
                        help="accept CT and PET with different FrameOfReferenceUIDs")
    add_on_irregular_option(parser)
    add_suv_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _geometry(img) -> dict:
    v = img.volume
    lo, hi = v.bounds_world()
    d = {
        "path": str(img.path),
        "source": "dicom" if img.series is not None else "image file",
        "shape_ijk": list(v.shape_ijk),
        "spacing_mm": [round(float(x), 6) for x in v.spacing],
        "origin_mm": [round(float(x), 4) for x in v.origin],
        "direction": [round(float(x), 6) for x in v.direction.reshape(-1)],
        "extent_mm": [[round(float(a), 2), round(float(b), 2)] for a, b in zip(lo, hi)],
        "value_range": [float(v.array.min()), float(v.array.max())],
        "notes": list(img.notes),
    }
    if img.series is not None:
        s = img.series
        d.update(modality=s.info.modality, series_uid=s.info.series_uid, description=s.info.description,
                 n_slices=s.info.n_slices, frame_of_reference_uid=s.info.frame_of_reference_uid)
    return d


def run(args) -> int:
    import json

    from petcad.cli._options import collected_warnings
    from petcad.io.loader import check_frames, check_overlap, load_ct, load_pet

    settings = settings_from_args(args)
    with collected_warnings() as warned:  # to stderr, and into the JSON
        ct = load_ct(args.ct, series_uid=args.ct_series, on_irregular=args.on_irregular)
        pet = load_pet(args.pet, suv=settings, series_uid=args.pet_series, on_irregular=args.on_irregular)
        check_frames(ct, pet, allow_frame_mismatch=args.allow_frame_mismatch)
        check_overlap(ct, pet)
    a, b = ct.frame_of_reference_uid, pet.frame_of_reference_uid
    frame = "same" if a and b and a == b else ("different" if a and b else "unknown (not both DICOM)")
    out = {"ct": _geometry(ct), "pet": _geometry(pet), "frame_of_reference": frame, "suv": pet.suv_audit,
           "warnings": warned}
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    for key in ("ct", "pet"):
        g = out[key]
        print(f"{key.upper()}: {g['path']} ({g['source']}{', ' + g['modality'] + ' ' + g['description'] if 'modality' in g else ''})")
        print(f"  voxels {' x '.join(map(str, g['shape_ijk']))}, spacing {' x '.join(f'{s:g}' for s in g['spacing_mm'])} mm, "
              f"origin ({', '.join(f'{s:g}' for s in g['origin_mm'])}) mm")
        print("  extent " + ", ".join(f"{ax} {lo:g}..{hi:g}" for ax, (lo, hi) in zip("xyz", g["extent_mm"])) + " mm (LPS)")
        print(f"  values {g['value_range'][0]:.4g} .. {g['value_range'][1]:.4g} {'HU' if key == 'ct' else 'SUV'}")
        for n in g.get("notes", []):
            print(f"  note: {n}")
    print(f"frame of reference: {frame}")
    s = pet.suv_audit
    if not s:
        print("SUV: PET read from an image file, taken as SUV already (no audit)")
        return 0

    def f(x, fmt="{:g}", unit=""):
        return "-" if x is None else fmt.format(x) + unit

    print(f"SUV audit ({s['suv_type']}, {s['output_units']}):")
    print(f"  units {s['input_units']}, decay correction {s['decay_correction']}")
    height = "-" if s["height_m"] is None else f"{s['height_m'] * 100:g} cm ({s['height_m']:g} m)"
    print(f"  patient weight {f(s['weight_kg'], unit=' kg')}, height {height}, sex {s['sex'] or '-'}")
    if s.get("sex_rule"):
        print(f"  sex rule: {s['sex_rule']}")
    print(f"  injected dose {f(None if s['dose_bq'] is None else s['dose_bq'] / 1e6, '{:.3f}', ' MBq')}"
          f" ({f(s['dose_bq'], '{:.6g}', ' Bq')}), half-life {f(s['half_life_s'], unit=' s')}")
    print(f"  injection time {s['injection_datetime'] or '-'}")
    print(f"  series time {s['series_datetime'] or '-'}, earliest acquisition time {s['acquisition_datetime_earliest'] or '-'}")
    print(f"  scan (decay reference) time {s['scan_datetime'] or '-'}  [{s['scan_time_rule'] or '-'}; "
          f"--reference-time {s['reference_time_method']}]")
    print(f"  decay time {f(s['decay_time_s'], '{:.1f}', ' s')}, decay factor {f(s['decay_factor'], '{:.6f}')}, "
          f"decayed dose {f(None if s['decayed_dose_bq'] is None else s['decayed_dose_bq'] / 1e6, '{:.3f}', ' MBq')}")
    fac = s["factors"]
    per = "" if max(fac) - min(fac) <= 1e-12 * abs(max(fac)) else f" (per slice {min(fac):.6g} .. {max(fac):.6g})"
    per_unit = {"BQML": "g/Bq: SUV per Bq/mL", "CNTS": "SUV per stored unit", "CPS": "SUV per count/s",
                "GML": "SUV of SUVType to the asked type", "CM2ML": "SUVbsa cm2/mL to the asked type"}
    print(f"  SUV factor {s['factor']:.6g} ({per_unit.get(s['input_units'], 'SUV per stored unit')}){per}")
    for k, v in s["sources"].items():
        print(f"  source of {k}: {v}")
    for n in s["notes"]:
        print(f"  note: {n}")
    return 0
