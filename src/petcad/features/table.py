"""One table row per lesion: where its delineation came from, how many voxels it holds, and its features.

What ``petcad features`` writes. Each lesion is delineated once (see
:mod:`petcad.features.delineation`); the 13 diagnostic features and, when asked,
the IBSI features (MIRP) are computed on that one delineation. A supplied mask
is used whole. PET-only studies get NaN for the features that need a CT.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from petcad.features.delineation import DelineationSettings, DelineationWarning, delineate
from petcad.features.diagnostic import FEATURE_NAMES, features_from_delineation
from petcad.study import Cohort

SETS = ("diagnostic", "ibsi", "all")
#: the columns that describe each lesion before its features
ID_COLUMNS = ("patient_id", "lesion_id", "label", "x", "y", "z", "center_source", "modalities", "delineation",
              "pet_voxels", "ct_voxels", "pet_voxel_ml", "ct_voxel_ml")


@dataclass
class FeatureTable:
    """Rows (dicts keyed by ``columns``) and the delineation warnings met on the way."""

    columns: list[str]
    rows: list[dict]
    warnings: list[str] = field(default_factory=list)

    def to_csv_text(self) -> str:
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for r in self.rows:
            w.writerow([_cell(r.get(c)) for c in self.columns])
        return buf.getvalue()


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return str(v)


def lesion_feature_table(cohort: Cohort, which: str = "diagnostic",
                         settings: DelineationSettings = DelineationSettings(), progress: bool = False) -> FeatureTable:
    """The table for every lesion of ``cohort`` (``iter_lesions`` order); ``which`` is one of ``SETS``."""
    if which not in SETS:
        raise ValueError(f"unknown feature set {which!r}; choose one of {', '.join(SETS)}")
    items = cohort.iter_lesions()
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, total=cohort.n_lesions, desc=f"{which} features", unit="lesion")
    rows, notes, ibsi_names = [], [], set()
    for study, lesion in items:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DelineationWarning)
            d = delineate(study, lesion, settings)
            row = _describe(study, lesion, d)
            if which in ("diagnostic", "all"):
                row.update(features_from_delineation(d, lesion.lesion_id, settings))
        notes += [str(w.message) for w in caught if issubclass(w.category, DelineationWarning)]
        if which in ("ibsi", "all"):
            texture = _ibsi(d)
            ibsi_names.update(texture)
            row.update(texture)
        rows.append(row)
    columns = list(ID_COLUMNS)
    if which in ("diagnostic", "all"):
        columns += FEATURE_NAMES
    if which in ("ibsi", "all"):
        columns += sorted(ibsi_names)
    return FeatureTable(columns=columns, rows=rows, warnings=notes)


def _describe(study, lesion, d) -> dict:
    pet_ml = float(np.prod(d.pet.spacing)) / 1000.0
    ct_ml = None if d.ct is None else float(np.prod(d.ct.spacing)) / 1000.0
    x, y, z = (float(v) for v in lesion.center_mm)
    return {
        "patient_id": lesion.patient_id, "lesion_id": lesion.lesion_id, "label": lesion.label,
        "x": x, "y": y, "z": z, "center_source": lesion.center_source,
        "modalities": "PET" if study.ct is None else "PET+CT", "delineation": d.source,
        "pet_voxels": int(d.pet_mask.sum()), "ct_voxels": None if d.ct_mask is None else int(d.ct_mask.sum()),
        "pet_voxel_ml": pet_ml, "ct_voxel_ml": ct_ml,
    }


def _ibsi(d) -> dict:
    from petcad.features.ibsi import IBSISettings, extract

    s = IBSISettings()
    out = {}
    for pre, vol, m, mod, bw in (("pet_", d.pet, d.pet_mask, "PT", s.pet_bin_width),
                                 ("ct_", d.ct, d.ct_mask, "CT", s.ct_bin_width)):
        if vol is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.update({pre + k: v for k, v in extract(vol.array, m, mod, bw, s.families).items()})
    return out


# --------------------------------------------------------------------------- one study of a batch run
@dataclass(frozen=True)
class FeatureJob:
    """What one study's feature task needs (picklable, for Dask workers)."""

    manifest: str
    study: tuple[str, str]  # (patient_id, study_id)
    which: str
    delineation: DelineationSettings
    suv: object  # petcad.io.suv.SUVSettings
    on_irregular: str = "error"
    allow_frame_mismatch: bool = False


def feature_study_task(task) -> dict:
    """Load one study of the manifest, compute its lesions' rows, write them to the task's part file.

    Returns ``{"lesions", "sources", "pet_only", "warnings"}`` for the command's summary.
    """
    from petcad.io.atomic import write_text
    from petcad.io.manifest import load_cohort

    job: FeatureJob = task.payload
    cohort = load_cohort(job.manifest, suv=job.suv, allowed_labels=None, only={job.study},
                         allow_frame_mismatch=job.allow_frame_mismatch, on_irregular=job.on_irregular)
    table = lesion_feature_table(cohort, job.which, job.delineation)
    write_text(task.outputs[0], table.to_csv_text())
    sources: dict[str, int] = {}
    for r in table.rows:
        sources[r["delineation"]] = sources.get(r["delineation"], 0) + 1
    return {"lesions": len(table.rows), "sources": sources, "warnings": table.warnings,
            "pet_only": sum(r["modalities"] == "PET" for r in table.rows)}
