"""The viewer in real headless Chromium: open a study, pick a lesion, use the 2.5D slicing dialog,
show the saliency overlay, switch to Chinese; the view-update time is measured and the server log
is checked for patient names.

Screenshots go to the test's tmp folder; with PETCAD_SCREENSHOTS=DIR they are also copied there
(docs/img/viewer_en.png and viewer_zh.png were made so).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("captum")

from petcad.cli import main as cli_main  # noqa: E402


@pytest.fixture(scope="module")
def served(small_cohort, tmp_path_factory):
    """uvicorn in a thread on a free loopback port, over the DICOM cohort and a briefly trained model;
    yields (url, log buffer)."""
    import uvicorn

    from petcad.web.app import ServeConfig, create_app

    run = tmp_path_factory.mktemp("web_run") / "run"
    assert cli_main(["train", str(small_cohort), "--out", str(run), "--epochs", "1", "--min-samples-per-epoch", "0",
                     "--batch-size", "32", "--no-progress", "--threads", "2", "--seed", "3"]) == 0
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    loggers = [logging.getLogger(n) for n in ("petcad", "uvicorn", "uvicorn.access", "uvicorn.error")]
    for lg in loggers:
        lg.addHandler(handler)
    logging.getLogger("petcad").setLevel(logging.INFO)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(ServeConfig(data=[str(small_cohort)], model=str(run), port=port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}", log
    server.should_exit = True
    thread.join(timeout=10)
    for lg in loggers:
        lg.removeHandler(handler)


def _panel_pixels(page):
    return page.eval_on_selector_all("#panels canvas.panel", "cs => cs.map(c => c.toDataURL())")


def _shot(page, tmp_path, name):
    path = tmp_path / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 20_000
    dest = os.environ.get("PETCAD_SCREENSHOTS")
    if dest:
        os.makedirs(dest, exist_ok=True)
        shutil.copy(path, os.path.join(dest, name))
    return path


def test_viewer_in_chromium(browser, served, tmp_path):
    url, log = served
    page = browser.new_page(viewport={"width": 1480, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    assert page.locator("#studies li").count() == 8
    page.click("#studies li[data-sid='s0']")
    page.wait_for_function("() => window.petcad.state.study && window.petcad.state.study.id === 's0'", timeout=60_000)
    gl = page.evaluate("window.petcad.state.glOk")
    if gl:  # NiiVue has the CT and the PET; a view update is timed
        page.wait_for_function("() => window.petcad.state.nv.volumes.length >= 2", timeout=60_000)
        timing = page.evaluate("window.petcad.measureViewUpdate(30)")
        print(f"view update (8-patient default phantom, CT {page.evaluate('window.petcad.state.study.ct_shape')}): "
              f"median {timing['median_ms']:.1f} ms, max {timing['max_ms']:.1f} ms over {timing['n']}")
        assert timing["median_ms"] < 1000
        assert "HU" in page.inner_text("#readout") and "SUV" in page.inner_text("#readout")
        at_crosshair = page.inner_text("#readout")
        box = page.locator("#gl").bounding_box()  # hover over the axial plane (left third of the row)
        page.mouse.move(box["x"] + box["width"] * 0.12, box["y"] + box["height"] * 0.35)
        page.wait_for_function(f"() => document.getElementById('readout').textContent !== {at_crosshair!r}", timeout=5_000)
        assert "HU" in page.inner_text("#readout")
    # pick a lesion: six labelled panels and a probability
    page.click("#lesions li[data-index='0']")
    page.wait_for_function("() => window.petcad.state.analysis !== null", timeout=60_000)
    assert page.locator("#panels canvas.panel").count() == 6
    captions = page.locator("#panels figcaption").all_inner_texts()
    assert captions[0].startswith("tumour 1, description: CT axial, label: ")
    assert captions[4].startswith("tumour 1, description: PET coronal")
    p0 = float(page.inner_text("#probs tr[data-class='malignant'] td.p"))
    assert 0.0 <= p0 <= 1.0
    assert page.inner_text("#probs tr[data-class='malignant'] td.p-tta") != "–"
    before = _panel_pixels(page)
    prob_before = page.evaluate("window.petcad.state.analysis.probability.malignant")
    # the 2.5D slicing dialog: rotate about X by 10 degrees
    page.click("#btn-transform")
    assert page.locator("#transform-dialog").is_visible()
    assert "-10..10" in page.inner_text("#transform-dialog")
    page.fill("#rot-x", "10")
    page.click("#btn-submit")
    page.wait_for_function("() => window.petcad.state.analysis.transform.rotate[0] === 10", timeout=60_000)
    page.wait_for_function("() => !document.getElementById('transform-dialog').open", timeout=10_000)
    after = _panel_pixels(page)
    assert len(after) == 6 and sum(a != b for a, b in zip(before, after)) >= 4
    assert page.evaluate("window.petcad.state.analysis.probability.malignant") != prob_before
    # saliency overlay
    page.click("#btn-saliency")
    page.wait_for_function("() => document.querySelectorAll('#panels canvas.overlay').length === 6", timeout=60_000)
    share = page.inner_text("#share")
    assert "CT" in share and "PET" in share and "%" in share
    page.evaluate("document.fonts.load('14px petcad-cjk', '中文').then(() => document.fonts.ready).then(() => true)")
    _shot(page, tmp_path, "viewer_en.png")
    # Chinese
    page.click("#lang-zh")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'", timeout=10_000)
    text = page.inner_text("body")
    for word in ("病灶分析", "横截面", "冠状面", "矢状面", "归因占比"):
        assert word in text, word
    assert ("良性" in text) or ("恶性" in text)
    assert page.evaluate("document.fonts.load('14px petcad-cjk', '横截面').then(f => f.length)") >= 1
    page.evaluate("document.fonts.ready.then(() => true)")
    _shot(page, tmp_path, "viewer_zh.png")
    html = page.content()
    page.close()
    assert not errors, errors
    # no patient name (the phantom writes PatientName PHANTOM^nnnn into the DICOM) in the page or the log
    logged = log.getvalue()
    assert "GET /api/studies/s0/ct.nii" in logged and "POST /api/studies/s0/analyze" in logged
    assert "PHANTOM" not in logged.upper() and "PHANTOM" not in html.upper()
