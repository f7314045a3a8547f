"""One lesion (or any world point) through a trained network: patches, probabilities, features.

The plane triplet can be moved as in the original study's dialog: shifts along world X / Y / Z
in patch pixels and rotations about world X / Y / Z in degrees (composition and signs as in
:mod:`petcad.patches.geometry`). Probabilities come from the same code as ``petcad predict``
(:func:`petcad.models.train.predict_logits`), for the transformed planes alone and averaged
over the 729-variant grid of the original study around them (test-time augmentation: the
grid's angles and shifts are added to the dialog's).

torch's process-wide settings (threads, deterministic algorithms) are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from petcad.errors import InputError
from petcad.study import DEFAULT_LABELS, Cohort, Lesion, Study, Volume

#: Largest dialog values accepted (degrees, patch pixels); the dialog hints at -10..10 pixels.
MAX_ROTATION_DEG = 180.0
MAX_SHIFT_PX = 50.0
#: The TTA grid's reach beyond the dialog's transform (degrees, pixels): see grid_transforms().
TTA_ROTATION_DEG = 10.0
TTA_SHIFT_PX = 2.0


def make_transform(shift_px=(0.0, 0.0, 0.0), rotate_deg=(0.0, 0.0, 0.0)) -> np.ndarray:
    """The petcad transform row ``(rot_x, rot_y, rot_z, shift_x, shift_y, shift_z)`` from the dialog's values."""
    try:
        s = np.asarray(shift_px, dtype=np.float64).reshape(3)
        r = np.asarray(rotate_deg, dtype=np.float64).reshape(3)
    except (TypeError, ValueError):
        raise InputError("transform", "shift and rotate must be three numbers each") from None
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(r))):
        raise InputError("transform", "shift and rotate must be finite numbers")
    if np.max(np.abs(r)) > MAX_ROTATION_DEG:
        raise InputError("rotate", f"rotations must lie within +-{MAX_ROTATION_DEG:g} degrees")
    if np.max(np.abs(s)) > MAX_SHIFT_PX:
        raise InputError("shift", f"shifts must lie within +-{MAX_SHIFT_PX:g} pixels (stay within -10..10)")
    return np.concatenate([r, s])


@dataclass
class Target:
    """What to analyse: a point of a study (a manifest lesion or a clicked point)."""

    study: Study
    center_mm: np.ndarray
    lesion_id: str = "point"
    label: str | None = None
    mask: Volume | None = None


@dataclass
class Analysis:
    """Patches (HU / SUV / mask, not normalised) and class probabilities for one target."""

    channels: tuple[str, ...]
    patches: np.ndarray  # (C, N, N) float32
    transform: np.ndarray  # (6,)
    classes: tuple[str, ...]
    probability: dict[str, float] | None  # None without a model
    probability_tta: dict[str, float] | None


def class_names(clf) -> tuple[str, ...]:
    """The loaded network's ordered class labels (``config.json`` ``classes``; binary default)."""
    classes = clf.config_.get("classes") if clf is not None else None
    return tuple(str(c) for c in classes) if classes else tuple(DEFAULT_LABELS)


def model_settings(clf) -> tuple[int, float, bool]:
    """(patch size, spacing mm, with_mask) the loaded network was trained with."""
    cfg = clf.config_
    return int(cfg["patch_size"]), float(cfg["spacing_mm"]), int(cfg["in_channels"]) == 9


def lesion_data(target: Target, transform: np.ndarray, *, size: int = 51, spacing_mm: float = 1.0,
                with_mask: bool = False, normalization: str = "fixed", clf=None):
    """A one-lesion :class:`petcad.models.data.LesionData` whose cache reaches every plane of
    ``transform`` and of the TTA grid around it (and the diagnostic features a hybrid network needs)."""
    from petcad.models.data import LesionData
    from petcad.patches.cache import LesionCache

    if with_mask and target.mask is None:
        raise InputError(target.lesion_id, "this network needs a lesion mask (9 channels): pick a manifest lesion with a mask")
    t = np.asarray(transform, dtype=np.float64).reshape(6)
    les = Lesion(target.lesion_id, target.center_mm, target.label or "", target.study.patient_id, target.mask)
    one = Study(patient_id=target.study.patient_id, ct=target.study.ct, pet=target.study.pet, lesions=[les])
    cache = LesionCache.from_cohort(
        Cohort([one]), size=size, spacing_mm=spacing_mm,
        max_rotation_deg=float(np.max(np.abs(t[:3]))) + TTA_ROTATION_DEG,
        max_shift_mm=(float(np.max(np.abs(t[3:]))) + TTA_SHIFT_PX) * spacing_mm, with_mask=with_mask,
    )
    feats, names = None, ()
    if clf is not None and clf.scaler_ is not None:
        from petcad.models.data import features_for_study

        feats, names = features_for_study(one, [les])
        want = list(clf.config_.get("feature_names") or [])
        if want and list(names) != want:
            raise InputError("features", "the diagnostic features differ from those the network was trained with")
    return LesionData(cache=cache, y=np.zeros(1, dtype=np.int64), groups=np.zeros(1), features=feats,
                      feature_names=names, lesion_ids=np.array([target.lesion_id]), size=size,
                      spacing_mm=spacing_mm, with_mask=with_mask, normalization=normalization)


def _probabilities(clf, data, transforms: np.ndarray) -> np.ndarray:
    """Mean softmax over ``transforms`` (n, 6) of lesion 0, through petcad's prediction code."""
    from petcad.models.train import predict_logits, softmax1

    device = next(clf.model_.parameters()).device
    p = softmax1(predict_logits(clf.model_, data, np.zeros(len(transforms), dtype=np.int64), device, clf.scaler_,
                                clf.eval_batch_size, transforms=transforms))
    return p.mean(axis=0)


def analyse(target: Target, transform: np.ndarray, clf=None, *, tta: bool = True,
            size: int = 51, spacing_mm: float = 1.0) -> Analysis:
    """Patches of ``target`` under ``transform`` and, with a model ``clf``
    (:class:`petcad.models.estimator.CNNClassifier`), the class probabilities without and with TTA."""
    import warnings

    from petcad.patches.augment import grid_transforms

    t = np.asarray(transform, dtype=np.float64).reshape(6)
    with_mask, norm = False, "fixed"
    if clf is not None:
        size, spacing_mm, with_mask = model_settings(clf)
        norm = clf.config_.get("normalization", "patch")
    data = lesion_data(target, t, size=size, spacing_mm=spacing_mm, with_mask=with_mask, normalization=norm, clf=clf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # shifts past the hint are the user's choice
        raw = data.sampler().sample(data.cache, np.zeros(1, dtype=np.int64), t[None, :])[0]
        prob = prob_tta = None
        classes = class_names(clf)
        if clf is not None:
            prob = dict(zip(classes, map(float, _probabilities(clf, data, t[None, :]))))
            if tta:
                grid = grid_transforms() + t[None, :]
                prob_tta = dict(zip(classes, map(float, _probabilities(clf, data, grid))))
    return Analysis(channels=tuple(data.channels), patches=np.asarray(raw, dtype=np.float32), transform=t,
                    classes=classes, probability=prob, probability_tta=prob_tta)


def diagnostic_features(target: Target) -> dict[str, float]:
    """The 13 diagnostic features (:mod:`petcad.features.diagnostic`) at the target's centre."""
    from petcad.features.diagnostic import compute_features

    les = Lesion(target.lesion_id, target.center_mm, target.label or "", target.study.patient_id, target.mask)
    return {k: float(v) for k, v in compute_features(target.study, les).items()}
