"""Named settings of the synthetic cohort: grids, scanner and lesion model.

Every distribution parameter lives here, with the published figure it is set
from (see ``docs/phantom.md`` and ``/work/shared/docs/phantom-literature.md``).
Lengths are in mm, activities in SUV (g/mL), CT values in HU, times in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from petcad.errors import InputError


@dataclass(frozen=True)
class LesionModel:
    """Distributions of the lymph nodes (per node unless said per patient)."""

    # nodes per patient: 1 + Poisson(mean - 1), clipped to [1, max] (reference cohort ~8.3 / patient)
    nodes_mean: float = 8.3
    nodes_max: int = 15
    # per-patient probability of malignancy of a node ~ Beta(a, b): mean a/(a+b) = 0.47
    # (selected-node design, 45-50 % malignant); the spread makes node-positive / node-negative patients
    patient_malignant_beta: tuple[float, float] = (1.4, 1.58)
    # short axis (mm), log-normal: median and log-sd by class (median ~11 vs ~7 mm; Yamamichi 2020 mean 8.55, 3-22)
    short_axis_median: dict = field(default_factory=lambda: {"benign": 7.0, "malignant": 10.5})
    short_axis_logsd: dict = field(default_factory=lambda: {"benign": 0.30, "malignant": 0.36})
    short_axis_range: tuple[float, float] = (4.0, 35.0)
    # long / short axis ratio: 1 + Gamma; benign nodes are flatter (reniform) than malignant (rounder)
    axis_ratio_mean_extra: dict = field(default_factory=lambda: {"benign": 0.65, "malignant": 0.35})
    lobulation: float = 0.12  # relative radius modulation amplitude
    # true SUV (activity concentration), log-normal by class (median ~6 vs ~2.5, heavy overlap)
    suv_median: dict = field(default_factory=lambda: {"benign": 2.4, "malignant": 5.6})
    suv_logsd: dict = field(default_factory=lambda: {"benign": 0.55, "malignant": 0.55})
    suv_size_slope: float = 0.6  # d log(SUV) / d log(short axis / class median)
    patient_suv_logsd: float = 0.25  # shared patient effect on log SUV (all nodes of a patient)
    # granulomatous disease (TB / sarcoid / anthracosis): share of patients, benign-node SUV factor
    granulomatous_share: float = 0.22
    granulomatous_suv_factor: float = 2.4
    granulomatous_size_factor: float = 1.25
    # non-contrast CT density of the node (HU): Flechsig 2017 malignant median 32.4, benign 9.3
    hu_median: dict = field(default_factory=lambda: {"benign": 11.0, "malignant": 30.0})
    hu_sd: dict = field(default_factory=lambda: {"benign": 19.0, "malignant": 16.0})
    # flags (Kirchner 2015: calcified 18 % of benign / 0 % malignant; necrosis 35 % malignant / 0 % benign)
    p_calcified: dict = field(default_factory=lambda: {"benign": 0.18, "malignant": 0.0})
    p_necrotic: dict = field(default_factory=lambda: {"benign": 0.0, "malignant": 0.35})
    p_fatty_hilum: dict = field(default_factory=lambda: {"benign": 0.25, "malignant": 0.03})
    necrotic_hu: float = 12.0
    necrotic_suv_fraction: float = 0.25
    calcified_hu: tuple[float, float] = (250.0, 700.0)
    fat_hu: float = -80.0
    primary: bool = False  # optional primary lung tumour (label "primary")


@dataclass(frozen=True)
class Preset:
    """A named cohort setting: number of patients, CT/PET grids, scanner model, lesion model."""

    name: str
    n_patients: int
    ct_spacing: tuple[float, float, float]  # mm along i (x), j (y), k (z)
    pet_spacing: tuple[float, float, float]  # mm
    z_above_carina: float  # CT extent above the carina (mm)
    z_below_carina: float  # CT extent below the carina (mm)
    fixed_matrix: int | None = None  # in-plane CT matrix (e.g. 512); None: the body plus a margin
    margin_mm: float = 12.0
    psf_fwhm_mm: float = 6.0  # reconstructed PET resolution (4.9-7.0 mm published)
    pet_liver_cv: tuple[float, float] = (0.10, 0.15)  # noise CV in the liver, per patient uniform
    pet_noise_corr_mm: float = 3.0  # noise correlation length (gaussian sigma, mm)
    ct_noise_hu: tuple[float, float] = (10.0, 20.0)  # soft-tissue noise SD, per patient uniform
    lesions: LesionModel = field(default_factory=LesionModel)


_DEFAULT = Preset(
    name="default",
    n_patients=40,
    ct_spacing=(1.5, 1.5, 2.5),
    pet_spacing=(4.0, 4.0, 3.0),
    z_above_carina=115.0,
    z_below_carina=150.0,
)

PRESETS: dict[str, Preset] = {
    "default": _DEFAULT,
    # the default model at the size of the reference cohort (168 patients, ~1400 nodes)
    "paper": replace(_DEFAULT, name="paper", n_patients=168),
    # a clinical-size PET/CT: 512 x 512 at 0.98 mm, 3 mm slices, neck to upper abdomen (~260 slices)
    "realistic": Preset(
        name="realistic",
        n_patients=10,
        ct_spacing=(0.9765625, 0.9765625, 3.0),
        pet_spacing=(4.0, 4.0, 3.0),
        z_above_carina=330.0,
        z_below_carina=450.0,
        fixed_matrix=512,
    ),
}


def get_preset(name: str, primary: bool | None = None) -> Preset:
    """The preset called ``name`` (``default``, ``paper``, ``realistic``); InputError otherwise."""
    if isinstance(name, Preset):
        preset = name
    else:
        try:
            preset = PRESETS[name]
        except KeyError:
            raise InputError("--preset", f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    if primary is not None and primary != preset.lesions.primary:
        preset = replace(preset, lesions=replace(preset.lesions, primary=primary))
    return preset
