"""Plain data and geometry: volumes, lesions, studies and cohorts.

This module is the bottom of petcad. It knows no file format; the readers in
:mod:`petcad.io` produce these objects and everything above consumes them.

Conventions (used everywhere in petcad)
---------------------------------------
* World coordinates are millimetres in the DICOM patient frame (LPS:
  +x towards the patient's left, +y posterior, +z superior / head).
* ``Volume.array`` is indexed ``[k, j, i]`` (slice, row, column), the order
  SimpleITK's ``GetArrayFromImage`` returns. Voxel *indices* passed to or
  returned by the geometry helpers are in ``(i, j, k)`` order, i.e. the same
  order as ``spacing`` and the columns of ``direction``.
* ``origin`` is the world position of the centre of voxel ``(0, 0, 0)``;
  ``direction[:, c]`` is the world unit vector of index axis ``c``; so
  ``world = origin + direction @ (spacing * ijk)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

DEFAULT_LABELS: tuple[str, ...] = ("benign", "malignant")
POSITIVE_LABEL = "malignant"


@dataclass
class Volume:
    """A 3D image on a physical grid.

    Attributes
    ----------
    array : float32 (or uint8 for masks) array, shape ``(nk, nj, ni)``.
    origin : world position (mm, LPS) of the centre of voxel (0, 0, 0).
    spacing : voxel size in mm along index axes i, j, k.
    direction : 3x3 matrix whose columns are the world unit vectors of the
        index axes i, j, k.
    """

    array: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        self.origin = np.asarray(self.origin, dtype=np.float64).reshape(3)
        self.spacing = np.asarray(self.spacing, dtype=np.float64).reshape(3)
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        if self.array.ndim != 3:
            raise ValueError(f"Volume array must be 3D, got shape {self.array.shape}")
        if np.any(self.spacing <= 0):
            raise ValueError(f"Volume spacing must be positive, got {self.spacing}")

    # ------------------------------------------------------------------ geometry
    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        """Number of voxels along i, j, k (the reverse of ``array.shape``)."""
        k, j, i = self.array.shape
        return (i, j, k)

    @property
    def index_to_world_matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix mapping (i, j, k, 1) to (x, y, z, 1) in mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction * self.spacing[None, :]
        m[:3, 3] = self.origin
        return m

    def index_to_world(self, ijk: np.ndarray | Sequence[float]) -> np.ndarray:
        """Voxel indices ``(..., 3)`` in (i, j, k) order to world mm ``(..., 3)``."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ (self.direction * self.spacing[None, :]).T + self.origin

    def world_to_index(self, xyz: np.ndarray | Sequence[float]) -> np.ndarray:
        """World mm ``(..., 3)`` to continuous voxel indices (i, j, k)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        inv = np.linalg.inv(self.direction * self.spacing[None, :])
        return (xyz - self.origin) @ inv.T

    def contains(self, xyz: np.ndarray | Sequence[float], margin_voxels: float = 0.5) -> np.ndarray:
        """Whether world points lie inside the volume (voxel centres +- ``margin_voxels``)."""
        ijk = self.world_to_index(xyz)
        upper = np.asarray(self.shape_ijk, dtype=np.float64) - 1 + margin_voxels
        return np.all((ijk >= -margin_voxels) & (ijk <= upper), axis=-1)

    def bounds_world(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned world bounding box (min, max) of the voxel centres."""
        n = np.asarray(self.shape_ijk) - 1
        corners = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], dtype=float)
        w = self.index_to_world(corners)
        return w.min(axis=0), w.max(axis=0)

    def same_grid(self, other: "Volume", atol: float = 1e-4) -> bool:
        return (
            self.array.shape == other.array.shape
            and np.allclose(self.origin, other.origin, atol=atol)
            and np.allclose(self.spacing, other.spacing, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )

    # ------------------------------------------------------------- SimpleITK
    def to_sitk(self):
        """This volume as a ``SimpleITK.Image`` (shares no memory)."""
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(np.ascontiguousarray(self.array))
        img.SetOrigin(tuple(float(v) for v in self.origin))
        img.SetSpacing(tuple(float(v) for v in self.spacing))
        img.SetDirection(tuple(float(v) for v in self.direction.reshape(-1)))
        return img

    @classmethod
    def from_sitk(cls, img, dtype=np.float32) -> "Volume":
        import SimpleITK as sitk

        if img.GetDimension() != 3:
            raise ValueError(f"expected a 3D image, got {img.GetDimension()}D")
        arr = sitk.GetArrayFromImage(img)
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        return cls(
            array=arr,
            origin=np.array(img.GetOrigin()),
            spacing=np.array(img.GetSpacing()),
            direction=np.array(img.GetDirection()).reshape(3, 3),
        )

    def resample_to(self, reference: "Volume", interpolator: str = "linear", default_value: float = 0.0) -> "Volume":
        """Resample this volume onto ``reference``'s grid in physical space (SimpleITK).

        ``interpolator`` is ``linear``, ``nearest`` or ``bspline``. Points of the
        reference grid outside this volume get ``default_value``.
        """
        import SimpleITK as sitk

        interp = {
            "linear": sitk.sitkLinear,
            "nearest": sitk.sitkNearestNeighbor,
            "bspline": sitk.sitkBSpline,
        }[interpolator]
        src = self.to_sitk()
        out_type = src.GetPixelID() if interpolator == "nearest" else sitk.sitkFloat32
        out = sitk.Resample(src, reference.to_sitk(), sitk.Transform(), interp, float(default_value), out_type)
        return Volume.from_sitk(out, dtype=None if interpolator == "nearest" else np.float32)


@dataclass
class Lesion:
    """One lesion: an id, a centre in world mm (LPS), a label and its patient.

    ``mask`` is an optional binary volume (any grid) marking the lesion.
    ``label`` is any string; ``benign`` / ``malignant`` by default.
    ``center_source`` says where the centre came from: ``"manifest"`` (given) or
    ``"mask"`` (centroid of the mask's largest connected component).
    """

    lesion_id: str
    center_mm: np.ndarray
    label: str
    patient_id: str
    mask: Volume | None = None
    center_source: str = "manifest"

    def __post_init__(self) -> None:
        self.center_mm = np.asarray(self.center_mm, dtype=np.float64).reshape(3)

    @property
    def is_malignant(self) -> bool:
        return self.label == POSITIVE_LABEL


@dataclass
class Study:
    """One patient's PET/CT: CT in HU and PET in SUV, float32, each on its own grid.

    ``ct`` is ``None`` for a PET-only study: SUV, delineation and the PET
    features work without it; what needs both modalities (2.5D patches, the
    CNNs) asks :meth:`require_ct` first.
    ``suv`` holds the SUV audit of the PET conversion (factor, type, times, the
    header values used); it is empty for images read already in SUV.
    """

    patient_id: str
    ct: Volume | None
    pet: Volume
    lesions: list[Lesion] = field(default_factory=list)
    suv: dict = field(default_factory=dict)
    frame_of_reference_uid: str = ""  # of the DICOM images ("" for image files): DICOM masks must share it

    @property
    def has_ct(self) -> bool:
        return self.ct is not None

    def require_ct(self, what: str) -> Volume:
        """The CT, or :class:`~petcad.errors.InputError` saying that ``what`` needs one (PET-only study)."""
        if self.ct is None:
            from petcad.errors import InputError

            raise InputError(None, f"a study without CT (PET-only): {what} needs both CT and PET")
        return self.ct

    def pet_on_ct_grid(self, interpolator: str = "linear") -> Volume:
        """The PET resampled onto the CT grid in physical space (zero outside the PET)."""
        self.require_ct("resampling the PET onto the CT grid")
        if self.pet.same_grid(self.ct):
            return self.pet
        return self.pet.resample_to(self.ct, interpolator=interpolator, default_value=0.0)


@dataclass
class Cohort:
    """Several studies; lesions are reached through their study."""

    studies: list[Study] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.studies)

    def iter_lesions(self) -> Iterator[tuple[Study, Lesion]]:
        for study in self.studies:
            for lesion in study.lesions:
                yield study, lesion

    @property
    def n_lesions(self) -> int:
        return sum(len(s.lesions) for s in self.studies)

    def labels(self) -> list[str]:
        return [lesion.label for _, lesion in self.iter_lesions()]

    def without_ct(self) -> list[Study]:
        """The studies that have no CT (PET-only)."""
        return [s for s in self.studies if s.ct is None]

    def patient_ids(self) -> list[str]:
        """Patient id per lesion (the grouping variable for cross-validation)."""
        return [lesion.patient_id for _, lesion in self.iter_lesions()]
