"""Evaluation: metrics with confidence intervals, DeLong, calibration, folds, classifiers, the comparison runner.

One small base (:class:`petcad.evaluation.base.Estimate`) and one short module per
metric family, in the style of MONAI's metrics: :mod:`confusion` (TPR, SPC, PPV,
NPV, ACC with Wilson intervals), :mod:`delong` (AUC, DeLong CI, paired test,
patient-cluster bootstrap), :mod:`calibration` (Brier, reliability), :mod:`folds`
(repeated stratified group k-fold), :mod:`classifiers` (scikit-learn pipelines
tuned inside the training folds), :mod:`compare` (the runner) and :mod:`report`.
"""
