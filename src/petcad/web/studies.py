"""Loaded studies, cached per study: the volumes the browser needs and the patch sources.

A loaded study keeps the :class:`petcad.study.Study` (CT in HU, PET in SUV) and, made once on
first request, the NIfTI bytes the browser reads: the CT as int16 HU (rounded: the read-out is in
whole HU; a CT of more than 24 million voxels, such as 512 x 512 x 261, is sent as means over 2 x 2
in-plane blocks, so that software WebGL stays usable; patches and analysis always use the full CT), the PET as float32 SUV on its own grid (NiiVue reslices an overlay onto the CT's grid
by the affines; an oblique PET, whose axes differ from the CT's, is resampled onto the CT grid
here) and the segmentation labels as uint8. Least recently used studies are dropped beyond
``max_studies``. Loading is serialised per study; other studies load in parallel.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from petcad.study import Study, Volume
from petcad.web.catalog import StudyEntry


@dataclass
class LoadedStudy:
    entry: StudyEntry
    study: Study
    seconds: float
    blobs: dict = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)  # blobs may build on other blobs

    def blob(self, name: str, make) -> bytes:
        with self.lock:
            if name not in self.blobs:
                self.blobs[name] = make()
            return self.blobs[name]


class StudyCache:
    """LRU cache of loaded studies."""

    def __init__(self, max_studies: int = 3, log=None):
        self.max_studies = max(1, int(max_studies))
        self._items: OrderedDict[str, LoadedStudy] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._log = log

    def get(self, entry: StudyEntry) -> LoadedStudy:
        with self._lock:
            if entry.sid in self._items:
                self._items.move_to_end(entry.sid)
                return self._items[entry.sid]
            lock = self._locks.setdefault(entry.sid, threading.Lock())
        with lock:
            with self._lock:
                if entry.sid in self._items:
                    return self._items[entry.sid]
            loaded = _load(entry)
            if self._log:
                self._log(f"study {entry.sid} loaded in {loaded.seconds:.1f} s")
            with self._lock:
                self._items[entry.sid] = loaded
                while len(self._items) > self.max_studies:
                    self._items.popitem(last=False)
            return loaded


def _load(entry: StudyEntry) -> LoadedStudy:
    from petcad.io.loader import load_study

    t0 = time.perf_counter()
    study = load_study(entry.ct, entry.pet, patient_id=entry.patient_id)
    return LoadedStudy(entry=entry, study=study, seconds=time.perf_counter() - t0)


#: Largest CT the browser gets (voxels); bigger CTs are shown averaged over f x f in-plane blocks.
DISPLAY_MAX_VOXELS = 24_000_000


def display_factor(shape_ijk, max_voxels: int = DISPLAY_MAX_VOXELS) -> int:
    """Smallest in-plane block size f with (ni / f) (nj / f) nk <= ``max_voxels`` (1 = full resolution)."""
    ni, nj, nk = (int(v) for v in shape_ijk)
    f = 1
    while (-(-ni // f)) * (-(-nj // f)) * nk > max_voxels and f < min(ni, nj):
        f += 1
    return f


def block_mean(vol: Volume, f: int) -> Volume:
    """``vol`` averaged over f x f blocks along i and j (edges padded by repetition), on the coarser grid
    whose voxel centres are the block centres."""
    if f == 1:
        return vol
    a = np.asarray(vol.array, dtype=np.float32)
    nk, nj, ni = a.shape
    pj, pi = (-nj) % f, (-ni) % f
    if pj or pi:
        a = np.pad(a, ((0, 0), (0, pj), (0, pi)), mode="edge")
    a = a.reshape(nk, a.shape[1] // f, f, a.shape[2] // f, f).mean(axis=(2, 4), dtype=np.float32)
    spacing = vol.spacing * np.array([f, f, 1.0])
    origin = vol.index_to_world([(f - 1) / 2.0, (f - 1) / 2.0, 0.0])
    return Volume(a, origin, spacing, vol.direction)


def ct_for_display(study: Study, max_voxels: int = DISPLAY_MAX_VOXELS) -> Volume:
    """The CT as the browser gets it: full resolution up to ``max_voxels``, else in-plane block means."""
    return block_mean(study.ct, display_factor(study.ct.shape_ijk, max_voxels))


def pet_for_display(study: Study) -> Volume:
    """The PET on its own grid when its axes are the CT's, else resampled onto the CT grid."""
    if np.allclose(study.pet.direction, study.ct.direction, atol=1e-4):
        return study.pet
    return study.pet_on_ct_grid()


def ct_nifti(ls: LoadedStudy) -> bytes:
    from petcad.web.nifti import to_nifti_bytes

    return ls.blob("ct", lambda: to_nifti_bytes(ct_for_display(ls.study), np.int16, "petcad CT HU"))


def pet_nifti(ls: LoadedStudy) -> bytes:
    from petcad.web.nifti import to_nifti_bytes

    return ls.blob("pet", lambda: to_nifti_bytes(pet_for_display(ls.study), np.float32, "petcad PET SUV"))


def seg_nifti(ls: LoadedStudy) -> bytes | None:
    """The segmentation labels (uint8) on their own grid, or None."""
    from petcad.io.volumes import read_image
    from petcad.web.nifti import to_nifti_bytes

    if ls.entry.seg_labels is None:
        return None

    def make():
        vol = read_image(ls.entry.seg_labels)  # class numbers kept (modality="mask" would binarise them)
        arr = np.clip(np.rint(vol.array), 0, 255).astype(np.uint8)
        return to_nifti_bytes(Volume(arr, vol.origin, vol.spacing, vol.direction), np.uint8, "petcad labels")

    return ls.blob("seg", make)


def mip(ls: LoadedStudy) -> tuple[np.ndarray, np.ndarray]:
    """Coronal PET maximum intensity projection along the PET's j axis: (mip (nk, ni) SUV, argmax j)."""
    def make():
        arr = ls.study.pet.array
        return np.stack([arr.max(axis=1), arr.argmax(axis=1).astype(np.float32)])

    m = ls.blob("mip", make)
    return m[0], m[1].astype(np.int64)


def mip_png(ls: LoadedStudy, suv_max: float = 5.0) -> bytes:
    """The MIP as a PNG: head at the top, patient's right on the image's left, inverted grey 0..``suv_max``,
    stretched to the PET's physical aspect ratio."""
    from PIL import Image

    def make():
        m, _ = mip(ls)
        img = np.clip(m / float(suv_max), 0.0, 1.0)
        img = (255 - np.rint(img * 255)).astype(np.uint8)
        pet = ls.study.pet
        if pet.direction[2, 2] > 0:  # k runs towards the head: put the head at the top
            img = img[::-1]
        if pet.direction[0, 0] < 0:  # i runs towards the patient's right
            img = img[:, ::-1]
        h_mm, w_mm = img.shape[0] * pet.spacing[2], img.shape[1] * pet.spacing[0]
        width = max(64, min(512, img.shape[1] * 2))
        height = max(32, int(round(width * h_mm / w_mm)))
        buf = io.BytesIO()
        Image.fromarray(img).resize((width, height), Image.BILINEAR).save(buf, format="PNG")
        return buf.getvalue()

    return ls.blob(f"mip_png_{suv_max:g}", make)


def mip_point(ls: LoadedStudy, u: float, v: float) -> list[float]:
    """World point (mm, LPS) of the hottest voxel behind the MIP pixel at fractions (u across, v down)."""
    m, jmax = mip(ls)
    pet = ls.study.pet
    nk, ni = m.shape
    col = min(ni - 1, max(0, int(u * ni)))
    row = min(nk - 1, max(0, int(v * nk)))
    k = nk - 1 - row if pet.direction[2, 2] > 0 else row
    i = ni - 1 - col if pet.direction[0, 0] < 0 else col
    return [float(a) for a in pet.index_to_world([i, int(jmax[k, i]), k])]
