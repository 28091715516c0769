"""`python -m benchmarks pipeline|train|predict|float16`: run a benchmark and print its figures."""

from __future__ import annotations

import argparse
import json
import os
import sys

from emotion_keras.errors import EmotionKerasError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of emotion_keras measured on this machine (pipeline: crops/s "
        "and peak memory of the tf.data pipeline; train: training samples/s, "
        "streaming vs in memory, and GFLOP/s).",
    )
    benchmarks = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    pipeline = benchmarks.add_parser(
        "pipeline",
        help="training/evaluation crops per second, baseline, peak memory",
        description="Measure training and evaluation crops per second through the tf.data "
        "pipeline, a whole-file np.load baseline, and peak resident memory at two "
        "corpus sizes, on a stand-in corpus written once and cached (lengths drawn "
        "from the real MTG-Jamendo durations when ../shared/data is present).",
    )
    pipeline.add_argument(
        "--corpus-dir",
        metavar="D",
        help="where the stand-in corpus is cached (default: .cache/bench/corpus-N)",
    )
    pipeline.add_argument(
        "--tracks",
        type=int,
        default=1000,
        metavar="N",
        help="tracks in the corpus (default 1000, about 4 GB)",
    )
    pipeline.add_argument(
        "--seconds",
        type=float,
        default=8.0,
        metavar="S",
        help="time each throughput figure for at least S seconds (default 8)",
    )
    pipeline.add_argument("--json", action="store_true", help="print the figures as JSON")
    pipeline.set_defaults(func=run_bench_pipeline)

    train = benchmarks.add_parser(
        "train",
        help="training samples/s fed by the pipeline vs from memory, and GFLOP/s",
        description="Train a model for a few steps fed by the real streaming pipeline, then "
        "the same model fed by one batch already in memory, and report both "
        "samples/s, their ratio (near 1: the input keeps up; target >= 0.95) and "
        "the training step's achieved GFLOP/s (3 x the analytic forward FLOPs). "
        "Uses the pipeline benchmark's cached stand-in corpus. On a backend other "
        "than TensorFlow (KERAS_BACKEND=jax) the streaming input is a Keras "
        "PyDataset over the project's NumPy crop reader, not tf.data.",
    )
    train.add_argument(
        "--model",
        default="vgg6",
        metavar="NAME",
        help="registered model to train (default vgg6; see `emotion-keras models`)",
    )
    train.add_argument(
        "--batch-size",
        type=int,
        default=64,
        metavar="N",
        help="samples per training step (default 64)",
    )
    train.add_argument(
        "--steps",
        type=int,
        default=5,
        metavar="N",
        help="timed training steps per input source (default 5)",
    )
    train.add_argument(
        "--warmup-steps",
        type=int,
        default=1,
        metavar="N",
        help="untimed steps before them; the first compiles (default 1)",
    )
    train.add_argument(
        "--mixed-precision",
        action="store_true",
        help="train under mixed precision (float16 on a GPU, bfloat16 on a CPU)",
    )
    train.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile the training step with XLA (default: off on TensorFlow, "
        "as training does; on on JAX, which always trains through XLA)",
    )
    train.add_argument(
        "--sweep",
        action="store_true",
        help="measure float32, mixed precision and XLA in one run (on JAX: "
        "float32 and mixed precision, both XLA)",
    )
    train.add_argument(
        "--tracks",
        type=int,
        default=1000,
        metavar="N",
        help="tracks in the stand-in corpus (default 1000: the pipeline benchmark's corpus)",
    )
    train.add_argument(
        "--corpus-dir",
        metavar="D",
        help="where the stand-in corpus is cached (default: .cache/bench/corpus-N)",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=0,
        help="fixes the corpus, the crops and the initial weights (default 0)",
    )
    train.add_argument(
        "--packed",
        action="store_true",
        help="stream from the corpus's packed float16 copy (melspecs pack) instead of its .npy",
    )
    train.add_argument("--json", action="store_true", help="print the figures as JSON")
    train.set_defaults(func=run_bench_train)

    predict = benchmarks.add_parser(
        "predict",
        help="seconds to tag one 4-minute audio file by stage, and .npy tracks/s",
        description="Tag one synthetic 4-minute audio file end to end (decode, melspec, "
        "20-crop model; seconds per stage) and a folder of 4-minute .npy melspecs "
        "(tracks/s), with an untrained model in a throw-away run directory.",
    )
    predict.add_argument(
        "--model", default="vgg6", metavar="NAME", help="registered model (default vgg6)"
    )
    predict.add_argument(
        "--tracks", type=int, default=20, metavar="N", help=".npy tracks in the folder (20)"
    )
    predict.add_argument(
        "--repeats", type=int, default=3, metavar="N", help="timed runs per stage, median (3)"
    )
    predict.add_argument(
        "--cache-dir",
        metavar="D",
        help="where the synthetic audio file is kept (default: .cache/bench)",
    )
    predict.add_argument("--json", action="store_true", help="print the figures as JSON")
    predict.set_defaults(func=run_bench_predict)

    float16 = benchmarks.add_parser(
        "float16",
        help="validation ROC-AUC-macro trained from .npy float32 vs a float16 packed copy",
        description="Train the demo recipe twice with the same seed, from the float32 .npy "
        "files and from a float16 packed copy of them, and compare validation "
        "ROC-AUC-macro epoch by epoch and at the best epoch (tolerance 0.005). About "
        "6 minutes per run on 2 cores; finished runs are kept and reused.",
    )
    float16.add_argument(
        "--model", default="vgg6", metavar="NAME", help="registered model (default vgg6)"
    )
    float16.add_argument("--seed", type=int, default=0, help="both runs' seed (default 0)")
    float16.add_argument(
        "--out", metavar="D", help="demo data, packed file and runs (default .cache/bench/float16)"
    )
    float16.add_argument("--json", action="store_true", help="print the figures as JSON")
    float16.set_defaults(func=run_bench_float16)
    return parser


def run_bench_float16(args: argparse.Namespace) -> int:
    from benchmarks.float16 import format_report, run_float16_benchmark

    result = run_float16_benchmark(args.out, args.model, args.seed)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def run_bench_predict(args: argparse.Namespace) -> int:
    from benchmarks.predict import format_report, run_predict_benchmark

    result = run_predict_benchmark(args.model, args.tracks, args.repeats, args.cache_dir)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def run_bench_pipeline(args: argparse.Namespace) -> int:
    from benchmarks.pipeline import format_report, run_pipeline_benchmark

    result = run_pipeline_benchmark(args.corpus_dir, args.tracks, seconds=args.seconds)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def run_bench_train(args: argparse.Namespace) -> int:
    from benchmarks.train import format_report, run_train_benchmark

    result = run_train_benchmark(
        args.model,
        args.batch_size,
        steps=args.steps,
        warmup_steps=args.warmup_steps,
        mixed_precision=args.mixed_precision,
        jit_compile=args.jit_compile,
        sweep=args.sweep,
        tracks=args.tracks,
        corpus_dir=args.corpus_dir,
        seed=args.seed,
        packed=args.packed,
    )
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EmotionKerasError as error:
        print(f"benchmarks {args.benchmark}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
