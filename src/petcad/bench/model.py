"""``petcad bench model``: speed of the networks on this machine, and (``--auc MANIFEST``) their accuracy.

Speed (default): for each network, training samples per second (SGD steps on
batches of ``--train-batch`` 6 x 51 x 51 patches), inference latency for one
lesion (batch of 1) and per lesion in a batch of ``--batch``, and the patch
loader's rate (augmented patches sampled + normalised per second, one sampler
call per training batch) so that one sees whether the loader keeps training fed.

Accuracy (``--auc MANIFEST``): a patient-grouped hold-out (``--test-fraction``
of the patients, ``GroupShuffleSplit`` with ``--seed``), every network trained
on the rest (its early-stopping patients drawn from them), AUC on the held-out
lesions with the DeLong 95 % CI and the patient-cluster bootstrap 95 % CI.

Fine-tuning (``--auc MANIFEST --init-weights RUN_DIR``): every network is trained
twice on the same training lesions with the same seed and settings, from scratch
and initialised from RUN_DIR (another cohort's run: matching layers loaded, see
:func:`petcad.models.checkpoint.load_init_weights`), and both are scored on the
same held-out lesions, with the paired DeLong test of the difference.

Classifiability (``--auc MANIFEST --embedding-loss none,fisher --deep-baselines svm,rf``):
every network is trained once per embedding loss (:mod:`petcad.models.embedding`, weight
``--embedding-weight``), same split, seed and settings; each trained network's penultimate
features (the "deep features") of the training lesions feed the classical SVM / RF
(:class:`petcad.evaluation.classifiers.TunedClassifier`, tuned by patient-grouped inner CV
on the training lesions, as ``cnn-svm`` / ``cnn-rf`` of ``petcad compare``), which then
score the held-out lesions' deep features: rows ``NETWORK[+LOSS]/svm`` and ``/rf``, with the
paired DeLong p against that network's own softmax on the same lesions.

Classical baselines (``--auc MANIFEST --baselines rf,svm,adaboost,mlp``): the classical methods of
``petcad compare`` (:class:`petcad.evaluation.classifiers.TunedClassifier`: training-fold median
imputation and scaling, tuned by patient-grouped inner CV) on the 13 diagnostic features of the same
training lesions, scored on the same held-out lesions, with the paired DeLong p against each network
row. Every row of the table sees the same information, and the table names it (the modes of ``petcad
compare``, :func:`petcad.evaluation.compare.mode_description`): by default *images only* (the features
from petcad's delineation of the images, the networks on 6 channels); with ``--with-mask`` *with
masks* (the features inside the manifest's masks, the networks on 9 channels). The hybrid network
gets the same features as the baselines. ``--models none`` runs the baselines alone (seconds).
"""

from __future__ import annotations

import json
import time

HELP = "speed of the CNNs (training samples/s, latency per lesion), or their hold-out AUC with --auc MANIFEST"
ALL_MODELS = ("wang2017", "multiview", "alexnet", "hybrid")


def add_arguments(parser) -> None:
    from petcad.models.config import DEFAULT_NORMALIZATION, EMBEDDING_LOSSES, NORMALIZATIONS, TrainConfig as D

    parser.add_argument("--json", action="store_true", help="print JSON (a list, one object per network)")
    parser.add_argument("--models", default=",".join(ALL_MODELS),
                        help="comma-separated networks (default all; none or empty: no network, --auc --baselines only)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--batch", type=int, default=256, help="batch for the batched latency (default 256)")
    parser.add_argument("--train-batch", type=int, default=64, help="training batch (default 64)")
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per measurement (default 3 s)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--auc", metavar="MANIFEST", help="measure hold-out AUC on this cohort instead of speed")
    parser.add_argument("--test-fraction", type=float, default=0.3, help="share of patients held out (default 0.3)")
    parser.add_argument("--epochs", type=int, default=D.epochs, help=f"epochs per network in --auc mode (default {D.epochs})")
    parser.add_argument("--alexnet-epochs", type=int, default=None, help="epochs for alexnet in --auc mode (default: --epochs)")
    parser.add_argument("--batch-size", type=int, default=D.batch_size,
                        help=f"training batch in --auc mode (default {D.batch_size})")
    parser.add_argument("--min-samples-per-epoch", type=int, default=D.min_samples_per_epoch,
                        help=f"samples per epoch at least, in whole passes, in --auc mode (default {D.min_samples_per_epoch}; "
                             "0 = one pass)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the training (default 0)")
    parser.add_argument("--normalization", default=DEFAULT_NORMALIZATION, choices=NORMALIZATIONS,
                        help=f"patch normalisation in --auc mode (default {DEFAULT_NORMALIZATION}; patch = the original study's)")
    parser.add_argument("--with-mask", "--with-masks", dest="with_mask", action="store_true",
                        help="in --auc mode, the table 'with masks': the networks on 9 channels (the lesion mask "
                             "added), the hybrid's and --baselines' features inside the manifest's masks (default: "
                             "images only, 6 channels, features from petcad's delineation of the images)")
    parser.add_argument("--patience", type=int, default=D.patience, help=f"early-stopping patience in --auc mode (default {D.patience})")
    parser.add_argument("--dropout", type=float, default=D.dropout,
                        help=f"dropout before the classifier in --auc mode (default {D.dropout:g})")
    parser.add_argument("--no-dihedral", action="store_true",
                        help="no per-plane mirrors / quarter turns during training in --auc mode")
    parser.add_argument("--init-weights", default=None, metavar="RUN_DIR",
                        help="in --auc mode, also train each network initialised from this run (fine-tuning) and "
                             "compare it with training from scratch on the same hold-out (paired DeLong test)")
    parser.add_argument("--embedding-loss", default=D.embedding_loss, metavar="LOSS[,LOSS...]",
                        help=f"in --auc mode, train each network once per loss in this comma-separated list "
                             f"({' | '.join(EMBEDDING_LOSSES)}; default {D.embedding_loss}): a term on the penultimate "
                             "features beside the cross-entropy (petcad.models.embedding)")
    parser.add_argument("--embedding-weight", type=float, default=D.embedding_weight,
                        help=f"weight of the embedding term (default {D.embedding_weight:g})")
    parser.add_argument("--deep-baselines", default="", metavar="svm,rf",
                        help="in --auc mode, also score SVM / RF on each trained network's penultimate features "
                             "(tuned on the training lesions' deep features; cnn-svm / cnn-rf of petcad compare)")
    parser.add_argument("--baselines", default="", metavar="rf,svm,adaboost,mlp",
                        help="in --auc mode, also score these classical methods (as in petcad compare) on the 13 "
                             "diagnostic features of the same training / held-out lesions (--models none: these only)")
    parser.add_argument("--progress", action="store_true", help="progress bars in --auc mode")


def _models(text: str) -> list[str]:
    from petcad.models.registry import check_model_name

    names = [m.strip() for m in text.split(",") if m.strip()]
    if names == ["none"]:
        return []
    for m in names:
        check_model_name(m)
    return names


def _timed(fn, budget: float, min_reps: int = 3) -> list[float]:
    """Run ``fn`` repeatedly for about ``budget`` seconds; return the per-call times (s)."""
    times = []
    t_end = time.perf_counter() + budget
    while len(times) < min_reps or time.perf_counter() < t_end:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if len(times) >= 10_000:
            break
    return times


def _bench_network(name: str, args, device) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from petcad.models.registry import build_model, count_parameters

    torch.manual_seed(0)
    nf = 13 if name == "hybrid" else 0
    model = build_model(name, n_features=nf).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    B = args.train_batch
    x = torch.randn(B, 6, 51, 51, device=device)
    f = torch.randn(B, nf, device=device) if nf else None
    y = torch.randint(0, 2, (B,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        model.train()
        loss = F.cross_entropy(model(x, f), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()

    step()  # warm-up
    t_train = _timed(step, args.seconds)
    model.eval()
    x1 = x[:1]
    f1 = None if f is None else f[:1]
    xb = torch.randn(args.batch, 6, 51, 51, device=device)
    fb = torch.randn(args.batch, nf, device=device) if nf else None

    def one():
        with torch.inference_mode():
            model(x1, f1)
        sync()

    def batch():
        with torch.inference_mode():
            model(xb, fb)
        sync()

    one()
    batch()
    t_one = _timed(one, args.seconds / 2, min_reps=10)
    t_batch = _timed(batch, args.seconds / 2)
    return {
        "model": name,
        "parameters": count_parameters(model),
        "train_batch": B,
        "train_samples_per_s": round(B / float(np.median(t_train)), 1),
        "latency_ms_single": round(1e3 * float(np.median(t_one)), 3),
        "latency_ms_batched": round(1e3 * float(np.median(t_batch)) / args.batch, 4),
        "batch": args.batch,
    }


def _bench_cache():
    """A synthetic study's lesion cache (64 lesions, CT 1.5 x 1.5 x 2.5 mm, PET 4 x 4 x 5 mm)."""
    import numpy as np

    from petcad.patches.cache import LesionCache
    from petcad.study import Lesion, Study, Volume

    rng = np.random.default_rng(0)
    sp = np.array([1.5, 1.5, 2.5])
    ct = Volume(rng.normal(0, 100, (60, 160, 160)).astype(np.float32), np.zeros(3), sp)
    pet = Volume(rng.gamma(2, 0.5, (30, 60, 60)).astype(np.float32), np.zeros(3), np.array([4.0, 4.0, 5.0]))
    centres = np.column_stack([rng.uniform(60, 180, 64), rng.uniform(60, 180, 64), rng.uniform(50, 100, 64)])
    study = Study("bench", ct, pet, [Lesion(f"L{i}", c, "benign", "bench") for i, c in enumerate(centres)])
    return LesionCache.from_study(study, centres)


def _loader_rate(args, cache) -> dict:
    """Augmented 6-channel patches per second from a lesion cache (sample + normalise, batches of --train-batch)."""
    import numpy as np

    from petcad.patches.augment import AugmentPolicy
    from petcad.patches.normalize import normalize_patches
    from petcad.patches.sampler import PatchSampler

    rng = np.random.default_rng(0)
    sampler = PatchSampler(51, 1.0)
    policy = AugmentPolicy(kind="random")
    B = args.train_batch

    def batch():
        idx = rng.integers(0, len(cache), B)
        normalize_patches(sampler.sample(cache, idx, policy.draw(rng, B)))

    batch()
    t = _timed(batch, args.seconds)
    return {"loader_patches_per_s": round(B / float(np.median(t)), 1), "loader_batch": B}


def _torch_loader_rate(args, cache, device) -> dict:
    """The torch sampling path (``TorchPatchSampler``, what training uses on CUDA) on ``device``:
    augmented patches sampled and normalised on the device per second, batches of --train-batch."""
    import numpy as np
    import torch

    from petcad.patches.augment import AugmentPolicy
    from petcad.patches.normalize import fixed_normalize_torch
    from petcad.patches.torch_sampler import TorchPatchSampler

    rng = np.random.default_rng(0)
    ts = TorchPatchSampler(cache, device=device)
    policy = AugmentPolicy(kind="random")
    B = args.train_batch
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def batch():
        idx = rng.integers(0, len(cache), B)
        fixed_normalize_torch(ts.sample(idx, policy.draw(rng, B)))
        sync()

    batch()
    t = _timed(batch, args.seconds)
    return {"torch_loader_patches_per_s": round(B / float(np.median(t)), 1), "torch_loader_device": str(device)}


def run_speed(args) -> int:
    import torch

    from petcad.models.train import resolve_device, software_versions

    names = _models(args.models)
    if not names:
        from petcad.errors import InputError

        raise InputError("--models", "no network to time")
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    cache = _bench_cache()
    loader = _loader_rate(args, cache)
    loader.update(_torch_loader_rate(args, cache, device))
    # what training uses: the torch path on CUDA (LesionData.sample_tensor), the numba sampler elsewhere
    key = "torch_loader_patches_per_s" if device.type == "cuda" else "loader_patches_per_s"
    loader["training_loader"] = "torch" if device.type == "cuda" else "numba"
    rows = []
    for name in names:
        r = _bench_network(name, args, device)
        r.update(loader)
        r["loader_over_training"] = round(loader[key] / r["train_samples_per_s"], 2)
        r.update(threads=args.threads, device=str(device), versions=software_versions())
        rows.append(r)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"networks on {device} with {args.threads} threads; patch loader (augmented 6 x 51 x 51 patches/s, sample + "
          f"normalise, batches of {loader['loader_batch']}): CPU sampler {loader['loader_patches_per_s']:.0f}, torch path "
          f"on {loader['torch_loader_device']} {loader['torch_loader_patches_per_s']:.0f}; training on {device} uses the "
          f"{'torch path' if loader['training_loader'] == 'torch' else 'CPU sampler'}")
    print(f"{'model':<10} {'params':>11} {'train samples/s':>16} {'loader patches/s':>17} {'ms single':>10} "
          f"{'ms/lesion batched':>18} {'loader/train':>13}")
    for r in rows:
        used = r[key]
        print(f"{r['model']:<10} {r['parameters']:>11,} {r['train_samples_per_s']:>16.1f} {used:>17.1f} "
              f"{r['latency_ms_single']:>10.3f} {r['latency_ms_batched']:>18.4f} {r['loader_over_training']:>13.2f}")
    return 0


def run_auc(args) -> int:
    import dataclasses

    import numpy as np
    import torch
    from sklearn.model_selection import GroupShuffleSplit

    from petcad.errors import InputError
    from petcad.evaluation.classifiers import CLASSICAL
    from petcad.evaluation.compare import CompareSettings, mode_description, mode_title
    from petcad.models.config import default_lr
    from petcad.models.data import load_manifest_data
    from petcad.models.estimator import CNNClassifier
    from petcad.models.train import software_versions

    names = _models(args.models)
    losses = _embedding_losses(args.embedding_loss)
    baselines = _method_list(args.deep_baselines, "--deep-baselines", ("svm", "rf"))
    classical = _method_list(args.baselines, "--baselines", tuple(CLASSICAL))
    if not names and not classical:
        raise InputError("--models", "no network and no --baselines: nothing to measure")
    # the model column: wide enough for NETWORK+LOSS+init/svm and the classical methods
    w = max([10] + [len(n) + max(len(s) + 1 for s in losses) + 5 * bool(args.init_weights) + 4 * bool(baselines)
                    for n in names] + [len(m) for m in classical])
    if not (0 < args.test_fraction < 1):
        raise InputError("--test-fraction", "must be in (0, 1)")
    settings = CompareSettings(mode="masks" if args.with_mask else "images", seed=args.seed)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    cohort, data = load_manifest_data(args.auc, normalization=args.normalization, with_mask=args.with_mask)
    if len(data.classes) != 2:
        raise InputError(args.auc, f"the hold-out AUC needs two labels, the manifest has {len(data.classes)} "
                                   f"({', '.join(data.classes)}); use petcad compare for K classes")
    table = None
    if classical or "hybrid" in names:  # the hybrid network and the baselines see the same features
        table = _mode_features(cohort, data, settings)
        data = dataclasses.replace(data, features=table.diagnostic, feature_names=tuple(table.diagnostic_names))
    t_load = time.perf_counter() - t0
    idx = np.arange(len(data))
    tr, te = next(GroupShuffleSplit(n_splits=1, test_size=args.test_fraction, random_state=args.seed)
                  .split(idx, data.y, data.groups))
    if len(np.unique(data.y[te])) < 2:
        raise InputError(args.auc, "the held-out patients have one class only; change --seed or --test-fraction")
    meta = {"manifest": str(args.auc), "n_lesions": len(data), "n_patients": int(len(np.unique(data.groups))),
            "n_train": int(len(tr)), "n_test": int(len(te)), "n_test_patients": int(len(np.unique(data.groups[te]))),
            "test_malignant": int(data.y[te].sum()), "seed": args.seed, "threads": args.threads,
            "mode": settings.mode, "mode_title": mode_title(settings.mode), "mode_description": mode_description(settings),
            "min_samples_per_epoch": args.min_samples_per_epoch, "batch_size": args.batch_size,
            "normalization": args.normalization, "channels": data.n_channels, "patience": args.patience,
            "dropout": args.dropout, "dihedral": not args.no_dihedral, "augment": "random",
            "load_seconds": round(t_load, 1), "versions": software_versions()}
    if table is not None:
        meta["delineation"] = {str(k): int(c) for k, c in zip(*np.unique(np.asarray(table.sources), return_counts=True))}
    if not args.json:
        nets = (f", {args.threads} threads, batch {args.batch_size}, >= {args.min_samples_per_epoch} samples per epoch, "
                f"{args.normalization} normalisation, {data.n_channels} channels, dropout {args.dropout}, per-plane "
                f"mirrors/turns {'off' if args.no_dihedral else 'on'}, patience {args.patience}") if names else ""
        print(f"hold-out: {meta['n_test']} lesions of {meta['n_test_patients']} patients ({meta['test_malignant']} malignant); "
              f"trained on {meta['n_train']} lesions of {meta['n_patients'] - meta['n_test_patients']} patients; "
              f"seed {args.seed}{nets}", flush=True)
        used = "" if table is None else "; lesions delineated by " + ", ".join(f"{k} {c}" for k, c in meta["delineation"].items())
        print(f"table: {meta['mode_title']}: {meta['mode_description']}{used}", flush=True)
        print(f"{'model':<{w}} {'AUC':>6} {'DeLong 95% CI':>16} {'patient-bootstrap 95% CI':>25} {'epochs':>7} {'train s':>8}"
              f"{f'  (embedding weight {args.embedding_weight:g})' if losses != ['none'] else ''}",
              flush=True)
    if args.init_weights:
        meta["init_weights"] = str(args.init_weights)
    meta.update(embedding_losses=losses, embedding_weight=args.embedding_weight, deep_baselines=baselines,
                baselines=classical)
    rows = []
    plain = {}  # (network, init, softmax|svm|rf) -> hold-out probabilities without the embedding loss
    networks = {}  # network row -> its hold-out probabilities (for the classical baselines' paired tests)
    for name in names:
        epochs = args.alexnet_epochs if (name == "alexnet" and args.alexnet_epochs) else args.epochs
        probs = {}
        for init, loss in [(i, lo) for i in [None] + ([args.init_weights] if args.init_weights else [])
                           for lo in losses]:
            t = time.perf_counter()
            clf = CNNClassifier(model=name, epochs=epochs, batch_size=args.batch_size, seed=args.seed, device=args.device,
                                threads=args.threads, progress=args.progress, lr=default_lr(name),
                                min_samples_per_epoch=args.min_samples_per_epoch, patience=args.patience,
                                dropout=args.dropout, dihedral=not args.no_dihedral, init_weights=init,
                                embedding_loss=loss, embedding_weight=args.embedding_weight)
            clf.fit(data, tr)
            p = probs[init, loss] = clf.predict_proba(data, te)[:, 1]
            secs = time.perf_counter() - t
            row = _auc_row(name + ("" if loss == "none" else f"+{loss}") + ("" if init is None else "+init"),
                           data, te, p, args.seed)
            row.update(embedding_loss=loss, epochs_max=epochs, epochs_run=len(clf.history_), best_epoch=clf.best_epoch_,
                       train_seconds=round(secs, 1))
            rows.append(row)
            networks[row["model"]] = p
            if init is not None:
                rows[-1]["layers_loaded"] = clf.init_report_["layers_loaded"]
                rows[-1]["p_vs_scratch"] = round(_delong_p(data.y[te], p, probs[None, loss]), 4)
            _versus_no_loss(rows[-1], p, (name, init, "softmax"), plain, data.y[te])
            if not args.json:
                _print_auc_row(rows[-1], w)
            for r, q in _deep_baseline_rows(baselines, clf, data, tr, te, p, rows[-1], args.seed):
                _versus_no_loss(r, q, (name, init, r["model"].rsplit("/", 1)[1]), plain, data.y[te])
                rows.append(r)
                if not args.json:
                    _print_auc_row(r, w)
    for m in classical:
        q, params, secs = _tuned_proba(m, table.X[tr], table.X[te], data, tr, args.seed)
        row = _auc_row(m, data, te, q, args.seed)
        row.update(method=CLASSICAL[m].label, features=f"{len(table.feature_names)} diagnostic features",
                   mode=settings.mode, train_seconds=secs, best_params=params,
                   p_vs_networks={k: round(_delong_p(data.y[te], q, p), 4) for k, p in networks.items()})
        rows.append(row)
        if not args.json:
            _print_auc_row(row, w)
    if args.json:
        print(json.dumps({"settings": meta, "results": rows}, indent=2))
    return 0


def _mode_features(cohort, data, settings):
    """The diagnostic features of every lesion as ``petcad compare`` computes them in ``settings.mode``
    (:func:`petcad.evaluation.compare.prepare_lesions`: delineation of the images, or the supplied masks
    with ``masks``), in the order of the networks' lesions (``data``)."""
    import numpy as np

    from petcad.evaluation.compare import prepare_lesions

    table, _, _ = prepare_lesions(cohort, settings)
    if not (np.array_equal(np.asarray(table.lesion_id, dtype=str), data.lesion_ids) and np.array_equal(table.y, data.y)):
        raise RuntimeError("the feature table's lesions differ from the networks' lesions")
    return table


def _delong_p(y, p1, p2) -> float:
    """Two-sided p of the paired DeLong test of two scores on the same lesions."""
    from petcad.evaluation.delong import delong_test

    return float(delong_test(y, p1, p2)[1])


def _auc_row(model: str, data, te, p, seed: int) -> dict:
    """AUC of hold-out probabilities ``p`` with the DeLong and the patient-cluster bootstrap 95 % CIs."""
    from petcad.evaluation.delong import auc_ci, cluster_bootstrap_auc

    d = auc_ci(data.y[te], p)
    b = cluster_bootstrap_auc(data.y[te], p, data.groups[te], seed=seed)
    return {"model": model, "auc": round(d.value, 4), "delong_lo": round(d.lo, 4), "delong_hi": round(d.hi, 4),
            "bootstrap_lo": round(b.lo, 4), "bootstrap_hi": round(b.hi, 4)}


def _tuned_proba(method: str, X_tr, X_te, data, tr, seed: int):
    """A classical method (:class:`petcad.evaluation.classifiers.TunedClassifier`, 3 inner patient-grouped
    folds) fitted on the training rows ``X_tr`` (lesions ``tr``): (P(malignant) of ``X_te``, best
    parameters, seconds)."""
    import numpy as np

    from petcad.evaluation.classifiers import TunedClassifier

    t = time.perf_counter()
    tc = TunedClassifier(method, inner_splits=3, seed=seed).fit(X_tr, data.y[tr], data.groups[tr])
    q = tc.predict_proba(X_te)[:, 1]
    params = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in tc.best_params_.items()}
    return q, params, round(time.perf_counter() - t, 1)


def _embedding_losses(text: str) -> list[str]:
    from petcad.errors import InputError
    from petcad.models.config import EMBEDDING_LOSSES

    losses = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in losses if s not in EMBEDDING_LOSSES]
    if bad or not losses or len(set(losses)) != len(losses):
        raise InputError("--embedding-loss", f"a comma-separated list of distinct {', '.join(EMBEDDING_LOSSES)}, "
                                             f"got {text!r}")
    return losses


def _method_list(text: str, option: str, allowed: tuple[str, ...]) -> list[str]:
    """A comma-separated list of distinct methods of ``allowed`` (empty allowed) or an InputError naming ``option``."""
    from petcad.errors import InputError

    methods = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in methods if s not in allowed]
    if bad or len(set(methods)) != len(methods):
        raise InputError(option, f"a comma-separated list of distinct {', '.join(allowed)}, got {text!r}")
    return methods


def _deep_baseline_rows(methods, clf, data, tr, te, p_net, net_row: dict, seed: int) -> list[dict]:
    """SVM / RF on the network's penultimate features: tuned on the training lesions, scored on the hold-out.

    Returns ``(row, hold-out probabilities)`` per method."""
    if not methods:
        return []
    z_tr, z_te = clf.deep_features(data, tr), clf.deep_features(data, te)
    rows = []
    for m in methods:
        q, params, secs = _tuned_proba(m, z_tr, z_te, data, tr, seed)
        row = _auc_row(f"{net_row['model']}/{m}", data, te, q, seed)
        row.update(embedding_loss=net_row["embedding_loss"], deep_features_of=net_row["model"],
                   epochs_max=net_row["epochs_max"], epochs_run=net_row["epochs_run"], best_epoch=net_row["best_epoch"],
                   train_seconds=secs, best_params=params, p_vs_network=round(_delong_p(data.y[te], q, p_net), 4))
        rows.append((row, q))
    return rows


def _versus_no_loss(row: dict, p, key: tuple, plain: dict, y) -> None:
    """Keep ``p`` of a run without the embedding loss under ``key``; for a run with one, add ``p_vs_no_loss``
    (paired DeLong test against the same network / baseline trained without it, same hold-out)."""
    if row["embedding_loss"] == "none":
        plain[key] = p
    elif key in plain:
        row["p_vs_no_loss"] = round(_delong_p(y, p, plain[key]), 4)


def _print_auc_row(r: dict, width: int = 10) -> None:
    epochs = f"{r['epochs_run']:>3}/{r['epochs_max']:<3}" if "epochs_run" in r else f"{'-':>4}   "
    print(f"{r['model']:<{width}} {r['auc']:>6.3f} {r['delong_lo']:>7.3f}-{r['delong_hi']:<7.3f}  "
          f"{r['bootstrap_lo']:>11.3f}-{r['bootstrap_hi']:<11.3f} {epochs} {r['train_seconds']:>8.1f}", flush=True)
    if "p_vs_networks" in r:
        vs = "; paired DeLong p vs " + ", ".join(f"{k} {v:.3f}" for k, v in r["p_vs_networks"].items()) \
            if r["p_vs_networks"] else ""
        print(f"  {r['method']} on the {r['features']}{vs}", flush=True)
    if "p_vs_network" in r:
        print(f"  {r['model'].rsplit('/', 1)[1].upper()} on {r['deep_features_of']}'s penultimate features; paired "
              f"DeLong p vs its softmax on the same hold-out: {r['p_vs_network']:.3f}", flush=True)
    if "p_vs_no_loss" in r:
        print(f"  paired DeLong p vs the same {'network' if '/' not in r['model'] else 'classifier'} trained without "
              f"the embedding loss: {r['p_vs_no_loss']:.3f}", flush=True)
    if "p_vs_scratch" in r:
        print(f"  initialised from --init-weights (layers {', '.join(r['layers_loaded'])}); paired DeLong p vs "
              f"scratch on the same hold-out: {r['p_vs_scratch']:.3f}", flush=True)


def run(args) -> int:
    if args.init_weights and not args.auc:
        from petcad.errors import InputError

        raise InputError("--init-weights", "only with --auc MANIFEST (fine-tuned vs scratch on one hold-out)")
    if (args.deep_baselines or args.baselines or args.embedding_loss != "none") and not args.auc:
        from petcad.errors import InputError

        option = ("--embedding-loss" if args.embedding_loss != "none" else
                  "--deep-baselines" if args.deep_baselines else "--baselines")
        raise InputError(option, "only with --auc MANIFEST (the hold-out AUC)")
    return run_auc(args) if args.auc else run_speed(args)
