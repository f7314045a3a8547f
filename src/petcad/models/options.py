"""Command-line options of training, shared by ``petcad train`` and ``python -m petcad.models.ddp``.

No heavy imports at module level (the CLI imports this to build its parser).
"""

from __future__ import annotations

import sys


def add_train_arguments(parser) -> None:
    parser.add_argument("manifest", help="cohort manifest CSV")
    parser.add_argument("--model", default="wang2017", help="wang2017 | multiview | alexnet | hybrid (default wang2017)")
    parser.add_argument("--out", required=True, help="run directory for checkpoints and metrics")
    parser.add_argument("--epochs", type=int, default=40, help="maximum epochs (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=64, help="lesions per SGD step, all processes together (default 64)")
    parser.add_argument("--lr", type=float, default=None, help="SGD learning rate (default 0.01; alexnet 0.002)")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="L2 coefficient (default 5e-4)")
    parser.add_argument("--augment", default="random", choices=("random", "grid", "none"),
                        help="augmentation of the plane triplet (default random: +-10 deg, +-2 px)")
    parser.add_argument("--no-dihedral", action="store_true",
                        help="do not mirror / quarter-turn each plane during training (on by default)")
    parser.add_argument("--dropout", type=float, default=0.5, help="drop probability before the classifier (default 0.5)")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="share of patients for validation (default 0.2)")
    parser.add_argument("--patience", type=int, default=12, help="epochs without better validation AUC before stopping (default 12)")
    parser.add_argument("--min-samples-per-epoch", type=int, default=2048,
                        help="an epoch makes whole passes over the training lesions until at least this many "
                             "augmented samples were seen (default 2048; 0 = one pass)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto: CUDA when available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per process (default: torch's choice)")
    parser.add_argument("--size", type=int, default=51, help="patch size in pixels (default 51)")
    parser.add_argument("--spacing", type=float, default=1.0, help="patch pixel spacing in mm (default 1.0)")
    parser.add_argument("--normalization", default="fixed", choices=("fixed", "patch"),
                        help="fixed (default): CT (HU - 40) / 300 and PET SUV / 3, keeping the uptake level; "
                             "patch: per patch and channel x - mean, / std (the original study's)")
    parser.add_argument("--with-mask", action="store_true", help="add the 3 lesion-mask channels (9 in all)")
    parser.add_argument("--init-weights", default=None, metavar="FILE",
                        help="initialise matching layers from a safetensors or torch state-dict file (no download)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out after an interruption")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log one line per epoch instead)")


def default_lr(model: str) -> float:
    return 0.002 if model == "alexnet" else 0.01


def config_from_args(args):
    from petcad.models.registry import check_model_name
    from petcad.models.train import TrainConfig

    check_model_name(args.model)
    return TrainConfig(
        model=args.model, epochs=args.epochs, batch_size=args.batch_size,
        lr=default_lr(args.model) if args.lr is None else args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, augment=args.augment, dihedral=not args.no_dihedral,
        dropout=args.dropout, val_fraction=args.val_fraction,
        patience=args.patience, min_samples_per_epoch=args.min_samples_per_epoch, seed=args.seed, device=args.device, threads=args.threads,
        init_weights=args.init_weights,
    ).validate()


def train_from_args(args, rank: int = 0, world_size: int = 1) -> int:
    """Load the manifest, train, print a summary (rank 0). Returns the exit status."""
    from petcad.models.data import load_manifest_data
    from petcad.models.train import train

    cfg = config_from_args(args)
    if world_size > 1 and cfg.device == "auto":
        import os

        import torch

        cfg.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    _, data = load_manifest_data(args.manifest, size=args.size, spacing_mm=args.spacing,
                                 with_mask=args.with_mask, with_features=cfg.model == "hybrid",
                                 normalization=args.normalization)
    quiet = args.no_progress or rank != 0
    res = train(data, None, cfg, run_dir=args.out, resume=args.resume, progress=not quiet, rank=rank,
                world_size=world_size,
                log=(lambda m: print(m, file=sys.stderr)) if (args.no_progress and rank == 0) else None)
    if rank == 0:
        last = res.history[-1] if res.history else {}
        print(f"{cfg.model}: {len(res.history)} epochs, best validation AUC {res.best_auc:.4f} at epoch "
              f"{res.best_epoch}, last train loss {last.get('train_loss', float('nan')):.4f}"
              f"{f' ({world_size} processes)' if world_size > 1 else ''}; weights in {args.out}/model.safetensors")
        if res.init_report:
            r = res.init_report
            print(f"init weights: loaded {len(r['loaded'])} tensors; skipped {len(r['skipped_shape'])} by shape, "
                  f"{len(r['missing'])} not in the file")
    return 0
