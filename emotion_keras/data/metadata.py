"""MTG-Jamendo metadata: split TSVs, the tag list and multi-hot labels.

Reads a metadata folder laid out like the MTG-Jamendo repository's `data/` folder:

    META/tags/moodtheme_split.txt                                  the 56 tags, one per line
    META/splits/split-N/autotagging_moodtheme-{train,validation,test}.tsv

The TSVs have the header `TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS`, and the TAGS column is
variable width: every field from the sixth on is one tag. That is why rows are parsed here line by
line instead of with `pandas.read_csv` (which wants a fixed column count), and it also lets every
error name the file and line. Label column j is line j of the tag file.

This module knows nothing about TensorFlow; it only turns text files into arrays.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.errors import MetadataError

SUBSETS = ("train", "validation", "test")
TAG_FILE = Path("tags") / "moodtheme_split.txt"
HEADER = ("TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS")
TAG_PREFIX = MTG_JAMENDO.tag_prefix
#: How many unusable files an error message lists before summarising the rest.
MAX_LISTED = 5

#: The 56 tags of the splits (`tags/moodtheme_split.txt`), in label-column order. Built in so
#: that the demo dataset and exported models need no metadata folder; a test checks it against
#: the real tag file.
MOODTHEME_TAGS = tuple(
    TAG_PREFIX + name
    for name in (
        "action",
        "adventure",
        "advertising",
        "background",
        "ballad",
        "calm",
        "children",
        "christmas",
        "commercial",
        "cool",
        "corporate",
        "dark",
        "deep",
        "documentary",
        "drama",
        "dramatic",
        "dream",
        "emotional",
        "energetic",
        "epic",
        "fast",
        "film",
        "fun",
        "funny",
        "game",
        "groovy",
        "happy",
        "heavy",
        "holiday",
        "hopeful",
        "inspiring",
        "love",
        "meditative",
        "melancholic",
        "melodic",
        "motivational",
        "movie",
        "nature",
        "party",
        "positive",
        "powerful",
        "relaxing",
        "retro",
        "romantic",
        "sad",
        "sexy",
        "slow",
        "soft",
        "soundscape",
        "space",
        "sport",
        "summer",
        "trailer",
        "travel",
        "upbeat",
        "uplifting",
    )
)


@dataclasses.dataclass(frozen=True)
class Subset:
    """One subset (train, validation or test) of one split, in TSV row order.

    Attributes:
        name: `"split-0/train"` and the like, for messages.
        track_ids: `track_0000948` and the like, shape `[n]`.
        melspec_paths: paths of the `.npy` files relative to the melspec root (`48/948.npy`).
        durations_s: track durations from the TSV, in seconds.
        labels: bool multi-hot matrix `[n, n_tags]`; column j is `tags[j]`.
        tags: the tag names in column order (`mood/theme---happy`).
    """

    name: str
    track_ids: np.ndarray
    melspec_paths: np.ndarray
    durations_s: np.ndarray
    labels: np.ndarray
    tags: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.track_ids)

    def head(self, n: int) -> Subset:
        """The first `n` tracks (for quick runs and tests)."""
        return self.take(slice(0, n))

    def take(self, rows) -> Subset:
        """The tracks at `rows` (a slice, range or index array), in that order."""
        if isinstance(rows, range):
            rows = slice(rows.start, rows.stop, rows.step)
        return dataclasses.replace(
            self,
            track_ids=self.track_ids[rows],
            melspec_paths=self.melspec_paths[rows],
            durations_s=self.durations_s[rows],
            labels=self.labels[rows],
        )


def short_tag_name(tag: str) -> str:
    """`mood/theme---happy` -> `happy` (for tables and plots)."""
    return tag[len(TAG_PREFIX) :] if tag.startswith(TAG_PREFIX) else tag


def melspec_path(audio_path: str) -> str:
    """The melspec path of an audio path in the TSV: `48/948.mp3` -> `48/948.npy`."""
    stem, _ = os.path.splitext(audio_path)
    return stem + ".npy"


def split_tsv_path(meta_dir: str | Path, split: int, subset: str) -> Path:
    """Where the TSV of `subset` of `split` lives under the metadata folder."""
    return Path(meta_dir) / "splits" / f"split-{split}" / f"autotagging_moodtheme-{subset}.tsv"


def read_text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 metadata file (a byte-order mark is accepted and dropped).

    Raises:
        MetadataError: the file is not UTF-8 (naming the line of the first bad byte).
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line_no = raw[: error.start].count(b"\n") + 1
        raise MetadataError(
            f"{path}:{line_no}: not UTF-8 text (byte 0x{raw[error.start]:02x} "
            f"at offset {error.start}); save the file as UTF-8, as MTG-Jamendo "
            f"ships it"
        ) from None
    # The upstream files have CRLF line endings; splitlines() drops both characters.
    return text.splitlines()


def read_tags(meta_dir: str | Path) -> tuple[str, ...]:
    """Reads the tag list; its order is the column order of every label matrix."""
    path = Path(meta_dir) / TAG_FILE
    if not path.is_file():
        raise MetadataError(
            f"{path}: tag file not found (expected {TAG_FILE} under the "
            f"metadata folder meta_dir {meta_dir})",
            arguments=("meta_dir",),
        )
    tags = []
    for line_no, line in enumerate(read_text_lines(path), start=1):
        tag = line.strip()
        if not tag:
            continue
        if tag in tags:
            raise MetadataError(f"{path}:{line_no}: duplicate tag {tag!r}")
        tags.append(tag)
    if not tags:
        raise MetadataError(f"{path}: tag file is empty (expected one tag per line)")
    return tuple(tags)


def read_subset(
    meta_dir: str | Path, split: int = 0, subset: str = "train", tags: tuple[str, ...] | None = None
) -> Subset:
    """Reads one subset of one split.

    Args:
        meta_dir: the metadata folder (MTG-Jamendo's `data/` layout).
        split: 0 to 4; MediaEval 2019 used split 0.
        subset: `train`, `validation` or `test`.
        tags: column order of the labels; read from the tag file when omitted.

    Returns:
        The subset's tracks in TSV order.

    Raises:
        MetadataError: missing file, bad header, malformed row, unknown tag, duplicate track, or
            an empty subset; the message names the file and line.
    """
    if subset not in SUBSETS:
        raise MetadataError(f"subset {subset!r} is not one of {', '.join(SUBSETS)}")
    if tags is None:
        tags = read_tags(meta_dir)
    path = split_tsv_path(meta_dir, split, subset)
    if not path.is_file():
        raise MetadataError(
            f"{path}: split file not found (expected split 0-4 under "
            f"meta_dir {meta_dir}, laid out like MTG-Jamendo's data/ folder)",
            arguments=("meta_dir",),
        )
    column = {tag: j for j, tag in enumerate(tags)}
    lines = read_text_lines(path)
    if not lines or tuple(lines[0].split("\t")) != HEADER:
        raise MetadataError(
            f"{path}:1: header is not the expected {' '.join(HEADER)} (tab-separated)"
        )
    track_ids, paths, durations, rows = [], [], [], []
    seen: dict[str, int] = {}
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 6:
            raise MetadataError(
                f"{path}:{line_no}: malformed row, expected at least 6 "
                f"tab-separated fields (the 6th on are tags), got {len(fields)}"
            )
        track_id, _, _, audio_path, duration, *row_tags = fields
        if track_id in seen:
            raise MetadataError(
                f"{path}:{line_no}: duplicate track {track_id} (first on line {seen[track_id]})"
            )
        seen[track_id] = line_no
        try:
            duration_s = float(duration)
        except ValueError:
            raise MetadataError(
                f"{path}:{line_no}: DURATION {duration!r} is not a number of seconds"
            ) from None
        if not audio_path or audio_path.startswith("/") or ".." in Path(audio_path).parts:
            raise MetadataError(
                f"{path}:{line_no}: PATH {audio_path!r} is not a relative path like 48/948.mp3"
            )
        label_row = np.zeros(len(tags), dtype=bool)
        for tag in row_tags:
            if tag not in column:
                raise MetadataError(
                    f"{path}:{line_no}: unknown tag {tag!r} (not in {Path(meta_dir) / TAG_FILE})"
                )
            label_row[column[tag]] = True
        track_ids.append(track_id)
        paths.append(melspec_path(audio_path))
        durations.append(duration_s)
        rows.append(label_row)
    if not track_ids:
        raise MetadataError(f"{path}: split is empty (no track rows after the header)")
    return Subset(
        name=f"split-{split}/{subset}",
        track_ids=np.array(track_ids),
        melspec_paths=np.array(paths),
        durations_s=np.array(durations, dtype=np.float64),
        labels=np.stack(rows),
        tags=tuple(tags),
    )
