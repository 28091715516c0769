"""Split TSVs, tags and labels, checked against the real MTG-Jamendo metadata."""

from pathlib import Path

import numpy as np
import pytest

from emotion_keras.data import metadata
from emotion_keras.errors import DataFileError, MetadataError


def test_split0_sizes_match_the_dataset(jamendo_meta):
    sizes = [len(metadata.read_subset(jamendo_meta, 0, s)) for s in metadata.SUBSETS]
    assert sizes == [9949, 3802, 4231]


@pytest.mark.parametrize("split", range(5))
def test_every_split_parses_with_disjoint_subsets(jamendo_meta, split):
    subsets = [metadata.read_subset(jamendo_meta, split, s) for s in metadata.SUBSETS]
    ids = [set(s.track_ids) for s in subsets]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    for subset in subsets:
        assert subset.labels.shape == (len(subset), 56)
        assert subset.labels.any(axis=1).all(), "every track has at least one tag"


def test_56_tags_and_builtin_list_matches_tag_file(jamendo_meta):
    tags = metadata.read_tags(jamendo_meta)
    assert len(tags) == 56
    assert tags == metadata.MOODTHEME_TAGS


def test_split0_test_labels_equal_official_groundtruth(jamendo_meta, shared_data):
    subset = metadata.read_subset(jamendo_meta, 0, "test")
    groundtruth = np.load(shared_data / "mediaeval2019" / "groundtruth.npy")
    assert subset.labels.dtype == bool
    np.testing.assert_array_equal(subset.labels, groundtruth)


def test_melspec_paths_follow_audio_paths(jamendo_meta):
    subset = metadata.read_subset(jamendo_meta, 0, "test")
    assert subset.track_ids[0] == "track_0003524"
    assert subset.melspec_paths[0] == "24/3524.npy"
    assert subset.durations_s[0] == pytest.approx(266.1)


HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\r\n"
TAGS = ["mood/theme---happy", "mood/theme---sad"]


def write_meta(root: Path, rows: list[str], tags=TAGS, header=HEADER) -> Path:
    (root / "tags").mkdir(parents=True, exist_ok=True)
    (root / "tags" / "moodtheme_split.txt").write_text("\n".join(tags) + "\n")
    split = root / "splits" / "split-0"
    split.mkdir(parents=True, exist_ok=True)
    (split / "autotagging_moodtheme-train.tsv").write_text(
        header + "".join(r + "\r\n" for r in rows)
    )
    return root


def test_variable_width_tags_become_multi_hot(tmp_path):
    meta = write_meta(
        tmp_path,
        [
            "track_1\ta\tb\t01/1.mp3\t30.0\tmood/theme---sad\tmood/theme---happy",
            "track_2\ta\tb\t02/2.mp3\t31.5\tmood/theme---sad",
        ],
    )
    subset = metadata.read_subset(meta, 0, "train")
    np.testing.assert_array_equal(subset.labels, [[True, True], [False, True]])
    assert list(subset.melspec_paths) == ["01/1.npy", "02/2.npy"]


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            ["track_1\ta\tb\t01/1.mp3\t30.0\tmood/theme---angry"],
            r":2: unknown tag 'mood/theme---angry'",
        ),
        (["track_1\ta\tb\t01/1.mp3\t30.0"], r":2: malformed row"),
        (["track_1\ta\tb\t01/1.mp3\tlong\tmood/theme---sad"], r":2: DURATION 'long'"),
        (
            ["track_1\ta\tb\t01/1.mp3\t30\tmood/theme---sad"] * 2,
            r":3: duplicate track track_1 \(first on line 2\)",
        ),
        ([], r"split is empty"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, rows, message):
    meta = write_meta(tmp_path, rows)
    with pytest.raises(MetadataError, match=r"autotagging_moodtheme-train\.tsv.*" + message):
        metadata.read_subset(meta, 0, "train")


def test_missing_tag_file_is_reported(tmp_path):
    meta = write_meta(tmp_path, ["track_1\ta\tb\t01/1.mp3\t30\tmood/theme---sad"])
    (meta / "tags" / "moodtheme_split.txt").unlink()
    with pytest.raises(MetadataError, match=r"moodtheme_split\.txt: tag file not found"):
        metadata.read_subset(meta, 0, "train")


def test_missing_split_and_bad_header_are_reported(tmp_path):
    meta = write_meta(tmp_path, ["track_1\ta\tb\t01/1.mp3\t30\tmood/theme---sad"])
    with pytest.raises(MetadataError, match=r"split-3.*split file not found"):
        metadata.read_subset(meta, 3, "train")
    write_meta(tmp_path, ["track_1\ta\tb\t01/1.mp3\t30\tmood/theme---sad"], header="ID\tPATH\r\n")
    with pytest.raises(MetadataError, match=r":1: header"):
        metadata.read_subset(meta, 0, "train")


def test_missing_melspecs_are_all_reported_before_training(tmp_path):
    from emotion_keras.data.melspec_files import scan_melspecs

    rows = [f"track_{i}\ta\tb\t{i:02d}/{i}.mp3\t30\tmood/theme---sad" for i in range(8)]
    meta = write_meta(tmp_path / "meta", rows)
    subset = metadata.read_subset(meta, 0, "train")
    data = tmp_path / "mel"
    (data / "01").mkdir(parents=True)
    np.save(data / "01" / "1.npy", np.zeros((96, 1300), np.float32))
    with pytest.raises(
        DataFileError,
        match=r"7 of 8 melspec files of split-0/train are unusable: "
        r"00/0\.npy \(melspec file not found\); 02/2\.npy "
        r"\(melspec file not found\); .*; and 2 more",
    ):
        scan_melspecs(data, subset)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    meta = write_meta(
        tmp_path, ["track_1\ta\tb\t01/1.mp3\t30\tmood/theme---sad"], header="\ufeff" + HEADER
    )
    (meta / "tags" / "moodtheme_split.txt").write_text("\ufeff" + "\n".join(TAGS) + "\n")
    subset = metadata.read_subset(meta, 0, "train")
    assert subset.tags == tuple(TAGS) and subset.labels.tolist() == [[False, True]]


def test_a_file_that_is_not_utf8_is_one_error_naming_file_and_line(tmp_path):
    meta = write_meta(tmp_path, ["track_1\ta\tb\t01/1.mp3\t30\tmood/theme---sad"])
    tsv = meta / "splits" / "split-0" / "autotagging_moodtheme-train.tsv"
    tsv.write_bytes(
        HEADER.encode()
        + "track_2\tCaf\xe9\tb\t01/2.mp3\t30\tmood/theme---sad\r\n".encode("latin-1")
    )
    with pytest.raises(
        MetadataError,
        match=r"autotagging_moodtheme-train\.tsv:2: not UTF-8 text "
        r"\(byte 0xe9",
    ):
        metadata.read_subset(meta, 0, "train")
