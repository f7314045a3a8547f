"""Training points of the segmenter: hard negatives from an earlier segmentation's false positives."""

from __future__ import annotations

import numpy as np
import pytest

from petcad.errors import InputError


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from petcad.io.manifest import load_cohort
    from petcad.phantom import generate_cohort

    root = tmp_path_factory.mktemp("points")
    manifest = generate_cohort(root / "c", n_patients=1, seed=5, preset="default", fmt="nifti", workers=1)
    return root, load_cohort(manifest, allowed_labels=None)


def _write_prediction(root, study):
    """A 'segmentation' of the study: every lesion mask grown by 3 voxels (so partly true, partly false
    positive) plus a 6-voxel cube far from every lesion, on the CT grid."""
    from scipy import ndimage

    from petcad.io.volumes import write_image
    from petcad.study import Volume

    ct = study.ct
    lab = np.zeros(ct.array.shape, dtype=np.uint8)
    truth = np.zeros(ct.array.shape, dtype=bool)
    for les in study.lesions:
        m = les.mask.resample_to(ct, "nearest").array > 0
        truth |= m
        lab[ndimage.binary_dilation(m, iterations=3)] = 2
    far = np.argwhere((ct.array > -500) & ~ndimage.binary_dilation(truth, iterations=30))[0]
    lab[far[0] : far[0] + 6, far[1] : far[1] + 6, far[2] : far[2] + 6] = 1
    out = root / "seg" / study.patient_id
    out.mkdir(parents=True, exist_ok=True)
    write_image(Volume(lab, ct.origin, ct.spacing, ct.direction), out / "labels.nii.gz")
    return lab > 0, truth


def test_hard_negatives_are_predicted_tumour_voxels_outside_every_mask(cohort):
    from petcad.segment.points import build_segment_data

    root, c = cohort
    study = c.studies[0]
    predicted, truth = _write_prediction(root, study)
    plain = build_segment_data(c, seed=0, per_lesion=8, none_ratio=4.0)
    hard = build_segment_data(c, seed=0, per_lesion=8, none_ratio=4.0, hard_negatives=root / "seg")
    kinds = hard.point_kinds
    fp = hard.cache.centers_mm[kinds == "false positive"]
    n_tumour = int((kinds == "lesion").sum())
    assert len(fp) == round(4.0 * n_tumour / 4.0)  # a fourth equal share of the no-tumour points
    assert np.all(hard.y[kinds == "false positive"] == 0)
    ijk = np.rint(study.ct.world_to_index(fp)).astype(int)
    assert predicted[ijk[:, 2], ijk[:, 1], ijk[:, 0]].all()  # on predicted tumour voxels
    assert not truth[ijk[:, 2], ijk[:, 1], ijk[:, 0]].any()  # never inside a lesion mask
    # the other shares shrink from thirds to fourths; nothing else changes
    assert "false positive" not in set(plain.point_kinds)
    assert (plain.point_kinds == "lesion").sum() == n_tumour
    assert (kinds == "body").sum() == round(4.0 * n_tumour / 4.0) < (plain.point_kinds == "body").sum()
    assert hard.point_settings["hard_negatives"] == str(root / "seg")
    assert hard.point_settings["counts"]["false positive"] == len(fp)


def test_hard_negatives_need_every_study(cohort, tmp_path):
    from petcad.segment.points import build_segment_data

    _, c = cohort
    with pytest.raises(InputError, match="no petcad segment output"):
        build_segment_data(c, per_lesion=8, hard_negatives=tmp_path)
