"""2.5D tri-planar PET/CT patches with on-the-fly rotation and translation.

* :mod:`~petcad.patches.geometry`: plane axes, rigid transforms, composition order.
* :mod:`~petcad.patches.augment`: transforms ``(n, 6)``, :class:`AugmentPolicy`, per-plane mirrors / quarter turns.
* :mod:`~petcad.patches.cache`: :class:`LesionCache`, cropped sub-volumes around lesions.
* :mod:`~petcad.patches.sampler`: :class:`PatchSampler`, the compiled trilinear kernel; the channel names.
* :mod:`~petcad.patches.torch_sampler`: :class:`TorchPatchSampler`, the same patches sampled with torch (GPU).
* :mod:`~petcad.patches.normalize`: the normalisations (fixed HU / SUV scaling; the original study's
  per-patch standardisation), numpy and torch.
* :mod:`~petcad.patches.panels`: labelled PNG panels (en / zh).

The networks read patches through one pipeline, :class:`petcad.models.data.LesionData`, which
uses these modules. See docs/patches.md.
"""
