"""The viewer's HTTP API (FastAPI TestClient): studies, volumes, analysis, saliency, limits, path safety, binding."""

from __future__ import annotations

import base64
import json
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("captum")

from petcad.cli import main as cli_main  # noqa: E402


@pytest.fixture(scope="module")
def web_cohort(tmp_path_factory):
    """A tiny NIfTI phantom (2 patients) and a wang2017 run trained for one short epoch."""
    from petcad.phantom import generate_cohort

    root = tmp_path_factory.mktemp("web")
    manifest = generate_cohort(root / "cohort", n_patients=3, seed=11, preset="default", fmt="nifti", workers=1)
    run = root / "run"
    rc = cli_main(["train", str(manifest), "--out", str(run), "--epochs", "1", "--min-samples-per-epoch", "0",
                   "--batch-size", "16", "--no-progress", "--threads", "1", "--seed", "1"])
    assert rc == 0
    return manifest, run


def _client(manifest, run=None, **cfg):
    from fastapi.testclient import TestClient

    from petcad.web.app import ServeConfig, create_app

    return TestClient(create_app(ServeConfig(data=[str(manifest)], model=str(run) if run else None, **cfg)))


@pytest.fixture(scope="module")
def client(web_cohort):
    manifest, run = web_cohort
    return _client(manifest.parent, run)


def _floats(b64):
    return np.frombuffer(base64.b64decode(b64), dtype="<f4")


def test_studies_list_and_detail(client, web_cohort):
    studies = client.get("/api/studies").json()
    rows = [r for r in open(web_cohort[0], encoding="utf-8").read().splitlines()[1:] if r]
    assert [s["id"] for s in studies] == ["s0", "s1", "s2"]
    assert sum(s["n_lesions"] for s in studies) == len(rows)
    d = client.get("/api/studies/s0").json()
    assert d["patient_id"] == studies[0]["patient_id"]
    assert len(d["lesions"]) == studies[0]["n_lesions"]
    p = d["lesions"][0]["prediction"]
    assert set(p) == {"benign", "malignant"} and abs(sum(p.values()) - 1) < 1e-6
    assert client.get("/api/studies/s99").status_code == 404


def test_volumes_are_nifti_in_hu_and_suv(client, web_cohort):
    nib = pytest.importorskip("nibabel")
    from petcad.io.loader import load_study
    from petcad.web.nifti import ras_affine

    manifest, _ = web_cohort
    pid = client.get("/api/studies").json()[0]["patient_id"]
    study = load_study(manifest.parent / pid / "ct.nii.gz", manifest.parent / pid / "pet.nii.gz", patient_id=pid)
    for name, vol, atol in (("ct", study.ct, 0.5 + 1e-6), ("pet", study.pet, 1e-6)):
        r = client.get(f"/api/studies/s0/{name}.nii")
        assert r.status_code == 200
        img = nib.Nifti1Image.from_bytes(r.content)
        assert img.shape == vol.shape_ijk
        np.testing.assert_allclose(img.affine, ras_affine(vol), atol=1e-4)
        # nibabel's (i, j, k) array against petcad's [k, j, i]
        np.testing.assert_allclose(np.asarray(img.dataobj).transpose(2, 1, 0), vol.array, atol=atol)
        # the world point of a voxel agrees: RAS from NIfTI = LPS from petcad with x, y negated
        lps = vol.index_to_world([3, 5, 7])
        ras = img.affine @ np.array([3, 5, 7, 1.0])
        np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-3)
    assert client.get("/api/studies/s0/labels.nii").status_code == 404  # no segmentation given
    assert client.get("/api/studies/s0/mip.png").content[:8] == b"\x89PNG\r\n\x1a\n"
    pt = client.get("/api/studies/s0/mip_point?u=0.5&v=0.5").json()["point"]
    assert bool(study.pet.contains(pt))


def test_analysis_matches_petcad_predict_and_follows_the_dialog(client, web_cohort):
    from petcad.models.predict import predict_points

    manifest, run = web_cohort
    d = client.get("/api/studies/s0").json()
    les = d["lesions"][0]
    a = client.post("/api/studies/s0/analyze", json={"lesion": 0}).json()
    assert a["channels"] == ["CT-axial", "CT-coronal", "CT-sagittal", "PET-axial", "PET-coronal", "PET-sagittal"]
    assert a["titles"]["en"][0] == f"tumour 1, description: CT axial, label: {les['label']}"
    assert a["titles"]["zh"][5].startswith("肿瘤 1，描述：PET 矢状面，标签：")
    patches = _floats(a["patches"]).reshape(6, a["size"], a["size"])
    # the same probability as `petcad predict` at that point
    pid = d["patient_id"]
    ref = predict_points(run, manifest.parent / pid / "ct.nii.gz", manifest.parent / pid / "pet.nii.gz",
                         [[les["x"], les["y"], les["z"]]], device="cpu")[0]["probability"]
    assert a["probability"]["malignant"] == pytest.approx(ref, abs=1e-5)
    assert a["probability"]["malignant"] == pytest.approx(les["prediction"]["malignant"], abs=1e-6)
    assert a["probability_tta"] is not None and abs(sum(a["probability_tta"].values()) - 1) < 1e-6
    assert a["probability_tta"]["malignant"] != pytest.approx(a["probability"]["malignant"], abs=1e-9)
    assert a["features"]["suv_max"] > 0
    # the dialog: rotate about X by 10 degrees -> other planes, another probability
    b = client.post("/api/studies/s0/analyze", json={"lesion": 0, "rotate": [10, 0, 0]}).json()
    rotated = _floats(b["patches"]).reshape(6, b["size"], b["size"])
    assert b["transform"]["rotate"] == [10.0, 0.0, 0.0]
    c = a["size"] // 2
    assert not np.allclose(rotated, patches)
    assert rotated[:, c, c] == pytest.approx(patches[:, c, c], abs=1e-3)  # the centre pixel stays the lesion centre
    assert b["probability"]["malignant"] != a["probability"]["malignant"]
    # a point instead of a lesion
    p = client.post("/api/studies/s0/analyze", json={"point": [les["x"], les["y"], les["z"]], "tta": False}).json()
    assert p["probability"]["malignant"] == pytest.approx(a["probability"]["malignant"], abs=1e-6)
    assert p["probability_tta"] is None and p["titles"]["en"][0].startswith("tumour –, description: CT axial")


def test_saliency_shares_and_completeness(client):
    s = client.post("/api/studies/s0/saliency", json={"lesion": 0}).json()
    assert s["method"] == "ig" and s["class"] == "malignant"
    assert set(s["share"]) == {"CT", "PET"} and sum(s["share"].values()) == pytest.approx(1.0)
    attr = _floats(s["attributions"])
    assert attr.shape == (6 * s["size"] ** 2,) and np.abs(attr).sum() > 0
    # integrated gradients: attributions add up to p(patch) - p(baseline)
    import torch

    viewer = client.app.state.viewer  # holds the model the requests used
    with torch.no_grad():
        x0 = torch.zeros((1, 6, s["size"], s["size"]))
        p0 = float(torch.softmax(viewer.clf.model_(x0, None), 1)[0, 1])
    assert attr.sum() == pytest.approx(s["probability"] - p0, abs=0.02)
    o = client.post("/api/studies/s0/saliency", json={"lesion": 0, "method": "occlusion"}).json()
    assert o["method"] == "occlusion" and sum(o["share"].values()) == pytest.approx(1.0)
    assert client.post("/api/studies/s0/saliency", json={"lesion": 0, "method": "magic"}).status_code == 400


def test_requests_leave_torch_settings_alone(client):
    import torch

    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled(), torch.is_grad_enabled())
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(False)
        for body in ({"lesion": 1}, {"lesion": 1, "rotate": [0, 5, 0], "shift": [1, 0, 0]}):
            assert client.post("/api/studies/s0/analyze", json=body).status_code == 200
        assert client.post("/api/studies/s0/saliency", json={"lesion": 1}).status_code == 200
        assert client.get("/api/studies/s1").status_code == 200
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled() is False
        assert torch.is_grad_enabled() is before[3]
    finally:
        torch.set_num_threads(old)
        torch.use_deterministic_algorithms(before[1], warn_only=before[2])


@pytest.mark.parametrize("body,status", [
    ({"lesion": 99}, 400), ({"lesion": True}, 400), ({"point": [0, 0]}, 400), ({"point": [1e5, 0, 0]}, 400),
    ({"lesion": 0, "shift": [100, 0, 0]}, 400), ({"lesion": 0, "rotate": ["a", 0, 0]}, 400), ({}, 400),
])
def test_bad_analysis_requests(client, body, status):
    r = client.post("/api/studies/s0/analyze", json=body)
    assert r.status_code == status and "error" in r.json()


def test_body_size_and_rate_limits(web_cohort):
    manifest, run = web_cohort
    c = _client(manifest, run, rate_limit=3, max_body_bytes=512)
    big = json.dumps({"lesion": 0, "pad": "x" * 2000})
    r = c.post("/api/studies/s0/analyze", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    codes = [c.post("/api/studies/s0/analyze", json={"lesion": 0, "tta": False, "features": False}).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]  # the refused big body counted too
    assert "Retry-After" in c.post("/api/studies/s0/saliency", json={"lesion": 0}).headers
    assert c.post("/api/studies/s0/analyze", content=b"not json").status_code in (400, 429)


def test_path_traversal_and_roots(client, web_cohort, tmp_path):
    from petcad.web.app import STATIC
    from petcad.web.security import safe_file

    assert client.get("/").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/vendor/niivue/LICENSE").text.startswith("BSD 2-Clause License")
    for url in ("/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/%2e%2e%2f%2e%2e%2f..%2fpyproject.toml",
                "/static/%2fetc%2fpasswd", "/static//etc/passwd", "/static/vendor/%2e%2e/%2e%2e/app.py",
                "/static/..%5c..%5capp.py", "/static/vendor", "/static/%00", "/reports/r0/report.html"):
        r = client.get(url)
        assert r.status_code in (400, 404), url
        assert "petcad" not in r.text.lower() or r.status_code == 404
    # the checker itself: literal '..', absolute paths, links out of the root
    assert safe_file(STATIC, "../app.py") is None
    assert safe_file(STATIC, "/etc/passwd") is None
    assert safe_file(STATIC, "vendor/../../app.py") is None
    assert safe_file(STATIC, "app.js") == (STATIC / "app.js").resolve()
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ok.txt").write_text("ok")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    os.symlink(tmp_path, root / "dirlink")
    os.symlink(root / "sub" / "ok.txt", root / "inner.txt")
    assert safe_file(root, "link.txt") is None and safe_file(root, "dirlink/secret.txt") is None
    assert safe_file(root, "inner.txt") == (root / "sub" / "ok.txt").resolve()
    # a compare report folder: its files are served, nothing beside it
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.html").write_text("<html><body>report</body></html>")
    os.symlink(tmp_path / "secret.txt", report / "leak.txt")
    c = _client(web_cohort[0], None, reports=[str(report)])
    r = c.get("/reports/r0/report.html")
    assert r.text.endswith("report</body></html>") and "script-src" not in r.headers["content-security-policy"]
    assert "script-src 'self'" in c.get("/").headers["content-security-policy"]
    for url in ("/reports/r0/leak.txt", "/reports/r0/%2e%2e/secret.txt", "/reports/r1/report.html",
                "/reports/r0/..%2fsecret.txt"):
        assert c.get(url).status_code == 404, url
    assert c.get("/api/config").json()["model"] is None
    assert c.post("/api/studies/s0/saliency", json={"lesion": 0}).status_code == 409


def test_segmentation_output_is_shown(web_cohort, tmp_path):
    manifest, _ = web_cohort
    pid = "P0001"
    seg = tmp_path / "seg" / pid
    seg.mkdir(parents=True)
    shutil.copy(manifest.parent / pid / "lesions.nii.gz", seg / "labels.nii.gz")  # lesion numbers 1..n
    (seg / "meta.json").write_text(json.dumps({"classes": ["none", "benign", "malignant"]}))
    (seg / "lesions.csv").write_text("lesion,x,y,z,volume_ml,suv_max,p_benign,p_malignant,predicted\n"
                                     "1,10.5,150.0,-160.0,2.5,6.1,0.3,0.7,malignant\n")
    c = _client(manifest, None, segmentation=str(tmp_path / "seg"))
    studies = c.get("/api/studies").json()
    assert [s["segmentation"] for s in studies] == [True, False, False]
    d = c.get("/api/studies/s0").json()
    assert d["has_labels"] and d["seg_lesions"][0]["predicted"] == "malignant" and d["seg_lesions"][0]["x"] == 10.5
    nib = pytest.importorskip("nibabel")
    img = nib.Nifti1Image.from_bytes(c.get("/api/studies/s0/labels.nii").content)
    from petcad.io.volumes import read_image

    want = read_image(seg / "labels.nii.gz").array
    assert img.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), want)  # numbers kept, not binarised
    assert want.max() >= 2 and d["n_label_classes"] == 2 and d["seg_classes"] == ["benign", "malignant"]


def test_strings_and_font(client):
    zh = client.get("/api/strings/zh").json()
    assert zh["labels"]["malignant"] == "恶性" and zh["planes"]["coronal"] == "冠状面"
    assert client.get("/api/strings/fr").status_code == 404
    font = client.get("/api/font/ui.woff2")
    assert font.status_code == 200 and font.content[:4] == b"wOF2" and len(font.content) < 200_000
    from io import BytesIO

    from fontTools.ttLib import TTFont

    cmap = TTFont(BytesIO(font.content)).getBestCmap()
    assert all(ord(ch) in cmap for ch in "良性恶性横截面冠状面矢状面病灶分析")


def test_bind_address_default_and_warning(monkeypatch, capsys, web_cohort):
    import uvicorn

    from petcad.web.server import bind_warning

    assert bind_warning("127.0.0.1", 8000) is None and bind_warning("localhost", 8000) is None
    assert bind_warning("::1", 8000) is None
    assert "0.0.0.0" in bind_warning("0.0.0.0", 8000) and bind_warning("192.168.1.5", 80)
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: seen.update(host=host, port=port))
    assert cli_main(["serve", "--data", str(web_cohort[0]), "--port", "8123"]) == 0
    assert seen == {"host": "127.0.0.1", "port": 8123}
    assert "warning" not in capsys.readouterr().err
    assert cli_main(["serve", "--data", str(web_cohort[0]), "--host", "0.0.0.0"]) == 0
    err = capsys.readouterr().err
    assert seen["host"] == "0.0.0.0" and "warning: listening on 0.0.0.0" in err


def test_serve_bad_input_is_one_line(capsys, tmp_path, web_cohort):
    assert cli_main(["serve"]) == 2
    assert cli_main(["serve", "--data", str(tmp_path)]) == 2
    assert cli_main(["serve", "--data", str(web_cohort[0]), "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("petcad: error:") for line in err)
    assert "manifest.csv" in err[1] and "config.json" in err[2]


def test_explain_cli_writes_panels(web_cohort, tmp_path, capsys):
    manifest, run = web_cohort
    out = tmp_path / "explain"
    assert cli_main(["explain", "--model", str(run), "--manifest", str(manifest), "--out", str(out), "--limit", "2",
                     "--steps", "8", "--lang", "zh"]) == 0
    rows = (out / "saliency.csv").read_text().splitlines()
    assert rows[0].startswith("patient_id,lesion_id,label,file,method,explained_class,probability,ct_share,pet_share")
    assert len(rows) == 3
    for line in rows[1:]:
        f = line.split(",")
        assert (out / f[3]).read_bytes()[:4] == b"\x89PNG"
        assert float(f[7]) + float(f[8]) == pytest.approx(1.0, abs=1e-3)
    assert cli_main(["explain", "--model", str(run), "--manifest", str(manifest), "--out", str(out),
                     "--steps", "1"]) == 2
    assert cli_main(["explain", "--model", str(tmp_path), "--manifest", str(manifest), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err


def test_display_copy_of_a_large_ct_keeps_world_positions():
    from petcad.study import Volume
    from petcad.web.studies import block_mean, display_factor

    assert display_factor((244, 186, 107)) == 1
    assert display_factor((512, 512, 261)) == 2
    rng = np.random.default_rng(0)
    d = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    vol = Volume(rng.normal(size=(3, 5, 7)).astype(np.float32), [10.0, -5.0, 2.0], [0.8, 0.6, 3.0], d)
    small = block_mean(vol, 2)
    assert small.array.shape == (3, 3, 4)
    np.testing.assert_allclose(small.array[1, 1, 2], vol.array[1, 2:4, 4:6].mean(), rtol=1e-6)
    # a coarse voxel's centre is the centre of its block of fine voxels
    np.testing.assert_allclose(small.index_to_world([2, 1, 1]), vol.index_to_world([4.5, 2.5, 1]), atol=1e-9)
    assert small.array[2, 2, 3] == pytest.approx(vol.array[2, 4, 6])  # edge block padded by repetition


def test_nine_channel_network_gets_mask_panels(web_cohort, tmp_path):
    manifest, _ = web_cohort
    run9 = tmp_path / "run9"
    assert cli_main(["train", str(manifest), "--out", str(run9), "--epochs", "1", "--min-samples-per-epoch", "0",
                     "--batch-size", "16", "--no-progress", "--threads", "1", "--with-mask"]) == 0
    c = _client(manifest, run9)
    assert c.get("/api/config").json()["model"]["channels"] == 9
    a = c.post("/api/studies/s0/analyze", json={"lesion": 0, "tta": False, "features": False}).json()
    assert a["channels"][6:] == ["mask-axial", "mask-coronal", "mask-sagittal"]
    assert a["titles"]["en"][6].startswith("tumour 1, description: mask axial")
    assert a["titles"]["zh"][6].startswith("肿瘤 1，描述：掩膜 横截面")
    masks = _floats(a["patches"]).reshape(9, a["size"], a["size"])[6:]
    assert masks.min() >= 0 and masks.max() == pytest.approx(1.0) and masks[:, a["size"] // 2, a["size"] // 2].min() > 0.5
    les = c.get("/api/studies/s0").json()["lesions"][0]
    assert les["prediction"]["malignant"] == pytest.approx(a["probability"]["malignant"], abs=1e-6)
    r = c.post("/api/studies/s0/analyze", json={"point": [les["x"], les["y"], les["z"]]})
    assert r.status_code == 400 and "mask" in r.json()["error"]


def test_concurrent_requests_do_not_share_state(client):
    from concurrent.futures import ThreadPoolExecutor

    jobs = [("s0", {"lesion": 0, "tta": False, "features": False}),
            ("s1", {"lesion": 0, "tta": False, "features": False}),
            ("s0", {"lesion": 1, "rotate": [0, 0, 7], "shift": [1, -2, 0], "tta": False, "features": False}),
            ("s1", {"lesion": 1, "shift": [0, 3, 0], "tta": False, "features": False})]

    def call(job):
        r = client.post(f"/api/studies/{job[0]}/analyze", json=job[1])
        assert r.status_code == 200
        j = r.json()
        return j["patches"], j["probability"], j["transform"]

    alone = [call(j) for j in jobs]
    with ThreadPoolExecutor(4) as ex:
        together = list(ex.map(call, jobs * 2))
    assert together == alone * 2
    assert len({a[0] for a in alone}) == 4  # four different answers, each returned to its own request
