"""`emotion-keras export`: a run as a TensorFlow SavedModel (plus `.keras` and tags)."""

from __future__ import annotations

import argparse

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "export",
        run_export,
        flags={
            "run_dir": "RUN_DIR",
            "ensemble_dir": "RUN_DIR",
            "out_dir": "--out",
            "formats": "--format",
        },
        help="export a run as a TensorFlow SavedModel (plus .keras, tags, model card; "
        "optionally TFLite and ONNX)",
        description="Write a SavedModel whose `serve` endpoint maps one full-length melspec "
        "[96, frames] to crop-averaged tag probabilities and, when the run was evaluated, "
        "decisions from the validation thresholds; usable with TensorFlow alone. The "
        ".keras model, tags.txt, export.json (tags, thresholds) and MODEL_CARD.md are "
        "written beside it. An unevaluated run exports probabilities only (a note says so).",
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
        "--format",
        dest="formats",
        action="append",
        choices=("savedmodel", "tflite", "onnx"),
        help="also write this format (repeatable): tflite (model.tflite, TensorFlow's "
        "converter) or onnx (model.onnx, needs the onnx extra); the SavedModel is always "
        "written",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export in the --out folder (anything else there "
        "is never replaced)",
    )


def run_export(args: argparse.Namespace) -> int:
    import json

    from emotion_keras.errors import ConfigError
    from emotion_keras.serving.export import EXPORT_MARKER, export_run

    if args.crops is not None and args.crops < 1:
        raise ConfigError(f"--crops {args.crops}: must be at least 1")
    from emotion_keras.rundir import RunDir

    formats = args.formats or ("savedmodel",)
    if RunDir(args.run_dir).is_ensemble():
        from emotion_keras.serving.ensemble_export import export_ensemble

        if set(formats) != {"savedmodel"}:
            raise ConfigError(
                f"formats {' '.join(formats)}: an ensemble exports as a SavedModel only",
                arguments=("formats",),
            )
        out = export_ensemble(args.run_dir, args.out, n_crops=args.crops, overwrite=args.overwrite)
    else:
        out = export_run(
            args.run_dir, args.out, n_crops=args.crops, overwrite=args.overwrite, formats=formats
        )
    print(f"Exported to {out}")
    info = json.loads((out / EXPORT_MARKER).read_text(encoding="utf-8"))
    for name, size in info.get("files", {}).items():
        print(f"  {name:<13} {size / 1e6:8.2f} MB")
    if "thresholds" in info and info["thresholds"] is None:
        print("  (probabilities only: the run was not evaluated, so no decisions)")
    return 0
