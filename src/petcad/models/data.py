"""What the networks train on: :class:`LesionData` (lesion sub-volume cache, labels, groups, features).

Patches are never stored: each batch is sampled on the fly from the cache of
cropped sub-volumes (:class:`petcad.patches.cache.LesionCache`) by one call of
:class:`petcad.patches.sampler.PatchSampler` with that batch's augmentation
transforms, then normalised (fixed HU / SUV scaling or per patch and channel: both in
:mod:`petcad.patches.normalize`). This is the one input pipeline of the networks: training,
prediction, the comparison, the segmenter's training points and the viewer all read patches
through :class:`LesionData`.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from petcad.errors import InputError
from petcad.models.config import DEFAULT_NORMALIZATION, NORMALIZATIONS

from petcad.patches.normalize import fixed_normalize
from petcad.patches.sampler import CHANNELS_6, CHANNELS_9


@dataclass
class LesionData:
    """Lesions to train on or predict: the patch source, labels, patient groups and optional features.

    Attributes
    ----------
    cache : :class:`petcad.patches.cache.LesionCache` (cropped CT in HU / PET in SUV
        sub-volumes around each lesion), or ``None`` when ``patches`` is given.
    y : int array (n,) of class indices into ``classes`` (binary: 1 = the positive label, malignant by default).
    groups : array (n,) of patient ids (the grouping variable for splits).
    features : float array (n, f) of diagnostic features (SUV, mm, HU; raw,
        standardised by the estimator with training statistics) for ``hybrid``; or None.
    feature_names : names of the feature columns.
    lesion_ids : array (n,) of lesion ids (defaults to the cache's).
    size, spacing_mm : patch size in pixels and pixel spacing in mm.
    with_mask : add the 3 mask channels (9 channels in all).
    patches : optional precomputed patches (n, C, size, size) in HU / SUV, used
        instead of the cache (no augmentation possible: transforms must be identity).
    sources : optional per-lesion strings (e.g. ``"ct|pet"`` paths as written in
        the manifest) that enter the training-data hash.
    classes : the ordered label list (:mod:`petcad.models.labels`): ``("benign", "malignant")`` by
        default; two labels = binary (the second is the positive one), more = K-class.
    normalization : ``"fixed"`` (the default: keeps absolute values, CT
        ``(clip(HU, -1000, 1000) - 40) / 300``, PET ``clip(SUV, 0, 30) / 3``, so
        that the network sees the uptake level and the density) or ``"patch"``
        (the original study's: per patch and channel ``x - mean``, ``/ std``, which
        removes them; on the paper phantom it cost wang2017 0.06 AUC, docs/models.md).
    """

    cache: Any
    y: np.ndarray
    groups: np.ndarray
    features: np.ndarray | None = None
    feature_names: Sequence[str] = ()
    lesion_ids: np.ndarray | None = None
    size: int = 51
    spacing_mm: float = 1.0
    with_mask: bool = False
    patches: np.ndarray | None = None
    sources: Sequence[str] = ()
    normalization: str = DEFAULT_NORMALIZATION
    classes: Sequence[str] = ("benign", "malignant")
    _sampler: Any = field(default=None, init=False, repr=False)
    _torch_samplers: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y).astype(np.int64).reshape(-1)
        self.groups = np.asarray(self.groups).reshape(-1)
        n = len(self.y)
        if len(self.groups) != n:
            raise InputError("LesionData", f"{len(self.groups)} groups for {n} labels")
        self.classes = tuple(str(c) for c in self.classes)
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise InputError("LesionData", f"classes must be at least two distinct labels, got {self.classes}")
        if n and (self.y.min() < 0 or self.y.max() >= len(self.classes)):
            raise InputError("LesionData", f"class indices must be 0..{len(self.classes) - 1} ({', '.join(self.classes)})")
        if self.lesion_ids is None:
            ids = getattr(self.cache, "lesion_ids", None)
            self.lesion_ids = np.asarray(ids if ids is not None else [str(i) for i in range(n)])
        self.lesion_ids = np.asarray(self.lesion_ids).astype(str)
        if len(self.lesion_ids) != n:
            raise InputError("LesionData", f"{len(self.lesion_ids)} lesion ids for {n} labels")
        if self.features is not None:
            self.features = np.asarray(self.features, dtype=np.float64)
            if self.features.ndim != 2 or self.features.shape[0] != n:
                raise InputError("LesionData", f"features must be (n={n}, f), got {self.features.shape}")
            self.feature_names = tuple(self.feature_names) or tuple(f"f{i}" for i in range(self.features.shape[1]))
        if self.patches is not None:
            self.patches = np.asarray(self.patches, dtype=np.float32)
            if self.patches.ndim != 4 or self.patches.shape[0] != n or self.patches.shape[2:] != (self.size, self.size):
                raise InputError("LesionData", f"patches must be (n={n}, C, {self.size}, {self.size}), got {self.patches.shape}")
        elif self.cache is None:
            raise InputError("LesionData", "needs a LesionCache or precomputed patches")
        if self.normalization not in NORMALIZATIONS:
            raise InputError("--normalization", f"must be one of {', '.join(NORMALIZATIONS)}, got {self.normalization!r}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_channels(self) -> int:
        if self.patches is not None:
            return int(self.patches.shape[1])
        return 9 if self.with_mask else 6

    @property
    def channels(self) -> tuple[str, ...]:
        return CHANNELS_9 if self.n_channels == 9 else CHANNELS_6[: self.n_channels]

    # ------------------------------------------------------------------ sampling
    def sampler(self):
        if self._sampler is None:
            from petcad.patches.sampler import PatchSampler

            self._sampler = PatchSampler(size=self.size, spacing_mm=self.spacing_mm, with_mask=self.with_mask)
        return self._sampler

    def sample(self, indices: np.ndarray, transforms: np.ndarray | None = None,
               dihedral: np.ndarray | None = None) -> np.ndarray:
        """Normalised float32 patches ``(n, C, size, size)`` for lesions ``indices``.

        ``transforms`` ``(n, 6)``: rotations about X, Y, Z (degrees) and shifts
        along X, Y, Z (patch pixels); None = identity. One sampler call per batch.
        ``dihedral`` ``(n, 3)``: per-plane mirror / quarter-turn codes
        (:func:`petcad.patches.augment.apply_dihedral`); None = none.
        """
        from petcad.patches.normalize import normalize_patches

        indices = np.asarray(indices, dtype=np.int64)
        if transforms is None:
            transforms = np.zeros((len(indices), 6))
        if self.patches is not None:
            if np.any(transforms != 0):
                raise InputError("LesionData", "precomputed patches cannot be augmented (use augment='none')")
            raw = self.patches[indices]
        else:
            raw = self.sampler().sample(self.cache, indices, np.asarray(transforms, dtype=np.float64))
        raw = np.array(raw, dtype=np.float32, copy=self.patches is not None)
        if dihedral is not None:
            from petcad.patches.augment import apply_dihedral

            apply_dihedral(raw, dihedral)
        if self.normalization == "fixed":
            return fixed_normalize(raw)
        return normalize_patches(raw, out=raw)

    def sample_tensor(self, indices: np.ndarray, transforms: np.ndarray | None = None,
                      dihedral: np.ndarray | None = None, device=None, use_torch: bool | None = None):
        """:meth:`sample` as a float32 tensor on ``device``. On CUDA (with a cache) the batch is
        sampled, turned and normalised on the GPU from the crops uploaded there once
        (:class:`petcad.patches.torch_sampler.TorchPatchSampler`, the same values within float32
        rounding), so that training is not bound by the CPU loader; elsewhere :meth:`sample`.
        ``use_torch`` forces the choice (None: the torch path exactly on CUDA)."""
        import torch

        device = torch.device("cpu" if device is None else device)
        if use_torch is None:
            use_torch = device.type == "cuda"
        if not use_torch or self.patches is not None:
            return torch.from_numpy(self.sample(indices, transforms, dihedral)).to(device, non_blocking=True)
        from petcad.patches.normalize import fixed_normalize_torch, normalize_patches_torch
        from petcad.patches.torch_sampler import TorchPatchSampler, apply_dihedral_torch

        ts = self._torch_samplers.get(str(device))
        if ts is None:
            ts = self._torch_samplers[str(device)] = TorchPatchSampler(
                self.cache, size=self.size, spacing_mm=self.spacing_mm, with_mask=self.with_mask, device=device)
        indices = np.asarray(indices, dtype=np.int64)
        t = np.zeros((len(indices), 6)) if transforms is None else np.asarray(transforms, dtype=np.float64)
        x = ts.sample(indices, t)
        if dihedral is not None:
            apply_dihedral_torch(x, dihedral)
        return fixed_normalize_torch(x) if self.normalization == "fixed" else normalize_patches_torch(x)

    # ------------------------------------------------------------------ hashing
    def fingerprint(self, indices: np.ndarray | None = None) -> str:
        """sha256 of the sorted (patient, lesion id, label, source files, centre mm) rows of ``indices`` (all by default)."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        src = list(self.sources) if len(self.sources) == len(self) else [""] * len(self)
        centers = getattr(self.cache, "centers_mm", None)
        ctr = [""] * len(self) if centers is None else [",".join(f"{v:.2f}" for v in c) for c in np.asarray(centers)]
        rows = sorted(f"{self.groups[i]}\t{self.lesion_ids[i]}\t{int(self.y[i])}\t{src[i]}\t{ctr[i]}" for i in idx)
        return hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()

    def describe(self) -> dict:
        return {
            "n_lesions": len(self),
            "n_patients": int(len(np.unique(self.groups))),
            "n_malignant": int(self.y.sum()) if len(self.classes) == 2 else None,
            "classes": list(self.classes),
            "class_counts": {c: int(k) for c, k in zip(self.classes, np.bincount(self.y, minlength=len(self.classes)))},
            "channels": list(self.channels),
            "patch_size": self.size,
            "spacing_mm": self.spacing_mm,
            "normalization": self.normalization,
        }

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_cohort(
        cls,
        cohort,
        *,
        size: int = 51,
        spacing_mm: float = 1.0,
        with_mask: bool = False,
        features: np.ndarray | None = None,
        feature_names: Sequence[str] = (),
        sources: Sequence[str] = (),
        require_binary: bool = False,
        normalization: str = DEFAULT_NORMALIZATION,
        classes: Sequence[str] | None = None,
        positive: str | None = None,
    ) -> "LesionData":
        """Build the lesion cache of a :class:`petcad.study.Cohort` (lesions in cohort order).

        ``classes``: the label list (e.g. a trained model's); every label must be in it.
        None: the cohort's labels decide (:func:`petcad.models.labels.resolve_classes`
        with ``positive`` for two labels). ``require_binary``: more than two labels is an error.
        """
        from petcad.models.labels import encode, resolve_classes
        from petcad.patches.cache import LesionCache

        labels = cohort.labels()
        if classes is None:
            classes = resolve_classes(labels, positive=positive)
        if require_binary and len(classes) != 2:
            raise InputError("manifest", f"two labels expected, got {len(classes)} ({', '.join(classes)})")
        y = encode(labels, classes)
        cache = LesionCache.from_cohort(cohort, size=size, spacing_mm=spacing_mm, with_mask=with_mask)
        ids = [les.lesion_id for _, les in cohort.iter_lesions()]
        return cls(
            cache=cache, y=y, groups=np.asarray(cohort.patient_ids()), features=features,
            feature_names=feature_names, lesion_ids=np.asarray(ids), size=size, spacing_mm=spacing_mm,
            with_mask=with_mask, sources=sources, normalization=normalization, classes=classes,
        )


def manifest_sources(path: str | os.PathLike) -> dict[tuple[str, str], str]:
    """(patient_id, lesion_id) -> "ct|pet" as written in the manifest CSV (for the data hash)."""
    out: dict[tuple[str, str], str] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                key = (str(row.get("patient_id", "")).strip(), str(row.get("lesion_id", "")).strip())
                out[key] = f"{str(row.get('ct', '')).strip()}|{str(row.get('pet', '')).strip()}"
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"cannot read manifest: {exc}") from None
    return out


def load_manifest_data(
    manifest: str | os.PathLike,
    *,
    size: int = 51,
    spacing_mm: float = 1.0,
    with_mask: bool = False,
    with_features: bool = False,
    require_binary: bool = False,
    normalization: str = DEFAULT_NORMALIZATION,
    classes: Sequence[str] | None = None,
    positive: str | None = None,
    on_irregular: str = "error",
    only=None,
):
    """(cohort, LesionData) for a manifest CSV; diagnostic features when ``with_features``.

    ``only``: just these ``(patient_id, study_id)`` studies (see :func:`petcad.io.manifest.load_cohort`).

    ``on_irregular`` (``error`` / ``resample`` / ``stack``) goes to the DICOM reader.

    Any label set (``classes`` / ``positive`` as in :meth:`LesionData.from_cohort`).
    """
    from petcad.io.manifest import load_cohort, require_ct

    manifest = Path(manifest)
    if not manifest.is_file():
        raise InputError(manifest, "manifest not found")
    cohort = load_cohort(manifest, allowed_labels=None, on_irregular=on_irregular, only=only)
    require_ct(cohort, manifest, "the 2.5D CNNs (train, predict --manifest, explain, bench model --auc)")
    if cohort.n_lesions == 0:
        raise InputError(manifest, "no lesions")
    src = manifest_sources(manifest)
    sources = [src.get((les.patient_id, les.lesion_id), "") for _, les in cohort.iter_lesions()]
    feats, names = None, ()
    if with_features:
        feats, names = cohort_feature_matrix(cohort)
    data = LesionData.from_cohort(
        cohort, size=size, spacing_mm=spacing_mm, with_mask=with_mask, features=feats,
        feature_names=names, sources=sources, require_binary=require_binary, normalization=normalization,
        classes=classes, positive=positive,
    )
    return cohort, data


def cohort_feature_matrix(cohort) -> tuple[np.ndarray, tuple[str, ...]]:
    """Diagnostic features of every lesion (petcad.features.diagnostic): (X (n, f), names)."""
    from petcad.features.diagnostic import cohort_features

    res = cohort_features(cohort)
    names, X = _names_and_matrix(res)
    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] != cohort.n_lesions:
        raise InputError("features", f"{X.shape[0]} feature rows for {cohort.n_lesions} lesions")
    return X, tuple(names)


def _names_and_matrix(res):
    """Accept ``(names, X)``, ``(X, names)`` or a DataFrame-like with ``columns``."""
    if hasattr(res, "columns") and hasattr(res, "to_numpy"):
        cols = [c for c in res.columns if c not in ("patient_id", "lesion_id", "label")]
        return tuple(str(c) for c in cols), res[cols].to_numpy(dtype=np.float64)
    a, b = res[0], res[1]
    if isinstance(a, np.ndarray) and a.ndim == 2:
        return tuple(b), a
    return tuple(a), np.asarray(b)


def features_for_study(study, lesions) -> tuple[np.ndarray, tuple[str, ...]]:
    """Diagnostic features for given lesions of one study: (X (n, f), names)."""
    from petcad.features.diagnostic import compute_features

    rows = [compute_features(study, les) for les in lesions]
    names = tuple(rows[0].keys()) if rows else ()
    return np.array([[float(r[k]) for k in names] for r in rows], dtype=np.float64).reshape(len(rows), len(names)), names

