"""`emotion-keras ensemble`: average evaluated runs into one scored ensemble."""

from __future__ import annotations

import argparse
import json

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "ensemble",
        run_ensemble,
        flags={"run_dirs": "RUN_DIR", "out_dir": "--out"},
        help="average evaluated runs into one ensemble and score it",
        description="Average the test and validation predictions of runs scored by "
        "`emotion-keras evaluate` (same split and tags; any architectures, crop lengths "
        "and recipes), choose per-tag thresholds on the averaged validation predictions, "
        "write predictions.npy, decisions.npy, thresholds.npy, metrics.json, per_tag.csv, "
        "members.csv and ensemble.json into --out, and print Table 2 of the members and "
        "the ensemble.",
    )
    parser.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="two or more run directories evaluated by `emotion-keras evaluate`",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="ensemble folder: new, empty, or an earlier ensemble with --overwrite",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier ensemble in the --out folder (anything else there is never "
        "replaced)",
    )
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")


def run_ensemble(args: argparse.Namespace) -> int:
    from emotion_keras.evaluation import tables
    from emotion_keras.evaluation.ensemble import build_ensemble
    from emotion_keras.evaluation.metrics import format_scores

    ensemble = build_ensemble(args.run_dirs, args.out, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(ensemble.metrics, indent=2))
        return 0
    frame = tables.table2([m.run_dir.path for m in ensemble.members] + [ensemble.path])
    print(tables.table2_markdown(frame))
    print()
    print(format_scores(ensemble.metrics))
    print(f"\nWrote the ensemble of {len(ensemble.members)} runs to {ensemble.path}")
    return 0
