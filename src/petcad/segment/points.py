"""Training points of the segmenter: which voxel centres the 3-class network learns from.

Classes: ``none`` (class 0) followed by the manifest's lesion labels in sorted order (benign,
malignant by default). Per study (every lesion needs a mask):

* **tumour points**: voxel centres of each lesion mask, up to ``per_lesion`` per lesion (a seeded
  random subset of larger lesions), with that lesion's label;
* **no-tumour points**, ``none_ratio`` times the study's tumour points, drawn in equal thirds from
  1. the body (CT above -500 HU, lungs included: holes filled per axial plane), 2. PET-avid
  normal tissue (body voxels with SUV >= ``suv_level``: myocardium, liver, blood pool, marrow,
  kidneys...), 3. the surroundings of each lesion (2 to 12 mm outside its mask, in a random
  direction), never inside any lesion mask and never in the air outside the body;
  with ``hard_negatives`` (a ``petcad segment`` output folder of the same studies, e.g. from an
  earlier run), a fourth equal share from **its false positives**: voxels it labelled as any
  tumour class outside every lesion mask (hard-negative mining: fine-tune the earlier run on them
  with ``--init-weights``).

Patches are sampled on the fly from each study's whole CT and PET (cropped to the CT's
non-air box) by :class:`petcad.patches.sampler.PatchSampler`, through a point table that
gives every point its study's volumes (:class:`PointCache`); the fixed HU / SUV normalisation
is required (a per-patch z-score cannot be evaluated densely).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from petcad.errors import InputError
from petcad.segment.roi import BODY_HU, DEFAULT_SUV_LEVEL
from petcad.study import Volume

NONE_CLASS = "none"


@dataclass
class PointCache:
    """Duck-typed :class:`petcad.patches.cache.LesionCache` whose entries are points of whole studies.

    Every point's table row points at its study's packed CT and PET (no crop per point), so the
    sampler reads any patch of the study; ``reach_mm`` is unbounded."""

    data: np.ndarray
    offsets: np.ndarray  # (n, 2) into data
    shapes: np.ndarray  # (n, 2, 3) ni, nj, nk
    origins: np.ndarray  # (n, 2, 3)
    inverse: np.ndarray  # (n, 2, 3, 3)
    centers_mm: np.ndarray  # (n, 3)
    lesion_ids: list
    with_mask: bool = False
    reach_mm: float = float("inf")

    def __len__(self) -> int:
        return len(self.centers_mm)

    @property
    def memory_mb(self) -> float:
        return self.data.nbytes / 1e6


def _air_crop(ct: Volume, pet: Volume, margin_vox: int = 2) -> tuple[Volume, Volume]:
    """CT and PET cropped to the CT's box of voxels above -900 HU (plus a margin). Outside it the CT
    is air, which the fixed normalisation clips to -1000 HU like the sampler's fill value."""
    idx = np.argwhere(ct.array > -900.0)
    if len(idx) == 0:
        return ct, pet
    lo = np.maximum(idx.min(axis=0) - margin_vox, 0)
    hi = np.minimum(idx.max(axis=0) + margin_vox, np.asarray(ct.array.shape) - 1)
    sub = ct.array[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1, lo[2] : hi[2] + 1]
    ct2 = Volume(np.ascontiguousarray(sub), ct.index_to_world(lo[::-1].astype(float)), ct.spacing, ct.direction)
    a, b = ct2.bounds_world()
    corners = np.array([[x, y, z] for x in (a[0], b[0]) for y in (a[1], b[1]) for z in (a[2], b[2])])
    pidx = pet.world_to_index(corners)
    plo = np.maximum(np.floor(pidx.min(axis=0)).astype(int) - 1, 0)[::-1]
    phi = np.minimum(np.ceil(pidx.max(axis=0)).astype(int) + 1, np.asarray(pet.shape_ijk) - 1)[::-1]
    psub = pet.array[plo[0] : phi[0] + 1, plo[1] : phi[1] + 1, plo[2] : phi[2] + 1]
    pet2 = Volume(np.ascontiguousarray(psub), pet.index_to_world(plo[::-1].astype(float)), pet.spacing, pet.direction)
    return ct2, pet2


def _inside_any(masks: list[Volume], pts: np.ndarray) -> np.ndarray:
    """Whether world points fall in a nonzero voxel (nearest) of any mask."""
    hit = np.zeros(len(pts), dtype=bool)
    for m in masks:
        ijk = np.rint(m.world_to_index(pts)).astype(np.int64)
        ok = np.all((ijk >= 0) & (ijk < np.asarray(m.shape_ijk)), axis=1)
        v = np.zeros(len(pts), dtype=bool)
        q = ijk[ok]
        v[ok] = m.array[q[:, 2], q[:, 1], q[:, 0]] != 0
        hit |= v
    return hit


def _pick(rng, candidates: np.ndarray, n: int) -> np.ndarray:
    if len(candidates) == 0 or n <= 0:
        return candidates[:0]
    return candidates[rng.choice(len(candidates), size=min(n, len(candidates)), replace=False)]


def study_points(study, classes: list[str], rng, *, per_lesion: int, none_ratio: float,
                 suv_level: float, predicted: Volume | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(points (n, 3) mm, class index (n,), kind per point) of one study; ``predicted``: an earlier
    segmentation's tumour voxels (nonzero) on any grid, whose false positives become hard negatives."""
    from petcad.segment.roi import body_mask

    pts, ys, kinds, masks = [], [], [], []
    for les in study.lesions:
        if les.mask is None:
            raise InputError(les.lesion_id, "segmentation training needs a mask for every lesion (manifest column mask)")
        m = les.mask
        masks.append(m)
        vox = np.argwhere(m.array != 0)[:, ::-1].astype(np.float64)
        w = _pick(rng, m.index_to_world(vox), per_lesion)
        pts.append(w)
        ys.append(np.full(len(w), classes.index(les.label)))
        kinds += ["lesion"] * len(w)
    n_les = sum(len(p) for p in pts)
    n_each = int(round(none_ratio * max(n_les, per_lesion) / (3.0 if predicted is None else 4.0)))
    ct = study.ct
    body = body_mask(ct.array, BODY_HU)
    body_idx = np.argwhere(body)[:, ::-1].astype(np.float64)
    body_w = ct.index_to_world(_pick(rng, body_idx, 4 * n_each + 16))
    body_w = body_w[~_inside_any(masks, body_w)][:n_each]
    pet_ct = study.pet.resample_to(ct, "linear", 0.0).array
    avid_idx = np.argwhere(body & (pet_ct >= suv_level))[:, ::-1].astype(np.float64)
    avid_w = ct.index_to_world(_pick(rng, avid_idx, 4 * n_each + 16))
    avid_w = avid_w[~_inside_any(masks, avid_w)][:n_each]
    near = []
    if n_les:
        base = np.concatenate(pts)
        base = base[rng.integers(0, len(base), size=4 * n_each + 16)]
        d = rng.normal(size=base.shape)
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        cand = base + d * rng.uniform(2.0, 12.0, size=(len(base), 1))
        ijk = np.rint(ct.world_to_index(cand)).astype(np.int64)
        ok = np.all((ijk >= 0) & (ijk < np.asarray(ct.shape_ijk)), axis=1)
        ok[ok] = body[ijk[ok, 2], ijk[ok, 1], ijk[ok, 0]]
        cand = cand[ok]
        near = cand[~_inside_any(masks, cand)][:n_each]
    hard = np.zeros((0, 3))
    if predicted is not None:
        idx = np.argwhere(predicted.array != 0)[:, ::-1].astype(np.float64)
        hard = predicted.index_to_world(_pick(rng, idx, 4 * n_each + 16))
        hard = hard[~_inside_any(masks, hard)][:n_each]
    for w, kind in ((body_w, "body"), (avid_w, "avid"), (np.asarray(near).reshape(-1, 3), "surroundings"),
                    (hard, "false positive")):
        pts.append(w)
        ys.append(np.zeros(len(w), dtype=np.int64))
        kinds += [kind] * len(w)
    return np.concatenate(pts), np.concatenate(ys).astype(np.int64), kinds


def segment_classes(labels) -> list[str]:
    present = sorted({str(lab) for lab in labels})
    if NONE_CLASS in present:
        raise InputError("manifest", f"the label {NONE_CLASS!r} is reserved for the no-tumour class of segmentation")
    if not present:
        raise InputError("manifest", "no lesion labels")
    return [NONE_CLASS] + present


def _predicted_tumour(folder, patient_id: str) -> Volume:
    """The tumour voxels of ``folder/<patient_id>/labels.nii.gz`` (a ``petcad segment`` output)."""
    from pathlib import Path

    from petcad.io.volumes import read_image

    path = Path(folder) / patient_id / "labels.nii.gz"
    if not path.is_file():
        raise InputError(path, f"--hard-negatives: no petcad segment output for patient {patient_id!r}")
    return read_image(path, modality="mask")


def build_segment_data(cohort, *, size: int = 51, spacing_mm: float = 1.0, seed: int = 0, per_lesion: int = 64,
                       none_ratio: float = 3.0, suv_level: float = DEFAULT_SUV_LEVEL, sources=None,
                       hard_negatives=None):
    """A :class:`petcad.models.data.LesionData` of training points (``task = "segment"``) for ``cohort``;
    ``hard_negatives``: a ``petcad segment`` output folder of the same studies (see the module docstring)."""
    from petcad.models.data import LesionData

    if per_lesion < 1:
        raise InputError("--points-per-lesion", "must be at least 1")
    if not none_ratio > 0:
        raise InputError("--none-ratio", "must be positive")
    classes = segment_classes(les.label for _, les in cohort.iter_lesions())
    vols, point_rows, ys, groups, ids, kinds = [], [], [], [], [], []
    for s_idx, study in enumerate(cohort.studies):
        ct = study.require_ct("segmentation training") if hasattr(study, "require_ct") else study.ct
        rng = np.random.default_rng([seed, s_idx])
        pred = None if hard_negatives is None else _predicted_tumour(hard_negatives, study.patient_id)
        p, y, k = study_points(study, classes, rng, per_lesion=per_lesion, none_ratio=none_ratio, suv_level=suv_level,
                               predicted=pred)
        vols.append(_air_crop(ct, study.pet))
        point_rows.append((s_idx, p))
        ys.append(y)
        groups += [study.patient_id] * len(p)
        ids += [f"{study.patient_id}:{kk}:{n}" for n, kk in enumerate(k)]
        kinds += k
    cache = _pack(vols, point_rows, ids)
    data = LesionData(cache=cache, y=np.concatenate(ys), groups=np.asarray(groups), lesion_ids=np.asarray(ids),
                      size=size, spacing_mm=spacing_mm, normalization="fixed", classes=tuple(classes),
                      sources=list(sources or []))
    data.task = "segment"
    data.point_kinds = np.asarray(kinds)
    names, counts = np.unique(np.asarray(kinds), return_counts=True)
    data.point_settings = {"per_lesion": per_lesion, "none_ratio": none_ratio, "suv_level": suv_level, "seed": seed,
                           "hard_negatives": None if hard_negatives is None else str(hard_negatives),
                           "counts": {str(n): int(c) for n, c in zip(names, counts)}}
    return data


def _pack(vols, point_rows, ids) -> PointCache:
    sizes = [v.array.size for pair in vols for v in pair]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64).reshape(-1, 2)
    buf = np.empty(int(sum(sizes)), dtype=np.float32)
    for s, pair in enumerate(vols):
        for m, v in enumerate(pair):
            buf[starts[s, m] : starts[s, m] + v.array.size] = v.array.reshape(-1)
    study_of = np.concatenate([np.full(len(p), s) for s, p in point_rows]).astype(np.int64)
    shapes = np.array([[v.shape_ijk for v in pair] for pair in vols], dtype=np.int64)
    origins = np.array([[v.origin for v in pair] for pair in vols])
    inverse = np.array([[np.linalg.inv(v.direction * v.spacing[None, :]) for v in pair] for pair in vols])
    return PointCache(data=buf, offsets=starts[study_of], shapes=shapes[study_of], origins=origins[study_of],
                      inverse=inverse[study_of], centers_mm=np.concatenate([p for _, p in point_rows]),
                      lesion_ids=list(ids))


def load_segment_data(manifest, *, size: int = 51, spacing_mm: float = 1.0, seed: int = 0, per_lesion: int = 64,
                      none_ratio: float = 3.0, suv_level: float = DEFAULT_SUV_LEVEL, hard_negatives=None):
    """(cohort, training points) of a manifest whose lesions all have masks."""
    from pathlib import Path

    from petcad.io.manifest import load_cohort

    manifest = Path(manifest)
    cohort = load_cohort(manifest, allowed_labels=None)
    missing = [les.lesion_id for _, les in cohort.iter_lesions() if les.mask is None]
    if missing:
        raise InputError(manifest, f"segmentation training needs a mask for every lesion; {len(missing)} have none "
                                   f"(first: {missing[0]})")
    data = build_segment_data(cohort, size=size, spacing_mm=spacing_mm, seed=seed, per_lesion=per_lesion,
                              none_ratio=none_ratio, suv_level=suv_level, hard_negatives=hard_negatives)
    return cohort, data
