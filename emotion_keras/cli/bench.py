"""`emotion-keras bench pipeline`: the tf.data pipeline's throughput and memory."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="benchmarks (pipeline: crops/s and peak memory of the tf.data pipeline)",
        description="Benchmarks measured on this machine.")
    benchmarks = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    pipeline = benchmarks.add_parser(
        "pipeline", help="training/evaluation crops per second, baseline, peak memory",
        description="Measure training and evaluation crops per second through the tf.data "
                    "pipeline, a whole-file np.load baseline, and peak resident memory at two "
                    "corpus sizes, on a stand-in corpus written once and cached (lengths drawn "
                    "from the real MTG-Jamendo durations when ../shared/data is present).")
    pipeline.add_argument("--corpus-dir", metavar="D",
                          help="where the stand-in corpus is cached "
                               "(default: .cache/bench/corpus-N)")
    pipeline.add_argument("--tracks", type=int, default=1000, metavar="N",
                          help="tracks in the corpus (default 1000, about 4 GB)")
    pipeline.add_argument("--seconds", type=float, default=8.0, metavar="S",
                          help="time each throughput figure for at least S seconds (default 8)")
    pipeline.add_argument("--json", action="store_true", help="print the figures as JSON")
    pipeline.set_defaults(func=run_bench_pipeline)


def run_bench_pipeline(args: argparse.Namespace) -> int:
    from emotion_keras.bench import format_report, run_pipeline_benchmark

    result = run_pipeline_benchmark(args.corpus_dir, args.tracks, seconds=args.seconds)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0
