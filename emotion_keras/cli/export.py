"""`emotion-keras export`: a run as a TensorFlow SavedModel (plus `.keras` and tags)."""

from __future__ import annotations

import argparse

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "export",
        run_export,
        flags={"run_dir": "RUN_DIR", "ensemble_dir": "RUN_DIR", "out_dir": "--out"},
        help="export a run as a TensorFlow SavedModel (plus .keras and tags)",
        description="Write a SavedModel whose `serve` endpoint maps one full-length melspec "
        "[96, frames] to crop-averaged tag probabilities, usable with TensorFlow "
        "alone; the .keras model and tags.txt are written beside it.",
    )
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="a trained run directory, or an ensemble folder (`emotion-keras ensemble`): one "
        "SavedModel averaging its members",
    )
    parser.add_argument(
        "--out",
        help="export folder: new, empty, or an earlier export with "
        "--overwrite (default: RUN_DIR/export)",
    )
    parser.add_argument(
        "--crops", type=int, help="regular crops per track (default: the run's test_crops)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export in the --out folder (anything else there "
        "is never replaced)",
    )


def run_export(args: argparse.Namespace) -> int:
    from emotion_keras.errors import ConfigError
    from emotion_keras.serving.export import export_run

    if args.crops is not None and args.crops < 1:
        raise ConfigError(f"--crops {args.crops}: must be at least 1")
    from emotion_keras.rundir import RunDir

    if RunDir(args.run_dir).is_ensemble():
        from emotion_keras.serving.ensemble_export import export_ensemble

        out = export_ensemble(args.run_dir, args.out, n_crops=args.crops, overwrite=args.overwrite)
    else:
        out = export_run(args.run_dir, args.out, n_crops=args.crops, overwrite=args.overwrite)
    print(f"Exported to {out}")
    return 0
