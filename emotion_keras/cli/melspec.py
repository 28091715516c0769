"""`emotion-keras melspec`: the dataset's mel-spectrograms of your own audio files."""

from __future__ import annotations

import argparse

from emotion_keras.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "melspec",
        run_melspec,
        flags={"out_dir": "--out"},
        help="compute MTG-Jamendo-style mel-spectrograms of audio files",
        description="Write one float32 [96, frames] .npy per audio file (MP3, WAV, OGG, FLAC), "
        "computed exactly as the MTG-Jamendo melspecs were (Essentia's definition).",
    )
    parser.add_argument(
        "inputs", metavar="AUDIO", nargs="+", help="audio files, or folders searched recursively"
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (folder inputs keep their relative layout; two "
        "inputs for one output name are refused)",
    )


def run_melspec(args: argparse.Namespace) -> int:
    import sys
    import time

    from emotion_keras.data.audio import melspec_file, melspec_jobs
    from emotion_keras.errors import ConfigError, EmotionKerasError
    from emotion_keras.fileio import atomic_save_npy, check_writable_dir

    jobs = melspec_jobs(args.inputs, args.out)
    try:
        check_writable_dir(args.out)
    except OSError as error:
        raise ConfigError(
            f"--out {args.out}: cannot be written ({error.strerror or error})"
        ) from None
    failed, started = 0, time.monotonic()
    for i, (source, target) in enumerate(jobs, start=1):
        try:
            melspec = melspec_file(source)
        except EmotionKerasError as error:
            print(f"emotion-keras melspec: error: {error}", file=sys.stderr)
            failed += 1
            continue
        atomic_save_npy(target, melspec)
        print(
            f"[{i}/{len(jobs)}] {source} -> {target} ({melspec.shape[1]} frames, "
            f"{time.monotonic() - started:.0f} s)",
            file=sys.stderr,
        )
    if failed:
        print(f"emotion-keras melspec: {failed} of {len(jobs)} files failed", file=sys.stderr)
    return 1 if failed else 0
