"""An estimate of a comparison's run time, printed before the long part starts.

It is an estimate: folds x methods x per-fit costs measured on this machine a moment
before the run, never a figure from elsewhere.

* Classical methods: a pipeline fit per method (the first grid point) on the first
  fold's training lesions is timed (median of 3); a fold of :class:`TunedClassifier` costs
  ``grid points x inner folds + 1`` such fits; the folds run on ``n_jobs`` workers.
* CNN methods: a training step (sampling a batch of augmented patches from the first
  lesions' crops, forward, backward, SGD step) per network is timed after a warm-up step
  (median of 3);
  a fold costs ``epochs x samples per epoch`` training samples plus a forward pass over the
  validation patients every epoch and over the test lesions once.

Not counted: building the crop cache, the deep-feature SVM / RF (small), statistics and
the report (seconds). On a machine busy with other work the run takes longer.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

BATCH = 64
REPEATS = 3  # timed fits / steps per method; their median is used (less swayed by a moment of load)


@dataclass
class Estimate:
    """Estimated seconds (``classical_s``, ``cnn_s``, ``total_s``) and the measured unit costs."""

    classical_s: float = 0.0
    cnn_s: float = 0.0
    fit_s: dict = field(default_factory=dict)  # classical method -> seconds per pipeline fit
    sample_ms: dict = field(default_factory=dict)  # network -> ms per training sample
    measure_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.classical_s + self.cnn_s

    def text(self, n_folds: int, n_methods: int) -> str:
        parts = [f"{m} {s:.3f} s a fit" for m, s in self.fit_s.items()]
        parts += [f"{n} {ms:.2f} ms a training sample" for n, ms in self.sample_ms.items()]
        return (f"estimated run time: about {_human(self.total_s)} (an estimate: {n_folds} folds x {n_methods} "
                f"methods at per-fit costs measured on this machine just now: {'; '.join(parts)}; "
                f"classical {_human(self.classical_s)}, CNN {_human(self.cnn_s)})")


def _human(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    return f"{s / 60:.1f} min"


def _fits_per_fold(method: str, inner_splits: int) -> int:
    from sklearn.model_selection import ParameterGrid

    from petcad.evaluation.classifiers import CLASSICAL

    return len(ParameterGrid(CLASSICAL[method].grid)) * inner_splits + 1


def classical_costs(table, fold, methods, seed: int) -> dict[str, float]:
    """Seconds of one pipeline fit of each method on ``fold``'s training lesions."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from petcad.evaluation.classifiers import MIN_PER_CLASS, make_pipeline

    out = {}
    X, y = table.X[fold.train], table.y[fold.train]
    for m in methods:
        if np.bincount(y).min() < MIN_PER_CLASS.get(m, 1):
            out[m] = 0.0  # too few lesions of a class to fit it: the run itself stops with a clear error
            continue
        times = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                make_pipeline(m, seed).fit(X, y)
            times.append(time.perf_counter() - t)
        out[m] = float(np.median(times))
    return out


def network_costs(cohort, table, nets, settings) -> dict[str, tuple[float, float]]:
    """``net -> (seconds per training sample, seconds per forward sample)``, measured on a batch of
    :data:`BATCH` patches sampled from the first lesions' crops (same channels and threads as the run)."""
    import torch
    import torch.nn.functional as F

    from petcad.models.data import LesionData
    from petcad.models.registry import build_model
    from petcad.models.train import resolve_device, torch_settings
    from petcad.patches.augment import draw_dihedral
    from petcad.patches.cache import LesionCache
    from petcad.study import Cohort

    with_mask = settings.mode == "masks"
    study = cohort.studies[0]
    few = Cohort([dataclasses.replace(study, lesions=study.lesions[:4])])
    cache = LesionCache.from_cohort(few, with_mask=with_mask)
    n = len(few.studies[0].lesions)
    feats = table.diagnostic[:n] if table.diagnostic is not None else None
    data = LesionData(cache=cache, y=table.y[:n], groups=table.patient_id[:n], features=feats, with_mask=with_mask,
                      normalization=settings.cnn_normalization, classes=table.classes,
                      lesion_ids=np.asarray(table.lesion_id[:n], dtype=str))
    rng = np.random.default_rng(settings.seed)
    idx = rng.integers(0, n, BATCH)
    tr = np.hstack([rng.uniform(-10, 10, (BATCH, 3)), rng.uniform(-2, 2, (BATCH, 3))])
    dih = draw_dihedral(rng, BATCH) if settings.cnn_dihedral else None
    device = resolve_device("auto")
    out = {}
    with torch_settings(settings.n_jobs):
        for net in nets:
            torch.manual_seed(settings.seed)
            model = build_model(net, in_channels=data.n_channels, n_features=len(table.diagnostic_names) if net == "hybrid" else 0,
                                dropout=settings.cnn_dropout, n_classes=len(table.classes)).to(device)
            opt = torch.optim.SGD(model.parameters(), lr=1e-4)
            f = torch.zeros((BATCH, len(table.diagnostic_names)), device=device) if net == "hybrid" else None
            yb = torch.as_tensor(rng.integers(0, len(table.classes), BATCH), device=device)
            times = []
            for _ in range(1 + REPEATS):  # the first step warms up
                t = time.perf_counter()
                x = data.sample_tensor(idx, tr, dih, device=device)
                loss = F.cross_entropy(model(x, f), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            model.eval()
            t = time.perf_counter()
            with torch.no_grad():
                model(data.sample_tensor(idx, None, None, device=device), f)
            if device.type == "cuda":
                torch.cuda.synchronize()
            out[net] = (float(np.median(times[1:])) / BATCH, (time.perf_counter() - t) / BATCH)
    return out


def estimate(cohort, table, folds, settings) -> Estimate:
    """Estimate the run time of the comparison of ``table`` over ``folds`` (see the module text)."""
    import os

    from petcad.evaluation.classifiers import CLASSICAL
    from petcad.evaluation.cnn_methods import NETWORK_OF
    from petcad.models.config import TrainConfig

    t0 = time.perf_counter()
    est = Estimate()
    classical = [m for m in settings.methods if m in CLASSICAL]
    if classical:
        est.fit_s = classical_costs(table, folds[0], classical, settings.seed)
        workers = max(1, min(settings.n_jobs, os.cpu_count() or 1, len(folds)))
        est.classical_s = sum(est.fit_s[m] * _fits_per_fold(m, settings.inner_splits) for m in classical) \
            * len(folds) / workers
    nets = sorted({NETWORK_OF[m] for m in settings.methods if m in NETWORK_OF})
    if nets:
        costs = network_costs(cohort, table, nets, settings)
        n_train = int(np.mean([len(f.train) for f in folds]))
        n_test = int(np.mean([len(f.test) for f in folds]))
        n_val = int(round(n_train * TrainConfig.val_fraction))
        n_fit = max(1, n_train - n_val)
        per_epoch = math.ceil(settings.cnn_samples_per_epoch / n_fit) * n_fit
        for net, (train_s, fwd_s) in costs.items():
            est.sample_ms[net] = 1000 * train_s
            est.cnn_s += len(folds) * (settings.cnn_epochs * (per_epoch * train_s + n_val * fwd_s) + n_test * fwd_s)
    est.measure_s = time.perf_counter() - t0
    return est
