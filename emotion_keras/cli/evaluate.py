"""`emotion-keras evaluate`: score a run's best checkpoint on the test split."""

from __future__ import annotations

import argparse
import json

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "evaluate",
        run_evaluate,
        flags={"run_dir": "RUN_DIR"},
        help="score a run's best checkpoint on the test split (20-crop averaging)",
        description="Predict the test split with the run's best checkpoint, choose per-tag "
        "thresholds on the validation split, and write predictions.npy, "
        "decisions.npy, thresholds.npy, metrics.json and per_tag.csv into the run "
        "directory.",
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="a run directory written by `emotion-keras train`"
    )
    parser.add_argument("--split", type=int, help="split to evaluate (default: the run's)")
    parser.add_argument(
        "--subset",
        default="test",
        choices=("train", "validation", "test"),
        help="subset to score (default test; thresholds always come from "
        "validation). Other than the run's own test set, the results go to "
        "RUN_DIR/eval-split-N-SUBSET/",
    )
    parser.add_argument(
        "--data-dir", help="melspec root, if not where the run was trained (default: the run's)"
    )
    parser.add_argument(
        "--meta-dir", help="metadata folder, if not where the run was trained (default: the run's)"
    )
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")


def run_evaluate(args: argparse.Namespace) -> int:
    from emotion_keras.cli.progress import ProgressLine
    from emotion_keras.evaluation.evaluate import evaluate_run
    from emotion_keras.evaluation.metrics import format_scores

    metrics = evaluate_run(
        args.run_dir,
        split=args.split,
        subset=args.subset,
        progress=ProgressLine("evaluate"),
        data_dir=args.data_dir,
        meta_dir=args.meta_dir,
    )
    print(json.dumps(metrics, indent=2) if args.json else format_scores(metrics))
    return 0
