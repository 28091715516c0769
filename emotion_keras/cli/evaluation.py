"""`emotion-keras score` and `emotion-keras table`: official figures and the paper's Table 2."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    score = subparsers.add_parser(
        "score", help="score predictions (and decisions) the way MediaEval 2019 did",
        description="Print PR-AUC and ROC-AUC (and with --decisions F-score, precision, recall), "
                    "macro and micro, under the official MediaEval 2019 names: scikit-learn on "
                    "the whole tracks x tags matrix.")
    score.add_argument("--predictions", required=True, metavar="P.npy",
                       help="float scores [tracks, tags]")
    score.add_argument("--decisions", metavar="D.npy",
                       help="bool (or 0/1) decisions [tracks, tags]")
    truth = score.add_mutually_exclusive_group(required=True)
    truth.add_argument("--groundtruth", metavar="G.npy",
                       help="bool ground truth [tracks, tags] (e.g. MediaEval's groundtruth.npy)")
    truth.add_argument("--meta-dir", metavar="M",
                       help="MTG-Jamendo metadata folder: ground truth from the split TSVs")
    score.add_argument("--split", type=int, metavar="N",
                       help="split 0-4 of --meta-dir (default 0, MediaEval 2019's)")
    score.add_argument("--subset", choices=("train", "validation", "test"),
                       help="subset of --meta-dir (default test)")
    score.add_argument("--json", action="store_true", help="print the figures as JSON")
    score.set_defaults(func=run_score)

    table = subparsers.add_parser(
        "table", help="print the paper's Table 2 for evaluated runs",
        description="Print the paper's Table 2 (model, conv layers, residual, PR-AUC-macro, "
                    "ROC-AUC-macro) for evaluated run directories as Markdown, with the paper's "
                    "published split-0 figures beside ours.")
    table.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                       help="run directories evaluated by `emotion-keras evaluate`")
    table.add_argument("--csv", metavar="FILE", help="also write the table as CSV (- for stdout)")
    table.add_argument("--per-tag", action="store_true",
                       help="also print each run's top-5 and bottom-5 tags (the paper's Table 3)")
    table.set_defaults(func=run_table)


def run_score(args: argparse.Namespace) -> int:
    from emotion_keras import evaluation
    from emotion_keras.errors import ConfigError

    if args.meta_dir is None and (args.split is not None or args.subset is not None):
        raise ConfigError("--split and --subset choose the ground truth from --meta-dir; with "
                          "--groundtruth leave them out")
    scores = evaluation.score_files(
        args.predictions, groundtruth_path=args.groundtruth, decisions_path=args.decisions,
        meta_dir=args.meta_dir, split=0 if args.split is None else args.split,
        subset=args.subset or "test")
    print(json.dumps(scores, indent=2) if args.json else evaluation.format_scores(scores))
    return 0


def run_table(args: argparse.Namespace) -> int:
    from pathlib import Path

    from emotion_keras import evaluation
    from emotion_keras.fileio import atomic_write_text

    frame = evaluation.table2(args.run_dirs)
    # Read everything before printing anything, so a bad run directory prints only the error.
    per_tag_tables = ([(Path(run_dir), evaluation.read_per_tag(run_dir))
                       for run_dir in args.run_dirs] if args.per_tag else [])
    print(evaluation.table2_markdown(frame))
    for run_dir, per_tag in per_tag_tables:
        print(f"\n{run_dir.name}: per-tag test figures, best and worst by PR-AUC\n")
        print(evaluation.table3_markdown(per_tag))
    if args.csv == "-":
        print()
        print(evaluation.table2_csv(frame), end="")
    elif args.csv:
        atomic_write_text(args.csv, evaluation.table2_csv(frame))
    return 0
