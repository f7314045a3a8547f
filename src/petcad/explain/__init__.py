"""What a trained network sees and looks at, for one lesion or point.

:mod:`petcad.explain.analysis` samples the 2.5D patches of a lesion (or any world point) under
a transform of the plane triplet and gives the class probabilities with and without
test-time augmentation; :mod:`petcad.explain.saliency` attributes the malignant-class
probability to the patch pixels with Captum (integrated gradients or occlusion) and splits
the attribution between CT, PET (and mask); :mod:`petcad.explain.panels` draws the labelled
panels of the original study ("tumour 1, description: CT axial, label: benign") with the
saliency on top, as PNG. Nothing here changes torch's process-wide settings (threads,
deterministic algorithms): the web viewer calls it from its request threads.
"""
