"""Importers that turn public cohorts, as they arrive on disk, into a petcad manifest.

``petcad import NAME ROOT --out manifest.csv``; layouts in docs/cohorts.md.

* ``lung-pet-ct-dx`` (:mod:`petcad.cohorts.lung_pet_ct_dx`): TCIA tree plus PASCAL-VOC boxes.
* ``autopet`` (:mod:`petcad.cohorts.autopet`): NIfTI release, lesions = 18-connected components of SEG.
* ``dicom`` (:mod:`petcad.cohorts.dicom_tree`): DICOM studies with SEG / RTSTRUCT beside CT and PET.

Each importer returns an :class:`~petcad.cohorts.common.ImportResult`; what it skipped is
counted and reported, never silently dropped.
"""

from __future__ import annotations

#: importer name -> module (imported on use)
IMPORTERS: dict[str, str] = {
    "lung-pet-ct-dx": "petcad.cohorts.lung_pet_ct_dx",
    "autopet": "petcad.cohorts.autopet",
    "dicom": "petcad.cohorts.dicom_tree",
}
