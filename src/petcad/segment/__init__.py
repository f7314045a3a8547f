"""Whole-study 3-class segmentation (no tumour / the manifest's lesion labels) with the ``multiview`` network.

* :mod:`~petcad.segment.lattice`: the world lattice the patches live on and trilinear resampling onto it;
* :mod:`~petcad.segment.dense`: exact dense (a-trous) evaluation in slabs, :class:`DenseSegmenter`;
* :mod:`~petcad.segment.roi`: the region evaluated (body, PET-avid, or a mask);
* :mod:`~petcad.segment.points`: training points (lesion voxels, body, avid normal tissue, lesion surroundings);
* :mod:`~petcad.segment.lesions`: the lesion list (components, volume, SUVmax / mean / peak);
* :mod:`~petcad.segment.metrics`: Dice, lesion-wise detection, autoPET FP / FN volumes;
* :mod:`~petcad.segment.run`: one study or a manifest from a trained run directory to the output folder.
"""
