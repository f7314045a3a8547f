"""Shared SUV override options for ``petcad suv`` and ``petcad info``."""

from __future__ import annotations


def add_suv_options(parser, *, with_type: bool = True) -> None:
    g = parser.add_argument_group("SUV (values given here override the DICOM header)")
    if with_type:
        g.add_argument("--type", dest="suv_type", default="bw", choices=["bw", "lbm", "lbm_janma", "bsa", "ibw"],
                       help="SUV normalisation: body weight (default), lean body mass (James / Janmahasatian), "
                       "body surface area (Du Bois), ideal body weight (Devine)")
    g.add_argument("--weight", type=float, metavar="KG", help="patient weight in kg")
    g.add_argument("--height", type=float, metavar="M", help="patient height in m")
    g.add_argument("--dose", type=float, metavar="MBQ", help="injected activity in MBq")
    g.add_argument("--injection-time", metavar="TIME", help="injection time HH:MM[:SS] (series date) or ISO date and time")
    g.add_argument("--sex", choices=["M", "F", "m", "f"], help="patient sex (for lbm, lbm_janma, ibw)")
    g.add_argument("--half-life", type=float, metavar="S", help="radionuclide half-life in s")


def settings_from_args(args):
    from petcad.io.suv import SUVSettings

    return SUVSettings(
        suv_type=getattr(args, "suv_type", "bw"),
        weight_kg=args.weight,
        height_m=args.height,
        dose_bq=None if args.dose is None else args.dose * 1e6,
        injection_datetime=args.injection_time,
        sex=None if args.sex is None else args.sex.upper(),
        half_life_s=args.half_life,
    )
