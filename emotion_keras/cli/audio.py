"""`emotion-keras melspec`: the dataset's mel-spectrograms of your own audio files."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "melspec", help="compute MTG-Jamendo-style mel-spectrograms of audio files",
        description="Write one float32 [96, frames] .npy per audio file (MP3, WAV, OGG, FLAC), "
                    "computed exactly as the MTG-Jamendo melspecs were (Essentia's definition).")
    parser.add_argument("inputs", metavar="AUDIO", nargs="+",
                        help="audio files, or folders searched recursively")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (folder inputs keep their relative layout)")
    parser.set_defaults(func=run_melspec)


def _jobs(inputs):
    from pathlib import Path

    from emotion_keras.predict import AUDIO_SUFFIXES

    for item in map(Path, inputs):
        if item.is_dir():
            for path in sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
                yield path, path.relative_to(item).with_suffix(".npy")
        else:
            yield item, Path(item.name).with_suffix(".npy")


def run_melspec(args: argparse.Namespace) -> int:
    import sys
    import time
    from pathlib import Path

    from emotion_keras.audio import melspec_file
    from emotion_keras.errors import ConfigError, EmotionKerasError
    from emotion_keras.fileio import atomic_save_npy

    jobs = list(_jobs(args.inputs))
    if not jobs:
        raise ConfigError(f"{' '.join(args.inputs)}: no audio files found (.mp3 .wav .ogg .flac)")
    failed, started = 0, time.monotonic()
    for i, (source, relative) in enumerate(jobs, start=1):
        try:
            melspec = melspec_file(source)
        except EmotionKerasError as error:
            print(f"emotion-keras melspec: error: {error}", file=sys.stderr)
            failed += 1
            continue
        atomic_save_npy(Path(args.out) / relative, melspec)
        print(f"[{i}/{len(jobs)}] {source} -> {Path(args.out) / relative} "
              f"({melspec.shape[1]} frames, {time.monotonic() - started:.0f} s)",
              file=sys.stderr)
    if failed:
        print(f"emotion-keras melspec: {failed} of {len(jobs)} files failed", file=sys.stderr)
    return 1 if failed else 0
