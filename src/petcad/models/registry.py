"""Network names -> constructors: ``build_model(name, in_channels=..., n_features=...)``."""

from __future__ import annotations

from petcad.errors import InputError
from petcad.models.networks import AlexNet25D, HybridNet, MultiViewNet, PatchNet, Wang2017Net

MODELS: dict[str, type[PatchNet]] = {
    "wang2017": Wang2017Net,
    "multiview": MultiViewNet,
    "alexnet": AlexNet25D,
    "hybrid": HybridNet,
}


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a known network, else raise :class:`InputError`."""
    if name not in MODELS:
        raise InputError("--model", f"unknown model {name!r} (choose from {', '.join(MODELS)})")
    return name


def build_model(name: str, *, in_channels: int = 6, patch_size: int = 51, n_features: int = 0,
                dropout: float = 0.5, n_classes: int = 2) -> PatchNet:
    """A freshly He-initialised network (seed torch before calling for reproducible weights).

    ``dropout``: drop probability before the classifier (no effect in eval mode);
    ``n_classes``: outputs of the head (2 = binary; K for a K-label set).
    """
    check_model_name(name)
    if n_classes < 2:
        raise InputError("--model", f"a classifier needs at least 2 classes, got {n_classes}")
    if name == "hybrid":
        if n_features < 1:
            raise InputError("--model", "hybrid needs diagnostic features (none were given)")
        return HybridNet(in_channels=in_channels, patch_size=patch_size, n_features=n_features, dropout=dropout,
                         n_classes=n_classes)
    try:
        return MODELS[name](in_channels=in_channels, patch_size=patch_size, dropout=dropout, n_classes=n_classes)
    except ValueError as exc:
        raise InputError("--model", str(exc)) from None


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
