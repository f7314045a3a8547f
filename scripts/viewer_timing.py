"""Time the viewer in headless Chromium on one study: loading, volume transfer, view updates, analysis.

    .venv/bin/python scripts/viewer_timing.py MANIFEST_OR_DIR [--model RUN_DIR] [--study s0] [--chromium PATH]

Starts ``petcad serve``'s app on a free loopback port in this process, opens the page in Debian's
Chromium (Playwright, headless, software WebGL), opens the study and prints one JSON object:
server-side study load time, NIfTI sizes, time until NiiVue shows both volumes, the median and
maximum time of a view update (crosshair moved one voxel, all three planes redrawn, GPU finished)
and, with a model, the time of one lesion analysis (six panels, probability with and without TTA).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import threading
import time

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main() -> int:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from petcad.web.app import ServeConfig, create_app

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--model")
    ap.add_argument("--study", default="s0")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--updates", type=int, default=50)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(ServeConfig(data=[args.data], model=args.model, port=port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1480, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        t0 = time.perf_counter()
        page.evaluate(f"window.petcad.openStudy('{args.study}')")
        page.wait_for_function("() => window.petcad.state.glOk && window.petcad.state.nv.volumes.length >= 2", timeout=600_000)
        out["open_study_s"] = round(time.perf_counter() - t0, 2)
        det = page.evaluate("window.petcad.state.study")
        out["ct_shape"] = det["ct_shape"]
        out["server_load_study_s"] = det["load_seconds"]
        out["renderer"] = page.evaluate("(() => { const g = window.petcad.state.nv.gl; return g.getParameter(g.RENDERER) })()")
        sizes = page.evaluate("""Promise.all(['ct', 'pet'].map(n => fetch(`/api/studies/${window.petcad.state.study.id}/${n}.nii`)
                                   .then(r => r.arrayBuffer()).then(b => b.byteLength)))""")
        out["nifti_mb"] = {"ct": round(sizes[0] / 1e6, 1), "pet": round(sizes[1] / 1e6, 1)}
        page.evaluate("window.petcad.measureViewUpdate(5)")  # warm-up
        out["view_update"] = page.evaluate(f"window.petcad.measureViewUpdate({args.updates})")
        if args.model and det["lesions"]:
            t0 = time.perf_counter()
            page.click("#lesions li[data-index='0']")
            page.wait_for_function("() => window.petcad.state.analysis !== null", timeout=600_000)
            out["first_analysis_s"] = round(time.perf_counter() - t0, 2)
            out["analysis_server_ms"] = page.evaluate("window.petcad.state.analysis.ms")
        browser.close()
    server.should_exit = True
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
