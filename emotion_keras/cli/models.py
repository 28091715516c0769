"""`emotion-keras models`: the registered architectures and their sizes.

Argument parsing and printing only; the figures come from `emotion_keras.models.model_summary`.
"""

from __future__ import annotations

import argparse
import json

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "models",
        run_models,
        help="list the registered models with their parameter counts",
        description="List each registered model with its input shape, convolution count, "
        "whether it is residual, and its total and trainable parameter counts.",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON object mapping each model name to its figures",
    )


def run_models(args: argparse.Namespace) -> int:
    from emotion_keras.models import MODELS, model_summary

    summaries = {name: model_summary(name) for name in MODELS}
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    print(
        f"{'model':<10} {'input':<14} {'convs':>5} {'residual':>8} {'total':>12} {'trainable':>12}"
    )
    for name, s in summaries.items():
        shape = "x".join(map(str, s["input_shape"]))
        print(
            f"{name:<10} {shape:<14} {s['conv_layers']:>5} {'yes' if s['residual'] else 'no':>8} "
            f"{s['total_params']:>12,} {s['trainable_params']:>12,}"
        )
    return 0
