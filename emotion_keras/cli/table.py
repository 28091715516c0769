"""`emotion-keras table`: the paper's Table 2 (and Table 3) for evaluated runs."""

from __future__ import annotations

import argparse

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "table",
        run_table,
        help="print the paper's Table 2 for evaluated runs",
        description="Print the paper's Table 2 (model, conv layers, residual, PR-AUC-macro, "
        "ROC-AUC-macro) for evaluated run directories as Markdown, with the paper's "
        "published split-0 figures beside ours.",
    )
    parser.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="run directories evaluated by `emotion-keras evaluate`",
    )
    parser.add_argument("--csv", metavar="FILE", help="also write the table as CSV (- for stdout)")
    parser.add_argument(
        "--per-tag",
        action="store_true",
        help="also print each run's top-5 and bottom-5 tags (the paper's Table 3)",
    )


def run_table(args: argparse.Namespace) -> int:
    from pathlib import Path

    from emotion_keras.evaluation import tables
    from emotion_keras.evaluation.evaluate import read_per_tag
    from emotion_keras.fileio import atomic_write_text

    frame = tables.table2(args.run_dirs)
    # Read everything before printing anything, so a bad run directory prints only the error.
    per_tag_tables = (
        [(Path(run_dir), read_per_tag(run_dir)) for run_dir in args.run_dirs]
        if args.per_tag
        else []
    )
    print(tables.table2_markdown(frame))
    for run_dir, per_tag in per_tag_tables:
        print(f"\n{run_dir.name}: per-tag test figures, best and worst by PR-AUC\n")
        print(tables.table3_markdown(per_tag))
    if args.csv == "-":
        print()
        print(tables.table2_csv(frame), end="")
    elif args.csv:
        atomic_write_text(args.csv, tables.table2_csv(frame))
    return 0
