"""What every report and checkpoint records about the software that made it."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

# distribution names as pip knows them
CORE_PACKAGES = ("numpy", "scipy", "pydicom", "SimpleITK", "scikit-learn", "torch", "numba", "matplotlib")


def software_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of Python, the platform, petcad and its main libraries (and ``extra`` ones, e.g. ``("mirp",)``).

    Read from installed package metadata, so nothing heavy is imported. Packages
    that are not installed are left out.
    """
    from petcad import __version__

    versions = {"python": sys.version.split()[0], "platform": platform.platform(), "petcad": __version__}
    for name in CORE_PACKAGES + tuple(extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
