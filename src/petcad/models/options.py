"""Command-line options of training, shared by ``petcad train`` and ``python -m petcad.models.ddp``.

No heavy imports at module level (the CLI imports this to build its parser); the
defaults are those of :class:`petcad.models.config.TrainConfig`.
"""

from __future__ import annotations

import sys

from petcad.io.options import add_on_irregular_option
from petcad.models.config import DEFAULT_NORMALIZATION, EMBEDDING_LOSSES, NORMALIZATIONS, TrainConfig, default_lr


def add_train_arguments(parser) -> None:
    parser.add_argument("manifest", help="cohort manifest CSV")
    D = TrainConfig
    parser.add_argument("--model", default=D.model, help=f"wang2017 | multiview | alexnet | hybrid (default {D.model})")
    parser.add_argument("--out", required=True, help="run directory for checkpoints and metrics")
    parser.add_argument("--epochs", type=int, default=D.epochs, help=f"maximum epochs (default {D.epochs})")
    parser.add_argument("--seed", type=int, default=D.seed, help=f"random seed (default {D.seed})")
    parser.add_argument("--batch-size", type=int, default=D.batch_size,
                        help=f"lesions per SGD step, all processes together (default {D.batch_size})")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"SGD learning rate (default {D.lr:g}; alexnet {default_lr('alexnet'):g})")
    parser.add_argument("--momentum", type=float, default=D.momentum, help=f"SGD momentum (default {D.momentum:g})")
    parser.add_argument("--weight-decay", type=float, default=D.weight_decay, help=f"L2 coefficient (default {D.weight_decay:g})")
    parser.add_argument("--augment", default=D.augment, choices=("random", "grid", "none"),
                        help=f"augmentation of the plane triplet (default {D.augment}; random: +-10 deg, +-2 px)")
    parser.add_argument("--no-dihedral", action="store_true",
                        help="do not mirror / quarter-turn each plane during training (on by default)")
    parser.add_argument("--dropout", type=float, default=D.dropout,
                        help=f"drop probability before the classifier (default {D.dropout:g})")
    parser.add_argument("--val-fraction", type=float, default=D.val_fraction,
                        help=f"share of patients for validation (default {D.val_fraction:g})")
    parser.add_argument("--patience", type=int, default=D.patience,
                        help=f"epochs without better validation AUC before stopping (default {D.patience})")
    parser.add_argument("--min-samples-per-epoch", type=int, default=D.min_samples_per_epoch,
                        help="an epoch makes whole passes over the training lesions until at least this many "
                             f"augmented samples were seen (default {D.min_samples_per_epoch}; 0 = one pass)")
    add_embedding_arguments(parser)
    parser.add_argument("--device", default=D.device, help=f"auto | cpu | cuda (default {D.device}; auto: CUDA when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per process (default: torch's choice)")
    parser.add_argument("--size", type=int, default=51, help="patch size in pixels (default 51)")
    parser.add_argument("--spacing", type=float, default=1.0, help="patch pixel spacing in mm (default 1.0)")
    parser.add_argument("--normalization", default=DEFAULT_NORMALIZATION, choices=NORMALIZATIONS,
                        help=f"default {DEFAULT_NORMALIZATION}. fixed: CT (HU - 40) / 300 and PET SUV / 3, keeping the uptake level; "
                             "patch: per patch and channel x - mean, / std (the original study's)")
    parser.add_argument("--with-mask", action="store_true", help="add the 3 lesion-mask channels (9 in all)")
    parser.add_argument("--init-weights", default=None, metavar="RUN_DIR",
                        help="fine-tune: initialise from another run directory of petcad train (or a safetensors / "
                             "torch state-dict file): layers matching by name and shape are loaded, the rest "
                             "reinitialised, the head resized when the label set differs (listed in RUN_DIR/train.log)")
    parser.add_argument("--positive", default=None, metavar="LABEL",
                        help="with two labels, the positive one (class 1; default malignant); more than two labels "
                             "in the manifest train a K-class network")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out after an interruption")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log one line per epoch instead)")
    add_on_irregular_option(parser)


def add_embedding_arguments(parser, prefix: str = "") -> None:
    """``--{prefix}embedding-loss`` / ``--{prefix}embedding-weight`` (train, bench model; compare with ``cnn-``)."""
    D = TrainConfig
    parser.add_argument(f"--{prefix}embedding-loss", default=D.embedding_loss, choices=EMBEDDING_LOSSES,
                        help=f"a term on the penultimate (deep) features beside the cross-entropy (default "
                             f"{D.embedding_loss}): supcon = supervised contrastive on the L2-normalised features, "
                             "fisher = within-class / total scatter in the batch (petcad.models.embedding)")
    parser.add_argument(f"--{prefix}embedding-weight", type=float, default=D.embedding_weight,
                        help=f"weight of that term (default {D.embedding_weight:g})")


def config_from_args(args):
    from petcad.models.registry import check_model_name

    check_model_name(args.model)
    return TrainConfig(
        model=args.model, epochs=args.epochs, batch_size=args.batch_size,
        lr=default_lr(args.model) if args.lr is None else args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, augment=args.augment, dihedral=not args.no_dihedral,
        dropout=args.dropout, val_fraction=args.val_fraction,
        patience=args.patience, min_samples_per_epoch=args.min_samples_per_epoch, seed=args.seed, device=args.device, threads=args.threads,
        init_weights=args.init_weights, embedding_loss=args.embedding_loss, embedding_weight=args.embedding_weight,
    ).validate()


def train_from_args(args, rank: int = 0, world_size: int = 1, load_data=None) -> int:
    """Load the manifest, train, print a summary (rank 0). Returns the exit status.

    ``load_data(args)``: another training-data source (e.g. the segmentation points of
    :mod:`petcad.segment.points`) instead of the manifest's lesions."""
    from petcad.models.data import load_manifest_data
    from petcad.models.train import train

    cfg = config_from_args(args)
    if world_size > 1 and cfg.device == "auto":
        import os

        import torch

        cfg.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    if load_data is not None:
        data = load_data(args)
    else:
        _, data = load_manifest_data(args.manifest, size=args.size, spacing_mm=args.spacing,
                                     with_mask=args.with_mask, with_features=cfg.model == "hybrid",
                                     normalization=args.normalization, positive=getattr(args, "positive", None),
                                     on_irregular=args.on_irregular)
    quiet = args.no_progress or rank != 0
    res = train(data, None, cfg, run_dir=args.out, resume=args.resume, progress=not quiet, rank=rank,
                world_size=world_size,
                log=(lambda m: print(m, file=sys.stderr)) if (args.no_progress and rank == 0) else None)
    if rank == 0:
        last = res.history[-1] if res.history else {}
        print(f"{cfg.model} ({', '.join(data.classes)}): {len(res.history)} epochs, best validation "
              f"{'AUC' if len(data.classes) == 2 else 'macro AUC'} {res.best_auc:.4f} at epoch "
              f"{res.best_epoch}, last train loss {last.get('train_loss', float('nan')):.4f}"
              f"{f' ({world_size} processes)' if world_size > 1 else ''}; weights in {args.out}/model.safetensors")
        if res.init_report:
            from petcad.models.checkpoint import describe_init

            print("\n".join(describe_init(res.init_report)))
    return 0
