"""Preview PNGs: axial, coronal and sagittal planes through a lesion (CT lung and mediastinal windows, PET, fused).

Radiological convention: axial viewed from the feet (patient's right on the image
left, anterior up); coronal viewed from the front (patient's right on the left,
head up); sagittal viewed from the patient's left (anterior on the left, head up).
Axes are in mm; the lesion outline is drawn in green.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from petcad.io.atomic import atomic_path


def _planes(vol_arr: np.ndarray, k: int, j: int, i: int):
    return vol_arr[k], vol_arr[:, j, :], vol_arr[:, :, i]


def render_lesion(truth, lesion_index: int, path) -> Path:
    """Write one PNG (3 planes x CT lung / CT mediastinum / PET / fused) through lesion ``lesion_index`` (1-based)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ct = truth.ct
    les = truth.lesions[lesion_index - 1]
    pet_ct = truth.pet.resample_to(ct, interpolator="linear")
    i, j, k = np.rint(ct.world_to_index(les.center_mm)).astype(int)
    o, sp = ct.origin, ct.spacing
    nk, nj, ni = ct.array.shape
    x = (o[0] - sp[0] / 2, o[0] + sp[0] * (ni - 0.5))
    y = (o[1] - sp[1] / 2, o[1] + sp[1] * (nj - 0.5))
    z = (o[2] - sp[2] / 2, o[2] + sp[2] * (nk - 0.5))
    # extents: axial (x left->right, y top->bottom), coronal (x, z up), sagittal (y anterior left, z up)
    extents = [(x[0], x[1], y[1], y[0]), (x[0], x[1], z[0], z[1]), (y[0], y[1], z[0], z[1])]
    origins = ["upper", "lower", "lower"]
    lmask = (truth.lesion_map.array == les.index).astype(np.uint8)
    ct_p = _planes(ct.array, k, j, i)
    pet_p = _planes(pet_ct.array, k, j, i)
    m_p = _planes(lmask, k, j, i)
    vmax = max(4.0, float(np.percentile(pet_ct.array[lmask > 0], 99)) if lmask.any() else 6.0)
    fig, axes = plt.subplots(3, 4, figsize=(16, 12))
    names = ["axial (from feet)", "coronal (from front)", "sagittal (from left)"]
    for r in range(3):
        kw = dict(extent=extents[r], origin=origins[r], interpolation="nearest")
        a = axes[r]
        a[0].imshow(ct_p[r], cmap="gray", vmin=-1350, vmax=150, **kw)
        a[1].imshow(ct_p[r], cmap="gray", vmin=-160, vmax=240, **kw)
        a[2].imshow(pet_p[r], cmap="gray_r", vmin=0, vmax=vmax, **kw)
        a[3].imshow(ct_p[r], cmap="gray", vmin=-160, vmax=240, **kw)
        a[3].imshow(pet_p[r], cmap="hot", vmin=0, vmax=vmax, alpha=0.5, **kw)
        for c in (0, 1, 3):
            if m_p[r].any():
                a[c].contour(m_p[r], levels=[0.5], colors="lime", linewidths=0.8, extent=kw["extent"],
                             origin=origins[r])
        for c, t in enumerate(["CT lung window", "CT W400 L40", f"PET SUV 0-{vmax:.0f}", "PET/CT fused"]):
            a[c].set_title(f"{names[r]}: {t}", fontsize=9)
            a[c].tick_params(labelsize=7)
        a[0].text(0.02, 0.5, "R", color="yellow", transform=a[0].transAxes, fontsize=12) if r < 2 else \
            a[0].text(0.02, 0.5, "A", color="yellow", transform=a[0].transAxes, fontsize=12)
    fig.suptitle(f"{les.lesion_id}: {les.label}, station {les.station}, short axis {les.short_axis_mm:.1f} mm, "
                 f"true SUV {les.true_suv:.1f}, SUVmax {les.suvmax_pet:.1f} (synthetic phantom)", fontsize=12)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return path


def write_cohort_preview(out_dir, seed: int, preset, n_patients: int = 1) -> list[Path]:
    """Re-simulate the first ``n_patients`` (deterministic) and write previews through their most avid malignant
    lesion (or most avid lesion) into ``out_dir/preview/``."""
    from petcad.phantom.cohort import patient_seeds, simulate_patient

    seeds = patient_seeds(seed, n_patients)
    written = []
    for num, ss in enumerate(seeds, start=1):
        t = simulate_patient(ss, preset, num)
        if not t.lesions:
            continue
        mal = [les for les in t.lesions if les.label == "malignant"] or t.lesions
        best = max(mal, key=lambda les: les.true_suv)
        written.append(render_lesion(t, best.index, Path(out_dir) / "preview" / f"{best.lesion_id}.png"))
    return written
