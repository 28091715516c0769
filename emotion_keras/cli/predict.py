"""`emotion-keras predict`: mood/theme tags for your own audio or `.npy` melspecs."""

from __future__ import annotations

import argparse

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "predict",
        run_predict,
        flags={"path": "MODEL"},
        help="mood/theme tags for your own audio or .npy melspecs",
        description="Predict all tag probabilities (crop-averaged over the whole track), the "
        "top-k tags and, for an evaluated run, the thresholded decisions.",
    )
    parser.add_argument("model", metavar="MODEL", help="a run directory or an export folder")
    parser.add_argument(
        "inputs",
        metavar="AUDIO_OR_NPY",
        nargs="+",
        help="files (.mp3 .wav .ogg .flac .npy) or folders (searched recursively)",
    )
    parser.add_argument(
        "--format",
        choices=("csv", "json"),
        default="csv",
        help="csv (default): a row per file with the top tags and every tag's "
        "probability; json: a record per file",
    )
    parser.add_argument("--top-k", type=int, default=5, help="top tags to list (5)")
    parser.add_argument("--output", help="write to this file instead of standard output")


def run_predict(args: argparse.Namespace) -> int:
    import sys

    from emotion_keras.cli.progress import ProgressLine
    from emotion_keras.errors import ConfigError
    from emotion_keras.fileio import atomic_write_text
    from emotion_keras.serving.predict import (
        expand_inputs,
        format_records,
        load_predictor,
        predict_files,
    )

    if args.top_k < 1:
        raise ConfigError(f"--top-k {args.top_k}: must be at least 1")
    files = expand_inputs(args.inputs)
    if not files:
        raise ConfigError(f"{' '.join(args.inputs)}: no .npy or audio files found")
    predictor = load_predictor(args.model)
    records, errors = predict_files(
        predictor,
        files,
        top_k=min(args.top_k, len(predictor.tags)),
        progress=ProgressLine("predict") if len(files) > 1 else None,
    )
    text = format_records(records, predictor.tags, args.format)
    if args.output:
        atomic_write_text(args.output, text)
        print(f"Wrote {len(records)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for line in errors:
        print(f"emotion-keras predict: error: {line}", file=sys.stderr)
    if errors:
        print(f"emotion-keras predict: {len(errors)} of {len(files)} files failed", file=sys.stderr)
    return 1 if errors else 0
