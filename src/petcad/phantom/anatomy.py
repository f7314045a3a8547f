"""Thorax anatomy of one synthetic patient: noise-free CT (HU), FDG activity (SUV) and a tissue map.

All geometry is in world millimetres, DICOM LPS (+x patient's left, +y posterior,
+z head), with the carina at ``(0, CARINA_Y, 0)``. Structures are analytic
(ellipses, superellipses and tapered tubes) evaluated on the whole CT grid with
numpy broadcasting; tubes are rasterised on their bounding sub-box only.

CT values (non-contrast, textbook tables in the literature file): lung -850 HU
(posterior, dependent lung denser), fat -90, muscle 45, blood 40, liver 55,
trabecular bone 220, cortical bone 700, air -1000. FDG SUVs (Boktor 2013,
CAMONA, Miyauchi & Wahl 1996): lung 0.4 (0.55 dependent), fat 0.3, muscle 0.7,
soft tissue 0.8, blood pool 1.8, liver 2.3, marrow 1.5, myocardium 0-10 (per
patient), per-patient values drawn in :func:`sample_anatomy_params`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# tissue codes of the tissue map (uint8)
OUTSIDE, FAT, MUSCLE, LUNG, BONE, MARROW, AIRWAY, BLOOD, MYOCARDIUM, LIVER, SOFT, MEDIASTINAL_FAT, CORD, NODE = range(14)
TISSUE_NAMES = (
    "outside", "fat", "muscle", "lung", "bone", "marrow", "airway", "blood",
    "myocardium", "liver", "soft_tissue", "mediastinal_fat", "cord", "node",
)
CARINA_Y = 12.0  # mm: the carina lies 12 mm posterior of the body centre line
# fixed landmarks (mm, LPS, carina at z = 0)
TRACHEA_TOP_Z = 400.0


@dataclass(frozen=True)
class AnatomyParams:
    """Per-patient body habitus and tissue uptake (mm, HU, SUV)."""

    cage_a: float  # rib-cage half width (x), mm
    cage_b: float  # rib-cage half depth (y), mm
    fat: float  # subcutaneous fat thickness, mm
    muscle: float  # chest-wall muscle thickness, mm
    apex_z: float  # lung apex above the carina, mm
    dome_z_right: float  # right hemidiaphragm dome (below the carina: negative), mm
    dome_z_left: float
    suv_lung: float
    suv_fat: float
    suv_muscle: float
    suv_blood: float
    suv_liver: float
    suv_marrow: float
    suv_myocardium: float
    suv_soft: float
    lung_hu: float


def sample_anatomy_params(rng: np.random.Generator, bmi: float) -> AnatomyParams:
    """Draw a patient's habitus and tissue SUVs; ``bmi`` in kg/m^2 sets the fat layer and uptake."""
    s = float(np.clip(rng.normal(1.0, 0.05), 0.88, 1.12))
    # SUVbw of blood and liver rise with BMI (Boktor 2013; obese liver 4.1, blood 3.2)
    bmi_gain = 1.0 + 0.03 * (bmi - 24.0)
    myo = rng.uniform(1.4, 2.2) if rng.random() < 0.4 else rng.uniform(3.0, 10.0)  # no uptake in 10-77 %
    return AnatomyParams(
        cage_a=135.0 * s,
        cage_b=92.0 * s,
        fat=float(np.clip(6.0 + 1.6 * (bmi - 18.0), 4.0, 45.0)),
        muscle=float(rng.uniform(10.0, 15.0)),
        apex_z=float(rng.uniform(100.0, 120.0)),
        dome_z_right=float(rng.uniform(-115.0, -95.0)),
        dome_z_left=float(rng.uniform(-130.0, -110.0)),
        suv_lung=float(np.clip(rng.normal(0.40, 0.06), 0.25, 0.6)),
        suv_fat=float(np.clip(rng.normal(0.30, 0.05), 0.15, 0.5)),
        suv_muscle=float(np.clip(rng.normal(0.70, 0.10), 0.4, 1.1)),
        suv_blood=float(np.clip(rng.normal(1.70, 0.30) * bmi_gain, 1.0, 3.4)),
        suv_liver=float(np.clip(rng.normal(2.30, 0.40) * bmi_gain, 1.4, 4.4)),
        suv_marrow=float(np.clip(rng.normal(1.46, 0.27), 0.9, 2.2)),
        suv_myocardium=float(myo),
        suv_soft=float(np.clip(rng.normal(0.80, 0.10), 0.5, 1.2)),
        lung_hu=float(rng.uniform(-880.0, -830.0)),
    )


@dataclass
class Anatomy:
    """Noise-free maps on the CT grid, arrays indexed [k, j, i]."""

    hu: np.ndarray  # float32, HU
    suv: np.ndarray  # float32, true activity in SUV
    tissue: np.ndarray  # uint8 tissue codes (see TISSUE_NAMES)


def body_half_axes(p: AnatomyParams, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Body outline half axes (x, y) in mm at heights ``z`` (thorax, narrowing to the neck above the apex)."""
    a_th = p.cage_a + 9.0 + p.muscle + p.fat
    b_th = p.cage_b + 9.0 + p.muscle + p.fat
    t = np.clip((z - (p.apex_z + 40.0)) / 60.0, 0.0, 1.0)  # 0 in the thorax, 1 in the neck
    a = a_th * (1 - t) + (60.0 + 0.6 * p.fat) * t
    b = b_th * (1 - t) + (55.0 + 0.6 * p.fat) * t
    return a, b


def _tube(shape, origin, spacing, p0, p1, r0, r1):
    """Voxels of the tapered capsule p0->p1 (radii r0, r1 mm): (slices, boolean sub-mask) or None."""
    p0 = np.asarray(p0, float)
    p1 = np.asarray(p1, float)
    rmax = max(r0, r1)
    lo = np.minimum(p0, p1) - rmax
    hi = np.maximum(p0, p1) + rmax
    i0 = np.maximum(np.floor((lo - origin) / spacing).astype(int), 0)
    i1 = np.minimum(np.ceil((hi - origin) / spacing).astype(int) + 1, np.array(shape[::-1]))
    if np.any(i1 <= i0):
        return None
    xs = origin[0] + spacing[0] * np.arange(i0[0], i1[0], dtype=np.float32)
    ys = origin[1] + spacing[1] * np.arange(i0[1], i1[1], dtype=np.float32)
    zs = origin[2] + spacing[2] * np.arange(i0[2], i1[2], dtype=np.float32)
    d = (p1 - p0).astype(np.float32)
    L2 = float(d @ d) or 1e-6
    px = xs[None, None, :] - np.float32(p0[0])
    py = ys[None, :, None] - np.float32(p0[1])
    pz = zs[:, None, None] - np.float32(p0[2])
    t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / L2, 0.0, 1.0)
    dist2 = (px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2
    r = np.float32(r0) + t * np.float32(r1 - r0)
    sl = (slice(i0[2], i1[2]), slice(i0[1], i1[1]), slice(i0[0], i1[0]))
    return sl, dist2 <= r * r


def _paint_tube(maps, shape, origin, spacing, pts, radii, code, hu, suv, where=None, wall=None):
    """Paint a polyline tube into (hu, suv, tissue); ``where``: only over these tissue codes;
    ``wall``: (thickness mm, hu, suv, code) painted as an outer layer first."""
    hu_map, suv_map, tis = maps
    for a, b, ra, rb in zip(pts[:-1], pts[1:], radii[:-1], radii[1:]):
        layers = []
        if wall is not None:
            layers.append((ra + wall[0], rb + wall[0], wall[1], wall[2], wall[3]))
        layers.append((ra, rb, hu, suv, code))
        for r0, r1, h, s, c in layers:
            res = _tube(shape, origin, spacing, a, b, r0, r1)
            if res is None:
                continue
            sl, m = res
            if where is not None:
                m &= np.isin(tis[sl], where)
            hu_map[sl][m] = h
            suv_map[sl][m] = s
            tis[sl][m] = c


def _branches(rng, start, direction, length, radius, generations, out):
    """Recursive binary tree of segments (start, end, r0, r1) from ``start`` along ``direction``."""
    direction = direction / np.linalg.norm(direction)
    end = start + direction * length
    out.append((start, end, radius, radius * 0.8))
    if generations <= 0 or radius < 0.6:
        return
    for sign in (-1.0, 1.0):
        # rotate by 25-40 degrees about a random axis perpendicular to the direction
        perp = np.cross(direction, rng.normal(size=3))
        perp /= np.linalg.norm(perp) + 1e-9
        ang = np.deg2rad(rng.uniform(22, 40)) * sign
        new_dir = direction * np.cos(ang) + perp * np.sin(ang)
        _branches(rng, end, new_dir, length * rng.uniform(0.72, 0.88), radius * 0.76, generations - 1, out)


def build_anatomy(shape, origin, spacing, p: AnatomyParams, rng: np.random.Generator) -> Anatomy:
    """Render one patient on the CT grid ``shape`` = (nk, nj, ni), ``origin``/``spacing`` (mm, i j k order)."""
    origin = np.asarray(origin, float)
    spacing = np.asarray(spacing, float)
    nk, nj, ni = shape
    f32 = np.float32
    # float32 coordinates (numpy float64 scalars would promote every 3D expression to float64)
    X = (origin[0] + spacing[0] * np.arange(ni)).astype(f32)[None, None, :]
    Y = (origin[1] + spacing[1] * np.arange(nj)).astype(f32)[None, :, None]
    z1 = (origin[2] + spacing[2] * np.arange(nk)).astype(f32)
    Z = z1[:, None, None]

    hu = np.full(shape, -1000.0, f32)
    suv = np.zeros(shape, f32)
    tis = np.zeros(shape, np.uint8)
    maps = (hu, suv, tis)

    def paint(mask, code, h, s):
        mask = np.broadcast_to(mask, shape)
        hu[mask] = h
        suv[mask] = s
        tis[mask] = code

    # --- body: flat back (superellipse posteriorly), fat, muscle
    a, b = body_half_axes(p, z1)
    a = a.astype(f32)[:, None, None]
    b = b.astype(f32)[:, None, None]
    yexp = np.where(Y > 0, f32(3.0), f32(2.0))
    r_body = (np.abs(X) / a) ** 2 + (np.abs(Y) / b) ** yexp
    paint(r_body <= 1.0, FAT, -95.0, p.suv_fat)
    fa = a - p.fat
    fb = b - p.fat
    r_musc = (np.abs(X) / fa) ** 2 + (np.abs(Y) / fb) ** yexp
    paint(r_musc <= 1.0, MUSCLE, 45.0, p.suv_muscle)
    del r_body

    # --- thoracic cage and cavity (tapering to the apex), diaphragm domes
    neck_t = np.clip((Z - (p.apex_z + 40.0)) / 60.0, 0.0, 1.0)
    ca = f32(p.cage_a) * (1 - neck_t) + (fa - 12.0) * neck_t
    cb = f32(p.cage_b) * (1 - neck_t) + (fb - 12.0) * neck_t
    r_cage = (X / ca) ** 2 + (Y / cb) ** 2
    taper = np.sqrt(np.clip((p.apex_z - Z) / 70.0, 0.0, 1.0))  # cavity narrows towards the apex
    ia = (ca - 9.0) * taper
    ib = (cb - 9.0) * taper
    r_cav = (X / np.maximum(ia, 1.0)) ** 2 + ((Y + 8.0 * (1 - taper)) / np.maximum(ib, 1.0)) ** 2
    in_cav_xy = r_cav <= 1.0
    # diaphragm: one dome per side, lower at the periphery (costophrenic recesses)
    side_right = X < 0
    dome_top = np.where(side_right, f32(p.dome_z_right), f32(p.dome_z_left))
    xc = np.where(side_right, f32(-0.45 * p.cage_a), f32(0.45 * p.cage_a))
    rr = ((X - xc) / (0.6 * p.cage_a)) ** 2 + ((Y + 5.0) / (0.9 * p.cage_b)) ** 2
    z_dia = dome_top - 55.0 * rr
    below_dia = Z < z_dia
    thorax_z = (Z > dome_top - 80.0) & (Z < p.apex_z + 45.0)
    # ribs: oblique bands (descending anteriorly) on the cage shell; sternum anteriorly
    shell = (r_cage <= 1.0) & (r_cav > 1.0) & ~((X / (ca - 9.0)) ** 2 + (Y / (cb - 9.0)) ** 2 <= 1.0) & thorax_z
    phase = (Z + 0.45 * (f32(p.cage_b) - Y)) * f32(2 * np.pi / 27.0)
    rib = shell & (np.cos(phase) > 0.35) & (np.abs(X) > 22.0)
    paint(rib, BONE, 650.0, 0.5)
    rib_inner = rib & ((X / (ca - 4.0)) ** 2 + (Y / (cb - 4.0)) ** 2 <= 1.0)
    paint(rib_inner, MARROW, 230.0, 0.9)
    stern = ((X / 18.0) ** 2 + ((Y + cb - 5.0) / 7.0) ** 2 <= 1.0) & (Z > -130.0) & (Z < p.apex_z - 15.0)
    paint(stern, BONE, 350.0, 0.9)
    del r_cage, shell, phase, rib, rib_inner

    # cavity content: lungs by default, mediastinum and spine carved below
    cavity = in_cav_xy & ~below_dia & (Z < p.apex_z)
    paint(cavity, LUNG, p.lung_hu, p.suv_lung)
    # abdomen below the diaphragm (inside the muscle wall): liver right, soft tissue left
    abd = (r_musc <= 1.0) & below_dia & ((X / (fa - 10.0)) ** 2 + (Y / (fb - 10.0)) ** 2 <= 1.0)
    # the liver's lower edge rises medially (the right lobe reaches lowest)
    liver = abd & (X < 30.0 - 0.4 * Y) & (Z > dome_top - 200.0 + 0.8 * (X + 0.6 * p.cage_a))
    paint(abd & ~liver, SOFT, 35.0, 1.1)
    paint(liver, LIVER, 55.0, p.suv_liver)
    del abd, liver, r_musc

    # mediastinum: central band widening anteriorly towards the heart level, mediastinal fat
    # half width: ~14 mm anteriorly (thymic fat), ~28 mm around trachea / oesophagus / aorta, wider at the heart
    w = (14.0 + 16.0 * np.exp(-(((Y - 14.0) / 38.0) ** 2))
         + 14.0 * np.clip((-Y + 10.0) / 60.0, 0.0, 1.0) * np.clip((40.0 - Z) / 60.0, 0.0, 1.0))
    med = cavity & (np.abs(X - 4.0) < w) & (Z < p.apex_z - 10.0)
    paint(med, MEDIASTINAL_FAT, -90.0, p.suv_fat + 0.1)
    del med

    # spine: vertebral bodies (periodic in z, discs), posterior elements, cord, paraspinal muscles
    yv = f32(p.cage_b - 34.0)
    vb = ((X / 19.0) ** 2 + ((Y - yv) / 15.0) ** 2 <= 1.0)
    disc = np.cos(Z * f32(2 * np.pi / 27.0)) > 0.82
    para = ((np.abs(X) - 30.0) / 20.0) ** 2 + ((Y - yv - 32.0) / 22.0) ** 2 <= 1.0
    paint(para & (tis != OUTSIDE) & (tis != FAT), MUSCLE, 45.0, p.suv_muscle)
    post = ((X / 24.0) ** 2 + ((Y - yv - 27.0) / 14.0) ** 2 <= 1.0) | ((np.abs(X) < 5.0) & (Y > yv) & (Y < yv + 55.0))
    paint(post & (tis != OUTSIDE) & (tis != FAT), BONE, 600.0, 0.5)
    paint(vb & disc, SOFT, 80.0, 0.6)
    vb_c = vb & ~disc
    paint(vb_c, BONE, 700.0, 0.5)
    paint(vb_c & ((X / 16.5) ** 2 + ((Y - yv) / 12.5) ** 2 <= 1.0), MARROW, 220.0, p.suv_marrow)
    canal = (X / 8.0) ** 2 + ((Y - yv - 25.0) / 7.0) ** 2 <= 1.0
    paint(canal, CORD, 35.0, 1.0)
    del vb, disc, para, post, vb_c, canal

    sh = shape
    o = origin
    sp = spacing
    blood = dict(code=BLOOD, hu=40.0, suv=p.suv_blood)
    not_out = [FAT, MUSCLE, LUNG, MEDIASTINAL_FAT, SOFT, LIVER, BLOOD, MYOCARDIUM]
    # --- heart: ellipsoid, myocardial wall (variable FDG), blood pool inside
    hc = np.array([22.0, -0.3 * p.cage_b + 8.0, 0.5 * (p.dome_z_left + p.dome_z_right) + 40.0])
    hr = np.array([58.0, 46.0, 48.0])
    sub = tuple(slice(max(int(np.floor((hc[ax] - hr[ax] - 8 - o[ax]) / sp[ax])), 0),
                      max(int(np.ceil((hc[ax] + hr[ax] + 8 - o[ax]) / sp[ax])) + 1, 0)) for ax in (2, 1, 0))
    Xs, Ys, Zs = X[..., sub[2]], Y[:, sub[1], :], Z[sub[0]]
    rh = ((Xs - hc[0]) / hr[0]) ** 2 + ((Ys - hc[1]) / hr[1]) ** 2 + ((Zs - hc[2]) / hr[2]) ** 2
    hreg = (tis[sub] != OUTSIDE) & (tis[sub] != BONE) & (tis[sub] != MARROW) & (tis[sub] != FAT)
    fatpad = (rh <= 1.25) & hreg & (tis[sub] == LUNG)
    for m, c, h, s in ((fatpad, MEDIASTINAL_FAT, -90.0, p.suv_fat), (rh <= 1.0, MYOCARDIUM, 40.0, p.suv_myocardium),
                       (rh <= 0.55, BLOOD, 40.0, p.suv_blood)):
        m = m & hreg
        hu[sub][m] = h
        suv[sub][m] = s
        tis[sub][m] = c
    del rh, hreg, fatpad

    # --- great vessels (non-contrast blood 40 HU), oesophagus, airways
    dz = p.dome_z_left
    yd = p.cage_b - 58.0  # descending aorta y (left of the vertebral body)
    _paint_tube(maps, sh, o, sp, [(-8, -24, hc[2] + 20), (-10, -22, 25), (-3, -12, 42), (10, 4, 47), (20, 20, 40),
                                  (25, yd, 20), (25, yd, dz - 400)], [15, 15, 14, 13, 12, 12, 11], where=not_out, **blood)
    _paint_tube(maps, sh, o, sp, [(-3, -12, 42), (-14, -12, 110), (-20, -8, 500)], [7, 6, 6], where=not_out, **blood)
    _paint_tube(maps, sh, o, sp, [(6, -2, 46), (12, -6, 120), (14, -6, 500)], [5, 5, 5], where=not_out, **blood)
    _paint_tube(maps, sh, o, sp, [(14, 12, 46), (32, 6, 110), (40, 6, 500)], [5, 5, 5], where=not_out, **blood)
    _paint_tube(maps, sh, o, sp, [(-30, -16, 500), (-30, -16, 80), (-28, -18, hc[2] + 25)], [9, 10, 10],
                where=not_out, **blood)
    # pulmonary trunk and arteries, to the hila
    _paint_tube(maps, sh, o, sp, [(12, -38, hc[2] + 25), (12, -28, -12), (10, -14, -6)], [13, 13, 12],
                where=not_out, **blood)
    _paint_tube(maps, sh, o, sp, [(10, -14, -6), (42, 0, -14), (58, 6, -22)], [11, 10, 9], where=not_out, **blood)
    _paint_tube(maps, sh, o, sp, [(10, -14, -6), (-20, 2, -10), (-52, 4, -18)], [11, 10, 9], where=not_out, **blood)
    # pulmonary veins to the left atrium (posterior heart)
    for side in (-1, 1):
        _paint_tube(maps, sh, o, sp, [(side * 55, 14, -50), (side * 25 + 10, 10, hc[2] + 15)], [7, 8],
                    where=not_out, **blood)
    _paint_tube(maps, sh, o, sp, [(3, 30, 500), (3, 30, 0), (8, 30, -60), (20, 20, dz - 10)], [8, 8, 8, 8],
                code=SOFT, hu=35.0, suv=1.2, where=not_out)
    # trachea and bronchi (air) with a soft-tissue wall
    wall = (2.0, 30.0, 0.8, SOFT)
    air = dict(code=AIRWAY, hu=-1000.0, suv=0.0, wall=wall, where=not_out + [SOFT])
    _paint_tube(maps, sh, o, sp, [(0, CARINA_Y - 4, TRACHEA_TOP_Z), (0, CARINA_Y, 0)], [9, 9], **air)
    _paint_tube(maps, sh, o, sp, [(0, CARINA_Y, 0), (-38, 18, -20), (-52, 20, -32), (-62, 34, -75)], [7, 6, 5, 3], **air)
    _paint_tube(maps, sh, o, sp, [(-38, 18, -20), (-60, 14, 4), (-70, 8, 40)], [5, 4, 2.5], **air)
    _paint_tube(maps, sh, o, sp, [(0, CARINA_Y, 0), (40, 20, -28), (54, 22, -40), (64, 38, -80)], [6.5, 5.5, 5, 3], **air)
    _paint_tube(maps, sh, o, sp, [(40, 20, -28), (58, 14, -8), (68, 8, 30)], [5, 4, 2.5], **air)

    # --- pulmonary vessel trees from the hila (only inside the lungs)
    segs: list = []
    for hilum, roots in (
        (np.array([-52.0, 4.0, -18.0]), [(-0.5, 0.0, 1.0), (-1.0, -0.3, 0.2), (-0.6, 0.6, -1.0), (-0.4, -0.5, -0.8),
                                         (-0.7, 0.5, 0.6), (-0.8, -0.6, -0.2)]),
        (np.array([58.0, 6.0, -22.0]), [(0.5, 0.0, 1.0), (1.0, -0.3, 0.2), (0.6, 0.6, -1.0), (0.4, -0.6, -0.8),
                                        (0.7, 0.5, 0.6), (0.8, -0.6, -0.2)]),
    ):
        for d in roots:
            _branches(rng, hilum, np.asarray(d, float), rng.uniform(20, 28), 5.0, 5, segs)
    for s0, s1, r0, r1 in segs:
        res = _tube(sh, o, sp, s0, s1, max(r0, 0.9), max(r1, 0.9))
        if res is None:
            continue
        sl, m = res
        m &= tis[sl] == LUNG
        hu[sl][m] = 40.0
        suv[sl][m] = p.suv_blood
        tis[sl][m] = BLOOD

    # --- lung parenchyma: gravity gradient (dependent lung denser and more avid) and smooth texture
    lung = tis == LUNG
    # texture: a sum of 6 random plane waves (wavelength 10-30 mm), unit SD; cheaper than filtering noise
    # (separable products of 1D cosines: no transcendental function on the 3D grid)
    tex = np.zeros(shape, f32)
    for _ in range(6):
        kvec = 2 * np.pi / rng.uniform(10.0, 30.0, 3)
        ph = rng.uniform(0, 2 * np.pi, 3)
        tex += (np.cos(X * f32(kvec[0]) + f32(ph[0])) * np.cos(Y * f32(kvec[1]) + f32(ph[1]))
                * np.cos(Z * f32(kvec[2]) + f32(ph[2])))
    tex *= f32(np.sqrt(8.0 / 6.0))
    dep = np.clip((Y + p.cage_b) / (2 * p.cage_b), 0.0, 1.0) ** 2  # 0 anterior .. 1 posterior
    hu_l = p.lung_hu + 45.0 * dep + 12.0 * tex
    suv_l = p.suv_lung * (1.0 + 0.4 * dep) * (1.0 + 0.05 * tex)
    hu[lung] = np.broadcast_to(hu_l, shape)[lung]
    suv[lung] = np.broadcast_to(suv_l, shape)[lung]
    # smooth soft-tissue texture (a few HU) so the organs are not perfectly flat
    soft = (tis != OUTSIDE) & ~lung & (tis != AIRWAY)
    hu[soft] += (4.0 * tex)[soft]
    return Anatomy(hu=hu, suv=suv, tissue=tis)
