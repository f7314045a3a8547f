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


def run(args) -> int:
    if args.ddp:
        from petcad.models.ddp import run_distributed

        return run_distributed(args)
    from petcad.models.options import train_from_args

    return train_from_args(args)
