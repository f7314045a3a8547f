"""Label sets: lesion labels are strings; a network or classifier knows an ordered list of them.

Torch-free (the command-line parsers and the comparison import it).

* Two labels are the binary case: class 0 is the other label, class 1 the
  ``positive`` one (``malignant`` by default), so that column 1 of the
  probabilities is P(positive), as it always was.
* More than two labels: the classes in sorted order (or the order given), one
  output per class (K-class softmax).

The list is stored with every trained model (``config.json`` ``classes`` and the
``classes`` metadata of ``model.safetensors``) and checked when the model is used:
a label a model does not know is an :class:`~petcad.errors.InputError` naming the
manifest, the label and the model.
"""

from __future__ import annotations

import json
from typing import Iterable, Sequence

import numpy as np

from petcad.errors import InputError
from petcad.study import DEFAULT_LABELS, POSITIVE_LABEL


def resolve_classes(labels: Iterable[str], *, positive: str | None = None, keep: Sequence[str] | None = None,
                    where: str = "manifest") -> tuple[str, ...]:
    """The ordered class list for lesions labelled ``labels``.

    ``keep``: only these labels take part (their order is kept for K > 2);
    ``None`` = every label present. ``positive`` (binary only; default
    ``malignant``) becomes class 1. Raises :class:`InputError` for fewer than two
    labels, a ``positive`` that is not one of two labels, or ``positive`` given
    with more than two labels.
    """
    present = sorted({str(lab) for lab in labels})
    if keep:
        keep = [str(k) for k in keep]
        dup = sorted({k for k in keep if keep.count(k) > 1})
        if dup:
            raise InputError("--labels", f"label(s) given twice: {', '.join(dup)}")
        missing = [k for k in keep if k not in present]
        if missing:
            raise InputError("--labels", f"no lesion of {where} is labelled {', '.join(map(repr, missing))} "
                                         f"(labels present: {', '.join(present)})")
        chosen = list(keep)
    else:
        chosen = present
    if len(chosen) < 2:
        raise InputError(where, f"only one class present ({', '.join(chosen) or 'none'}): training and comparison "
                                "need lesions of at least two labels")
    if len(chosen) == 2:
        pos = POSITIVE_LABEL if positive is None else str(positive)
        if pos not in chosen:
            raise InputError("--positive", f"{pos!r} is not one of the two labels of {where} ({', '.join(chosen)}); "
                                           "name the positive class with --positive")
        return (chosen[0] if chosen[1] == pos else chosen[1], pos)
    if positive is not None:
        raise InputError("--positive", f"only for two labels; {where} has {len(chosen)} ({', '.join(chosen)}), "
                                       "which train a K-class model")
    return tuple(chosen) if keep else tuple(sorted(chosen))


def encode(labels: Iterable[str], classes: Sequence[str], where: str = "manifest") -> np.ndarray:
    """Class indices (int64) of ``labels`` in ``classes``; InputError for a label not in ``classes``."""
    pos = {c: i for i, c in enumerate(classes)}
    labels = [str(lab) for lab in labels]
    bad = sorted({lab for lab in labels if lab not in pos})
    if bad:
        raise InputError(where, f"label(s) {', '.join(map(repr, bad))} not among the classes {', '.join(classes)}")
    return np.array([pos[lab] for lab in labels], dtype=np.int64)


def check_known(labels: Iterable[str], classes: Sequence[str], manifest, model) -> None:
    """InputError naming the manifest, the label and the model when a label is not one of ``classes``."""
    unknown = sorted({str(lab) for lab in labels} - set(classes))
    if unknown:
        raise InputError(manifest, f"label {unknown[0]!r}{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''} "
                                   f"is not known to the model {model} (its labels: {', '.join(classes)})")


def classes_of_config(cfg: dict, where="config.json") -> tuple[str, ...]:
    """The class list a run's config records (``benign, malignant`` for runs written before label sets)."""
    classes = cfg.get("classes")
    if classes is None:
        return tuple(DEFAULT_LABELS)
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes) \
            or len(set(classes)) != len(classes):
        raise InputError(where, f"bad 'classes' entry {classes!r} (a list of at least two distinct label strings expected)")
    return tuple(classes)


def classes_metadata(classes: Sequence[str]) -> str:
    """The ``classes`` value written into safetensors metadata (a JSON list)."""
    return json.dumps(list(classes))


def classes_from_metadata(meta: dict, where) -> tuple[str, ...] | None:
    """The class list in safetensors metadata, or None when the file has none."""
    if "classes" not in meta:
        return None
    try:
        classes = json.loads(meta["classes"])
    except json.JSONDecodeError:
        raise InputError(where, "unreadable 'classes' metadata") from None
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise InputError(where, "'classes' metadata is not a list of labels")
    return tuple(classes)


def label_summary(y: np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    """``{label: count}`` for class indices ``y``."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(classes))
    return {c: int(n) for c, n in zip(classes, counts)}
