"""IBSI texture features of PET and CT through MIRP (optional extra: ``pip install petcad[ibsi]``).

Settings (docs/features.md): each lesion's PET and CT crops with the delineation of
:mod:`petcad.features.delineation` on each grid; no resampling (native grids); fixed bin
size discretisation (PET 0.25 SUV, CT 25 HU, IBSI "FBS"); GLCM and GLRLM computed in 3D
with the matrices of the 13 directions averaged after feature computation (IBSI
"3D, averaged"); GLSZM and NGTDM in 3D. Families: statistics, intensity histogram, GLCM,
GLRLM, GLSZM, NGTDM. Families that need physical voxel sizes (morphology, distance zones)
are left out because the crops are handed to MIRP as arrays.

MIRP is slow to import (seconds) and spends about a second per image, so IBSI features are
for ``petcad compare --features ibsi|all``, not for the demo.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from petcad.features.delineation import DelineationSettings, delineate
from petcad.study import Cohort, Volume

COHORT_FAMILIES = (
    "statistics",
    "intensity_histogram",
    "cooccurrence_matrix",
    "run_length_matrix",
    "size_zone_matrix",
    "neighbourhood_grey_tone_difference_matrix",
)
PHANTOM_FAMILIES = COHORT_FAMILIES + (
    "morphology",
    "distance_zone_matrix",
    "neighbouring_grey_level_dependence_matrix",
    "intensity_volume_histogram",
)
_META = ("sample_name", "image_", "roi_name")


@dataclass(frozen=True)
class IBSISettings:
    """MIRP settings for the cohort (units: SUV for PET bins, HU for CT bins)."""

    pet_bin_width: float = 0.25
    ct_bin_width: float = 25.0
    families: tuple[str, ...] = COHORT_FAMILIES


def _quiet_mirp():
    logging.getLogger("mirp").setLevel(logging.WARNING)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("mirp"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _mirp_kwargs(families, discretisation: str, bin_width: float | None) -> dict:
    kw = dict(
        base_feature_families=list(families),
        glcm_spatial_method="3d_average",
        glrlm_spatial_method="3d_average",
        glszm_spatial_method="3d",
        gldzm_spatial_method="3d",
        ngtdm_spatial_method="3d",
        ngldm_spatial_method="3d",
        base_discretisation_method=discretisation,
        export_features=True,
    )
    if bin_width is not None:
        kw["base_discretisation_bin_width"] = bin_width
    if "intensity_volume_histogram" in families:
        kw["ivh_discretisation_method"] = "none"
    return kw


def _feature_columns(df) -> dict[str, float]:
    return {c: float(df[c].iloc[0]) for c in df.columns if not c.startswith(_META)}


def extract(image: np.ndarray, mask: np.ndarray, modality: str, bin_width: float,
            families=COHORT_FAMILIES) -> dict[str, float]:
    """IBSI features (MIRP names) of ``image`` ([k, j, i], SUV or HU) inside the boolean ``mask``."""
    from mirp import extract_features

    _quiet_mirp()
    res = extract_features(image=np.ascontiguousarray(image, dtype=np.float64),
                           mask=np.ascontiguousarray(mask, dtype=np.uint8), image_modality=modality,
                           **_mirp_kwargs(families, "fixed_bin_size", bin_width))
    return _feature_columns(res[0])


def cohort_ibsi_features(cohort: Cohort, settings: DelineationSettings = DelineationSettings(),
                         progress: bool = False, ibsi: IBSISettings = IBSISettings()) -> tuple[list[str], np.ndarray]:
    """IBSI features of PET (``pet_`` prefix) and CT (``ct_`` prefix) for every lesion, ``iter_lesions`` order."""
    items = cohort.iter_lesions()
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, total=cohort.n_lesions, desc="IBSI features (MIRP)", unit="lesion")
    rows: list[dict[str, float]] = []
    for study, lesion in items:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = delineate(study, lesion, settings)
        f = {}
        for pre, vol, m, mod, bw in (("pet_", d.pet, d.pet_mask, "PT", ibsi.pet_bin_width),
                                     ("ct_", d.ct, d.ct_mask, "CT", ibsi.ct_bin_width)):
            if vol is None:  # PET-only study: no CT features (NaN in the matrix)
                continue
            f.update({pre + k: v for k, v in extract(vol.array, m, mod, bw, ibsi.families).items()})
        rows.append(f)
    names = sorted({k for r in rows for k in r})
    X = np.array([[r.get(n, np.nan) for n in names] for r in rows], dtype=np.float64).reshape(len(rows), len(names))
    return names, X


# ----------------------------------------------------------------------------- IBSI digital phantom
def _norm_tag(tag: str) -> str:
    """Reference tag / MIRP name to one key: lower case, no distance / coarseness suffixes."""
    t = tag.lower().replace("_d1", "").replace("_a0.0", "").replace("_d1.0", "")
    return t


def _sig_round(x: float, ref: str) -> float:
    s = ref.strip().lower().replace("−", "-")
    if "e" in s:
        mant = s.split("e")[0]
    else:
        mant = s
    mant = mant.lstrip("-")
    if "." not in mant:  # an integer written without a decimal point: trailing zeros are not significant
        mant = mant.rstrip("0") or "0"
    digits = mant.replace(".", "").lstrip("0")
    n = max(len(digits), 1)
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, n - 1 - int(math.floor(math.log10(abs(x)))))


def check_digital_phantom(data_dir, families=PHANTOM_FAMILIES) -> list[dict]:
    """Compute the IBSI 1 digital phantom's features with MIRP (configuration of the IBSI manual for the
    phantom: no resampling, no discretisation as the phantom is already discrete, 3D matrices) and compare
    every feature that has a 3D reference value. Returns one dict per compared feature:
    ``tag, family, reference, tolerance, value, ok``."""
    import csv

    from mirp import extract_features

    _quiet_mirp()
    d = Path(data_dir)
    res = extract_features(image=str(d / "nifti" / "image" / "phantom.nii.gz"),
                           mask=str(d / "nifti" / "mask" / "mask.nii.gz"), image_modality="CT",
                           **_mirp_kwargs(families, "none", None))
    ours = {_norm_tag(k): v for k, v in _feature_columns(res[0]).items()}
    out = []
    with open(d / "reference_values.csv", encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            tag, ref, tol = row["tag"].strip(), row["reference value"].strip(), row["tolerance"].strip()
            if not tag or not ref or "2D" in tag or "2_5D" in tag.upper() or "2.5d" in tag.lower():
                continue
            key = _norm_tag(tag)
            if key not in ours:
                continue
            refv, tolv, val = float(ref), float(tol or 0), ours[key]
            ok = (_sig_round(val, ref) == refv) if tolv == 0 else abs(val - refv) <= tolv
            out.append({"tag": tag, "family": row["family"], "reference": refv, "tolerance": tolv, "value": val,
                        "ok": bool(ok)})
    return out
