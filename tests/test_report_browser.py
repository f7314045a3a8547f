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
    shot = tmp_path / f"report_{lang}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()
