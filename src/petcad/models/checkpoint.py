"""Checkpoints: safetensors weights (no pickle), JSON config, atomic writes.

A run directory holds

* ``config.json``   model name, hyper-parameters, channels, patch size/spacing,
  normalisation, feature standardisation, seed, software versions, data hash;
* ``model.safetensors`` the best weights (highest validation AUC);
* ``last.safetensors``  the weights after the last finished epoch, plus the SGD
  momentum buffers (keys prefixed ``__optimizer__.``) and the training state
  (``state`` in the safetensors metadata): one file, one atomic rename, so a
  kill -9 at any moment leaves a consistent resume point;
* ``state.json``    a readable copy of that state; ``metrics.csv`` per epoch;
* ``train.log``     the run log (what was loaded by ``--init-weights``, one line per epoch).

The label list of the run (``classes``, :mod:`petcad.models.labels`) is in
``config.json`` and in the metadata of both safetensors files; it is checked
when the model is loaded and when it is used on a manifest.

Weights are read with :func:`safetensors.torch.load_file` or, for plain torch
files, ``torch.load(weights_only=True)``; never by unpickling arbitrary objects.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from petcad.errors import InputError
from petcad.io.atomic import atomic_path, write_text

OPT_PREFIX = "__optimizer__."
METRIC_COLUMNS = ("epoch", "train_loss", "val_loss", "val_auc", "lr", "seconds", "train_samples_per_s", "loader_seconds")
FORMAT = "petcad-cnn-1"


def _contiguous(sd: dict) -> dict:
    return {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}


def save_weights(path: str | os.PathLike, state_dict: dict, metadata: dict | None = None) -> None:
    """Write a state dict (tensors only) as safetensors, atomically."""
    from safetensors.torch import save_file

    meta = {"format": FORMAT}
    if metadata:
        meta.update({k: str(v) for k, v in metadata.items()})
    with atomic_path(path) as tmp:
        save_file(_contiguous(state_dict), str(tmp), metadata=meta)


def read_tensors(path: str | os.PathLike) -> tuple[dict, dict]:
    """(tensors, metadata) of a safetensors file, or of a torch file loaded with ``weights_only=True``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "weights file not found")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as fh:
                meta = dict(fh.metadata() or {})
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        except Exception as exc:  # safetensors raises several types for corrupt files
            raise InputError(path, f"not a readable safetensors file ({type(exc).__name__}: {str(exc)[:120]})") from None
        return tensors, meta
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path, f"not a readable weights-only torch file ({type(exc).__name__}: {str(exc)[:120]})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(path, "expected a dict of tensors (a state dict)")
    return dict(obj), {}


def load_weights_into(model, path: str | os.PathLike, strict: bool = True) -> dict:
    """Load weights into ``model``. ``strict``: every key and shape must match (else InputError).

    With ``strict=False`` only the layers whose name and shape match are loaded
    (``module.`` prefixes of DataParallel files are removed); returns a report
    ``{"loaded": [...], "skipped_shape": [...], "missing": [...], "unexpected": [...]}``.
    """
    tensors, _ = read_tensors(path)
    tensors = {k.removeprefix("module."): v for k, v in tensors.items() if not k.startswith(OPT_PREFIX)}
    own = model.state_dict()
    loaded, skipped = [], []
    for k, v in tensors.items():
        if k in own and tuple(own[k].shape) == tuple(v.shape):
            loaded.append(k)
        elif k in own:
            skipped.append(f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}")
    missing = sorted(set(own) - set(loaded))
    unexpected = sorted(set(tensors) - set(own))
    if strict and (missing or unexpected or skipped):
        what = (skipped + [f"missing {m}" for m in missing] + [f"unexpected {u}" for u in unexpected])[:3]
        raise InputError(path, f"weights do not fit the network ({'; '.join(what)})")
    sd = dict(own)
    for k in loaded:
        sd[k] = tensors[k].to(own[k].dtype)
    model.load_state_dict(sd)
    return {"loaded": sorted(loaded), "skipped_shape": skipped, "missing": missing, "unexpected": unexpected}


def save_last(run_dir: Path, model, optimizer, state: dict, metadata: dict | None = None) -> None:
    """Weights + momentum buffers + state in ``last.safetensors`` (one atomic write), then ``state.json``.

    ``metadata``: more string entries for the safetensors header (e.g. ``classes``).
    """
    tensors = dict(_contiguous(model.state_dict()))
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            buf = optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                tensors[OPT_PREFIX + names[id(p)]] = buf.detach().to("cpu").contiguous()
    save_weights(run_dir / "last.safetensors", tensors, {**(metadata or {}), "state": json.dumps(state, sort_keys=True)})
    write_text(run_dir / "state.json", json.dumps(state, indent=2, sort_keys=True))


def load_last(run_dir: Path, model, optimizer) -> dict:
    """Restore weights and momentum buffers from ``last.safetensors``; return its state."""
    path = run_dir / "last.safetensors"
    tensors, meta = read_tensors(path)
    if "state" not in meta:
        raise InputError(path, "no training state in this file (not written by petcad train)")
    state = json.loads(meta["state"])
    weights = {k: v for k, v in tensors.items() if not k.startswith(OPT_PREFIX)}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit the network ({str(exc)[:160]})") from None
    params = dict(model.named_parameters())
    for k, v in tensors.items():
        if k.startswith(OPT_PREFIX):
            p = params[k[len(OPT_PREFIX):]]
            optimizer.state[p]["momentum_buffer"] = v.to(device=p.device, dtype=p.dtype).clone()
    return state


def init_source(path: str | os.PathLike) -> tuple[Path, tuple[str, ...] | None, dict]:
    """What ``--init-weights`` points at: ``(weights file, its class list or None, its run config or {})``.

    A run directory of ``petcad train`` (its ``model.safetensors`` and ``config.json``)
    or a weights file (safetensors, or a torch state dict read with ``weights_only``).
    """
    from petcad.models.labels import classes_from_metadata, classes_of_config

    path = Path(path)
    if path.is_dir():
        cfg = read_config(path)
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise InputError(path, "no model.safetensors in this run directory (training did not finish an epoch)")
        return weights, classes_of_config(cfg, path / "config.json"), cfg
    if not path.exists():
        raise InputError(path, "--init-weights: no such run directory or weights file")
    classes = None
    if path.suffix == ".safetensors":
        classes = classes_from_metadata(read_tensors(path)[1], path)
    return path, classes, {}


def load_init_weights(model, source: str | os.PathLike, classes) -> dict:
    """Initialise ``model`` from another run (fine-tuning): matching layers loaded, the rest left as initialised.

    A layer (module, e.g. ``features.0``) is loaded when the source has every one of its
    tensors under the same name with the same shape. The output layer (``head``) is
    resized when the label sets differ: the rows of the classes both runs know (by
    label name) are copied, the rows of new classes keep their fresh initialisation.
    At least one layer besides the head must load (else InputError). Returns a report:
    ``loaded`` / ``reinitialised`` tensors, the same by layer (``layers_loaded``,
    ``layers_reinitialised``), ``skipped_shape``, ``missing``, ``head_classes_loaded``,
    ``source``, ``source_model`` and ``source_classes``.
    """
    import torch

    weights, src_classes, src_cfg = init_source(source)
    tensors, _ = read_tensors(weights)
    tensors = {k.removeprefix("module."): v for k, v in tensors.items() if not k.startswith(OPT_PREFIX)}
    own = model.state_dict()
    layer = lambda k: k.rsplit(".", 1)[0]  # noqa: E731
    layers: dict[str, list[str]] = {}
    for k in own:
        layers.setdefault(layer(k), []).append(k)
    sd, loaded, head_rows, skipped = dict(own), [], [], []
    classes = list(classes)
    relabel = src_classes is not None and list(src_classes) != classes
    for name, keys in layers.items():
        if name == "head" and relabel:
            head_rows = _map_head_rows(sd, tensors, keys, list(src_classes), classes)
            skipped += [f"{k} (labels {', '.join(src_classes)} -> {', '.join(classes)})" for k in keys if k in tensors]
            continue
        bad = [f"{k} {tuple(tensors[k].shape)} != {tuple(own[k].shape)}" for k in keys
               if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
        if bad or not all(k in tensors for k in keys):
            skipped += bad
            continue
        for k in keys:
            sd[k] = tensors[k].to(own[k].dtype)
            loaded.append(k)
    if not [k for k in loaded if layer(k) != "head"]:
        raise InputError(source, f"no layer of {weights.name} matches the network {getattr(model, 'name', '')} "
                                 "(names and shapes)")
    with torch.no_grad():
        model.load_state_dict(sd)
    reinit = sorted(set(own) - set(loaded))
    return {
        "source": str(source), "source_model": src_cfg.get("model"),
        "source_classes": None if src_classes is None else list(src_classes),
        "loaded": sorted(loaded), "reinitialised": reinit, "skipped_shape": skipped,
        "missing": sorted(set(own) - set(tensors)),
        "layers_loaded": sorted({layer(k) for k in loaded}),
        "layers_reinitialised": sorted({layer(k) for k in reinit}),
        "head_classes_loaded": sorted(set(head_rows)),
    }


def _map_head_rows(sd: dict, tensors: dict, keys: list[str], src_classes: list[str], classes: list[str]) -> list[str]:
    """Copy into ``sd`` the head rows of the classes both label lists share; returns those classes."""
    shared = [c for c in classes if c in src_classes]
    for k in keys:
        v = tensors.get(k)
        if v is None or v.shape[0] != len(src_classes) or v.shape[1:] != sd[k].shape[1:]:
            return []
    for k in keys:
        new = sd[k].clone()
        for c in shared:
            new[classes.index(c)] = tensors[k][src_classes.index(c)].to(new.dtype)
        sd[k] = new
    return shared


def describe_init(report: dict) -> list[str]:
    """The run-log lines of :func:`load_init_weights`."""
    lines = [f"init weights from {report['source']}"
             + (f" ({report['source_model']}, labels {', '.join(report['source_classes'])})"
                if report.get("source_classes") else ""),
             f"init weights: loaded {len(report['loaded'])} tensors; skipped {len(report['skipped_shape'])} by shape "
             f"or labels, {len(report['missing'])} not in the file",
             f"  layers loaded: {', '.join(report['layers_loaded']) or 'none'}",
             f"  layers reinitialised: {', '.join(report['layers_reinitialised']) or 'none'}"]
    if report.get("head_classes_loaded"):
        lines.append(f"  head resized to this run's labels; rows carried over for: {', '.join(report['head_classes_loaded'])}")
    return lines


def write_config(run_dir: Path, config: dict) -> None:
    write_text(run_dir / "config.json", json.dumps(config, indent=2, sort_keys=True, default=_default))


def read_config(run_dir: str | os.PathLike) -> dict:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(run_dir, "model directory not found")
    path = run_dir / "config.json"
    if not path.is_file():
        raise InputError(run_dir, "no config.json: not a petcad model directory")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"unreadable config ({exc})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT or "model" not in cfg:
        raise InputError(path, f"not a petcad model config (format {FORMAT!r} expected)")
    return cfg


def write_metrics_csv(run_dir: Path, history: list[dict]) -> None:
    if not history:
        return
    cols = [c for c in METRIC_COLUMNS if c in history[0]] + sorted(set(history[0]) - set(METRIC_COLUMNS))
    lines = [",".join(cols)]
    for row in history:
        lines.append(",".join(_fmt(row.get(c)) for c in cols))
    write_text(run_dir / "metrics.csv", "\n".join(lines) + "\n")


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "nan" if not np.isfinite(v) else f"{v:.6g}"
    return str(v)


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
