"""Image formation: CT noise, and the PET scanner (PSF blur, coarser grid, activity-dependent noise).

PET: the true activity (SUV, on the CT grid) is blurred by a Gaussian PSF of
``fwhm_mm`` (4.9-7.0 mm reconstructed resolution published; 6 mm default) with
:func:`scipy.ndimage.gaussian_filter`, resampled onto the PET grid (about
4 x 4 x 3 mm) with SimpleITK (linear), and given spatially correlated Gaussian
noise whose variance grows linearly with activity (a Poisson-like count model),
scaled so that the coefficient of variation in the liver is ``liver_cv``
(about 11.5 %, standard scanner, Kim 2020; EARL limit 15 %).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from petcad.study import Volume

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def _unit_correlated_noise(rng: np.random.Generator, shape, sigma_vox) -> np.ndarray:
    """Gaussian noise smoothed by ``sigma_vox`` (voxels, per array axis), rescaled to unit SD (float32)."""
    n = rng.standard_normal(shape, dtype=np.float32)
    if np.any(np.asarray(sigma_vox) > 0):
        n = ndimage.gaussian_filter(n, sigma=sigma_vox)
        # exact SD of smoothed white noise: 1 / sqrt(prod(2 sqrt(pi) sigma)) for sigma >~ 1; measured instead
        n *= np.float32(1.0 / max(float(n.std()), 1e-9))
    return n


def ct_acquire(hu: np.ndarray, rng: np.random.Generator, noise_hu: float) -> np.ndarray:
    """The noisy CT (HU, float32): slightly correlated noise of SD ``noise_hu``, clipped to the int16 range."""
    n = _unit_correlated_noise(rng, hu.shape, (0.0, 0.6, 0.6))
    out = hu + np.float32(noise_hu) * n
    np.clip(out, -1024.0, 3071.0, out=out)
    return out


def pet_grid(ct: Volume, pet_spacing) -> Volume:
    """An empty PET grid (float32 zeros) covering ``ct``'s extent, centred on it, with ``pet_spacing`` mm."""
    sp = np.asarray(pet_spacing, float)
    lo, hi = ct.bounds_world()
    ext = hi - lo
    n = np.floor(ext / sp).astype(int) + 1
    centre = (lo + hi) / 2.0
    origin = centre - sp * (n - 1) / 2.0
    return Volume(np.zeros((n[2], n[1], n[0]), np.float32), origin, sp, np.eye(3))


def pet_acquire(
    activity: Volume,
    pet_spacing,
    rng: np.random.Generator,
    fwhm_mm: float,
    liver_suv: float,
    liver_cv: float,
    corr_mm: float = 3.0,
) -> Volume:
    """Reconstructed PET in SUV on its own grid from the true ``activity`` (SUV) on the CT grid.

    Noise SD at activity ``a`` is ``liver_cv * sqrt(liver_suv * a)``, so the CV equals ``liver_cv`` in the liver.
    """
    # Speed (measured): blurring the full CT grid cost ~0.4 s a patient. In-plane voxels finer than half the
    # PET voxel are first averaged in 2 x 2 blocks (a box adds w^2/12 of variance, subtracted from the PSF's).
    arr = activity.array
    sp = activity.spacing.copy()
    origin = activity.origin.copy()
    f = [2 if 2 * sp[a] <= np.asarray(pet_spacing)[a] / 1.2 else 1 for a in (0, 1)]
    if f != [1, 1]:
        nk, nj, ni = arr.shape
        nj2, ni2 = nj // f[1] * f[1], ni // f[0] * f[0]
        arr = arr[:, :nj2, :ni2].reshape(nk, nj2 // f[1], f[1], ni2 // f[0], f[0]).mean(axis=(2, 4), dtype=np.float32)
        origin = origin + np.array([(f[0] - 1) * sp[0] / 2, (f[1] - 1) * sp[1] / 2, 0.0])
        sp_new = sp * np.array([f[0], f[1], 1])
        extra = (sp_new**2 - sp**2) / 12.0
        sp = sp_new
    else:
        extra = np.zeros(3)
    sigma_mm = np.sqrt(np.maximum((fwhm_mm * FWHM_TO_SIGMA) ** 2 - extra, 0.0))
    blurred = Volume(ndimage.gaussian_filter(arr, sigma=sigma_mm[::-1] / sp[::-1], mode="constant", truncate=3.5),
                     origin, sp, activity.direction)
    grid = pet_grid(activity, pet_spacing)
    pet = blurred.resample_to(grid, interpolator="linear", default_value=0.0)
    arr = pet.array
    np.maximum(arr, 0.0, out=arr)
    noise = _unit_correlated_noise(rng, arr.shape, corr_mm / np.asarray(pet_spacing)[::-1])
    arr += np.float32(liver_cv) * np.sqrt(np.float32(liver_suv) * arr) * noise
    np.maximum(arr, 0.0, out=arr)
    return pet
