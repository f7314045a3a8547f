"""DICOM SEG through highdicom: write from a label map on a real series, read back identically, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest

from petcad.errors import InputError
from petcad.io.masks import list_labels, load_labelmap, load_mask
from petcad.io.seg import read_segment, seg_info, write_seg
from petcad.io.volumes import read_image
from petcad.study import Volume


@pytest.fixture(scope="module")
def ge(test_data, tmp_path_factory):
    """The GE PET series (267 slices, irregular spacing), a 2-label map from its RTSTRUCT, and a SEG of it."""
    from petcad.io.dicom import read_series

    series_dir = test_data / "pet_ge_sts001" / "image"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        series = read_series(series_dir)
    pet = series.volume
    rs = test_data / "pet_ge_sts001" / "mask" / "1-1.dcm"
    labelmap, _, _ = load_labelmap(rs, pet, ["GTV_Edema", "GTV_Mass"])  # 1 edema, 2 mass (inside the edema)
    out = tmp_path_factory.mktemp("seg") / "ge_seg.dcm"
    write_seg(labelmap, {1: "edema", 2: "mass"}, series_dir, out)
    return series, labelmap, out


def test_seg_round_trip_is_identical(ge):
    series, labelmap, seg = ge
    assert list_labels(seg) == [(1, "edema"), (2, "mass")]
    for n in (1, 2):
        m = load_mask(seg, series.volume, n)
        assert m.same_grid(series.volume) and m.array.dtype == np.uint8
        assert np.array_equal(m.array, (labelmap.array == n).astype(np.uint8))
    assert int((labelmap.array == 2).sum()) == 5095  # GTV_Mass
    both, table, overlap = load_labelmap(seg, series.volume, ["edema", "mass"])
    assert np.array_equal(both.array, labelmap.array) and overlap == 0


def test_seg_references_the_source_series(ge, test_data):
    series, _, seg = ge
    ds = pydicom.dcmread(seg)
    src = [pydicom.dcmread(f, stop_before_pixels=True) for f in series.info.files]
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert ds.FrameOfReferenceUID == src[0].FrameOfReferenceUID
    assert ds.StudyInstanceUID == src[0].StudyInstanceUID
    ref_series = ds.ReferencedSeriesSequence[0]
    assert ref_series.SeriesInstanceUID == series.info.series_uid
    referenced = {item.ReferencedSOPInstanceUID for item in ref_series.ReferencedInstanceSequence}
    assert referenced == {d.SOPInstanceUID for d in src}
    # sparse: only frames holding a segment are stored (highdicom omits the empty ones)
    n_slices_with = sum(int(np.any(ge[1].array == n, axis=(1, 2)).sum()) for n in (1, 2))
    assert int(ds.NumberOfFrames) == n_slices_with < 2 * 267
    # each frame sits at its source slice's true position (the series' spacing is irregular)
    by_uid = {d.SOPInstanceUID: d for d in src}
    for fr in ds.PerFrameFunctionalGroupsSequence[:20]:
        uid = fr.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        z = float(fr.PlanePositionSequence[0].ImagePositionPatient[2])
        assert abs(z - float(by_uid[uid].ImagePositionPatient[2])) < 1e-4


def test_seg_onto_another_grid_matches_the_rtstruct(ge, test_data):
    _, _, seg = ge
    ref = read_image(test_data / "pet_ge_sts001" / "reference_suv" / "nifti" / "mask" / "mask.nii.gz", modality="mask")
    m = load_mask(seg, ref, "mass")
    assert m.same_grid(ref) and np.array_equal(m.array, ref.array)


def test_fractional_seg_round_trip(test_data, tmp_path):
    pt = test_data / "suv_dro" / "DRO_0_0" / "PT"
    grid = read_image(test_data / "suv_dro" / "DRO_0_0" / "mask" / "DRO_mask.nii.gz", modality="mask")
    frac = np.zeros(grid.array.shape, np.float32)
    frac[5:9, 100:140, 100:140] = 0.25
    frac[6:8, 110:130, 110:130] = 0.75
    frac[7, 115:125, 115:125] = 1.0
    out = tmp_path / "frac.dcm"
    write_seg(Volume(frac, grid.origin, grid.spacing, grid.direction), {1: "tumour probability"}, pt, out, fractional=True)
    info = seg_info(out)
    assert info.segmentation_type == "FRACTIONAL" and info.segments == ((1, "tumour probability"),)
    m = read_segment(out, 1, grid)
    assert np.array_equal(m.array, (frac >= 0.5).astype(np.uint8))
    m = read_segment(out, 1, grid, threshold=0.2)
    assert np.array_equal(m.array, (frac > 0).astype(np.uint8))


def test_bad_seg_input(ge, test_data, tmp_path):
    series, labelmap, seg = ge
    pet = series.volume
    with pytest.raises(InputError, match="FrameOfReferenceUID"):
        load_mask(seg, pet, 1, frame_of_reference_uid="1.2.3.4")
    with pytest.raises(InputError, match=r"no segment 'lesion' \(segments: 1 'edema', 2 'mass'\)"):
        load_mask(seg, pet, "lesion")
    with pytest.raises(InputError, match="2 segments; choose one"):
        load_mask(seg, pet)
    # a named label absent from the map is written as an empty segment, and refused when read
    pt = test_data / "suv_dro" / "DRO_0_0" / "PT"
    grid = read_image(test_data / "suv_dro" / "DRO_0_0" / "mask" / "DRO_mask.nii.gz", modality="mask")
    lab = np.zeros(grid.array.shape, np.uint8)
    lab[8, 120:130, 120:130] = 1
    out = tmp_path / "empty2.dcm"
    write_seg(Volume(lab, grid.origin, grid.spacing, grid.direction), {1: "a", 2: "b"}, pt, out)
    assert list_labels(out) == [(1, "a"), (2, "b")]
    with pytest.raises(InputError, match="segment 2 'b' is empty"):
        load_mask(out, grid, "b")
    # a SEG on the DRO grid read onto the GE grid: another frame, or off the image
    with pytest.raises(InputError, match="FrameOfReferenceUID"):
        load_mask(out, pet, "a", frame_of_reference_uid=series.info.frame_of_reference_uid)
    with pytest.raises(InputError, match="entirely off the image grid"):
        load_mask(out, pet, "a")
    # writing: a label map off the source series, or not integer: nothing written
    far = Volume(lab, grid.origin + 5000.0, grid.spacing, grid.direction)
    zero = Volume(lab * 0, grid.origin, grid.spacing, grid.direction)
    for vol, names, match in ((far, {1: "a"}, "all lie off the source series"), (zero, {}, "empty"),
                              (Volume(lab * 0.5, grid.origin, grid.spacing), {1: "a"}, "integer")):
        target = tmp_path / "never.dcm"
        with pytest.raises(InputError, match=match):
            write_seg(vol, names, pt, target)
        assert not target.exists() and not list(tmp_path.glob(".never*"))


@pytest.mark.parametrize("seg_type", ["BINARY", "LABELMAP"])
def test_seg_built_by_highdicom_in_shuffled_frame_order(test_data, tmp_path, seg_type):
    """A SEG whose frames follow the source images in a random order (and LABELMAP SEGs) reads correctly."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from petcad.io.dicom import read_series

    pt = test_data / "suv_dro" / "DRO_0_0" / "PT"
    series = read_series(pt)
    grid = series.volume
    labels = np.zeros(grid.array.shape, np.uint8)
    labels[3:6, 50:90, 60:80] = 1
    labels[12:15, 150:160, 140:170] = 2
    heads = [pydicom.dcmread(f, stop_before_pixels=True) for f in series.info.files]
    for d in heads:
        for name in ("AccessionNumber", "StudyID", "ReferringPhysicianName"):
            if name not in d:
                setattr(d, name, "")
    # slice index of each file along z, then a seeded shuffle of the source order
    z = np.array([float(d.ImagePositionPatient[2]) for d in heads])
    k_of = np.argsort(np.argsort(z))
    perm = np.random.default_rng(3).permutation(len(heads))
    src = [heads[p] for p in perm]
    pixels = np.stack([labels[k_of[p]] for p in perm])
    desc = [hd.seg.SegmentDescription(segment_number=n, segment_label=f"s{n}",
                                      segmented_property_category=codes.SCT.Tissue,
                                      segmented_property_type=codes.SCT.Tissue,
                                      algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL) for n in (1, 2)]
    seg = hd.seg.Segmentation(source_images=src, pixel_array=pixels, segmentation_type=seg_type,
                              segment_descriptions=desc, series_instance_uid=hd.UID(), series_number=5,
                              sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
                              manufacturer_model_name="test", software_versions="1", device_serial_number="1")
    out = tmp_path / "shuffled.dcm"
    seg.save_as(out)
    assert list_labels(out) == [(1, "s1"), (2, "s2")]
    for n in (1, 2):
        assert np.array_equal(load_mask(out, grid, f"s{n}").array, (labels == n).astype(np.uint8))


def test_empty_label_map_with_named_segments_gives_a_seg_of_empty_segments(test_data, tmp_path):
    """A study without findings: the SEG describes its (named) segments, and reading one says it is empty."""
    pt = test_data / "suv_dro" / "DRO_0_0" / "PT"
    grid = read_image(test_data / "suv_dro" / "DRO_0_0" / "mask" / "DRO_mask.nii.gz", modality="mask")
    out = tmp_path / "none.dcm"
    with pytest.warns(UserWarning, match="empty segment"):
        write_seg(Volume(np.zeros(grid.array.shape, np.uint8), grid.origin, grid.spacing), {1: "benign", 2: "malignant"}, pt, out)
    assert list_labels(out) == [(1, "benign"), (2, "malignant")]
    with pytest.raises(InputError, match="segment 2 'malignant' is empty"):
        load_mask(out, grid, "malignant")
