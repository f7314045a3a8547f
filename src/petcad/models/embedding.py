"""Embedding losses: make the penultimate features "classifiable" for the next stage.

The original study fed its CNN's deep features (the vector entering the softmax) to an
SVM and a random forest and found them worse than the softmax; its roadmap planned a
loss that measures how classifiable a feature set is (docs/models.md, "Classifiability
loss"). :func:`embedding_loss` is that term, added to the cross-entropy with
``TrainConfig.embedding_weight``:

* ``supcon``: the supervised contrastive loss (Khosla et al., NeurIPS 2020, the
  "L_out" form) on the L2-normalised features of the batch, temperature
  :data:`SUPCON_TEMPERATURE`: for each anchor with at least one other lesion of its
  class, minus the mean over those positives of
  ``log(exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t))``; averaged over the anchors.
* ``fisher``: the Fisher criterion of the batch's features as a trace ratio,
  ``S_w / (S_w + S_b)`` with ``S_w = sum_i ||z_i - mu_{c(i)}||^2 / n`` (within-class
  scatter) and ``S_b = sum_c n_c ||mu_c - mu||^2 / n`` (between-class scatter): a
  monotone form of ``S_w / S_b`` (``x / (1 + x)``) bounded in ``[0, 1]``, so that a batch
  whose classes barely differ yet (early training) cannot give an unbounded term. Scale
  free (the raw features, not normalised).

A batch with a single class has no between-class term: both losses are 0 there (the
cross-entropy alone trains on it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: temperature of the supervised contrastive loss (Khosla et al. 2020 used 0.1 for most runs)
SUPCON_TEMPERATURE = 0.1

#: one line per loss, recorded in the checkpoint's config.json
DESCRIPTIONS = {
    "none": "cross-entropy only",
    "supcon": f"supervised contrastive (Khosla et al. 2020) on the L2-normalised penultimate features, "
              f"temperature {SUPCON_TEMPERATURE:g}",
    "fisher": "Fisher criterion S_w / (S_w + S_b) of the penultimate features in the batch "
              "(within-class over total scatter)",
}


def _at_least_float32(z: torch.Tensor) -> torch.Tensor:
    """Half-precision features (mixed precision) in float32; float32 / float64 as they are."""
    return z if z.dtype in (torch.float32, torch.float64) else z.float()


def supcon_loss(z: torch.Tensor, y: torch.Tensor, temperature: float = SUPCON_TEMPERATURE) -> torch.Tensor:
    """Supervised contrastive loss of features ``z`` ``(n, d)`` with labels ``y`` ``(n,)`` (L2-normalised here)."""
    if torch.unique(y).numel() < 2:
        return z.sum() * 0.0  # one class only: nothing to contrast
    z = F.normalize(_at_least_float32(z), dim=1)
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = (z @ z.T) / temperature
    sim = sim.masked_fill(eye, float("-inf"))  # an anchor is not its own contrast
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (y[:, None] == y[None, :]) & ~eye
    n_pos = pos.sum(dim=1)
    anchors = n_pos > 0
    if not bool(anchors.any()):
        return z.sum() * 0.0  # no two lesions of one class
    mean_pos = torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(dim=1)[anchors] / n_pos[anchors]
    return -mean_pos.mean()


def fisher_loss(z: torch.Tensor, y: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Within-class over total scatter ``S_w / (S_w + S_b)`` of features ``z`` ``(n, d)`` with labels ``y``."""
    z = _at_least_float32(z)
    classes, inverse = torch.unique(y, return_inverse=True)
    if classes.numel() < 2:
        return z.sum() * 0.0
    k = classes.numel()
    counts = torch.zeros(k, dtype=z.dtype, device=z.device).index_add_(0, inverse, torch.ones_like(z[:, 0]))
    sums = torch.zeros(k, z.shape[1], dtype=z.dtype, device=z.device).index_add_(0, inverse, z)
    mu_c = sums / counts[:, None]
    s_w = ((z - mu_c[inverse]) ** 2).sum() / z.shape[0]
    s_b = (counts * ((mu_c - z.mean(dim=0)) ** 2).sum(dim=1)).sum() / z.shape[0]
    return s_w / (s_w + s_b + eps)


def embedding_loss(kind: str, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The ``kind`` term (``supcon`` or ``fisher``) of penultimate features ``z`` with class indices ``y``."""
    if kind == "supcon":
        return supcon_loss(z, y)
    if kind == "fisher":
        return fisher_loss(z, y)
    raise ValueError(f"unknown embedding loss {kind!r} (none, supcon or fisher; 'none' adds no term)")
