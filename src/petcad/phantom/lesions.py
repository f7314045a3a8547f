"""Lymph nodes of one synthetic patient: stations, size, shape, uptake, flags and the patient effect.

Nodes are drawn per patient (see :class:`petcad.phantom.presets.LesionModel` for
every parameter and its source), placed at the IASLC station of the mediastinum
or hilum they belong to by rejection sampling (no overlap with another node,
airway, vessel lumen, heart, bone; little lung), and painted into the anatomy
maps as lobulated ellipsoids with optional necrotic core, calcification or
fatty hilum. Lengths in mm (LPS, carina at z = 0), activity in SUV, CT in HU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from petcad.phantom import anatomy as A
from petcad.phantom.presets import LesionModel

# station centre templates (mm, LPS, carina at z = 0), jitter SD (mm), sampling weight, max lung fraction
STATIONS: dict[str, tuple[tuple[float, float, float], float, float, float]] = {
    "2R": ((-17.0, 2.0, 60.0), 7.0, 0.08, 0.15),
    "2L": ((15.0, 6.0, 62.0), 7.0, 0.04, 0.15),
    "4R": ((-18.0, 0.0, 20.0), 6.0, 0.16, 0.15),
    "4L": ((16.0, 10.0, 18.0), 5.0, 0.09, 0.15),
    "5": ((32.0, -4.0, 14.0), 5.0, 0.08, 0.25),
    "6": ((8.0, -38.0, 36.0), 6.0, 0.04, 0.25),
    "7": ((0.0, 20.0, -24.0), 5.0, 0.17, 0.15),
    "8": ((-10.0, 32.0, -58.0), 6.0, 0.03, 0.25),
    "10R": ((-42.0, -6.0, -10.0), 6.0, 0.10, 0.40),
    "10L": ((44.0, -6.0, -20.0), 6.0, 0.08, 0.40),
    "11R": ((-58.0, 16.0, -38.0), 6.0, 0.07, 0.45),
    "11L": ((60.0, 16.0, -44.0), 6.0, 0.06, 0.45),
}
# tissues a node may not overlap (beyond a 4 % tolerance for the voxelised edge)
_FORBIDDEN = np.array([A.AIRWAY, A.BLOOD, A.MYOCARDIUM, A.BONE, A.MARROW, A.CORD, A.NODE, A.OUTSIDE, A.LIVER])


@dataclass
class PatientEffect:
    """Per-patient latent variables shared by all the patient's nodes."""

    p_malignant: float  # probability that a node of this patient is malignant
    suv_log_effect: float  # added to log SUV of every node
    granulomatous: bool  # benign nodes avid and larger (TB, sarcoid, anthracosis)


@dataclass
class NodeSpec:
    """One drawn node before placement (mm, HU, SUV)."""

    label: str
    station: str
    short_axis: float
    long_axis: float
    mid_axis: float
    true_suv: float
    hu: float
    calcified: bool
    necrotic: bool
    fatty_hilum: bool


@dataclass
class PlacedLesion:
    """A node painted into the maps: spec, centre (mm) and the voxel box + mask on the CT grid."""

    spec: NodeSpec
    center: np.ndarray  # mm, LPS (centroid of the painted mask)
    box: tuple[slice, slice, slice]  # [k, j, i] slices of the CT grid
    mask: np.ndarray  # bool, shape of the box
    volume_ml: float


def sample_patient_effect(rng: np.random.Generator, model: LesionModel) -> PatientEffect:
    a, b = model.patient_malignant_beta
    return PatientEffect(
        p_malignant=float(rng.beta(a, b)),
        suv_log_effect=float(rng.normal(0.0, model.patient_suv_logsd)),
        granulomatous=bool(rng.random() < model.granulomatous_share),
    )


def sample_nodes(rng: np.random.Generator, model: LesionModel, effect: PatientEffect) -> list[NodeSpec]:
    """Draw the number of nodes, their labels, sizes, uptake and flags for one patient."""
    n = int(np.clip(1 + rng.poisson(model.nodes_mean - 1.0), 1, model.nodes_max))
    names = list(STATIONS)
    w = np.array([STATIONS[s][2] for s in names])
    stations = rng.choice(names, size=n, p=w / w.sum())
    specs = []
    for st in stations:
        label = "malignant" if rng.random() < effect.p_malignant else "benign"
        gran = effect.granulomatous and label == "benign"
        med = model.short_axis_median[label] * (model.granulomatous_size_factor if gran else 1.0)
        lo, hi = model.short_axis_range
        short = float(np.clip(med * np.exp(rng.normal(0, model.short_axis_logsd[label])), lo, hi))
        long_ = short * (1.0 + rng.gamma(2.0, model.axis_ratio_mean_extra[label] / 2.0))
        mid = float(np.clip(short * rng.uniform(1.0, 1.3), short, long_))
        log_suv = (
            np.log(model.suv_median[label])
            + rng.normal(0, model.suv_logsd[label])
            + model.suv_size_slope * np.log(short / model.short_axis_median[label])
            + effect.suv_log_effect
            + (np.log(model.granulomatous_suv_factor) if gran else 0.0)
        )
        true_suv = float(np.clip(np.exp(log_suv), 0.6, 30.0))
        hu = float(np.clip(rng.normal(model.hu_median[label], model.hu_sd[label]), -50.0, 80.0))
        calcified = bool(rng.random() < model.p_calcified[label] * (1.6 if gran else 1.0))
        # necrosis more likely in large nodes (logistic in short axis, mean rate p_necrotic)
        pn = model.p_necrotic[label]
        necrotic = bool(short >= 8.0 and rng.random() < min(1.0, pn * (short / model.short_axis_median[label]) ** 1.5))
        fatty = bool(not calcified and rng.random() < model.p_fatty_hilum[label])
        specs.append(NodeSpec(label, str(st), short, float(long_), mid, true_suv, hu, calcified, necrotic, fatty))
    return specs


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Columns: node axes (short, mid, long) in world; long axis within ~30 deg of cranio-caudal."""
    tilt = np.deg2rad(rng.uniform(0, 30))
    az = rng.uniform(0, 2 * np.pi)
    long_ax = np.array([np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), np.cos(tilt)])
    tmp = np.cross(long_ax, rng.normal(size=3))
    short_ax = tmp / np.linalg.norm(tmp)
    mid_ax = np.cross(long_ax, short_ax)
    return np.stack([short_ax, mid_ax, long_ax], axis=1)


def _node_field(spec: NodeSpec, center, R, origin, spacing, shape, rng):
    """(box slices, normalised radius rho, lobulation threshold, unit directions in node frame) or None."""
    semi = np.array([spec.short_axis, spec.mid_axis, spec.long_axis]) / 2.0
    ext = semi.max() * 1.3 + 2 * spacing.max()
    i0 = np.maximum(np.floor((center - ext - origin) / spacing).astype(int), 0)
    i1 = np.minimum(np.ceil((center + ext - origin) / spacing).astype(int) + 1, np.array(shape[::-1]))
    if np.any(i1 - i0 < 2):
        return None
    xs = origin[0] + spacing[0] * np.arange(i0[0], i1[0]) - center[0]
    ys = origin[1] + spacing[1] * np.arange(i0[1], i1[1]) - center[1]
    zs = origin[2] + spacing[2] * np.arange(i0[2], i1[2]) - center[2]
    P = np.stack(np.broadcast_arrays(xs[None, None, :], ys[None, :, None], zs[:, None, None]), axis=-1)
    local = P @ R  # coordinates along (short, mid, long)
    q = local / semi
    rho = np.sqrt((q * q).sum(-1))
    u = q / np.maximum(rho, 1e-6)[..., None]
    box = (slice(i0[2], i1[2]), slice(i0[1], i1[1]), slice(i0[0], i1[0]))
    return box, rho, u, local, semi


def place_and_paint(
    specs: list[NodeSpec],
    anat: A.Anatomy,
    origin: np.ndarray,
    spacing: np.ndarray,
    rng: np.random.Generator,
    model: LesionModel,
    max_tries: int = 40,
) -> list[PlacedLesion]:
    """Place each node at its station (or a fallback station) and paint it into ``anat`` in place."""
    shape = anat.hu.shape
    placed: list[PlacedLesion] = []
    names = list(STATIONS)
    for spec in specs:
        if spec.label == "primary":
            sites = list(PRIMARY_SITES)
            cands = [(sites[i], *PRIMARY_SITES[sites[i]], 1.0) for i in rng.permutation(len(sites))]
        else:
            order = [spec.station] + [s for s in rng.permutation(names) if s != spec.station]
            cands = [(st, STATIONS[st][0], STATIONS[st][1], STATIONS[st][3]) for st in order[:4]]
        done = False
        for st, tmpl, sd, max_lung in cands:
            for _ in range(max_tries):
                center = np.asarray(tmpl) + rng.normal(0, sd, 3) * np.array([1.0, 1.0, 1.6])
                R = _random_rotation(rng)
                res = _node_field(spec, center, R, origin, spacing, shape, rng)
                if res is None:
                    continue
                box, rho, u, local, semi = res
                k = rng.normal(size=(3, 3)) * 2.0
                ph = rng.uniform(0, 2 * np.pi, 3)
                # the checks run on the plain ellipsoid (cheap); the lobulated shape is made once accepted
                base = rho <= 1.0
                if int(base.sum()) < 4:
                    continue
                tis_box = anat.tissue[box]
                tis = tis_box[base]
                near = tis_box[rho <= 1.35]  # a margin of ~1/3 radius must be free of other nodes
                if np.isin(tis, _FORBIDDEN).mean() > 0.04 or (near == A.NODE).any():
                    continue
                if (tis == A.LUNG).mean() > max_lung:
                    continue
                lob = sum(np.cos(u @ k[m] + ph[m]) for m in range(3)) / 3.0
                inside = (rho <= 1.0 + model.lobulation * lob) & ~np.isin(tis_box, _FORBIDDEN)
                if int(inside.sum()) < 4:
                    continue
                spec.station = st
                done = True
                break
            if done:
                break
        if not done:
            continue  # no room left: the node is dropped (rare; counted in the truth)
        hu_b, suv_b, tis_b = anat.hu[box], anat.suv[box], anat.tissue[box]
        hu_n = np.full(inside.shape, spec.hu, np.float32)
        suv_n = np.full(inside.shape, spec.true_suv, np.float32)
        if spec.necrotic:
            core = rho <= rng.uniform(0.45, 0.65)
            hu_n[core] = model.necrotic_hu + rng.normal(0, 5)
            suv_n[core] = spec.true_suv * model.necrotic_suv_fraction
        if spec.calcified:
            off = rng.normal(0, 0.3, 3) * semi
            rc = semi.min() * rng.uniform(0.3, 0.55)
            calc = ((local - off) ** 2).sum(-1) <= rc * rc
            hu_n[calc] = rng.uniform(*model.calcified_hu)
        if spec.fatty_hilum:
            h = rng.normal(size=3)
            h[2] = 0.0
            h /= np.linalg.norm(h) + 1e-9
            fat = (u @ h > 0.55) & (rho > 0.35)
            hu_n[fat] = model.fat_hu
            suv_n[fat] = 0.4
        hu_b[inside] = hu_n[inside]
        suv_b[inside] = suv_n[inside]
        tis_b[inside] = A.NODE
        zz, yy, xx = np.nonzero(inside)
        idx = np.stack([xx + box[2].start, yy + box[1].start, zz + box[0].start], -1).mean(0)
        centroid = origin + spacing * idx
        vol = float(inside.sum() * np.prod(spacing) / 1000.0)
        placed.append(PlacedLesion(spec, centroid, box, inside, vol))
    return placed


def primary_tumour(rng: np.random.Generator) -> NodeSpec:
    """An optional primary lung tumour (label ``primary``): 15-50 mm, SUV 11 +- 4 (Wang 2015)."""
    d = float(rng.uniform(15, 50))
    return NodeSpec("primary", "lung", d, d * rng.uniform(1.0, 1.3), d * rng.uniform(1.0, 1.15),
                    float(np.clip(rng.normal(11.0, 4.0), 3.0, 25.0)), float(rng.normal(35, 8)),
                    False, bool(d > 30 and rng.random() < 0.5), False)


# the primary sits in a lung: a station-like template per lobe
PRIMARY_SITES = {"RUL": ((-75.0, 0.0, 45.0), 12.0), "RLL": ((-80.0, 35.0, -60.0), 12.0),
                 "LUL": ((75.0, 0.0, 40.0), 12.0), "LLL": ((80.0, 35.0, -65.0), 12.0)}
