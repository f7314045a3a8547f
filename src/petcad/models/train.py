"""The training loop: streamed augmented patches, patient-level validation, early stopping, resume, DDP.

Determinism: the network is initialised from ``torch.manual_seed(seed)``; epoch
``e`` draws its lesion order and augmentation transforms from
``numpy.random.default_rng([seed, e])`` and seeds torch (dropout) with
``seed * 1_000_003 + e``. Nothing else is random, so an epoch depends only on
the weights and SGD momentum buffers after epoch ``e - 1``, which
``last.safetensors`` stores atomically after every epoch: a run killed at any
point and resumed ends with the same weights as an uninterrupted one (same
device, same thread count, ``torch.use_deterministic_algorithms``).

Labels: ``data.classes`` (:mod:`petcad.models.labels`); two = binary, K > 2 = a
K-output softmax. Class balancing: the cross-entropy is weighted by
``n / (K n_c)`` for class ``c`` (counted on the training part), so every class
weighs the same. Validation: a patient-level split (``StratifiedGroupKFold`` with
``round(1 / val_fraction)`` folds, the first fold) drawn from the lesions given
to training; early stopping on the validation AUC (binary) or the macro
one-vs-rest AUC (K classes; the best weights are kept).

Embedding loss (``TrainConfig.embedding_loss``, ``supcon`` or ``fisher``): the
training loss is the weighted cross-entropy plus ``embedding_weight`` times a term
on the batch's penultimate features (:mod:`petcad.models.embedding`), computed in
the same forward pass; ``metrics.csv`` logs that term apart
(``train_embedding_loss``). The validation loss stays the cross-entropy.

Fine-tuning (``TrainConfig.init_weights``, a run directory or a weights file):
:func:`petcad.models.checkpoint.load_init_weights` loads the layers whose names
and shapes match, leaves the rest at their fresh initialisation and resizes the
head to this run's labels; ``train.log`` in the run directory lists them.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from petcad.errors import InputError
from petcad.models import checkpoint as ckpt
from petcad.models.data import LesionData
from petcad.models.config import RESUME_DEFAULTS, RESUME_KEYS, TrainConfig  # noqa: F401  (TrainConfig re-exported)
from petcad.models.labels import classes_metadata
from petcad.models.registry import build_model, count_parameters

@dataclass
class TrainResult:
    model: object
    config: dict
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_auc: float = float("nan")
    init_report: dict | None = None


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device", "CUDA was asked for but is not available")
    return torch.device(name)


def software_versions() -> dict:
    from petcad.provenance import software_versions as versions

    return versions(extra=("safetensors",))


def patient_split(y: np.ndarray, groups: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ``y``) of the training and validation parts; no patient in both.

    ``StratifiedGroupKFold`` when every class has enough lesions, else a seeded
    ``GroupShuffleSplit`` (the first of 20 draws whose training part holds every class).
    """
    if val_fraction <= 0:
        return np.arange(len(y)), np.array([], dtype=np.int64)
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        return np.arange(len(y)), np.array([], dtype=np.int64)
    k = max(2, int(round(1.0 / val_fraction)))
    if n_groups >= k and np.bincount(y).min() >= k:
        tr, va = next(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))
    else:
        # few patients: the first of up to 20 seeded draws whose training part holds every class
        draws = GroupShuffleSplit(n_splits=20, test_size=val_fraction, random_state=seed).split(np.zeros(len(y)), y, groups)
        first = None
        for tr, va in draws:
            first = first or (tr, va)
            if np.unique(y[tr]).size == np.unique(y).size:
                break
        else:
            tr, va = first
    return np.sort(tr), np.sort(va)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p))


def validation_auc(y: np.ndarray, prob: np.ndarray) -> float:
    """AUC of column 1 (binary), or the mean one-vs-rest AUC over the classes present in ``y`` (K > 2)."""
    if prob.shape[1] == 2:
        return _auc(y, prob[:, 1])
    aucs = [_auc((y == k).astype(int), prob[:, k]) for k in range(prob.shape[1]) if 0 < np.sum(y == k) < len(y)]
    return float(np.mean(aucs)) if aucs else float("nan")


@contextlib.contextmanager
def torch_settings(threads: int | None, deterministic: bool = True):
    """Fix thread count and deterministic algorithms for the duration; restore afterwards."""
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        if threads:
            torch.set_num_threads(int(threads))
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


class FeatureScaler:
    """Impute and standardise diagnostic features with training statistics only.

    A missing (NaN or infinite) feature is replaced by the training-fold median of its column,
    then every column is standardised with the training mean and standard deviation. All three
    statistics come from the rows given to :meth:`fit`, so test lesions never move them.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, median: np.ndarray | None = None):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        # checkpoints written before the median was stored impute with the mean
        self.median = self.mean.copy() if median is None else np.asarray(median, dtype=np.float64)

    @classmethod
    def fit(cls, X: np.ndarray) -> "FeatureScaler":
        X = np.where(np.isfinite(X), X, np.nan).astype(np.float64)
        empty = np.all(np.isnan(X), axis=0)
        if X.size == 0 or empty.any():
            raise InputError("features", f"diagnostic feature column(s) {np.flatnonzero(empty).tolist()} have no finite "
                             "value in the training lesions")
        median = np.nanmedian(X, axis=0)
        X = np.where(np.isnan(X), median[None, :], X)
        sd = X.std(axis=0)
        return cls(X.mean(axis=0), np.where(sd > 0, sd, 1.0), median)

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.mean):
            raise InputError("features", f"expected {len(self.mean)} features per lesion, got shape {X.shape}")
        X = np.where(np.isfinite(X), X, self.median[None, :])
        return ((X - self.mean) / self.std).astype(np.float32)


def predict_logits(model, data: LesionData, indices: np.ndarray, device, scaler: FeatureScaler | None,
                   batch_size: int = 256, transforms: np.ndarray | None = None, embed: bool = False) -> np.ndarray:
    """Logits (or penultimate features with ``embed``) for ``indices``, in eval mode, batched."""
    import torch

    indices = np.asarray(indices, dtype=np.int64)
    outs = []
    model.eval()
    with torch.inference_mode():
        for a in range(0, len(indices), batch_size):
            bi = indices[a : a + batch_size]
            bt = None if transforms is None else transforms[a : a + batch_size]
            x = data.sample_tensor(bi, bt, device=device)  # sampled on the GPU when device is CUDA
            f = None
            if scaler is not None:
                f = torch.from_numpy(scaler.transform(data.features[bi])).to(device)
            out = model.embed(x, f) if embed else model(x, f)
            outs.append(out.float().cpu().numpy())
    dim = model.embed_dim if embed else model.n_classes
    return np.concatenate(outs) if outs else np.zeros((0, dim), dtype=np.float32)


def softmax1(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def write_log(run_dir: Path, lines: list[str]) -> None:
    """``train.log``: the run log (rewritten whole, atomically)."""
    from petcad.io.atomic import write_text

    write_text(run_dir / "train.log", "\n".join(lines) + "\n")


def embedding_text(cfg: TrainConfig) -> str:
    """The training loss in words (``config.json``'s ``embedding_loss_text``)."""
    from petcad.models.embedding import DESCRIPTIONS

    if cfg.embedding_loss == "none":
        return DESCRIPTIONS["none"]
    return f"cross-entropy + {cfg.embedding_weight:g} x {DESCRIPTIONS[cfg.embedding_loss]}"


def make_policy(kind: str):
    from petcad.patches.augment import AugmentPolicy

    return AugmentPolicy(kind=kind)


def draw_dihedral(rng, n: int):
    from petcad.patches.augment import draw_dihedral as draw

    return draw(rng, n)


def train(
    data: LesionData,
    indices: np.ndarray | None,
    cfg: TrainConfig,
    *,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = False,
    rank: int = 0,
    world_size: int = 1,
    log=None,
) -> TrainResult:
    """Train ``cfg.model`` on lesions ``indices`` of ``data`` (all when None).

    With ``run_dir``, checkpoints are written there after every epoch (rank 0
    only) and ``resume`` continues from ``last.safetensors``. Under
    ``torch.distributed`` pass ``rank`` / ``world_size``: every global batch is
    split ``[rank::world_size]`` across processes and the model is wrapped in
    DistributedDataParallel.
    """
    import torch
    import torch.nn.functional as F

    from petcad.models.embedding import embedding_loss

    cfg.validate()
    indices = np.arange(len(data)) if indices is None else np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        raise InputError("training data", "no lesions to train on")
    y_all = data.y[indices]
    K = len(data.classes)
    if len(np.unique(y_all)) < 2:
        raise InputError("training data", f"one class only ({data.classes[int(y_all[0])]}); needs at least two of "
                                          f"{', '.join(data.classes)}")
    if cfg.model == "hybrid" and data.features is None:
        raise InputError("--model", "hybrid needs diagnostic features (LesionData.features is None)")
    run_dir = Path(run_dir) if run_dir is not None else None
    log_lines: list[str] = []

    def say(msg: str) -> None:
        log_lines.append(msg)
        if log is not None:
            log(msg)

    writer_rank = rank == 0 and run_dir is not None
    device = resolve_device(cfg.device)

    tr_pos, va_pos = patient_split(y_all, data.groups[indices], cfg.val_fraction, cfg.seed)
    train_idx, val_idx = indices[tr_pos], indices[va_pos]
    counts = np.bincount(data.y[train_idx], minlength=K).astype(np.float64)
    if np.any(counts == 0):
        absent = [c for c, n in zip(data.classes, counts) if n == 0]
        raise InputError("training data", f"the training part of the patient split has no lesion labelled "
                                          f"{', '.join(absent)} (every class needs training lesions)")
    class_w = torch.tensor(len(train_idx) / (K * counts), dtype=torch.float32, device=device)

    scaler = None
    if cfg.model == "hybrid":
        scaler = FeatureScaler.fit(data.features[indices])
    data_hash = data.fingerprint(indices)

    with torch_settings(cfg.threads):
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model, in_channels=data.n_channels, patch_size=data.size,
                            n_features=0 if scaler is None else len(scaler.mean), dropout=cfg.dropout, n_classes=K)
        unit = "points" if getattr(data, "task", "classify") == "segment" else "lesions"
        say(f"{cfg.model}: labels {', '.join(data.classes)} ({', '.join(f'{c} {int(n)}' for c, n in zip(data.classes, counts))} "
            f"training {unit}; {len(val_idx)} validation {unit})")
        init_report = None
        if cfg.init_weights and not (resume and run_dir is not None and (run_dir / "last.safetensors").exists()):
            init_report = ckpt.load_init_weights(model, cfg.init_weights, data.classes)
            for line in ckpt.describe_init(init_report):
                say(line)
        model.to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

        config = {
            "format": ckpt.FORMAT,
            **{k: v for k, v in asdict(cfg).items() if k not in ("device", "threads", "eval_batch_size")},
            "channels": list(data.channels),
            "in_channels": data.n_channels,
            "patch_size": data.size,
            "spacing_mm": data.spacing_mm,
            "with_mask": data.with_mask,
            "normalization": data.normalization,
            "normalization_text": ("per patch and channel: x - mean, / std (petcad.patches.normalize.normalize_patches)"
                                   if data.normalization == "patch" else
                                   "fixed: CT (clip(HU, -1000, 1000) - 40) / 300, PET clip(SUV, 0, 30) / 3"),
            "classes": list(data.classes),
            "task": getattr(data, "task", "classify"),  # "segment": petcad.segment's point data (none + lesion labels)
            "points": getattr(data, "point_settings", None),  # segment: how the training points were drawn
            "class_balance": f"weighted cross-entropy, weight n / ({K} n_c)",
            "embedding_loss_text": embedding_text(cfg),
            "feature_names": list(data.feature_names) if scaler is not None else [],
            "feature_mean": scaler.mean.tolist() if scaler is not None else [],
            "feature_std": scaler.std.tolist() if scaler is not None else [],
            "feature_median": scaler.median.tolist() if scaler is not None else [],
            "n_train": int(len(train_idx)),
            "n_val": int(len(val_idx)),
            "n_parameters": count_parameters(model),
            "data_hash": data_hash,
            "data": data.describe(),
            "versions": software_versions(),
            "init_report": init_report,
        }

        state = {"epoch": 0, "best_auc": None, "best_epoch": -1, "bad_epochs": 0, "stopped": False, "history": []}
        if run_dir is not None and resume and (run_dir / "last.safetensors").exists():
            old = ckpt.read_config(run_dir)
            if old.get("classes", ["benign", "malignant"]) != list(data.classes):
                raise InputError(run_dir, f"--resume with another label set ({', '.join(data.classes)} vs "
                                          f"{', '.join(old.get('classes', ['benign', 'malignant']))})")
            if old.get("init_report"):
                config["init_report"] = init_report = old["init_report"]
            if (run_dir / "train.log").is_file():
                log_lines[:0] = (run_dir / "train.log").read_text(encoding="utf-8").splitlines()
            if old.get("data_hash") != data_hash:
                raise InputError(run_dir, "--resume with a different training list (data hash mismatch)")
            diff = [k for k in RESUME_KEYS if old.get(k, RESUME_DEFAULTS.get(k)) != config.get(k)]
            if diff:
                raise InputError(run_dir, f"--resume with different settings: {', '.join(diff)}")
            state = ckpt.load_last(run_dir, model, optimizer)
            say(f"resuming after epoch {state['epoch']}")
        elif run_dir is not None and resume and (run_dir / "config.json").exists():
            old = ckpt.read_config(run_dir)
            if old.get("data_hash") != data_hash:
                raise InputError(run_dir, "--resume with a different training list (data hash mismatch)")
        elif run_dir is not None and not resume and (run_dir / "last.safetensors").exists():
            raise InputError(run_dir, "already holds a training run (use --resume to continue it, or another --out)")
        if writer_rank:
            run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.write_config(run_dir, config)
            write_log(run_dir, log_lines)
        meta = {"classes": classes_metadata(data.classes)}

        net = model
        if world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

        policy = make_policy(cfg.augment)
        tb = None
        if writer_rank:
            with contextlib.suppress(Exception):
                from torch.utils.tensorboard import SummaryWriter

                tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        best_sd = None
        if state["best_epoch"] >= 0 and run_dir is not None and (run_dir / "model.safetensors").exists():
            best_sd = ckpt.read_tensors(run_dir / "model.safetensors")[0]

        bar = None
        if progress and rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.epochs, initial=min(state["epoch"], cfg.epochs), desc=f"train {cfg.model}", unit="epoch")
        B = cfg.batch_size
        try:
            while state["epoch"] < cfg.epochs and not state["stopped"]:
                epoch = state["epoch"]
                t0 = time.perf_counter()
                rng = np.random.default_rng([cfg.seed, epoch])
                torch.manual_seed(cfg.seed * 1_000_003 + epoch)
                # an epoch is R passes over the training lesions (R = enough passes for
                # min_samples_per_epoch samples), each pass in a fresh order with fresh transforms
                reps = max(1, math.ceil(cfg.min_samples_per_epoch / len(train_idx)))
                order = np.concatenate([rng.permutation(train_idx) for _ in range(reps)])
                transforms = policy.draw(rng, len(order))
                codes = draw_dihedral(rng, len(order)) if cfg.dihedral else None
                net.train()
                loss_sum, n_seen, t_load, emb_sum = 0.0, 0, 0.0, 0.0
                for a in range(0, len(order), B):
                    bi, bt = order[a : a + B], transforms[a : a + B]
                    bd = None if codes is None else codes[a : a + B]
                    if world_size > 1:
                        if len(bi) < world_size:
                            continue
                        bi, bt = bi[rank::world_size], bt[rank::world_size]
                        bd = None if bd is None else bd[rank::world_size]
                    tl = time.perf_counter()
                    x = data.sample_tensor(bi, bt, bd, device=device)  # on the GPU when device is CUDA
                    f = None if scaler is None else torch.from_numpy(scaler.transform(data.features[bi])).to(device)
                    yb = torch.from_numpy(data.y[bi]).to(device)
                    t_load += time.perf_counter() - tl
                    if cfg.embedding_loss == "none":
                        loss = F.cross_entropy(net(x, f), yb, weight=class_w)
                    else:  # cross-entropy + weight x the term on the penultimate features (petcad.models.embedding)
                        logits, z = net(x, f, with_embedding=True)
                        emb = embedding_loss(cfg.embedding_loss, z, yb)
                        loss = F.cross_entropy(logits, yb, weight=class_w) + cfg.embedding_weight * emb
                        emb_sum += float(emb.detach()) * len(bi)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    loss_val = float(loss.detach())
                    if not math.isfinite(loss_val):
                        raise InputError("training", f"loss became {loss_val} at epoch {epoch + 1}; lower --lr")
                    loss_sum += loss_val * len(bi)
                    n_seen += len(bi)
                train_loss = loss_sum / max(n_seen, 1)
                val_auc, val_loss = float("nan"), float("nan")
                if len(val_idx):
                    logits = predict_logits(model, data, val_idx, device, scaler, cfg.eval_batch_size)
                    p = softmax1(logits)
                    val_auc = validation_auc(data.y[val_idx], p)
                    yv = data.y[val_idx]
                    w = class_w.cpu().numpy()[yv]
                    val_loss = float(-(w * np.log(np.clip(p[np.arange(len(yv)), yv], 1e-12, None))).sum() / w.sum())
                secs = time.perf_counter() - t0
                # early stopping criterion: AUC, or minus the loss when the validation part has one class
                score = val_auc if math.isfinite(val_auc) else (-val_loss if math.isfinite(val_loss) else None)
                improved = score is not None and (state["best_auc"] is None or score > state["best_auc"])
                if improved:
                    state.update(best_auc=score, best_epoch=epoch + 1, bad_epochs=0)
                    best_sd = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                elif score is not None:
                    state["bad_epochs"] += 1
                state["epoch"] = epoch + 1
                if score is not None and state["bad_epochs"] >= cfg.patience:
                    state["stopped"] = True
                row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "val_auc": val_auc,
                       "lr": cfg.lr, "seconds": round(secs, 3),
                       "train_samples_per_s": round(n_seen * world_size / secs, 1) if secs > 0 else float("nan"),
                       "loader_seconds": round(t_load, 3)}
                if cfg.embedding_loss != "none":  # the embedding term alone (train_loss includes it, weighted)
                    row["train_embedding_loss"] = emb_sum / max(n_seen, 1)
                state["history"].append(row)
                say(f"epoch {epoch + 1}/{cfg.epochs}: loss {train_loss:.4f} val_auc {val_auc:.4f} ({secs:.1f} s)")
                if writer_rank:
                    if improved:
                        ckpt.save_weights(run_dir / "model.safetensors", best_sd, {**meta, "epoch": epoch + 1})
                    ckpt.save_last(run_dir, model, optimizer, state, meta)
                    ckpt.write_metrics_csv(run_dir, state["history"])
                    write_log(run_dir, log_lines)
                    if tb is not None:
                        for k in ("train_loss", "val_loss", "val_auc"):
                            tb.add_scalar(k, row[k], epoch + 1)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{train_loss:.3f}", val_auc=f"{val_auc:.3f}")
        finally:
            if bar is not None:
                bar.close()
            if tb is not None:
                tb.close()

        if best_sd is not None:
            model.load_state_dict({k: v.to(device) for k, v in best_sd.items()})
        elif writer_rank:  # no validation: the final weights are the model
            ckpt.save_weights(run_dir / "model.safetensors", model.state_dict(), {**meta, "epoch": state["epoch"]})
        model.eval()
    return TrainResult(model=model, config=config, history=state["history"], best_epoch=state["best_epoch"],
                       best_auc=float("nan") if state["best_auc"] is None else float(state["best_auc"]),
                       init_report=init_report)
