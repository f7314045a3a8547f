"""The FastAPI application of ``petcad serve``.

Routes (study ids are opaque, ``s0``, ``s1``, ...; nothing in a URL names a patient):

========================================  ==============================================================
``GET /``                                 the page (``static/index.html``)
``GET /static/{path}``                    the front end and the vendored NiiVue (only below ``static/``)
``GET /api/config``                       language, model, reports, limits
``GET /api/strings/{lang}``               the interface words (``en``, ``zh``)
``GET /api/font/ui.woff2``                the CJK subset font for those words
``GET /api/studies``                      every study: id, pseudonym, number of lesions
``GET /api/studies/{id}``                 its lesions (labels, predictions) and segmentation lesions
``GET /api/studies/{id}/ct.nii``          CT (int16 HU), ``pet.nii`` (float32 SUV), ``labels.nii`` (uint8)
``GET /api/studies/{id}/mip.png``         coronal PET MIP; ``mip_point?u=&v=`` the hottest voxel behind a pixel
``POST /api/studies/{id}/analyze``        patches, probabilities (with / without TTA), diagnostic features
``POST /api/studies/{id}/saliency``       Captum attributions per panel and the CT / PET share
``GET /reports/{rid}/{path}``             a ``petcad compare`` report folder (only below it)
========================================  ==============================================================

Compute requests are rate-limited per client and their bodies size-limited; they run one at a
time (a lock), use only request-local state besides the read-only model and study caches, and
never touch torch's process-wide thread or determinism settings.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fastapi import Request

from petcad.errors import InputError
from petcad.web.security import RateLimiter, RequestError, read_json_limited, safe_file

STATIC = Path(__file__).resolve().parent / "static"
LOG = logging.getLogger("petcad.web")
#: Only this server's own scripts, styles, fonts and data; NiiVue may start workers from blob: URLs.
CSP = ("default-src 'self'; script-src 'self'; worker-src 'self' blob:; img-src 'self' data: blob:; "
       "style-src 'self'; font-src 'self'; connect-src 'self' blob: data:; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'")
#: compare reports: their inline style sheet and inlined images, no scripts at all.
REPORT_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; font-src 'self' data:; "
              "base-uri 'none'; frame-ancestors 'none'")


@dataclass
class ServeConfig:
    """Everything ``petcad serve`` was told."""

    data: list = field(default_factory=list)
    model: str | None = None
    segmentation: str | None = None
    reports: list = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    lang: str = "en"
    device: str = "cpu"
    max_studies: int = 3
    max_body_bytes: int = 16 * 1024
    rate_limit: int = 120  # compute requests per client ...
    rate_window_s: float = 60.0  # ... per this many seconds
    saliency_steps: int = 32


class Viewer:
    """The server's state: catalog, study cache, model, limits. Built once, read by requests."""

    def __init__(self, config: ServeConfig):
        from petcad import i18n
        from petcad.web.catalog import build_catalog
        from petcad.web.studies import StudyCache

        i18n.check_lang(config.lang)
        self.config = config
        entries = build_catalog(list(config.data), config.segmentation)
        self.studies = {e.sid: e for e in entries}
        self.cache = StudyCache(config.max_studies, log=LOG.info)
        self.limiter = RateLimiter(config.rate_limit, config.rate_window_s)
        self.compute_lock = threading.Lock()
        self.reports = [_report_dir(r) for r in config.reports]
        self.clf = None
        if config.model:
            from petcad.models.estimator import CNNClassifier

            self.clf = CNNClassifier.load(config.model, device=config.device)
        LOG.info("%d studies, %d lesions; model %s", len(entries), sum(len(e.lesions) for e in entries),
                 self.clf.config_["model"] if self.clf else "none")

    def entry(self, sid: str):
        e = self.studies.get(sid)
        if e is None:
            raise RequestError(404, "no such study")
        return e

    def loaded(self, sid: str):
        return self.cache.get(self.entry(sid))


def _report_dir(path) -> Path:
    p = Path(path)
    if not (p / "report.html").is_file():
        raise InputError("--report", f"{p}: not a petcad compare report folder (no report.html)")
    return p.resolve()


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def _floats(body: dict, key: str, n: int, default=None) -> list[float]:
    v = body.get(key, default)
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise RequestError(400, f"{key} must be a list of {n} numbers")
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(float(x)):
            raise RequestError(400, f"{key} must be a list of {n} finite numbers")
        out.append(float(x))
    return out


def _target(viewer: Viewer, sid: str, body: dict):
    """(Target, number for the titles) from a request body: ``lesion`` (index) or ``point`` ([x, y, z] mm, LPS)."""
    from petcad.explain.analysis import Target

    entry = viewer.entry(sid)
    ls = viewer.loaded(sid)
    idx = body.get("lesion")
    if idx is not None:
        if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < len(entry.lesions):
            raise RequestError(400, "lesion must be the index of a lesion of this study")
        return _lesion_target(viewer, entry, ls, idx), idx + 1
    xyz = _floats(body, "point", 3)
    return Target(ls.study, np.array(xyz), "point", None, None), "–"


def _needs_mask(viewer: Viewer) -> bool:
    return viewer.clf is not None and int(viewer.clf.config_["in_channels"]) == 9


def _lesion_target(viewer: Viewer, entry, ls, idx: int):
    """The Target of manifest lesion ``idx`` (with its mask when the network has mask channels)."""
    from petcad.explain.analysis import Target

    les = entry.lesions[idx]
    mask = None
    if les.mask is not None and _needs_mask(viewer):
        from petcad.io.volumes import read_image

        mask = read_image(les.mask, modality="mask")
    return Target(ls.study, np.array(les.center_mm), les.lesion_id, les.label, mask)


def _transform(body: dict) -> np.ndarray:
    from petcad.explain.analysis import make_transform

    return make_transform(_floats(body, "shift", 3, [0, 0, 0]), _floats(body, "rotate", 3, [0, 0, 0]))


def analyze(viewer: Viewer, sid: str, body: dict) -> dict:
    """Patches, probabilities and diagnostic features for one lesion or point of study ``sid``."""
    from petcad.explain.analysis import analyse, diagnostic_features
    from petcad.explain.panels import original_title
    from petcad.patches.panels import display_range

    t0 = time.perf_counter()
    target, number = _target(viewer, sid, body)
    t = _transform(body)
    tta = bool(body.get("tta", True))
    with viewer.compute_lock:
        res = analyse(target, t, viewer.clf, tta=tta)
        feats, feats_error = None, None
        if body.get("features", True):
            try:
                feats = diagnostic_features(target)
            except InputError as exc:
                feats_error = exc.problem
            except (ValueError, RuntimeError, IndexError):  # e.g. nothing to delineate around a point in air
                LOG.warning("diagnostic features failed for study %s", sid)
                feats_error = "no lesion could be delineated here"
    titles = {lang: [original_title(number, ch, target.label, lang) for ch in res.channels] for lang in ("en", "zh")}
    return {
        "channels": list(res.channels), "size": int(res.patches.shape[-1]), "patches": _b64(res.patches),
        "display": [list(display_range(ch, res.patches[c])) for c, ch in enumerate(res.channels)],
        "titles": titles, "label": target.label, "number": number, "classes": list(res.classes),
        "probability": res.probability, "probability_tta": res.probability_tta,
        "features": feats, "features_error": feats_error,
        "center_mm": [float(v) for v in target.center_mm],
        "transform": {"rotate": [float(v) for v in t[:3]], "shift": [float(v) for v in t[3:]]},
        "ms": round(1000 * (time.perf_counter() - t0), 1),
    }


def saliency(viewer: Viewer, sid: str, body: dict) -> dict:
    """Captum attributions of the explained class per panel, and each modality's share."""
    from petcad.explain.analysis import class_names, lesion_data, model_settings
    from petcad.explain.saliency import METHODS, explain_lesion

    if viewer.clf is None:
        raise RequestError(409, "no model loaded (start petcad serve with --model RUN_DIR)")
    method = body.get("method", "ig")
    if method not in METHODS:
        raise RequestError(400, f"method must be one of {', '.join(METHODS)}")
    t0 = time.perf_counter()
    target, _ = _target(viewer, sid, body)
    t = _transform(body)
    size, spacing, with_mask = model_settings(viewer.clf)
    with viewer.compute_lock:
        data = lesion_data(target, t, size=size, spacing_mm=spacing, with_mask=with_mask,
                           normalization=viewer.clf.config_.get("normalization", "patch"), clf=viewer.clf)
        sal = explain_lesion(viewer.clf, data, t, method=method, steps=viewer.config.saliency_steps)
    return {"method": method, "channels": list(sal.channels), "size": int(sal.attributions.shape[-1]),
            "attributions": _b64(sal.attributions), "share": sal.share, "probability": sal.probability,
            "class": class_names(viewer.clf)[sal.target], "ms": round(1000 * (time.perf_counter() - t0), 1)}


def study_detail(viewer: Viewer, sid: str) -> dict:
    """Lesions of a study with labels and (with a model) predictions; segmentation lesions."""
    from petcad.explain.analysis import analyse

    entry = viewer.entry(sid)
    ls = viewer.loaded(sid)
    preds = [None] * len(entry.lesions)
    if viewer.clf is not None:
        def make():
            out = []
            for i, le in enumerate(entry.lesions):
                if _needs_mask(viewer) and le.mask is None:
                    out.append(None)  # a 9-channel network needs the lesion's mask
                    continue
                target = _lesion_target(viewer, entry, ls, i)
                with viewer.compute_lock:
                    out.append(analyse(target, np.zeros(6), viewer.clf, tta=False).probability)
            return out

        preds = ls.blob("predictions", make)
    lesions = [{"index": i, "lesion_id": le.lesion_id, "x": le.center_mm[0], "y": le.center_mm[1], "z": le.center_mm[2],
                "label": le.label, "prediction": preds[i]} for i, le in enumerate(entry.lesions)]
    ct = ls.study.ct
    return {"id": sid, "patient_id": entry.patient_id, "lesions": lesions, "seg_lesions": entry.seg_lesions,
            "seg_classes": entry.seg_classes, "has_labels": entry.seg_labels is not None, "n_label_classes": _label_classes(entry),
            "ct_shape": list(ct.shape_ijk),
            "ct_spacing": [float(v) for v in ct.spacing], "load_seconds": round(ls.seconds, 2)}


def _label_classes(entry) -> int:
    """Number of tumour classes of a segmentation (``meta.json``, else the ``p_<class>`` columns of its
    lesion list other than ``p_none``; at least 2)."""
    if entry.seg_classes:
        return max(2, len(entry.seg_classes))
    cols = {k for row in entry.seg_lesions for k in row if k.startswith("p_") and k not in ("p_none", "p_background")}
    return max(2, len(cols))


def create_app(config: ServeConfig, viewer: Viewer | None = None):
    """The FastAPI app for ``config`` (a prepared ``viewer`` may be passed, e.g. by tests)."""
    from fastapi import FastAPI
    from fastapi.responses import FileResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    viewer = viewer or Viewer(config)
    app = FastAPI(title="petcad viewer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.viewer = viewer

    @app.exception_handler(RequestError)
    async def _request_error(request, exc: RequestError):
        headers = {"Retry-After": str(int(viewer.config.rate_window_s))} if exc.status == 429 else None
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(InputError)
    async def _input_error(request, exc: InputError):
        return JSONResponse({"error": exc.problem}, status_code=400)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = REPORT_CSP if request.url.path.startswith("/reports/") else CSP
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def static_file(rel: str):
        p = safe_file(STATIC, rel)
        if p is None:
            raise RequestError(404, "not found")
        return FileResponse(p)

    @app.get("/")
    def index():
        return static_file("index.html")

    @app.get("/favicon.ico")
    def favicon():
        return Response(status_code=204)

    @app.get("/static/{rel:path}")
    def static(rel: str):
        return static_file(rel)

    @app.get("/reports/{rid}/{rel:path}")
    def report(rid: str, rel: str):
        roots = {f"r{i}": r for i, r in enumerate(viewer.reports)}
        if rid not in roots:
            raise RequestError(404, "no such report")
        p = safe_file(roots[rid], rel or "report.html")
        if p is None:
            raise RequestError(404, "not found")
        return FileResponse(p)

    @app.get("/api/config")
    def api_config():
        clf = viewer.clf
        model = None
        if clf is not None:
            from petcad.explain.analysis import class_names

            model = {"name": clf.config_["model"], "channels": int(clf.config_["in_channels"]),
                     "classes": list(class_names(clf)), "patch_size": int(clf.config_["patch_size"])}
        return {"lang": viewer.config.lang, "model": model, "reports": [f"r{i}" for i in range(len(viewer.reports))],
                "rate_limit": [viewer.config.rate_limit, viewer.config.rate_window_s]}

    @app.get("/api/strings/{lang}")
    def api_strings(lang: str):
        from petcad.web.strings import ui_strings

        if lang not in ("en", "zh"):
            raise RequestError(404, "unknown language")
        return ui_strings(lang)

    @app.get("/api/font/ui.woff2")
    def api_font():
        from petcad.web.fonts import ui_font_woff2

        data = ui_font_woff2()
        if data is None:
            raise RequestError(404, "font package not installed")
        return Response(data, media_type="font/woff2", headers={"Cache-Control": "max-age=86400"})

    @app.get("/api/studies")
    def api_studies():
        return [e.summary() for e in viewer.studies.values()]

    @app.get("/api/studies/{sid}")
    def api_study(sid: str):
        return study_detail(viewer, sid)

    def volume_response(data: bytes | None):
        if data is None:
            raise RequestError(404, "no such volume")
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/studies/{sid}/{name}.nii")
    def api_volume(sid: str, name: str):
        from petcad.web import studies as S

        makers = {"ct": S.ct_nifti, "pet": S.pet_nifti, "labels": S.seg_nifti}
        if name not in makers:
            raise RequestError(404, "no such volume")
        return volume_response(makers[name](viewer.loaded(sid)))

    @app.get("/api/studies/{sid}/mip.png")
    def api_mip(sid: str, suv_max: float = 5.0):
        from petcad.web.studies import mip_png

        if not (math.isfinite(suv_max) and 0.1 <= suv_max <= 100):
            raise RequestError(400, "suv_max must lie in 0.1..100")
        return Response(mip_png(viewer.loaded(sid), round(suv_max, 1)), media_type="image/png")

    @app.get("/api/studies/{sid}/mip_point")
    def api_mip_point(sid: str, u: float, v: float):
        from petcad.web.studies import mip_point

        if not (0.0 <= u <= 1.0 and 0.0 <= v <= 1.0):
            raise RequestError(400, "u and v are fractions in 0..1")
        return {"point": mip_point(viewer.loaded(sid), u, v)}

    async def compute(request: Request, sid: str, fn):
        viewer.limiter.check(request.client.host if request.client else "?")
        body = await read_json_limited(request, viewer.config.max_body_bytes)
        return await run_in_threadpool(fn, viewer, sid, body)

    @app.post("/api/studies/{sid}/analyze")
    async def api_analyze(sid: str, request: Request):
        return await compute(request, sid, analyze)

    @app.post("/api/studies/{sid}/saliency")
    async def api_saliency(sid: str, request: Request):
        return await compute(request, sid, saliency)

    return app
