"""`emotion-keras melspecs relayout|pack`: faster on-disk forms of a melspec corpus."""

from __future__ import annotations

import argparse

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "melspecs",
        help="mel-spectrogram files (pack: one float16 file that trains faster; relayout)",
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
    pack = add_command(
        commands,
        "pack",
        run_pack,
        flags={"source_dir": "SRC_DIR", "data_dir": "SRC_DIR", "subsets": "--subset"},
        help="pack a corpus into one HDF5 file (float16: half the size; fastest to train from)",
        description="Write every track of the chosen subsets (default: every subset of every "
        "split in --meta-dir) into one HDF5 file, frames-major and contiguous, with an index "
        "and provenance attributes. Give the file as --data-dir afterwards. float16 halves the "
        "size (the real 68 GB corpus becomes about 34 GB); float32 is exact. An interrupted "
        "pack resumes where it stopped; the file appears under its name only when complete.",
    )
    pack.add_argument("source_dir", metavar="SRC_DIR", help="melspec root (00/ ... 99/)")
    pack.add_argument("--meta-dir", required=True, help="MTG-Jamendo metadata folder")
    pack.add_argument("--out", required=True, help="the packed file to write (corpus.h5)")
    pack.add_argument(
        "--dtype",
        choices=("float16", "float32"),
        default="float16",
        help="stored precision (default float16)",
    )
    pack.add_argument(
        "--subset",
        dest="subsets",
        action="append",
        metavar="split-N/SUBSET",
        help="pack this subset (repeatable; default: all of every split)",
    )
    pack.add_argument(
        "--verify",
        type=int,
        default=0,
        metavar="N",
        help="afterwards, compare N random tracks with their source files",
    )
    pack.add_argument("--n-bands", type=int, default=96, help="mel bands of every file (96)")


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


def run_pack(args: argparse.Namespace) -> int:
    from emotion_keras.cli.progress import ProgressLine
    from emotion_keras.data.packed import pack_melspecs, pack_subsets, verify_packed

    subsets = pack_subsets(args.meta_dir, args.subsets)
    result = pack_melspecs(
        args.source_dir,
        subsets,
        args.out,
        dtype=args.dtype,
        n_bands=args.n_bands,
        progress=ProgressLine("pack", interval_s=5.0),
    )
    resumed = f", resumed after {result['resumed_tracks']}" if result["resumed_tracks"] else ""
    print(
        f"{args.out}: {result['tracks']} tracks, {result['frames']:,} frames, "
        f"{result['bytes'] / 1e9:.2f} GB ({args.dtype}) in {result['seconds']:.1f} s, "
        f"{result['mb_per_s']:.0f} MB/s{resumed}"
    )
    if args.verify:
        checked = verify_packed(args.out, args.source_dir, args.verify)
        print(
            f"verified {checked['checked']} random tracks against {args.source_dir}: "
            f"{'identical' if args.dtype == 'float32' else 'equal to float16 rounding'} "
            f"(largest difference {checked['max_abs_error']:.3g})"
        )
    return 0
