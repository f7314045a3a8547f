"""Saliency of a 2.5D network with Captum: which patch pixels drive the malignant probability.

Two methods (Captum, BSD-3):

* ``ig``: integrated gradients from a baseline of zeros in the network's input space (with the
  default fixed normalisation: CT 40 HU, PET SUV 0) to the patch, ``steps`` Riemann steps;
  attributions sum to the difference of the malignant probability between patch and baseline.
* ``occlusion``: the drop of the malignant probability when a ``window`` x ``window`` square of
  one channel is set to 0 (same baseline), sliding by ``stride`` pixels.

The *share* of a modality is the sum of absolute attributions on its three channels over the
sum on all channels: how much of what the network uses comes from CT, PET (and the mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from petcad.errors import InputError
from petcad.study import POSITIVE_LABEL

METHODS = ("ig", "occlusion")


@dataclass
class Saliency:
    """Attributions ``(C, N, N)`` for the malignant class, and each modality's share of their magnitude."""

    method: str
    attributions: np.ndarray
    channels: tuple[str, ...]
    share: dict[str, float]
    probability: float  # probability of the explained class for this patch
    target: int = 1  # index of the explained class


def modality_share(attributions: np.ndarray, channels) -> dict[str, float]:
    """{modality: share of sum |attribution|} over the channels named ``MODALITY-plane``."""
    mag = np.abs(np.asarray(attributions, dtype=np.float64)).reshape(len(channels), -1).sum(axis=1)
    total = float(mag.sum())
    out: dict[str, float] = {}
    for c, name in enumerate(channels):
        mod = name.split("-", 1)[0]
        out[mod] = out.get(mod, 0.0) + (float(mag[c]) / total if total > 0 else 0.0)
    return out


def explain_patch(model, x: np.ndarray, features: np.ndarray | None, channels, *, method: str = "ig",
                  steps: int = 32, window: int = 5, stride: int = 3, target: int = 1) -> Saliency:
    """Attributions of the ``target`` class probability for one normalised patch ``x`` ``(C, N, N)``.

    ``features``: the standardised diagnostic features ``(f,)`` of a hybrid network, else None.
    Gradients are enabled locally (thread-local); the model stays in eval mode.
    """
    import torch
    from captum.attr import IntegratedGradients, Occlusion

    if method not in METHODS:
        raise InputError("--method", f"unknown saliency method {method!r}; choose one of {', '.join(METHODS)}")
    if int(steps) < 2 or int(window) < 1 or int(stride) < 1:
        raise InputError("saliency", "steps must be >= 2, window and stride >= 1")
    device = next(model.parameters()).device
    model.eval()
    inp = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].to(device)
    extra = None
    if features is not None:
        extra = (torch.from_numpy(np.asarray(features, dtype=np.float32).reshape(1, -1)).to(device),)

    def prob(inputs, f=None):
        return torch.softmax(model(inputs, f), dim=1)

    with torch.enable_grad():
        if method == "ig":
            attr = IntegratedGradients(prob).attribute(inp, baselines=torch.zeros_like(inp), target=target,
                                                       additional_forward_args=extra, n_steps=int(steps))
        else:
            attr = Occlusion(prob).attribute(inp, sliding_window_shapes=(1, int(window), int(window)),
                                             strides=(1, int(stride), int(stride)), baselines=0.0,
                                             target=target, additional_forward_args=extra)
        with torch.no_grad():
            p = float(prob(inp, None if extra is None else extra[0])[0, target])
    a = attr.detach().float().cpu().numpy()[0]
    channels = tuple(channels)
    return Saliency(method=method, attributions=a, channels=channels, share=modality_share(a, channels), probability=p,
                    target=int(target))


def explain_lesion(clf, data, transform: np.ndarray | None = None, *, index: int = 0, method: str = "ig",
                   steps: int = 32, target: int | None = None) -> Saliency:
    """Saliency of lesion ``index`` of ``data`` (:class:`petcad.models.data.LesionData`) under
    ``transform`` (6,) for the loaded :class:`petcad.models.estimator.CNNClassifier` ``clf``.

    ``target``: the class index explained; default the ``malignant`` class when the network
    has one (class 1 of a binary network), else class 1."""
    import warnings

    t = np.zeros((1, 6)) if transform is None else np.asarray(transform, dtype=np.float64).reshape(1, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        x = data.sample(np.array([index], dtype=np.int64), t)[0]
    feats = None
    if clf.scaler_ is not None:
        feats = clf.scaler_.transform(data.features[[index]])[0]
    if target is None:
        from petcad.explain.analysis import class_names

        names = class_names(clf)
        target = names.index(POSITIVE_LABEL) if POSITIVE_LABEL in names else 1
    return explain_patch(clf.model_, x, feats, data.channels, method=method, steps=steps, target=int(target))
