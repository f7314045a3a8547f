"""Embeddable CJK fonts: a subset of Noto Sans CJK SC for the characters a page uses, as WOFF2.

HTML that petcad writes (reports, the viewer) must show Chinese on a machine
without CJK system fonts. petcad ships Noto Sans CJK (the ``noto-cjk-sans-otc``
package, SIL Open Font License, the font :func:`petcad.i18n.use_cjk_font` gives
matplotlib); :func:`font_face_css` cuts from it the glyphs of the given text
(fontTools' subsetter), compresses them as WOFF2 and returns an ``@font-face``
rule with the font inlined as base64, so the page needs no file and no network.

Public API::

    cjk_font_path() -> Path | None          # the shipped .ttc, None when the package is missing
    subset_woff2(text) -> bytes             # WOFF2 with the glyphs of text's non-ASCII characters
    font_face_css(text, family=EMBEDDED_FAMILY) -> str   # "@font-face {...}" or "" (nothing to embed)

Put ``EMBEDDED_FAMILY`` first in the page's ``font-family``: characters outside
the subset (ASCII) fall through to the next families as usual.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path

#: The family name the embedded subset is declared under.
EMBEDDED_FAMILY = "petcad CJK"
#: The face of the .ttc collection used: simplified Chinese.
FACE_NAME = "Noto Sans CJK SC"


def cjk_font_path() -> Path | None:
    """The Noto Sans CJK collection shipped with petcad, or None when ``noto-cjk-sans-otc`` is not installed."""
    try:
        from noto_cjk_sans_otc import FONT_PATH
    except ImportError:
        return None
    path = Path(FONT_PATH)
    return path if path.is_file() else None


def characters_to_embed(text: str) -> str:
    """The distinct characters of ``text`` the embedded font should carry: all but ASCII and whitespace, sorted."""
    return "".join(sorted({c for c in text if ord(c) > 0x7F and not c.isspace()}))


def subset_woff2(text: str) -> bytes:
    """WOFF2 bytes of Noto Sans CJK SC cut to the glyphs of ``text``'s non-ASCII characters.

    Raises RuntimeError when the font package is missing (callers that can do
    without use :func:`font_face_css`, which returns "" then).
    """
    chars = characters_to_embed(text)
    path = cjk_font_path()
    if path is None:
        raise RuntimeError("the noto-cjk-sans-otc package (Noto Sans CJK) is not installed")
    return _subset(chars, str(path))


@lru_cache(maxsize=16)
def _subset(chars: str, path: str) -> bytes:
    from fontTools import subset
    from fontTools.ttLib import TTCollection

    collection = TTCollection(path, lazy=True)
    names = [f["name"].getDebugName(1) for f in collection.fonts]
    font = collection.fonts[names.index(FACE_NAME)] if FACE_NAME in names else collection.fonts[0]
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]  # keep vertical forms, punctuation widths, ...
    options.name_IDs = ["*"]  # keep the name table: copyright and licence (OFL) stay with the font
    options.notdef_outline = True
    options.hinting = False
    sub = subset.Subsetter(options)
    sub.populate(text=chars)
    sub.subset(font)
    buf = io.BytesIO()
    subset.save_font(font, buf, options)
    return buf.getvalue()


def font_face_css(text: str, family: str = EMBEDDED_FAMILY) -> str:
    """An ``@font-face`` rule declaring ``family`` as the WOFF2 subset for ``text``, inlined as base64.

    Returns "" when ``text`` has no non-ASCII character or the font package is missing
    (the page then relies on the reader's system fonts).
    """
    chars = characters_to_embed(text)
    path = cjk_font_path()
    if not chars or path is None:
        return ""
    data = base64.b64encode(_subset(chars, str(path))).decode("ascii")
    return (f"@font-face {{ font-family: \"{family}\"; font-style: normal; font-weight: 400; font-display: block; "
            f"src: url(data:font/woff2;base64,{data}) format(\"woff2\"); }}")
