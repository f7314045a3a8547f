"""The comparison report opens in a real browser (Debian Chromium via Playwright) and shows its ROC curves."""

import pytest

from petcad.cli import main


@pytest.mark.parametrize("lang,rf_name", [("en", "random forest"), ("zh", "随机森林")])
def test_report_renders_roc_in_chromium(browser, small_cohort, tmp_path, lang, rf_name):
    out = tmp_path / f"report_{lang}"
    rc = main(["compare", str(small_cohort), "--out", str(out), "--methods", "rf,svm", "--folds", "2",
               "--repeats", "1", "--lang", lang])
    assert rc == 0
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto((out / "report.html").resolve().as_uri())
    assert page.locator("html").get_attribute("lang") == ("zh-CN" if lang == "zh" else "en")
    roc = page.locator("img[alt=ROC]")
    roc.scroll_into_view_if_needed()
    # the inlined PNG decoded and laid out with a real size
    size = roc.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight, img.getBoundingClientRect().width]")
    assert size[0] and size[1] > 200 and size[2] > 200 and size[3] > 100, size
    text = page.inner_text("body")
    assert "ROC" in text
    assert rf_name in text.lower()
    if lang == "zh":
        assert "敏感度" in text
    if lang == "zh":
        _check_embedded_cjk_font(page)
    shot = tmp_path / f"report_{lang}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()


def _system_has_cjk_font() -> bool:
    import shutil
    import subprocess

    if not shutil.which("fc-list"):
        return False
    return bool(subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout.strip())


# The Chinese heading measured in the page's fonts (the embedded WOFF2 subset first) and in a
# family list without it. Noto Sans CJK ideographs advance exactly 1 em; without a CJK font
# Chromium draws every ideograph as the same tofu box, of another width.
_MEASURE = """() => {
  const h1 = document.querySelector('h1');
  const cjk = [...h1.textContent].filter(c => c.charCodeAt(0) >= 0x3400).join('');
  const width = (family) => {
    const s = document.createElement('span');
    s.textContent = cjk;
    s.style.fontSize = '20px';
    s.style.whiteSpace = 'nowrap';
    if (family) s.style.fontFamily = family;
    document.body.appendChild(s);
    const w = s.getBoundingClientRect().width;
    s.remove();
    return w;
  };
  const faces = [...document.fonts].map(f => [f.family.replace(/"/g, ''), f.status]);
  return {n: cjk.length, with_font: width(null), without_font: width('petcad-no-such-font, sans-serif'), faces};
}"""


def _check_embedded_cjk_font(page):
    from petcad.fonts import EMBEDDED_FAMILY

    page.evaluate("document.fonts.ready.then(() => true)")
    m = page.evaluate(_MEASURE)
    assert m["n"] >= 4, m
    assert [EMBEDDED_FAMILY, "loaded"] in m["faces"], m
    # with the embedded font every ideograph is 1 em (20 px) wide
    assert abs(m["with_font"] - 20.0 * m["n"]) < 1.0, m
    if not _system_has_cjk_font():
        # without it (no CJK system font here) the same text is tofu of another width
        assert abs(m["without_font"] - m["with_font"]) > 2.0, m
