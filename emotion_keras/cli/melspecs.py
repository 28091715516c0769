"""`emotion-keras melspecs relayout`: an optional faster on-disk layout of a melspec corpus."""

from __future__ import annotations

import argparse

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "melspecs",
        help="mel-spectrogram files (relayout: a copy that trains faster)",
        description="Tools for the melspec corpus.",
    )
    commands = parser.add_subparsers(dest="melspecs_command", metavar="COMMAND", required=True)
    relayout = add_command(
        commands,
        "relayout",
        run_relayout,
        flags={"target_dir": "TARGET"},
        help="copy a melspec tree frames-major (same arrays, faster crop reads)",
        description="Write a copy of every .npy file under SOURCE into TARGET (same relative "
        "paths) with the same [bands, frames] arrays stored frames-major (Fortran "
        "order), so that each training crop is one contiguous read: about twice the "
        "crops per second (see BENCHMARKS.md). Give TARGET as --data-dir afterwards. "
        "Resumes where it stopped.",
    )
    relayout.add_argument("source", metavar="SOURCE", help="melspec root (00/ ... 99/)")
    relayout.add_argument("target", metavar="TARGET", help="where to write the copy")
    relayout.add_argument("--n-bands", type=int, default=96, help="mel bands of every file (96)")


def run_relayout(args: argparse.Namespace) -> int:
    from emotion_keras.cli.progress import ProgressLine
    from emotion_keras.data.melspec_files import relayout_melspecs

    counts = relayout_melspecs(
        args.source, args.target, n_bands=args.n_bands, progress=ProgressLine("relayout")
    )
    print(
        f"{args.target}: {counts['converted']} files written "
        f"({counts['bytes'] / 1e9:.2f} GB), {counts['skipped']} already done"
    )
    return 0
