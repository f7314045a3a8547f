"""SUV for every PET series under a folder tree, one study at a time (``petcad suv ROOT --batch``).

Each PET series becomes ``OUT/<series folder relative to ROOT>/suv.nii.gz`` and ``audit.json``
(the same audit as ``petcad suv --json``). The study key is that relative folder (with
``#2``, ``#3`` ... when one folder holds several PET series); it decides the shard and names
the study in messages, so no patient identifier from the headers is printed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from petcad.batch.runner import StudyTask
from petcad.errors import InputError


@dataclass(frozen=True)
class SUVJob:
    """What one series' task needs (picklable for Dask)."""

    files_folder: Path
    series_uid: str
    settings: object  # petcad.io.suv.SUVSettings
    on_irregular: str


def pet_series_tasks(root: str | os.PathLike, out_dir: str | os.PathLike, settings, on_irregular: str) -> list[StudyTask]:
    """One :class:`StudyTask` per PET series under ``root``, outputs under ``out_dir``."""
    from petcad.io.dicom import list_series

    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise InputError(root, "not a folder")
    pets = [s for s in list_series(root) if s.modality.upper() == "PT"]
    if not pets:
        raise InputError(root, "no PET series found under this folder")
    tasks, seen = [], {}
    for s in sorted(pets, key=lambda s: (str(s.folder), s.series_uid)):
        rel = Path(s.folder).resolve().relative_to(root.resolve()).as_posix()
        rel = "." if rel in ("", ".") else rel
        seen[rel] = seen.get(rel, 0) + 1
        key = rel if seen[rel] == 1 else f"{rel}#{seen[rel]}"
        dest = out_dir / key.replace("#", "_")
        tasks.append(StudyTask(key, (dest / "suv.nii.gz", dest / "audit.json"),
                               SUVJob(Path(s.folder), s.series_uid, settings, on_irregular)))
    return tasks


def suv_task(task: StudyTask) -> dict:
    """Read one PET series, convert it to SUV, write the image and its audit (atomically)."""
    import numpy as np

    from petcad.io.atomic import write_text
    from petcad.io.dicom import read_series
    from petcad.io.suv import compute_suv
    from petcad.io.volumes import write_image

    job: SUVJob = task.payload
    series = read_series(job.files_folder, series_uid=job.series_uid, on_irregular=job.on_irregular)
    vol, audit = compute_suv(series, job.settings)
    bad = int((~np.isfinite(vol.array)).sum())
    if bad:
        raise InputError(job.files_folder, f"{bad} NaN or infinite voxels after SUV conversion")
    image_out, audit_out = task.outputs
    write_image(vol, image_out)
    d = audit.to_dict()
    d.update(study=task.key, output=str(image_out), reader_notes=series.notes,
             suv_stats={"min": float(vol.array.min()), "max": float(vol.array.max())})
    write_text(audit_out, json.dumps(d, indent=2, default=str) + "\n")  # written last: the "done" marker
    return {"factor": float(audit.factor), "suv_max": float(vol.array.max())}
