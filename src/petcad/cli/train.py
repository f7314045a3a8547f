"""``petcad train MANIFEST --model NAME --out RUN_DIR``: train a 2.5D CNN with checkpoints and resume."""

from __future__ import annotations

NAME = "train"
HELP = "train a 2.5D CNN (wang2017, multiview, alexnet, hybrid) on a cohort manifest"
DESCRIPTION = (
    "Train a 2.5D PET/CT CNN on the lesions of MANIFEST with patches sampled and augmented on the fly, "
    "a patient-level validation split, early stopping on validation AUC and atomic safetensors checkpoints "
    "in RUN_DIR (model.safetensors = best, last.safetensors + state.json = resume point, config.json, metrics.csv). "
    "Under torchrun, add --ddp for DistributedDataParallel (gloo on CPU)."
)


def add_arguments(parser) -> None:
    from petcad.models.options import add_train_arguments

    add_train_arguments(parser)
    parser.add_argument("--ddp", action="store_true", help="DistributedDataParallel (run under torchrun)")
    parser.add_argument("--task", choices=("classify", "segment"), default="classify",
                        help="classify: one patch per lesion (default); segment: a 3-class voxel classifier "
                             "(none + the lesion labels) for petcad segment, trained on points of the lesion masks, "
                             "the body, PET-avid normal tissue and lesion surroundings (multiview, fixed scaling)")
    parser.add_argument("--points-per-lesion", type=int, default=64,
                        help="--task segment: mask voxels drawn per lesion (default 64)")
    parser.add_argument("--none-ratio", type=float, default=3.0,
                        help="--task segment: no-tumour points per tumour point (default 3)")
    parser.add_argument("--suv-level", type=float, default=None,
                        help="--task segment: SUV above which body voxels count as PET-avid (default 1.0)")
    parser.add_argument("--hard-negatives", default=None, metavar="SEG_DIR",
                        help="--task segment: a petcad segment output folder of the same studies; its false "
                             "positives (tumour voxels outside every lesion mask) become a fourth share of the "
                             "no-tumour points (hard-negative mining; combine with --init-weights RUN)")
    parser.set_defaults(model=None)  # wang2017 for classify, multiview for segment


def _segment_loader(args):
    from petcad.errors import InputError
    from petcad.segment.points import load_segment_data
    from petcad.segment.roi import DEFAULT_SUV_LEVEL

    if args.with_mask:
        raise InputError("--with-mask", "a segmenter sees CT and PET only (the mask is what it predicts)")
    if args.normalization != "fixed":
        raise InputError("--normalization", "segmentation needs the fixed HU/SUV scaling (a per-patch z-score "
                                            "cannot be evaluated densely)")
    _, data = load_segment_data(args.manifest, size=args.size, spacing_mm=args.spacing, seed=args.seed,
                                per_lesion=args.points_per_lesion, none_ratio=args.none_ratio,
                                suv_level=DEFAULT_SUV_LEVEL if args.suv_level is None else args.suv_level,
                                hard_negatives=args.hard_negatives)
    return data


def run(args) -> int:
    from petcad.errors import InputError
    from petcad.models.config import TrainConfig

    load_data = None
    if args.task == "segment":
        if args.model is None:
            args.model = "multiview"
        if args.model != "multiview":
            raise InputError("--model", f"--task segment trains multiview (the network evaluated densely), got {args.model}")
        load_data = _segment_loader
    elif args.hard_negatives:
        raise InputError("--hard-negatives", "only with --task segment")
    elif args.model is None:
        args.model = TrainConfig.model
    if args.ddp:
        from petcad.models.ddp import run_distributed

        return run_distributed(args, load_data=load_data)
    from petcad.models.options import train_from_args

    return train_from_args(args, load_data=load_data)
