"""The lesion list of a segmentation: connected components of the tumour voxels.

Every voxel whose label is a tumour class (label >= 1) belongs to a lesion; lesions are the
26-connected components of those voxels (benign and malignant voxels that touch merge into one
lesion). Per lesion:

* ``x, y, z``: centroid of its voxels (mm, LPS); ``volume_ml``: voxels x voxel volume;
* ``suv_max``, ``suv_mean``: over the PET voxels whose centres fall in the lesion (on the PET's
  own grid; a lesion smaller than a PET voxel uses the PET voxel nearest its centroid);
* ``suv_peak``: the largest mean SUV in a 1 mL sphere (radius 6.20 mm; PET voxels whose centres
  lie within it) centred on one of those PET voxels;
* ``p_<class>``: mean probability of each class over the lesion's voxels; ``predicted``: the tumour
  class with the highest mean probability.
"""

from __future__ import annotations

import numpy as np

from petcad.study import Volume

COLUMNS_FIXED = ("lesion", "x", "y", "z", "volume_ml", "suv_max", "suv_mean", "suv_peak")
PEAK_RADIUS_MM = float((3.0 / (4.0 * np.pi)) ** (1.0 / 3.0) * 10.0)  # 1 mL sphere: 6.2035 mm


def columns(classes) -> list[str]:
    return list(COLUMNS_FIXED) + [f"p_{c}" for c in classes] + ["predicted"]


def peak_map(pet: Volume, radius_mm: float = PEAK_RADIUS_MM) -> np.ndarray:
    """Mean SUV in a sphere of ``radius_mm`` around every PET voxel (voxels whose centres lie within;
    outside the volume does not count)."""
    from scipy import ndimage

    r = np.ceil(radius_mm / pet.spacing).astype(int)
    kk, jj, ii = np.meshgrid(*(np.arange(-n, n + 1) for n in r[::-1]), indexing="ij")
    off = np.stack([ii, jj, kk], axis=-1) * pet.spacing
    world = off @ pet.direction.T
    kernel = (np.linalg.norm(world, axis=-1) <= radius_mm + 1e-9).astype(np.float64)
    arr = pet.array.astype(np.float64)
    s = ndimage.correlate(arr, kernel, mode="constant", cval=0.0)
    n = ndimage.correlate(np.ones_like(arr), kernel, mode="constant", cval=0.0)
    return (s / np.maximum(n, 1)).astype(np.float32)


def lesion_table(labels: Volume, probs: list[np.ndarray], pet: Volume, classes) -> tuple[list[dict], np.ndarray]:
    """(rows, component image) for a label map on some grid, the class probability maps on the same
    grid, and the PET (SUV). Rows follow :func:`columns`; component ``n`` is lesion ``n``."""
    from scipy import ndimage

    comp, n = ndimage.label(labels.array > 0, structure=np.ones((3, 3, 3), bool))
    rows: list[dict] = []
    if n == 0:
        return rows, comp
    peak = peak_map(pet)
    vox_ml = float(np.prod(labels.spacing)) / 1000.0
    # PET voxel centres -> nearest label-grid voxel: which component holds each PET voxel
    kp, jp, ip = np.indices(pet.array.shape)
    pet_ijk = np.stack([ip.ravel(), jp.ravel(), kp.ravel()], axis=1).astype(np.float64)
    lab_idx = np.rint(labels.world_to_index(pet.index_to_world(pet_ijk))).astype(np.int64)
    shp = np.asarray(labels.shape_ijk)
    inside = np.all((lab_idx >= 0) & (lab_idx < shp), axis=1)
    pet_comp = np.zeros(len(pet_ijk), dtype=np.int64)
    li = lab_idx[inside]
    pet_comp[inside] = comp[li[:, 2], li[:, 1], li[:, 0]]
    pet_vals, peak_vals = pet.array.ravel(), peak.ravel()
    order = np.argsort(pet_comp, kind="stable")
    bounds = np.searchsorted(pet_comp[order], np.arange(n + 2))
    for idx, sl in enumerate(ndimage.find_objects(comp), start=1):
        local = comp[sl] == idx
        kji = np.argwhere(local) + np.array([s.start for s in sl])
        centre = labels.index_to_world(kji[:, ::-1].astype(np.float64).mean(axis=0))
        sel = order[bounds[idx] : bounds[idx + 1]]
        if len(sel) == 0:  # smaller than a PET voxel: the PET voxel nearest the centroid
            near = np.rint(pet.world_to_index(centre)).astype(np.int64)
            near = np.clip(near, 0, np.asarray(pet.shape_ijk) - 1)
            sel = np.array([np.ravel_multi_index(tuple(near[::-1]), pet.array.shape)])
        row = {"lesion": idx, "x": float(centre[0]), "y": float(centre[1]), "z": float(centre[2]),
               "volume_ml": float(len(kji) * vox_ml), "suv_max": float(pet_vals[sel].max()),
               "suv_mean": float(pet_vals[sel].mean()), "suv_peak": float(peak_vals[sel].max())}
        means = [float(p[sl][local].mean()) for p in probs]
        for c, m in zip(classes, means):
            row[f"p_{c}"] = m
        row["predicted"] = classes[1 + int(np.argmax(means[1:]))]
        rows.append(row)
    return rows, comp


def lesion_score(row: dict, classes) -> float:
    """A predicted lesion's detection score: its mean probability of any tumour class."""
    return float(sum(float(row[f"p_{c}"]) for c in classes[1:]))
