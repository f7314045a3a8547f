"""`petcad demo` end to end on a tiny cohort: DICOM phantom, summary, comparison, report."""

from petcad.cli import main


def test_demo_small(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--patients", "6", "--folds", "2", "--methods", "rf,cnn",
               "--cnn-epochs", "1", "--cnn-samples-per-epoch", "64", "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "patients 6," in printed and "malignant share" in printed  # the cohort summary
    assert "random forest" in printed or "rf " in printed  # the table
    # the cohort went through the DICOM reader
    assert (out / "cohort" / "manifest.csv").exists()
    assert any((out / "cohort").glob("*/PT"))
    for name in ("table.csv", "table.md", "predictions.csv", "roc.png", "report.html"):
        assert (out / "report" / name).stat().st_size > 0, name
    html = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert "Reduced protocol for the demo" in html
