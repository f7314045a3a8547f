"""Command-line options about reading studies, shared by every command that reads one.

Kept free of heavy imports (the command line builds its parser from it) and in
the io layer so that both ``petcad.cli`` and ``petcad.models.options`` (the
training options, also used by ``python -m petcad.models.ddp``) use the one
definition.
"""

from __future__ import annotations

#: What the DICOM reader may do with missing or irregular slices; the first is the default.
ON_IRREGULAR: tuple[str, ...] = ("error", "resample", "stack")


def add_on_irregular_option(parser) -> None:
    """Add ``--on-irregular {error,resample,stack}`` (``args.on_irregular``) to an argparse parser."""
    parser.add_argument(
        "--on-irregular", choices=ON_IRREGULAR, default=ON_IRREGULAR[0],
        help="DICOM series with missing slices or irregular slice spacing: error (default), "
             "resample (interpolate linearly onto a regular grid) or stack (keep the slices as they are)",
    )
