"""Dense segmentation equals the patch classifier at every evaluated point, in 3D (issue 12)."""

from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from petcad.patches.normalize import fixed_normalize  # noqa: E402
from petcad.models.registry import build_model  # noqa: E402
from petcad.patches.cache import LesionCache  # noqa: E402
from petcad.patches.sampler import PatchSampler  # noqa: E402
from petcad.segment.dense import DenseSegmenter, stream_dense, stream_dense_at  # noqa: E402
from petcad.segment.lattice import covering_lattice, resample_onto  # noqa: E402
from petcad.study import Study, Volume  # noqa: E402


def _study(seed=0):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    ct = ndimage.gaussian_filter(rng.normal(0, 900, (12, 22, 20)), 1.0).astype(np.float32)
    pet = ndimage.gaussian_filter(rng.gamma(2.0, 2.0, (11, 11, 10)), 0.7).astype(np.float32)
    ctv = Volume(ct, origin=[-20.3, 5.1, 40.2], spacing=[1.5, 1.4, 2.5])
    petv = Volume(pet, origin=[-21.0, 4.0, 41.0], spacing=[4.0, 4.0, 3.0])
    return Study("t", ctv, petv)


def _model():
    torch.manual_seed(0)
    model = build_model("multiview", n_classes=3).eval()
    with torch.no_grad():
        model.head.weight.mul_(20.0)  # spread the probabilities so that agreement is not trivial
    return model


def _patch_probs(model, study, world):
    cache = LesionCache.from_study(study, world, size=51, spacing_mm=1.0)
    x = PatchSampler(51, 1.0).sample(cache, np.arange(len(world)), np.zeros((len(world), 6)))
    fixed_normalize(x)
    with torch.inference_mode():
        return torch.softmax(model(torch.from_numpy(x)), 1).numpy()


@pytest.mark.parametrize("stride", [1, 2])
def test_dense_equals_patch_classifier_in_3d(stride):
    study, model = _study(), _model()
    seg = DenseSegmenter(model, spacing_mm=1.0, stride=stride, slab=2, device="cpu")
    lat = covering_lattice(study.ct, seg.pitch_mm)
    kji = np.argwhere(np.ones(lat.shape, bool))
    inside = study.ct.contains(lat.world(kji)).reshape(lat.shape)
    # a product grid of a few planes (few plane images: fast), reaching every face of the volume,
    # over several slabs, plus its points strictly inside the CT only
    nz, ny, nx = lat.shape
    ks, js, is_ = [0, 1, nz // 2, nz - 2, nz - 1], [0, ny // 3, ny - 1], [0, nx // 2, nx - 1]
    roi = np.zeros(lat.shape, bool)
    roi[np.ix_(ks, js, is_)] = True
    roi &= inside
    t0 = time.perf_counter()
    res = seg.evaluate(study.ct, study.pet, lat, roi)
    print(f"stride {stride}: {len(res.points)} points, dense {time.perf_counter() - t0:.2f} s")
    pts = res.points
    assert res.slabs >= 3, "the test region must cross slab borders"
    assert pts[:, 0].min() == 0 and pts[:, 0].max() >= lat.shape[0] - 2, "the test region must reach the volume edge"
    ref = _patch_probs(model, study, lat.world(pts))
    assert ref.std(axis=0).max() > 0.1 and (ref.max(axis=1) < 0.9).sum() >= 5, "probabilities too extreme or uniform"
    assert np.abs(ref - res.probs).max() <= 1e-4


def test_planes_unflipped_would_differ():
    """Evaluating coronal/sagittal planes without reversing z gives other numbers (the old docs recipe's bug)."""
    study, model = _study(1), _model()
    seg = DenseSegmenter(model, spacing_mm=1.0, stride=1, slab=4, device="cpu")
    lat = covering_lattice(study.ct, 1.0)
    roi = np.zeros(lat.shape, bool)
    roi[lat.shape[0] // 2, 5:9, 6:9] = True
    good = seg.evaluate(study.ct, study.pet, lat, roi).probs
    orig = torch.Tensor.flip
    try:
        torch.Tensor.flip = lambda self, *dims: self  # the recipe without the flip
        bad = seg.evaluate(study.ct, study.pet, lat, roi).probs
    finally:
        torch.Tensor.flip = orig
    assert np.abs(good - bad).max() > 1e-3


@pytest.mark.parametrize("shape", [(67, 75), (66, 74), (67, 74)])  # the fused first pool pads odd sizes
def test_strided_and_gathered_streams_equal_the_dense_stream(shape):
    torch.manual_seed(1)
    stream = build_model("multiview").stream.eval()
    img = torch.randn(2, 2, *shape)
    with torch.inference_mode():
        full = stream.dense(img)
        for g in (1, 2, 4, 8):
            sub = stream_dense(stream, img, g)
            assert sub.shape[2:] == full[:, :, ::g, ::g].shape[2:]
            assert torch.allclose(sub, full[:, :, ::g, ::g], atol=1e-4)
            b, r, c = np.array([0, 1, 1]), np.array([0, sub.shape[2] - 1, 1]), np.array([sub.shape[3] - 1, 0, 1])
            at = stream_dense_at(stream, img, g, b, r, c)
            assert torch.allclose(at, sub[b, :, r, c], atol=1e-4)


def test_lattice_resampling_matches_the_sampler_fill_rule():
    study = _study()
    lat = covering_lattice(study.ct, 1.0)
    big = type(lat)(origin=lat.origin - 3.0, pitch=1.0, shape=tuple(s + 6 for s in lat.shape))
    arr = resample_onto(study.ct, big, -1024.0)
    assert arr[0, 0, 0] == pytest.approx(-1024.0)  # outside: the fill value
    vox = study.ct.index_to_world(np.array([3.0, 4.0, 5.0]))
    kji = np.rint((vox - big.origin) / big.pitch)[::-1].astype(int)
    if np.allclose(big.world(kji), vox):
        assert arr[tuple(kji)] == pytest.approx(study.ct.array[5, 4, 3], abs=1e-3)
