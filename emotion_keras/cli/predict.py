"""`emotion-keras predict`: mood/theme tags for your own audio or `.npy` melspecs."""

from __future__ import annotations

import argparse

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "predict",
        run_predict,
        flags={"path": "MODEL", "hop_s": "--hop", "plot_dir": "--plot"},
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
    parser.add_argument(
        "--timeline",
        metavar="FILE.csv",
        help="also write per-window probabilities to this CSV: a row per window (file, window, "
        "start_s, end_s, then every tag); a window is one model crop (1280 frames = 27.3 s)",
    )
    parser.add_argument(
        "--hop",
        type=float,
        metavar="SECONDS",
        help="seconds between window starts for --timeline and --plot (default: half a window, "
        "13.65 s)",
    )
    parser.add_argument(
        "--plot",
        metavar="DIR",
        help="also write one PNG per file into DIR: a taggram (top tags x time) and the "
        "track's top-k bars (needs the plot extra: pip install 'emotion_keras[plot]')",
    )


def run_predict(args: argparse.Namespace) -> int:
    import sys

    from emotion_keras.cli.progress import ProgressLine
    from emotion_keras.errors import ConfigError
    from emotion_keras.fileio import atomic_path, atomic_write_text
    from emotion_keras.serving.predict import (
        expand_inputs,
        format_records,
        load_predictor,
        predict_files,
    )

    if args.top_k < 1:
        raise ConfigError(f"--top-k {args.top_k}: must be at least 1")
    if args.plot:
        from emotion_keras.plots import require_matplotlib

        require_matplotlib("plot_dir")
    if args.hop is not None and not args.hop > 0:
        raise ConfigError(f"hop_s {args.hop}: must be positive", arguments=("hop_s",))
    files = expand_inputs(args.inputs)
    if not files:
        raise ConfigError(f"{' '.join(args.inputs)}: no .npy or audio files found")
    predictor = load_predictor(args.model)
    top_k = min(args.top_k, len(predictor.tags))
    timelines = []
    records, errors = predict_files(
        predictor,
        files,
        top_k=top_k,
        progress=ProgressLine("predict") if len(files) > 1 else None,
        each=_time_resolved(predictor, args, top_k, timelines)
        if args.timeline or args.plot
        else None,
    )
    if args.timeline:
        import pandas as pd

        with atomic_path(args.timeline) as tmp:
            pd.concat(timelines).to_csv(tmp, index=False, float_format="%.6f")
        print(f"Wrote {len(timelines)} timelines to {args.timeline}", file=sys.stderr)
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


def _time_resolved(predictor, args: argparse.Namespace, top_k: int, timelines: list):
    """The `each` callback of `predict_files`: timeline rows and taggram PNGs per good file."""
    from pathlib import Path

    import pandas as pd

    from emotion_keras.serving.timeline import timeline

    used_names = set()

    def write(path: Path, melspec, record: dict) -> None:
        table = timeline(predictor, melspec, args.hop)
        if args.timeline:
            timelines.append(
                pd.concat([pd.DataFrame({"file": [str(path)] * len(table)}), table], axis=1)
            )
        if args.plot:
            from emotion_keras import plots

            name = path.stem
            while name in used_names:  # the same name in two folders
                name += "_"
            used_names.add(name)
            plots.write_taggram(
                Path(args.plot) / f"{name}.png",
                table,
                pd.Series(record["probabilities"]),
                title=path.name,
                top_k=top_k,
                decided=record.get("decisions", ()),
            )

    return write
