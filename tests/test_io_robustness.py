"""Inputs that are not whole or not plausible, through ``petcad.cli.main`` (issue 10, items 3-5).

* series with missing slices: resampling works (it failed in scipy at the last slice),
  a PET series with fewer slices than NumberOfSlices is warned, every command that reads
  a study takes ``--on-irregular``, messages name options and not Python keywords;
* CT and PET that do not overlap: an error naming both; a CT that is not HU-like: a warning;
  NaN in a NIfTI file written by nibabel: found (ITK's reader turns it into 0);
* ``.mhd`` / ``.nhdr`` written atomically: no data file named after a temporary header.

Bad input: one stderr line naming the file or option, exit status 2, nothing written.
Warnings: ``petcad: warning: ...`` on stderr and in the command's JSON.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from petcad.cli import build_parser, main
from petcad.errors import InputError
from petcad.io.dicom import read_series
from petcad.io.volumes import nifti_nonfinite, read_image, write_image
from petcad.study import Volume
from test_io_helpers import copy_series, edit_series

SRC = Path(__file__).resolve().parents[1] / "src" / "petcad"


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_bad(capsys, argv, *, names, contains=(), out_path: Path | None = None) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in names:
        assert str(n) in lines[0], lines[0]
    for c in contains:
        assert c in lines[0], lines[0]
    if out_path is not None:
        assert not out_path.exists()
        assert not [p for p in out_path.parent.iterdir() if ".tmp" in p.name]
    return lines[0]


def warning_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("petcad: warning: ")]


@pytest.fixture
def dro(test_data, tmp_path) -> Path:
    return copy_series(test_data / "suv_dro" / "DRO_0_0" / "PT", tmp_path / "pt")


def _gap_series(folder: Path) -> Path:
    """The DRO restacked at 3.37 mm from -826.25 mm (as DS strings), slice 10 removed.

    With these numbers floor(extent / spacing) steps of the median spacing end a rounding
    error beyond the last slice: what made scipy's interp1d raise at the last slice.
    """
    def fn(ds, k):
        ds.ImagePositionPatient = [0, 0, float(f"{-826.25 + 3.37 * k:.6g}")]
        ds.SliceThickness = "3.37"

    edit_series(folder, fn)[10].unlink()
    return folder


def _image(path: Path, values: np.ndarray, origin=(0.0, 0.0, 0.0), spacing=(16.0, 16.0, 4.0)) -> Path:
    write_image(Volume(values.astype(np.float32), np.asarray(origin), np.asarray(spacing)), path)
    return path


def _hu_ct(path: Path, origin=(0.0, 0.0, 0.0)) -> Path:
    """A 16 x 16 x 20 CT over the DRO's extent: air around a soft-tissue block (HU)."""
    a = np.full((20, 16, 16), -1000.0)
    a[:, 3:13, 3:13] = 40.0
    return _image(path, a, origin)


# ------------------------------------------------------------ 3. series that are not whole
def test_resample_across_a_gap_works_and_keeps_the_slices(dro):
    full = read_series(dro).volume.array.copy()
    _gap_series(dro)
    with pytest.warns(UserWarning, match="missing slices"):
        s = read_series(dro, on_irregular="resample")
    a = s.volume.array
    assert s.resampled and a.shape == (20, 256, 256) and a.dtype == np.float32
    assert s.volume.spacing[2] == pytest.approx(3.37, abs=1e-6)
    keep = [k for k in range(20) if k != 10]
    np.testing.assert_allclose(a[keep], full[keep], rtol=1e-5, atol=1e-3)  # the slices read stay as they were
    np.testing.assert_allclose(a[10], 0.5 * (full[9] + full[11]), rtol=1e-5, atol=1e-3)  # the missing one: linear


def test_gap_through_the_cli_error_names_the_option_then_resample(dro, tmp_path, capsys):
    _gap_series(dro)
    out = tmp_path / "suv.nii.gz"
    line = assert_bad(capsys, ["suv", dro, "--out", out], names=[dro], contains=["missing slices", "--on-irregular resample"],
                      out_path=out)
    assert "on_irregular" not in line
    code, stdout, err = run_cli(capsys, "suv", dro, "--out", out, "--on-irregular", "resample", "--json")
    assert code == 0, err
    d = json.loads(stdout)
    assert d["geometry"]["shape_ijk"][2] == 20 and read_image(out, modality="PT").array.shape == (20, 256, 256)
    (w,) = [ln for ln in warning_lines(err) if "missing slices" in ln]
    assert "resampled onto a regular grid" in w
    assert any("missing slices" in n for n in d["warnings"])


def test_fewer_slices_than_number_of_slices_is_warned(dro, tmp_path, capsys):
    def fn(ds, k):
        ds.NumberOfSlices = 20
        ds.ImageIndex = k + 1

    edit_series(dro, fn)[19].unlink()  # the top slice: no gap is left, only the count tells
    out = tmp_path / "suv.nii.gz"
    code, stdout, err = run_cli(capsys, "suv", dro, "--out", out, "--json")
    assert code == 0, err
    (w,) = [ln for ln in warning_lines(err) if "NumberOfSlices" in ln]
    assert "19 slices" in w and "(0054,0081) says 20" in w and "ImageIndex 20" in w, w
    d = json.loads(stdout)
    assert any("NumberOfSlices" in n for n in d["warnings"]) and any("NumberOfSlices" in n for n in d["reader_notes"])
    # a whole series says nothing
    code, stdout, err = run_cli(capsys, "suv", copy_series(dro.parent / "pt", tmp_path / "whole"), "--out", out)
    assert code == 0


STUDY_COMMANDS = [
    ["info", "ct", "pet"],
    ["suv", "pet", "--out", "x.nii.gz"],
    ["manifest", "m.csv"],
    ["patches", "m.csv", "--out", "d"],
    ["train", "m.csv", "--out", "d"],
    ["compare", "m.csv", "--out", "d"],
    ["predict", "--model", "run", "--manifest", "m.csv", "--out", "p.csv"],
    ["bench", "patches", "--manifest", "m.csv"],
]


@pytest.mark.parametrize("argv", STUDY_COMMANDS, ids=lambda a: " ".join(a[:2]) if a[0] == "bench" else a[0])
def test_every_command_reading_a_study_offers_on_irregular(argv):
    parser = build_parser()
    assert parser.parse_args(argv).on_irregular == "error"
    assert parser.parse_args(argv + ["--on-irregular", "resample"]).on_irregular == "resample"
    assert parser.parse_args(argv + ["--on-irregular", "stack"]).on_irregular == "stack"


def test_manifest_command_passes_on_irregular_to_the_reader(dro, tmp_path, capsys):
    _gap_series(dro)
    ct = _hu_ct(tmp_path / "ct.nii.gz", origin=(0.0, 0.0, -826.25))
    man = tmp_path / "cohort.csv"
    man.write_text("patient_id,ct,pet,lesion_id,x,y,z,label\n"
                   f"P1,{ct.name},{dro.name},L1,100,100,-800,benign\n")
    assert_bad(capsys, ["manifest", man], names=[man, dro], contains=["--on-irregular resample"])
    code, stdout, err = run_cli(capsys, "manifest", man, "--on-irregular", "resample", "--json")
    assert code == 0, err
    d = json.loads(stdout)
    assert d["studies_loaded"] == 1 and any("missing slices" in w for w in d["warnings"])
    assert any("missing slices" in ln for ln in warning_lines(err))


def test_messages_give_options_not_python_keywords():
    """No string literal in petcad (messages) tells a user to pass ``name=value`` (Python keyword syntax)."""
    import io
    import tokenize

    keyword = re.compile(r"\b(on_irregular|allow_frame_mismatch|series_uid|allow_nan)=")
    bad = []
    for p in SRC.rglob("*.py"):
        for tok in tokenize.generate_tokens(io.StringIO(p.read_text(encoding="utf-8")).readline):
            text = tok.string
            if tok.type in (tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", -1)) and not text.lstrip("rbuRBUfF").startswith(('"""', "'''")):
                if keyword.search(text):
                    bad.append(f"{p.relative_to(SRC)}:{tok.start[0]}: {text}")
    assert not bad, bad


# ------------------------------------------------------------ 4. plausibility
def test_ct_and_pet_that_do_not_overlap_are_an_error(dro, tmp_path, capsys):
    ct = _hu_ct(tmp_path / "ct.nii.gz", origin=(0.0, 0.0, 2000.0))  # 2 m above the PET
    assert_bad(capsys, ["info", ct, dro], names=[ct, dro], contains=["does not overlap"])
    pet_img = _image(tmp_path / "pet.nii.gz", np.ones((20, 16, 16)))
    assert_bad(capsys, ["info", ct, pet_img], names=[ct, pet_img], contains=["does not overlap"])
    # overlapping by one slab is enough
    code, _, err = run_cli(capsys, "info", _hu_ct(tmp_path / "ct2.nii.gz", origin=(0.0, 0.0, 60.0)), dro)
    assert code == 0, err


def test_ct_that_is_not_hu_like_is_warned(dro, tmp_path, capsys):
    suv_as_ct = _image(tmp_path / "suv.nii.gz", np.random.default_rng(0).uniform(0, 12, (20, 16, 16)))
    code, stdout, err = run_cli(capsys, "info", suv_as_ct, dro, "--json")
    assert code == 0, err
    (w,) = warning_lines(err)
    assert str(suv_as_ct) in w and "not HU-like" in w
    d = json.loads(stdout)
    assert any("not HU-like" in n for n in d["warnings"]) and any("not HU-like" in n for n in d["ct"]["notes"])
    code, stdout, err = run_cli(capsys, "info", _hu_ct(tmp_path / "ct.nii.gz"), dro, "--json")
    assert code == 0 and not warning_lines(err) and json.loads(stdout)["warnings"] == []


def _nibabel_nifti(path: Path, data: np.ndarray, nifti2: bool = False) -> Path:
    nib = pytest.importorskip("nibabel")
    cls = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    img = cls(data.astype(np.float32), np.diag([16.0, 16.0, 4.0, 1.0]))
    img.set_data_dtype(np.float32)
    nib.save(img, str(path))
    assert np.isnan(np.asarray(nib.load(str(path)).dataobj)).sum() == np.isnan(data).sum()  # the file holds the NaN
    return path


def test_nan_in_a_nifti_written_by_nibabel_is_found(dro, tmp_path, capsys):
    a = np.full((16, 16, 20), -1000.0)  # nibabel: x, y, z
    a[3, 4, 5] = np.nan
    ct = _nibabel_nifti(tmp_path / "ct.nii.gz", a)
    # SimpleITK's NIfTI reader (ITK 5) returns 0 there; petcad reads the file's bytes
    assert nifti_nonfinite(ct) == (1, 0)
    assert_bad(capsys, ["info", ct, dro], names=[ct], contains=["1 NaN"])
    with pytest.raises(InputError, match="1 NaN"):
        read_image(ct, modality="mask")


@pytest.mark.parametrize("name,nifti2", [("a.nii", False), ("b.nii.gz", True)])
def test_nifti_scan_counts_nan_and_inf(tmp_path, name, nifti2):
    a = np.zeros((5, 6, 7))
    a[0, 0, 0] = a[4, 5, 6] = np.nan
    a[1, 2, 3] = np.inf
    a[2, 2, 2] = -np.inf
    path = _nibabel_nifti(tmp_path / name, a, nifti2=nifti2)
    assert nifti_nonfinite(path) == (2, 2)
    assert nifti_nonfinite(path, chunk_bytes=12) == (2, 2)  # chunk edges do not lose or double values
    if not nifti2:  # (SimpleITK 2.5 has no NIfTI-2 reader)
        with pytest.raises(InputError, match="2 NaN and 2 infinite"):
            read_image(path)
    clean = _nibabel_nifti(tmp_path / ("c_" + name), np.zeros((5, 6, 7)), nifti2=nifti2)
    assert nifti_nonfinite(clean) == (0, 0)


# ------------------------------------------------------------ 5. atomic two-file formats
@pytest.mark.parametrize("suffix,data_names", [(".mhd", {"suv.zraw", "suv.raw"}), (".nhdr", {"suv.raw.gz", "suv.raw"})])
def test_two_file_formats_are_written_under_their_final_names(dro, tmp_path, capsys, suffix, data_names):
    out_dir = tmp_path / "out"
    out = out_dir / f"suv{suffix}"
    code, _, err = run_cli(capsys, "suv", dro, "--out", out)
    assert code == 0, err
    files = sorted(p.name for p in out_dir.iterdir())
    assert len(files) == 2 and files[0] == out.name or files[1] == out.name, files
    (data,) = [f for f in files if f != out.name]
    assert data in data_names, files
    assert data in out.read_text(errors="replace")  # the header names the data file by its final name
    ref = tmp_path / "suv.nii.gz"
    assert run_cli(capsys, "suv", dro, "--out", ref)[0] == 0
    np.testing.assert_array_equal(read_image(out, modality="PT").array, read_image(ref, modality="PT").array)


def test_failed_two_file_write_leaves_nothing(tmp_path, monkeypatch):
    import SimpleITK as sitk

    real = sitk.WriteImage

    def write_then_fail(img, path, *args):
        real(img, path, *args)
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", write_then_fail)
    out = tmp_path / "o" / "x.mhd"
    with pytest.raises(InputError, match="disk full"):
        write_image(Volume(np.zeros((2, 3, 4), np.float32), [0, 0, 0], [1, 1, 1]), out)
    assert list(out.parent.iterdir()) == []


# ------------------------------------------------------------ 6. the font subset helper
def test_font_subset_holds_the_characters_and_no_others():
    import base64
    import io

    from fontTools.ttLib import TTFont

    from petcad.fonts import EMBEDDED_FAMILY, font_face_css

    if __import__("petcad.fonts").fonts.cjk_font_path() is None:
        pytest.skip("noto-cjk-sans-otc not installed")
    css = font_face_css("CT 良性 / 恶性")
    assert css.startswith("@font-face") and f'font-family: "{EMBEDDED_FAMILY}"' in css
    data = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)\)", css).group(1))
    assert data[:4] == b"wOF2" and len(data) < 20_000
    cmap = TTFont(io.BytesIO(data)).getBestCmap()
    assert {ord(c) for c in "良性恶"} <= set(cmap) and ord("病") not in cmap and ord("C") not in cmap
    assert font_face_css("plain ASCII only") == ""
