"""Synthetic thorax FDG PET/CT cohorts with labelled mediastinal and hilar lymph nodes.

``generate_cohort`` writes a cohort (DICOM or NIfTI) with ``manifest.csv`` and
``truth.csv``; ``simulate_patient`` returns one patient's in-memory truth. The
generative model and its published sources are in ``docs/phantom.md``.
"""

from __future__ import annotations

from petcad.phantom.presets import PRESETS, LesionModel, Preset, get_preset

__all__ = ["generate_cohort", "simulate_patient", "patient_seeds", "PRESETS", "Preset", "LesionModel", "get_preset"]


def generate_cohort(out_dir, n_patients: int, seed: int, preset: str = "default", fmt: str = "dicom",
                    workers: int | None = None, progress: bool = False):
    """Write a synthetic cohort; returns the path of ``out_dir/manifest.csv`` (see :mod:`petcad.phantom.cohort`)."""
    from petcad.phantom.cohort import generate_cohort as _gen

    return _gen(out_dir, n_patients=n_patients, seed=seed, preset=preset, fmt=fmt, workers=workers, progress=progress)


def simulate_patient(seed, preset="default", patient_number: int = 1):
    """One patient's in-memory truth (CT HU, PET SUV, lesions); see :func:`petcad.phantom.cohort.simulate_patient`."""
    from petcad.phantom.cohort import simulate_patient as _sim

    return _sim(seed, preset, patient_number)


def patient_seeds(seed: int, n_patients: int):
    from petcad.phantom.cohort import patient_seeds as _ps

    return _ps(seed, n_patients)
