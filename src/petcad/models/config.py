"""Training settings, :class:`TrainConfig`: the one home of the networks' training defaults.

Torch-free on import, so that the command-line parsers (``petcad train``, ``petcad bench
model``) and the comparison's settings can take their defaults from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from petcad.errors import InputError

#: patch normalisations of the networks' input (see :class:`petcad.models.data.LesionData`); the first is the default
NORMALIZATIONS = ("fixed", "patch")
DEFAULT_NORMALIZATION = NORMALIZATIONS[0]

#: embedding losses added to the cross-entropy (see :mod:`petcad.models.embedding`); the first is the default
EMBEDDING_LOSSES = ("none", "supcon", "fisher")

#: settings that must equal the saved ones for ``--resume``
RESUME_KEYS = ("model", "seed", "batch_size", "lr", "momentum", "weight_decay", "augment", "dihedral", "dropout",
               "val_fraction", "min_samples_per_epoch", "normalization", "embedding_loss", "embedding_weight")


def default_lr(model: str) -> float:
    """The SGD learning rate used when none is given: 0.002 for ``alexnet``, else :attr:`TrainConfig.lr`."""
    return 0.002 if model == "alexnet" else TrainConfig.lr


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (units: lr per step, weight decay = L2 coefficient).

    ``augment`` draws the rigid transforms of the plane triplet (random / grid / none);
    ``dihedral`` also mirrors / turns each plane by quarter turns on its own
    (:func:`petcad.patches.augment.apply_dihedral`); ``dropout`` is the drop
    probability before the classifier of every network (``alexnet``: before each of
    its two hidden fully connected layers, as in AlexNet).

    ``embedding_loss`` adds ``embedding_weight`` times a term on the penultimate features
    (the "deep features" that ``cnn-svm`` / ``cnn-rf`` hand to the classical classifiers)
    to the cross-entropy: ``supcon`` (supervised contrastive on the L2-normalised features)
    or ``fisher`` (within-class over total scatter in the batch), see
    :mod:`petcad.models.embedding`; ``none`` (default) trains on the cross-entropy alone.
    """

    model: str = "wang2017"
    epochs: int = 40
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: str = "random"
    dihedral: bool = True
    dropout: float = 0.5
    val_fraction: float = 0.2
    patience: int = 12
    min_samples_per_epoch: int = 2048
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    init_weights: str | None = None
    eval_batch_size: int = 256
    embedding_loss: str = EMBEDDING_LOSSES[0]
    embedding_weight: float = 0.5

    def validate(self) -> "TrainConfig":
        from petcad.models.registry import check_model_name  # imports torch: not at module level

        check_model_name(self.model)
        if self.augment not in ("random", "grid", "none"):
            raise InputError("--augment", f"must be random, grid or none, got {self.augment!r}")
        if not (0.0 <= self.dropout < 1.0):
            raise InputError("--dropout", "must be in [0, 1)")
        if self.epochs < 1:
            raise InputError("--epochs", "must be at least 1")
        if self.batch_size < 1:
            raise InputError("--batch-size", "must be at least 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError("--lr", "must be a positive number")
        if not (0.0 <= self.val_fraction < 1.0):
            raise InputError("--val-fraction", "must be in [0, 1)")
        if self.min_samples_per_epoch < 0:
            raise InputError("--min-samples-per-epoch", "must be >= 0")
        if self.patience < 1:
            raise InputError("--patience", "must be at least 1")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise InputError("--device", f"must be auto, cpu or cuda, got {self.device!r}")
        if self.embedding_loss not in EMBEDDING_LOSSES:
            raise InputError("--embedding-loss", f"must be {', '.join(EMBEDDING_LOSSES)}, got {self.embedding_loss!r}")
        if not (math.isfinite(self.embedding_weight) and self.embedding_weight > 0):
            raise InputError("--embedding-weight", f"must be a positive number, got {self.embedding_weight!r}")
        if self.threads is not None and self.threads < 1:
            raise InputError("--threads", "must be at least 1")
        return self


#: the value of a resume key in a checkpoint written before the key existed
RESUME_DEFAULTS = {"embedding_loss": TrainConfig.embedding_loss, "embedding_weight": TrainConfig.embedding_weight}
