"""Shared fixtures: the reference data folder and a small synthetic cohort."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _test_data_dir() -> Path:
    env = os.environ.get("PETCAD_TEST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def require_module(name: str):
    """Import an optional dependency; skip without it, but fail when PETCAD_REQUIRE_TEST_DATA=1 (CI).

    In CI every optional part (``make test`` installs ``.[all,test]``) must be tested, not skipped.
    """
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        msg = f"optional dependency {name} not installed ({exc})"
        if os.environ.get("PETCAD_REQUIRE_TEST_DATA") == "1":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg, allow_module_level=True)


@pytest.fixture(scope="session")
def test_data() -> Path:
    """The shared reference data; skips when absent (fails when PETCAD_REQUIRE_TEST_DATA=1)."""
    d = _test_data_dir()
    if not (d / "README.md").exists():
        msg = f"reference data not found at {d} (set PETCAD_TEST_DATA)"
        if os.environ.get("PETCAD_REQUIRE_TEST_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory) -> Path:
    """A small synthetic DICOM cohort (8 patients, default preset, seed 7); returns its manifest path."""
    from petcad.phantom import generate_cohort

    out = tmp_path_factory.mktemp("phantom_small")
    return generate_cohort(out, n_patients=8, seed=7, preset="default", fmt="dicom")


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (never a downloaded browser).

    Skips when Chromium or Playwright is missing; fails instead when
    PETCAD_REQUIRE_BROWSER=1 (as in CI, where `make test` installs Chromium).
    """
    import shutil

    exe = os.environ.get("PETCAD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        exe = None
    if not exe:
        msg = "Chromium or Playwright not installed (make test installs Debian's chromium as root)"
        if os.environ.get("PETCAD_REQUIRE_BROWSER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def torch_two_threads():
    """torch on 2 CPU threads for the test (the machine's cores; the result must not depend on more), restored after."""
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)
