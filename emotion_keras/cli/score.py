"""`emotion-keras score`: official MediaEval 2019 figures of prediction files."""

from __future__ import annotations

import argparse
import json

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "score",
        run_score,
        flags={
            "predictions_path": "--predictions",
            "decisions_path": "--decisions",
            "groundtruth_path": "--groundtruth",
        },
        help="score predictions (and decisions) the way MediaEval 2019 did",
        description="Print PR-AUC and ROC-AUC (and with --decisions F-score, precision, recall), "
        "macro and micro, under the official MediaEval 2019 names: scikit-learn on "
        "the whole tracks x tags matrix.",
    )
    parser.add_argument(
        "--predictions",
        required=True,
        nargs="+",
        action="extend",
        metavar="P.npy",
        help="float scores [tracks, tags]; several files (or the flag repeated) are scored by "
        "their mean, as an ensemble",
    )
    parser.add_argument(
        "--decisions", metavar="D.npy", help="bool (or 0/1) decisions [tracks, tags]"
    )
    truth = parser.add_mutually_exclusive_group(required=True)
    truth.add_argument(
        "--groundtruth",
        metavar="G.npy",
        help="bool ground truth [tracks, tags] (e.g. MediaEval's groundtruth.npy)",
    )
    truth.add_argument(
        "--meta-dir",
        metavar="M",
        help="MTG-Jamendo metadata folder: ground truth from the split TSVs",
    )
    parser.add_argument(
        "--split",
        type=int,
        metavar="N",
        help="split 0-4 of --meta-dir (default 0, MediaEval 2019's)",
    )
    parser.add_argument(
        "--subset",
        choices=("train", "validation", "test"),
        help="subset of --meta-dir (default test)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def run_score(args: argparse.Namespace) -> int:
    from emotion_keras.errors import ConfigError
    from emotion_keras.evaluation.evaluate import score_files
    from emotion_keras.evaluation.metrics import format_scores

    if args.meta_dir is None and (args.split is not None or args.subset is not None):
        raise ConfigError(
            "--split and --subset choose the ground truth from --meta-dir; with "
            "--groundtruth leave them out"
        )
    scores = score_files(
        args.predictions,
        groundtruth_path=args.groundtruth,
        decisions_path=args.decisions,
        meta_dir=args.meta_dir,
        split=0 if args.split is None else args.split,
        subset=args.subset or "test",
    )
    print(json.dumps(scores, indent=2) if args.json else format_scores(scores))
    return 0
