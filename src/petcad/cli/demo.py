"""``petcad demo``: the default phantom cohort, then the whole comparison with every method, in minutes.

Two tables on the same cohort and the same folds (the folds depend only on the lesions, their
labels, patients and the seed): *images only* (the headline; OUT/report) and *with masks*
(OUT/report_masks). Both, as the README shows them, go to OUT/README_table.md;
``--check-readme README.md`` then compares the README's section between :data:`BEGIN` and
:data:`END` with it (``make readme-check``).
"""

from __future__ import annotations

NAME = "demo"
HELP = "generate the default synthetic cohort and run the comparison study with all methods, images only and with masks"
DESCRIPTION = (
    "Generate the default phantom cohort (about 40 patients) into OUT/cohort, then run `petcad compare` with "
    "every method (four classical classifiers on the 13 diagnostic features, the wang2017 CNN, the multi-view "
    "and hybrid networks, and the CNN deep features fed to SVM and RF) twice on the same folds: images only "
    "(classical features from petcad's PET delineation, CNNs on CT and PET; OUT/report) and with masks "
    "(classical features from the phantom's lesion masks, CNNs with the mask planes; OUT/report_masks), with a "
    "protocol reduced to a few minutes a table on 2 idle CPU cores (the reports say so; each table first prints "
    "its estimated run time). Prints both tables, "
    "writes them as the README shows them to OUT/README_table.md, and with --check-readme compares that file "
    "with the README's demo section (exit 1 and a diff when they differ)."
)

#: the markers around the README's demo section (``--check-readme``)
BEGIN = "<!-- demo-table:begin -->"
END = "<!-- demo-table:end -->"
MODE_DIRS = {"images": "report", "masks": "report_masks"}

DEMO_FOLDS = 3
DEMO_REPEATS = 1
DEMO_EPOCHS = 10
DEMO_SAMPLES_PER_EPOCH = 1024


def add_arguments(parser) -> None:
    from petcad.cli.compare import add_common_arguments

    parser.add_argument("--out", default="demo_out", help="output folder (default ./demo_out)")
    parser.add_argument("--patients", type=int, default=40, help="phantom patients (default 40)")
    add_common_arguments(parser, folds=DEMO_FOLDS, repeats=DEMO_REPEATS, methods="all", cnn_epochs=DEMO_EPOCHS,
                         cnn_samples=DEMO_SAMPLES_PER_EPOCH)
    parser.add_argument("--modes", default="images,masks", metavar="images,masks",
                        help="the tables to make: images (images only, OUT/report), masks (with masks, "
                             "OUT/report_masks) or both (default images,masks)")
    parser.add_argument("--check-readme", default=None, metavar="README.md",
                        help=f"after the run, compare the README's section between {BEGIN} and {END} with "
                             "OUT/README_table.md; exit 1 with a diff when they differ")


def parse_modes(text: str) -> tuple[str, ...]:
    from petcad.errors import InputError

    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in MODE_DIRS]
    if bad or not modes or len(set(modes)) != len(modes):
        raise InputError("--modes", f"give images, masks or images,masks (got {text!r})")
    return modes


def readme_section(path) -> str:
    """The text between :data:`BEGIN` and :data:`END` in ``path`` (InputError naming the file otherwise)."""
    from pathlib import Path

    from petcad.errors import InputError

    p = Path(path)
    if not p.is_file():
        raise InputError(str(path), "README not found")
    text = p.read_text(encoding="utf-8")
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise InputError(str(path), f"needs one {BEGIN} line and, after it, one {END} line around the demo section")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def readme_markdown(results) -> str:
    """The demo's tables as the README shows them: per mode, the bold title, then the printed table."""
    from petcad.cli.compare import printed_block
    from petcad.evaluation.report import TEXT_LEGEND, table_title

    parts = []
    for res in results:
        block = printed_block(res, legend=False)
        title = table_title(res)
        body = block[len(title):].strip("\n") if block.startswith(title) else block
        parts.append(f"**{title}**\n\n```\n{body}\n```")
    return "\n\n".join(parts + [TEXT_LEGEND.replace("\n", " ")]) + "\n"


def compare_readme(readme, generated: str) -> str:
    """A unified diff of the README's demo section against ``generated`` ('' when they are equal)."""
    import difflib

    have = readme_section(readme).splitlines()
    want = generated.strip("\n").splitlines()
    return "\n".join(difflib.unified_diff(have, want, f"{readme} (demo section)", "what the demo printed",
                                          lineterm=""))


def run(args) -> int:
    import time
    import warnings
    from pathlib import Path

    from petcad.cli.compare import run_and_report, settings_from_args
    from petcad.io.manifest import load_cohort
    from petcad.cli.phantom import format_summary
    from petcad.phantom import generate_cohort
    from petcad.phantom.cohort import read_truth

    t0 = time.perf_counter()
    modes = parse_modes(args.modes)
    settings = {m: settings_from_args(args, mode=m) for m in modes}
    if args.check_readme:
        readme_section(args.check_readme)  # the README and its markers are checked before the long run
    warnings.formatwarning = lambda msg, cat, *a, **k: f"petcad: warning: {msg}\n"
    out = Path(args.out)
    progress = not args.no_progress
    print(f"petcad demo: generating {args.patients} phantom patients (preset default, seed {args.seed}) ...", flush=True)
    manifest = generate_cohort(out / "cohort", n_patients=args.patients, seed=args.seed, preset="default",
                               fmt="dicom", progress=progress)
    t_gen = time.perf_counter() - t0
    print(format_summary(read_truth(Path(manifest).parent / "truth.csv"), args.patients, t_gen), flush=True)
    cohort = load_cohort(manifest, allowed_labels=None, progress=progress)
    t_load = time.perf_counter() - t0 - t_gen
    s0 = settings[modes[0]]
    notes = [
        f"Reduced protocol for the demo: {s0.n_splits} folds x {s0.n_repeats} repeat(s) and "
        f"{s0.cnn_epochs} CNN epochs of {s0.cnn_samples_per_epoch} samples per fold, instead of the study's 10 x 10 folds (use petcad compare "
        "for the full protocol). The CNNs are trained far less than in the study, so their figures here "
        "show the machinery, not their accuracy.",
        f"Cohort: petcad phantom, preset default, {args.patients} patients, seed {args.seed} "
        f"(generated in {t_gen:.0f} s, read in {t_load:.0f} s).",
    ]
    masks_note = ("With masks: the phantom's generated lesion masks stand in for drawn ROIs; they are exact, "
                  "as no physician's contour is.")
    results = []
    for m in modes:
        print(f"\npetcad demo: table {len(results) + 1} of {len(modes)}: {m} -> {out / MODE_DIRS[m]}", flush=True)
        res, _ = run_and_report(cohort, settings[m], out / MODE_DIRS[m], args.lang, progress=progress,
                                extra_notes=notes + ([masks_note] if m == "masks" else []))
        results.append(res)
    from petcad.io.atomic import write_text

    md = readme_markdown(results)
    write_text(out / "README_table.md", md)
    print(f"\nthe tables as the README shows them: {out / 'README_table.md'}")
    print(f"demo total: {time.perf_counter() - t0:.0f} s")
    if args.check_readme:
        diff = compare_readme(args.check_readme, md)
        if diff:
            print(f"{args.check_readme}: the demo section differs from what the demo printed:\n{diff}")
            return 1
        print(f"{args.check_readme}: the demo section equals what the demo printed")
    return 0
