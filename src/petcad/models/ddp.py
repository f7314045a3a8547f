"""Multi-process training with DistributedDataParallel.

Run ``torchrun --nproc_per_node 2 -m petcad.models.ddp MANIFEST --model wang2017 --out RUN_DIR``
(or ``petcad train ... --ddp`` under torchrun). The backend is gloo on CPU and
nccl on CUDA (one GPU per process, ``LOCAL_RANK``). Every process draws the
same epoch order and transforms from ``(seed, epoch)``; each global batch of
``--batch-size`` lesions is split ``[rank::world_size]`` (a DistributedSampler-like
shard), gradients are averaged by DDP, every process evaluates the same
validation set (so all stop at the same epoch) and rank 0 alone writes the
checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys

from petcad.errors import InputError


def run_distributed(args, load_data=None) -> int:
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise InputError("--ddp", f"run under torchrun (environment lacks {', '.join(missing)})")
        use_cuda = args.device != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    from petcad.models.options import train_from_args

    try:
        return train_from_args(args, rank=dist.get_rank(), world_size=dist.get_world_size(), load_data=load_data)
    finally:
        dist.barrier()
        dist.destroy_process_group()


def main(argv=None) -> int:
    from petcad.models.options import add_train_arguments

    parser = argparse.ArgumentParser(prog="python -m petcad.models.ddp", description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_distributed(args)
    except InputError as exc:
        print(f"petcad: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
