"""The CNN methods of the comparison, run through the comparison's own folds.

* ``cnn`` (the original ``wang2017`` network), ``multiview`` and ``hybrid`` (CNN with the
  13 diagnostic features): :class:`petcad.models.estimator.CNNClassifier` trained on the
  fold's training lesions (its early-stopping validation patients are drawn from them),
  probability of the test lesions; decision threshold 0.5 (training is class-balanced).
* ``cnn-svm`` / ``cnn-rf``: the fold's ``wang2017`` network's penultimate layer (deep
  features) of the training lesions feeds the classical SVM / RF
  (:class:`petcad.evaluation.classifiers.TunedClassifier`, tuned and thresholded inside
  the training lesions), which then predicts the test lesions' deep features.
  ``settings.cnn_embedding_loss`` (``--cnn-embedding-loss``) trains every network with a term
  that makes those features classifiable (:mod:`petcad.models.embedding`).

Mode ``masks`` (``settings.mode``): the networks see 9 channels (CT, PET and the lesion's
mask planes); mode ``images``: 6 (CT, PET).

More than two labels: K-output networks (``table.classes``), the probabilities of every
class are returned ``(n_test, K)`` and the threshold is NaN (the most probable class).
"""

from __future__ import annotations

import numpy as np

from petcad.evaluation.classifiers import TunedClassifier

NETWORK_OF = {"cnn": "wang2017", "cnn-svm": "wang2017", "cnn-rf": "wang2017", "multiview": "multiview", "hybrid": "hybrid"}


def run(cohort, table, folds, methods, settings, progress: bool = False):
    """``(method, repeat, fold, probabilities of the test lesions, threshold)`` for every CNN method and fold.

    Probabilities: P(positive) ``(n_test,)`` for two classes, ``(n_test, K)`` for more.
    """
    from petcad.models.data import LesionData
    from petcad.models.estimator import CNNClassifier
    from petcad.patches.cache import LesionCache

    with_mask = settings.mode == "masks"
    cache = LesionCache.from_cohort(cohort, with_mask=with_mask)
    feats = table.diagnostic  # missing values are imputed inside each training fold (FeatureScaler)
    data = LesionData(cache=cache, y=table.y, groups=table.patient_id, features=feats,
                      feature_names=table.diagnostic_names, lesion_ids=np.asarray(table.lesion_id, dtype=str),
                      normalization=settings.cnn_normalization, classes=table.classes, with_mask=with_mask)
    binary = len(table.classes) == 2
    nets = sorted({NETWORK_OF[m] for m in methods})
    tasks = [(net, f) for f in folds for net in nets]
    it = tasks
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(tasks, desc="CNN methods (network x fold)", unit="fold")
    out = []
    for net, f in it:
        clf = CNNClassifier(model=net, epochs=settings.cnn_epochs, seed=settings.seed + 1000 * f.repeat + f.fold,
                            min_samples_per_epoch=settings.cnn_samples_per_epoch, threads=settings.n_jobs,
                            device="auto", dihedral=settings.cnn_dihedral, dropout=settings.cnn_dropout,
                            embedding_loss=settings.cnn_embedding_loss, embedding_weight=settings.cnn_embedding_weight)
        clf.fit(data, f.train)
        p = clf.predict_proba(data, f.test)
        p = p[:, 1] if binary else p
        for m in methods:
            if NETWORK_OF[m] != net:
                continue
            if m in ("cnn", "multiview", "hybrid"):
                out.append((m, f.repeat, f.fold, p, 0.5 if binary else float("nan")))
        deep = [m for m in methods if m in ("cnn-svm", "cnn-rf") and NETWORK_OF[m] == net]
        if deep:
            z_tr = clf.deep_features(data, f.train)
            z_te = clf.deep_features(data, f.test)
            for m in deep:
                tc = TunedClassifier("svm" if m == "cnn-svm" else "rf", inner_splits=settings.inner_splits,
                                     seed=settings.seed + 1000 * f.repeat + f.fold)
                tc.fit(z_tr, table.y[f.train], table.patient_id[f.train])
                q = tc.predict_proba(z_te)
                out.append((m, f.repeat, f.fold, q[:, 1] if binary else q, tc.threshold_))
    return out
