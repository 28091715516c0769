"""`emotion-keras evaluate`, `export` and `predict`: using a trained run directory."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    evaluate = subparsers.add_parser(
        "evaluate", help="score a run's best checkpoint on the test split (20-crop averaging)",
        description="Predict the test split with the run's best checkpoint, choose per-tag "
                    "thresholds on the validation split, and write predictions.npy, "
                    "decisions.npy, thresholds.npy, metrics.json and per_tag.csv into the run "
                    "directory.")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--split", type=int, help="split to evaluate (default: the run's)")
    evaluate.add_argument("--subset", default="test", choices=("train", "validation", "test"))
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(func=run_evaluate)

    export = subparsers.add_parser(
        "export", help="export a run as a TensorFlow SavedModel (plus .keras and tags)",
        description="Write a SavedModel whose `serve` endpoint maps one full-length melspec "
                    "[96, frames] to crop-averaged tag probabilities, usable with TensorFlow "
                    "alone; the .keras model and tags.txt are written beside it.")
    export.add_argument("run_dir", metavar="RUN_DIR")
    export.add_argument("--out", help="export folder (default: RUN_DIR/export)")
    export.add_argument("--crops", type=int, help="regular crops per track (default: the run's "
                                                  "test_crops)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export in the --out folder (anything else there "
                             "is never replaced)")
    export.set_defaults(func=run_export)
    register_predict(subparsers)


def run_evaluate(args: argparse.Namespace) -> int:
    from emotion_keras.evaluation import format_scores
    from emotion_keras.inference import evaluate_run

    metrics = evaluate_run(args.run_dir, split=args.split, subset=args.subset)
    print(json.dumps(metrics, indent=2) if args.json else format_scores(metrics))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from emotion_keras.errors import ConfigError
    from emotion_keras.export import export_run

    if args.crops is not None and args.crops < 1:
        raise ConfigError(f"--crops {args.crops}: must be at least 1")
    out = export_run(args.run_dir, args.out, n_crops=args.crops, overwrite=args.overwrite)
    print(f"Exported to {out}")
    return 0


def register_predict(subparsers) -> None:
    predict = subparsers.add_parser(
        "predict", help="mood/theme tags for your own audio or .npy melspecs",
        description="Predict all tag probabilities (crop-averaged over the whole track), the "
                    "top-k tags and, for an evaluated run, the thresholded decisions.")
    predict.add_argument("model", metavar="MODEL", help="a run directory or an export folder")
    predict.add_argument("inputs", metavar="AUDIO_OR_NPY", nargs="+",
                         help="files (.mp3 .wav .ogg .flac .npy) or folders (searched "
                              "recursively)")
    predict.add_argument("--format", choices=("csv", "json"), default="csv")
    predict.add_argument("--top-k", type=int, default=5, help="top tags to list (5)")
    predict.add_argument("--output", help="write to this file instead of standard output")
    predict.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    import sys

    from emotion_keras.errors import ConfigError
    from emotion_keras.fileio import atomic_write_text
    from emotion_keras.predict import expand_inputs, format_records, load_predictor, predict_files

    if args.top_k < 1:
        raise ConfigError(f"--top-k {args.top_k}: must be at least 1")
    files = expand_inputs(args.inputs)
    if not files:
        raise ConfigError(f"{' '.join(args.inputs)}: no .npy or audio files found")
    predictor = load_predictor(args.model)
    records, errors = predict_files(predictor, files, top_k=min(args.top_k,
                                                                len(predictor.tags)))
    text = format_records(records, predictor.tags, args.format)
    if args.output:
        atomic_write_text(args.output, text)
        print(f"Wrote {len(records)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for line in errors:
        print(f"emotion-keras predict: error: {line}", file=sys.stderr)
    if errors:
        print(f"emotion-keras predict: {len(errors)} of {len(files)} files failed",
              file=sys.stderr)
    return 1 if errors else 0
