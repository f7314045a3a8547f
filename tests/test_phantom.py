"""Synthetic cohort: DICOM round trip through the foundation reader, determinism, statistics, bad input, CLI."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

from petcad.errors import InputError
from petcad.phantom import generate_cohort, patient_seeds, simulate_patient
from petcad.phantom.cohort import read_truth


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "cohort.json":  # cohort.json records the wall time
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def two_patients(tmp_path_factory):
    out = tmp_path_factory.mktemp("ph") / "c"
    manifest = generate_cohort(out, n_patients=2, seed=11, preset="default", fmt="dicom", workers=2)
    return manifest


def test_dicom_round_trip_matches_truth(two_patients):
    from petcad.io.manifest import load_cohort

    cohort = load_cohort(two_patients)
    assert len(cohort) == 2
    seeds = patient_seeds(11, 2)
    for n, study in enumerate(cohort.studies, start=1):
        truth = simulate_patient(seeds[n - 1], "default", n)
        assert study.patient_id == truth.patient_id
        # CT: HU equal within the integer quantisation
        assert study.ct.same_grid(truth.ct)
        assert np.max(np.abs(study.ct.array - truth.ct.array)) <= 0.5 + 1e-3
        # PET: SUVbw from the BQML header within 1 % (voxels above 0.05 SUV), same grid
        assert study.pet.same_grid(truth.pet)
        t = truth.pet.array
        sel = t > 0.05
        rel = np.abs(study.pet.array[sel] - t[sel]) / t[sel]
        assert rel.max() < 0.01
        assert np.max(np.abs(study.pet.array - t)) < 0.01 * t.max()
        # lesions: ids, labels, centres inside their own masks and the label map
        assert [les.lesion_id for les in study.lesions] == [les.lesion_id for les in truth.lesions]
        for les, tl in zip(study.lesions, truth.lesions):
            assert les.label == tl.label
            np.testing.assert_allclose(les.center_mm, tl.center_mm, atol=1e-3)
            m = les.mask
            ijk = np.rint(m.world_to_index(les.center_mm)).astype(int)
            assert m.array[ijk[2], ijk[1], ijk[0]] == 1, les.lesion_id
            g = np.rint(truth.lesion_map.world_to_index(les.center_mm)).astype(int)
            assert truth.lesion_map.array[g[2], g[1], g[0]] == tl.index


def test_dicom_headers(two_patients):
    import pydicom

    root = two_patients.parent
    ct = pydicom.dcmread(next((root / "P0001" / "CT").glob("*.dcm")))
    pt = pydicom.dcmread(next((root / "P0001" / "PT").glob("*.dcm")))
    assert ct.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ct.SOPClassUID == pydicom.uid.CTImageStorage and pt.SOPClassUID == pydicom.uid.PositronEmissionTomographyImageStorage
    assert ct.FrameOfReferenceUID == pt.FrameOfReferenceUID and ct.SeriesInstanceUID != pt.SeriesInstanceUID
    assert float(ct.RescaleIntercept) == -1024 and float(ct.RescaleSlope) == 1
    assert pt.Units == "BQML" and pt.DecayCorrection == "START"
    rp = pt.RadiopharmaceuticalInformationSequence[0]
    assert float(rp.RadionuclideHalfLife) == 6588 and float(rp.RadionuclideTotalDose) > 1e8
    assert str(pt.PatientName) == "PHANTOM^0001" and pt.PatientID == "P0001"
    truth = read_truth(root / "truth.csv")
    assert {r["label"] for r in truth} <= {"benign", "malignant"}
    assert (root / "P0001" / "lesions.nii.gz").exists()


def test_deterministic_and_independent_of_workers(tmp_path, two_patients):
    again = generate_cohort(tmp_path / "c2", n_patients=2, seed=11, workers=1)
    assert _tree_digest(again.parent) == _tree_digest(two_patients.parent)
    a = simulate_patient(5)
    b = simulate_patient(5)
    assert np.array_equal(a.ct.array, b.ct.array) and np.array_equal(a.pet.array, b.pet.array)
    c = simulate_patient(6)
    assert not np.array_equal(a.pet.array.shape, c.pet.array.shape) or not np.array_equal(a.pet.array, c.pet.array)


def test_nifti_format_and_overwrite_rules(tmp_path):
    out = tmp_path / "n"
    m = generate_cohort(out, n_patients=1, seed=2, fmt="nifti", workers=1)
    rows = list(csv.DictReader(open(m)))
    assert rows and rows[0]["ct"] == "P0001/ct.nii.gz" and rows[0]["pet"] == "P0001/pet.nii.gz"
    from petcad.io.manifest import load_cohort

    cohort = load_cohort(m)
    truth = simulate_patient(patient_seeds(2, 1)[0])
    np.testing.assert_allclose(cohort.studies[0].pet.array, truth.pet.array, rtol=1e-6, atol=1e-6)
    # a previous phantom is replaced; a foreign non-empty folder is refused and left untouched
    generate_cohort(out, n_patients=1, seed=3, fmt="nifti", workers=1)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        generate_cohort(foreign, n_patients=1, seed=0, workers=1)
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]
    assert not list(tmp_path.glob(".foreign.tmp-*"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_patients=0), "number of patients"),
        (dict(preset="nonsense"), "unknown preset"),
        (dict(fmt="png"), "unknown format"),
        (dict(workers=0), "workers"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    args = dict(n_patients=1, seed=0, workers=1)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        generate_cohort(tmp_path / "o", **args)
    assert not (tmp_path / "o").exists()


def test_cli_bad_input_one_line(tmp_path, capsys):
    from petcad.cli import main

    f = tmp_path / "file"
    f.write_text("x")
    assert main(["phantom", "--out", str(f), "--patients", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a folder" in err and "Traceback" not in err
    assert main(["phantom", "--out", str(tmp_path / "o"), "--preset", "huge"]) == 2


def test_default_statistics_in_documented_ranges():
    """Lesion statistics of 40 simulated patients (in memory, no images) against docs/phantom.md."""
    from petcad.phantom import anatomy as A
    from petcad.phantom import lesions as L
    from petcad.phantom.presets import get_preset

    model = get_preset("default").lesions
    rng = np.random.default_rng(0)
    specs, counts = [], []
    for _ in range(400):
        eff = L.sample_patient_effect(rng, model)
        s = L.sample_nodes(rng, model, eff)
        counts.append(len(s))
        specs += s
    counts = np.array(counts)
    assert counts.min() >= 1 and counts.max() <= 15 and 7.3 <= counts.mean() <= 9.3
    lab = np.array([s.label for s in specs])
    assert 0.42 <= np.mean(lab == "malignant") <= 0.52
    sa = np.array([s.short_axis for s in specs])
    suv = np.array([s.true_suv for s in specs])
    assert 6.0 <= np.median(sa[lab == "benign"]) <= 8.5 and 9.5 <= np.median(sa[lab == "malignant"]) <= 12.5
    assert 2.0 <= np.median(suv[lab == "benign"]) <= 3.5 and 5.0 <= np.median(suv[lab == "malignant"]) <= 7.0
    assert np.mean(suv[lab == "benign"] > 5.0) > 0.1  # avid benign nodes exist (granulomatous)
    nec = np.array([s.necrotic for s in specs])
    calc = np.array([s.calcified for s in specs])
    assert 0.25 <= nec[lab == "malignant"].mean() <= 0.45 and not nec[lab == "benign"].any()
    assert 0.12 <= calc[lab == "benign"].mean() <= 0.28 and not calc[lab == "malignant"].any()
    # placed in images: nodes are not in airway/vessels/lung and do not overlap
    t = simulate_patient(1)
    tis = t.tissue.array
    lm = t.lesion_map.array
    assert set(np.unique(lm)) == set(range(len(t.lesions) + 1))
    assert np.all(tis[lm > 0] == A.NODE)
    for les in t.lesions:
        assert les.label in ("benign", "malignant") and les.station in L.STATIONS
        assert 0.0 < les.volume_ml < 30.0
    liver = tis == A.LIVER
    cv = t.pet.array  # liver CV on the PET grid: the liver's interior
    liver_pet = t.tissue.resample_to(t.pet, interpolator="nearest").array == A.LIVER
    from scipy import ndimage

    core = ndimage.binary_erosion(liver_pet, iterations=2)
    if core.sum() > 50:
        vals = cv[core]
        assert 0.06 <= vals.std() / vals.mean() <= 0.2
    assert liver.any()


def test_primary_tumour_only_when_asked():
    from petcad.phantom.lesions import PRIMARY_SITES
    from petcad.phantom.presets import get_preset

    t = simulate_patient(3, get_preset("default", primary=True))
    prim = [les for les in t.lesions if les.label == "primary"]
    assert len(prim) == 1 and prim[0].station in PRIMARY_SITES and prim[0].short_axis_mm >= 15
    assert "primary" not in {les.label for les in simulate_patient(3).lesions}
