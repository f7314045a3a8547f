"""A WOFF2 subset of Noto Sans CJK SC holding the viewer's words, built once on first use.

There is no system CJK font to rely on, so the page carries its own: the glyphs of every
interface string (:func:`petcad.web.strings.all_text`) plus ASCII, cut from the
``noto-cjk-sans-otc`` package's collection with fontTools (about 20 kB, half a second).
"""

from __future__ import annotations

import io
import string
import threading

_LOCK = threading.Lock()
_CACHE: dict[str, bytes] = {}


def ui_font_woff2() -> bytes | None:
    """The subset font, or None when the font package is missing (Chinese falls back to the browser's)."""
    with _LOCK:
        if "ui" in _CACHE:
            return _CACHE["ui"]
        try:
            from fontTools import subset
            from fontTools.ttLib import TTCollection, TTFont
            from noto_cjk_sans_otc import FONT_PATH
        except ImportError:
            return None
        from petcad.web.strings import all_text

        number = 0
        for i, f in enumerate(TTCollection(str(FONT_PATH), lazy=True).fonts):
            if f["name"].getDebugName(1) == "Noto Sans CJK SC":
                number = i
                break
        font = TTFont(str(FONT_PATH), fontNumber=number)
        opts = subset.Options()
        opts.flavor = "woff2"
        opts.hinting = False
        opts.layout_features = ["*"]
        sub = subset.Subsetter(opts)
        sub.populate(text=all_text() + string.printable)
        sub.subset(font)
        buf = io.BytesIO()
        font.flavor = "woff2"
        font.save(buf)
        _CACHE["ui"] = buf.getvalue()
        return _CACHE["ui"]
