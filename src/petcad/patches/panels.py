"""Labelled PNG panels of tri-planar patches, like the original study's figure.

One figure per lesion: a row of CT planes and a row of PET planes (and a mask row with 9
channels), each titled by modality, plane and label ("CT - axial / label: benign", or in
Chinese "CT-横截面 / 标签: 良性"), with the lesion id as the figure title. CT is shown in a
mediastinal window (W 400 / L 40 HU) and PET from 0 to the patch maximum (SUV) when the
patches are not normalised; normalised patches are shown from -3 to 3.
"""

from __future__ import annotations

import os

import numpy as np

from petcad import i18n
from petcad.io.atomic import atomic_path

CT_WINDOW_HU = (-160.0, 240.0)  # W 400 / L 40


def display_range(channel: str, patch: np.ndarray) -> tuple[float, float, str]:
    """(vmin, vmax, matplotlib colour map) for one channel (``CT-axial``, ...) of raw HU / SUV / mask values:
    CT in the mediastinal window, PET from 0 to its maximum (inverted grey), masks 0..1."""
    modality = channel.split("-", 1)[0]
    if modality == "CT":
        return CT_WINDOW_HU[0], CT_WINDOW_HU[1], "gray"
    if modality == "PET":
        return 0.0, max(float(np.max(patch)), 1e-3), "gray_r"
    return 0.0, 1.0, "gray"


def save_panel(path: str | os.PathLike, patch: np.ndarray, channels, lesion_id: str, label: str | None,
               lang: str = "en", normalized: bool = False) -> None:
    """Write one lesion's ``patch`` ``(C, N, N)`` (C = 6 or 9, names ``channels`` like ``CT-axial``)
    as a labelled PNG at ``path`` (atomically)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    lang = i18n.check_lang(lang)
    if lang == "zh":
        i18n.use_cjk_font()
    patch = np.asarray(patch, dtype=np.float32)
    n_rows = patch.shape[0] // 3
    fig, axes = plt.subplots(n_rows, 3, figsize=(9.0, 3.3 * n_rows + 0.4), squeeze=False, layout="constrained")
    for c, name in enumerate(channels):
        modality, plane = name.split("-", 1)
        ax = axes[c // 3, c % 3]
        if normalized:
            vmin, vmax, cmap = -3.0, 3.0, "gray" if modality == "CT" else "gray_r"
        else:
            vmin, vmax, cmap = display_range(name, patch[c])
        ax.imshow(patch[c], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(i18n.plane_title(modality, plane, label, lang), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(str(lesion_id), fontsize=12)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
