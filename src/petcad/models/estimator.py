"""A scikit-learn-like estimator around the networks: ``fit`` / ``predict_proba`` / ``deep_features``.

Example (the comparison runner calls it inside its own folds)::

    from petcad.models.data import LesionData
    from petcad.models.estimator import CNNClassifier

    data = LesionData(cache=cache, y=cache.y, groups=np.asarray(cache.patient_ids))
    clf = CNNClassifier(model="wang2017", epochs=20, seed=0).fit(data, train_idx)
    p = clf.predict_proba(data, test_idx)[:, 1]          # probability of malignancy (binary)
    clf.labels_                                           # ('benign', 'malignant'): one column per label
    Z = clf.deep_features(data, test_idx)                 # (n, 500) penultimate layer
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import numpy as np

from petcad.errors import InputError
from petcad.models.data import LesionData
from petcad.models.config import TrainConfig
from petcad.models.train import FeatureScaler, predict_logits, resolve_device, softmax1, torch_settings, train


class CNNClassifier:
    """Train one of the 2.5D networks and predict the probability of malignancy (or of each of K labels).

    The label set is ``data.classes`` at ``fit`` (``labels_`` afterwards; ``classes_``
    are the class indices ``0..K-1`` used in ``data.y``); ``predict_proba`` has one
    column per label.

    Defaults are those of :class:`petcad.models.config.TrainConfig`.

    Parameters
    ----------
    model : ``wang2017``, ``multiview``, ``alexnet`` or ``hybrid``.
    epochs, batch_size : epochs (at most; early stopping may end sooner) and lesions per SGD step.
    lr, momentum, weight_decay : SGD learning rate, momentum and L2 coefficient.
    augment : ``random`` (uniform +-10 degrees, +-2 px), ``grid`` (the 729-variant
        grid of the original study, one drawn per lesion and epoch) or ``none``.
    dihedral : also mirror / quarter-turn each plane on its own during training
        (:func:`petcad.patches.augment.apply_dihedral`).
    dropout : drop probability before the classifier (0 = none).
    val_fraction : share of patients (drawn from the fit indices) held out for early stopping.
    patience : epochs without a better validation AUC before stopping.
    min_samples_per_epoch : an epoch makes whole passes over the training lesions (each
        with fresh order and augmentation) until at least this many samples were seen.
    seed : everything random derives from it; same seed, device and threads = same weights.
    device : ``auto`` (CUDA if available, else CPU), ``cpu`` or ``cuda``.
    threads : torch CPU threads during fit / predict (None = leave as is).
    init_weights : optional run directory of another training (fine-tuning) or safetensors / torch
        state-dict file: layers matching by name and shape are loaded, the head is resized to this
        run's labels (:func:`petcad.models.checkpoint.load_init_weights`).
    embedding_loss, embedding_weight : ``none`` (cross-entropy only), ``supcon`` or ``fisher``: a term on the
        penultimate features (those of :meth:`deep_features`) added to the cross-entropy with this weight
        (:mod:`petcad.models.embedding`).
    run_dir, resume : where to write checkpoints, and whether to continue a killed run.
    progress : show a tqdm progress bar.
    """

    def __init__(
        self,
        model: str = TrainConfig.model,
        epochs: int = TrainConfig.epochs,
        batch_size: int = TrainConfig.batch_size,
        lr: float = TrainConfig.lr,
        momentum: float = TrainConfig.momentum,
        weight_decay: float = TrainConfig.weight_decay,
        augment: str = TrainConfig.augment,
        dihedral: bool = TrainConfig.dihedral,
        dropout: float = TrainConfig.dropout,
        val_fraction: float = TrainConfig.val_fraction,
        patience: int = TrainConfig.patience,
        min_samples_per_epoch: int = TrainConfig.min_samples_per_epoch,
        seed: int = TrainConfig.seed,
        device: str = TrainConfig.device,
        threads: int | None = None,
        init_weights: str | None = None,
        eval_batch_size: int = TrainConfig.eval_batch_size,
        embedding_loss: str = TrainConfig.embedding_loss,
        embedding_weight: float = TrainConfig.embedding_weight,
        run_dir: str | os.PathLike | None = None,
        resume: bool = False,
        progress: bool = False,
    ):
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.augment = augment
        self.dihedral = dihedral
        self.dropout = dropout
        self.val_fraction = val_fraction
        self.patience = patience
        self.min_samples_per_epoch = min_samples_per_epoch
        self.seed = seed
        self.device = device
        self.threads = threads
        self.init_weights = init_weights
        self.eval_batch_size = eval_batch_size
        self.embedding_loss = embedding_loss
        self.embedding_weight = embedding_weight
        self.run_dir = run_dir
        self.resume = resume
        self.progress = progress

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in (
            "model", "epochs", "batch_size", "lr", "momentum", "weight_decay", "augment", "dihedral", "dropout", "val_fraction",
            "patience", "min_samples_per_epoch", "seed", "device", "threads", "init_weights", "eval_batch_size",
            "embedding_loss", "embedding_weight", "run_dir", "resume", "progress")}

    def set_params(self, **params) -> "CNNClassifier":
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"CNNClassifier has no parameter {k!r}")
            setattr(self, k, v)
        return self

    def _config(self) -> TrainConfig:
        names = {f.name for f in fields(TrainConfig)}
        return TrainConfig(**{k: v for k, v in self.get_params().items() if k in names}).validate()

    # ------------------------------------------------------------------ fit
    def fit(self, data: LesionData, indices=None, log=None) -> "CNNClassifier":
        """Train on lesions ``indices`` of ``data`` only (validation patients are drawn from them)."""
        res = train(data, indices, self._config(), run_dir=self.run_dir, resume=self.resume,
                    progress=self.progress, log=log)
        self._set_fitted(res.model, res.config)
        self.history_ = res.history
        self.best_epoch_ = res.best_epoch
        self.best_val_auc_ = res.best_auc
        self.init_report_ = res.init_report
        return self

    def _set_fitted(self, model, config: dict) -> None:
        from petcad.models.labels import classes_of_config

        self.model_ = model
        self.config_ = config
        self.labels_ = classes_of_config(config)
        self.classes_ = np.arange(len(self.labels_))
        self.scaler_ = None
        if config.get("feature_mean"):
            self.scaler_ = FeatureScaler(np.asarray(config["feature_mean"]), np.asarray(config["feature_std"]),
                                         np.asarray(config["feature_median"]) if config.get("feature_median") else None)

    @classmethod
    def load(cls, run_dir: str | os.PathLike, device: str = "auto", threads: int | None = None) -> "CNNClassifier":
        """A fitted classifier from a run directory (``config.json`` + ``model.safetensors``)."""
        from petcad.models import checkpoint as ckpt
        from petcad.models.registry import build_model

        from petcad.models.labels import classes_from_metadata, classes_of_config

        run_dir = Path(run_dir)
        cfg = ckpt.read_config(run_dir)
        if cfg.get("task", "classify") == "segment":
            raise InputError(run_dir, "is a segmentation model (petcad train --task segment): use petcad segment, "
                                      "not a lesion classifier")
        classes = classes_of_config(cfg, run_dir / "config.json")
        n_feat = len(cfg.get("feature_mean") or [])
        model = build_model(cfg["model"], in_channels=int(cfg["in_channels"]), patch_size=int(cfg["patch_size"]),
                            n_features=n_feat, dropout=float(cfg.get("dropout", 0.0)), n_classes=len(classes))
        weights = run_dir / "model.safetensors"
        if not weights.exists():
            raise InputError(run_dir, "no model.safetensors (training did not finish an epoch)")
        meta_classes = classes_from_metadata(ckpt.read_tensors(weights)[1], weights)
        if meta_classes is not None and meta_classes != classes:
            raise InputError(weights, f"its labels ({', '.join(meta_classes)}) differ from config.json's "
                                      f"({', '.join(classes)})")
        ckpt.load_weights_into(model, weights, strict=True)
        clf = cls(model=cfg["model"], seed=cfg.get("seed", 0), device=device, threads=threads,
                  augment=cfg.get("augment", "random"), dihedral=bool(cfg.get("dihedral", False)),
                  dropout=float(cfg.get("dropout", 0.0)),
                  embedding_loss=cfg.get("embedding_loss", TrainConfig.embedding_loss),
                  embedding_weight=float(cfg.get("embedding_weight", TrainConfig.embedding_weight)))
        model.to(resolve_device(device)).eval()
        clf._set_fitted(model, cfg)
        return clf

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("CNNClassifier is not fitted: call fit() or CNNClassifier.load()")

    def _check_data(self, data: LesionData) -> None:
        cfg = self.config_
        if data.n_channels != int(cfg["in_channels"]) or data.size != int(cfg["patch_size"]):
            raise InputError("data", f"patches are {data.n_channels} x {data.size} but the network expects "
                                     f"{cfg['in_channels']} x {cfg['patch_size']}")
        if data.normalization != cfg.get("normalization", "patch"):
            raise InputError("data", f"normalization {data.normalization!r} but the network was trained with "
                                     f"{cfg.get('normalization', 'patch')!r}")
        if abs(float(data.spacing_mm) - float(cfg["spacing_mm"])) > 1e-9:
            raise InputError("data", f"patch spacing {data.spacing_mm} mm but the network was trained at {cfg['spacing_mm']} mm")
        if tuple(data.classes) != tuple(self.labels_):
            unknown = sorted(set(data.classes) - set(self.labels_))
            raise InputError("data", f"labels {', '.join(data.classes)} but the network knows {', '.join(self.labels_)}"
                                     + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
        if self.scaler_ is not None and data.features is None:
            raise InputError("data", "the hybrid network needs diagnostic features (LesionData.features)")

    def predict_proba(self, data: LesionData, indices=None, tta: bool = False) -> np.ndarray:
        """``(n, K)`` probabilities, one column per label of ``labels_`` (binary: column 1 = malignant).

        ``tta``: average the softmax over the whole augmentation grid (729 variants
        of the original study) instead of the identity patch.
        """
        self._check_fitted()
        self._check_data(data)
        idx = np.arange(len(data)) if indices is None else np.asarray(indices, dtype=np.int64)
        device = next(self.model_.parameters()).device
        with torch_settings(self.threads):
            if not tta:
                return softmax1(predict_logits(self.model_, data, idx, device, self.scaler_, self.eval_batch_size))
            from petcad.patches.augment import grid_transforms

            grid = grid_transforms()
            v = len(grid)
            out = np.zeros((len(idx), len(self.labels_)))
            for a, i in enumerate(idx):
                p = softmax1(predict_logits(self.model_, data, np.full(v, i), device, self.scaler_,
                                            self.eval_batch_size, transforms=grid))
                out[a] = p.mean(axis=0)
            return out

    def predict(self, data: LesionData, indices=None, threshold: float = 0.5) -> np.ndarray:
        """Class indices: binary, P(positive) >= ``threshold``; K classes, the most probable."""
        p = self.predict_proba(data, indices)
        if p.shape[1] == 2:
            return (p[:, 1] >= threshold).astype(np.int64)
        return p.argmax(axis=1).astype(np.int64)

    def deep_features(self, data: LesionData, indices=None) -> np.ndarray:
        """The penultimate layer ``(n, d)`` (d = 500 for wang2017) for SVM / random forest."""
        self._check_fitted()
        self._check_data(data)
        idx = np.arange(len(data)) if indices is None else np.asarray(indices, dtype=np.int64)
        device = next(self.model_.parameters()).device
        with torch_settings(self.threads):
            return predict_logits(self.model_, data, idx, device, self.scaler_, self.eval_batch_size, embed=True)
