"""English and Chinese words shared by reports, panels and the command line.

Everything user-facing that switches language (``--lang en|zh``) takes its words
from here, so that one term is translated once. Matplotlib figures with Chinese
text need a CJK font: :func:`use_cjk_font` registers Noto Sans CJK, shipped by
the ``noto-cjk-sans-otc`` package (SIL Open Font License), a petcad dependency.
"""

from __future__ import annotations

from functools import lru_cache

LANGS = ("en", "zh")

LABELS = {
    "en": {"benign": "benign", "malignant": "malignant", "primary": "primary"},
    "zh": {"benign": "良性", "malignant": "恶性", "primary": "原发灶"},
}
PLANES = {
    "en": {"axial": "axial", "coronal": "coronal", "sagittal": "sagittal"},
    "zh": {"axial": "横截面", "coronal": "冠状面", "sagittal": "矢状面"},
}
MODALITIES = {"en": {"CT": "CT", "PET": "PET", "mask": "mask"}, "zh": {"CT": "CT", "PET": "PET", "mask": "掩膜"}}
WORDS = {
    "en": {"label": "label", "lesion": "lesion"},
    "zh": {"label": "标签", "lesion": "病灶"},
}


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(LANGS)}")
    return lang


def label_name(label: str, lang: str = "en") -> str:
    """A lesion label in ``lang``; labels petcad does not know are shown as they are."""
    return LABELS[check_lang(lang)].get(label, label)


def plane_title(modality: str, plane: str, label: str | None, lang: str = "en") -> str:
    """Panel title like the original study's figure: ``CT - axial / label: benign`` or ``CT-横截面 / 标签: 良性``."""
    lang = check_lang(lang)
    sep = " - " if lang == "en" else "-"
    colon = ": "
    title = f"{MODALITIES[lang].get(modality, modality)}{sep}{PLANES[lang][plane]}"
    if label is not None:
        title += f" / {WORDS[lang]['label']}{colon}{label_name(label, lang)}"
    return title


@lru_cache(maxsize=1)
def use_cjk_font() -> str | None:
    """Register Noto Sans CJK with matplotlib and put it first in the sans-serif list.

    Returns the family name used, or ``None`` when the font package is missing
    (Chinese glyphs would then render as boxes; English is unaffected).
    """
    import matplotlib
    from matplotlib import font_manager

    try:
        from noto_cjk_sans_otc import FONT_PATH
    except ImportError:
        return None
    font_manager.fontManager.addfont(str(FONT_PATH))
    family = "Noto Sans CJK SC"
    current = list(matplotlib.rcParams["font.sans-serif"])
    matplotlib.rcParams["font.sans-serif"] = [family] + [f for f in current if f != family]
    matplotlib.rcParams["font.family"] = ["sans-serif"]
    matplotlib.rcParams["axes.unicode_minus"] = False
    return family
