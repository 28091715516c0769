"""`emotion-keras demo-data`: write the synthetic demo dataset."""

from __future__ import annotations

import argparse

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "demo-data",
        run_demo_data,
        flags={"out_dir": "OUT_DIR"},
        help="write the SYNTHETIC demo dataset in the MTG-Jamendo layout",
        description="Write a small synthetic dataset (melspecs + split-0 metadata, real tag "
        "names, learnable planted patterns) in exactly the MTG-Jamendo layout.",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="new or empty folder to write")
    parser.add_argument("--train", type=int, default=448, help="training tracks (448)")
    parser.add_argument("--validation", type=int, default=112, help="validation tracks (112)")
    parser.add_argument("--test", type=int, default=112, help="test tracks (112)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed writes the same data")


def run_demo_data(args: argparse.Namespace) -> int:
    from emotion_keras.cli.progress import ProgressLine
    from emotion_keras.data import demo
    from emotion_keras.errors import ConfigError

    for flag in ("train", "validation", "test"):
        if getattr(args, flag) < 1:
            raise ConfigError(f"--{flag} {getattr(args, flag)}: must be at least 1")
    out = demo.write_demo_dataset(
        args.out_dir,
        n_train=args.train,
        n_validation=args.validation,
        n_test=args.test,
        seed=args.seed,
        progress=ProgressLine("demo data"),
    )
    data_dir, meta_dir = demo.demo_paths(out)
    print(
        f"Wrote a SYNTHETIC demo dataset to {out}\n  --data-dir {data_dir}\n  --meta-dir {meta_dir}"
    )
    return 0
