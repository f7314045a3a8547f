"""2.5D tri-planar PET/CT patches with on-the-fly rotation and translation.

* :mod:`~petcad.patches.geometry`: plane axes, rigid transforms, composition order.
* :mod:`~petcad.patches.augment`: transforms ``(n, 6)``, :class:`AugmentPolicy`, per-plane mirrors / quarter turns.
* :mod:`~petcad.patches.cache`: :class:`LesionCache`, cropped sub-volumes around lesions.
* :mod:`~petcad.patches.sampler`: :class:`PatchSampler`, the compiled trilinear kernel.
* :mod:`~petcad.patches.normalize`: the original study's per-patch standardisation.
* :mod:`~petcad.patches.dataset`: :class:`PatchDataset` (torch) and :class:`PatchBatchIterator`.
* :mod:`~petcad.patches.panels`: labelled PNG panels (en / zh).

See docs/patches.md.
"""
