"""Shared SUV override options for ``petcad suv``, ``petcad info`` and ``petcad manifest``.

Values typed here are checked like header values (``SUVSettings.from_entries``):
a number in the other usual unit is converted with a note, an implausible one
is an error naming the option.
"""

from __future__ import annotations

#: the same as petcad.io.suv.SUV_TYPES (kept here so that --help imports no numpy; a test checks they agree)
SUV_TYPE_CHOICES = ("bw", "lbm", "lbm_morgan", "lbm_janma", "bsa", "ibw")


def add_suv_options(parser, *, with_type: bool = True) -> None:
    g = parser.add_argument_group("SUV (values given here override the DICOM header)")
    if with_type:
        g.add_argument("--type", dest="suv_type", default="bw", choices=SUV_TYPE_CHOICES,
                       help="SUV normalisation: body weight (default), lean body mass (lbm: James; lbm_morgan; "
                       "lbm_janma: Janmahasatian), body surface area (Du Bois), ideal body weight (Sugawara)")
    g.add_argument("--weight", type=float, metavar="KG",
                   help="patient weight in kg (a value over 1000 is read as grams and converted, with a note)")
    g.add_argument("--height", type=float, metavar="CM",
                   help="patient height in cm, 40-275 (a value 0.4-2.75 is read as metres and converted, with a note)")
    g.add_argument("--dose", type=float, metavar="MBQ",
                   help="injected activity in MBq, below 10000 (a value of 1e6-1e11 is read as Bq, with a note)")
    g.add_argument("--injection-time", metavar="TIME", help="injection time HH:MM[:SS] (series date) or ISO date and time")
    g.add_argument("--sex", choices=["M", "F", "O", "m", "f", "o"],
                   help="patient sex (for lbm*, ibw; O: mean of the male and female values)")
    g.add_argument("--half-life", type=float, metavar="S", help="radionuclide half-life in s")
    g.add_argument("--reference-time", choices=["qiba", "backcompute"], default="qiba",
                   help="decay reference time of DecayCorrection START series: the QIBA order (default; SeriesTime, "
                   "GE private scan time, back-computation, earliest AcquisitionTime) or always back-computed from "
                   "AcquisitionTime, FrameReferenceTime and ActualFrameDuration")


def settings_from_args(args):
    from petcad.io.suv import SUVSettings

    return SUVSettings.from_entries(
        suv_type=getattr(args, "suv_type", "bw"),
        weight=args.weight,
        height_cm=args.height,
        dose_mbq=args.dose,
        injection_time=args.injection_time,
        sex=None if args.sex is None else args.sex.upper(),
        half_life_s=args.half_life,
        reference_time=getattr(args, "reference_time", "qiba"),
    )
