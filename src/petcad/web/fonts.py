"""The viewer's Chinese font: a WOFF2 subset of the shipped Noto Sans CJK SC holding the interface's words.

There is no system CJK font to rely on, so the page carries its own glyphs: those of every
interface string (:func:`petcad.web.strings.all_text`), cut by :func:`petcad.fonts.subset_woff2`
(the same subsetter as the HTML reports; cached after the first call, about half a second).
The style sheet declares it for the CJK unicode ranges only.
"""

from __future__ import annotations


def ui_font_woff2() -> bytes | None:
    """The subset font, or None when the font package is missing (Chinese falls back to the browser's)."""
    from petcad.fonts import cjk_font_path, subset_woff2
    from petcad.web.strings import all_text

    if cjk_font_path() is None:
        return None
    try:
        return subset_woff2(all_text())
    except ImportError:  # fontTools missing
        return None
