"""The local viewer: ``petcad serve`` (FastAPI + uvicorn, vendored NiiVue, plain HTML/JS).

* :mod:`petcad.web.catalog`  the studies of the manifests given (and segmentation outputs),
* :mod:`petcad.web.studies`  loaded studies, cached per study: NIfTI volumes for the browser, PET MIP,
* :mod:`petcad.web.nifti`    NIfTI-1 encoding of a :class:`petcad.study.Volume` (LPS -> RAS affine),
* :mod:`petcad.web.security` safe file serving from configured roots, rate and size limits,
* :mod:`petcad.web.fonts`    a CJK font subset (WOFF2) for the interface's Chinese words,
* :mod:`petcad.web.strings`  the interface's words in English and Chinese,
* :mod:`petcad.web.app`      the FastAPI application; :mod:`petcad.web.server` runs it.

The static front end (``static/``) needs no build step; ``static/vendor/niivue`` holds the
NiiVue UMD build (BSD-2-Clause) with its version and licence, refreshed by
``scripts/vendor_niivue.sh``.
"""
