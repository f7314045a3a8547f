"""The original study's labelled patch panels, with an optional saliency overlay, as PNG.

Titles follow the original figure: ``tumour 1, description: CT axial, label: benign``
(Chinese: ``肿瘤 1，描述：CT 横截面，标签：良性``); plane, modality and label words come from
:mod:`petcad.i18n`. CT is shown in a mediastinal window (W 400 / L 40 HU), PET from SUV 0 to
the patch maximum (inverted grey, as in the original), masks 0..1. The saliency overlay
shows attributions for the explained class: red where a pixel raises its probability, blue
where it lowers it, scaled to the largest magnitude over all panels.
"""

from __future__ import annotations

import os

import numpy as np

from petcad import i18n
from petcad.io.atomic import atomic_path
from petcad.patches.panels import display_range

WORDS = {
    "en": {"tumour": "tumour", "description": "description", "share": "attribution share"},
    "zh": {"tumour": "肿瘤", "description": "描述", "share": "归因占比"},
}


def original_title(number: int | str, channel: str, label: str | None, lang: str = "en") -> str:
    """``tumour 1, description: CT axial, label: benign`` (or the Chinese form) for channel ``CT-axial``."""
    lang = i18n.check_lang(lang)
    modality, plane = channel.split("-", 1)
    w = WORDS[lang]
    mod = i18n.MODALITIES[lang].get(modality, modality)
    desc = f"{mod} {i18n.PLANES[lang].get(plane, plane)}"
    lab = i18n.label_name(label, lang) if label else "?"
    if lang == "zh":
        return f"{w['tumour']} {number}，{w['description']}：{desc}，{i18n.WORDS[lang]['label']}：{lab}"
    return f"{w['tumour']} {number}, {w['description']}: {desc}, {i18n.WORDS[lang]['label']}: {lab}"


def save_saliency_panels(path: str | os.PathLike, patches: np.ndarray, channels, *, number: int | str,
                         label: str | None, attributions: np.ndarray | None = None, share: dict | None = None,
                         heading: str = "", lang: str = "en") -> None:
    """Write the ``(C, N, N)`` raw patches (C = 6 or 9) as labelled panels, with the
    attributions ``(C, N, N)`` on top when given, to the PNG ``path`` (atomically)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    lang = i18n.check_lang(lang)
    if lang == "zh":
        i18n.use_cjk_font()
    patches = np.asarray(patches, dtype=np.float32)
    rows = patches.shape[0] // 3
    fig, axes = plt.subplots(rows, 3, figsize=(10.5, 3.5 * rows + 0.6), squeeze=False, layout="constrained")
    scale = float(np.max(np.abs(attributions))) if attributions is not None else 0.0
    for c, name in enumerate(channels):
        ax = axes[c // 3, c % 3]
        vmin, vmax, cmap = display_range(name, patches[c])
        ax.imshow(patches[c], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        if attributions is not None and scale > 0:
            a = attributions[c] / scale
            rgba = np.zeros(a.shape + (4,), dtype=np.float32)
            rgba[..., 0] = a > 0
            rgba[..., 2] = a < 0
            rgba[..., 3] = np.clip(np.abs(a) * 1.5, 0.0, 0.85)
            ax.imshow(rgba, interpolation="nearest")
        ax.set_title(original_title(number, name, label, lang), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    title = heading
    if share:
        parts = ", ".join(f"{k} {100 * v:.0f} %" for k, v in share.items())
        title = f"{title}  ({WORDS[lang]['share']}: {parts})" if title else f"{WORDS[lang]['share']}: {parts}"
    if title:
        fig.suptitle(title, fontsize=11)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
