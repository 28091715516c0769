"""The synthetic demo dataset: the real layout and formats, and tags that are really planted."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_keras.cli import main
from emotion_keras.data import demo, metadata
from emotion_keras.data.melspec_files import scan_melspecs
from emotion_keras.errors import ConfigError


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("d") / "demo"
    demo.write_demo_dataset(out, n_train=60, n_validation=56, n_test=10)
    return out


def test_layout_and_formats_are_mtg_jamendos(small_demo):
    data_dir, meta_dir = demo.demo_paths(small_demo)
    assert (small_demo / "README.txt").read_text().startswith("SYNTHETIC")
    tsv = (meta_dir / "splits" / "split-0" / "autotagging_moodtheme-train.tsv").read_bytes()
    assert tsv.startswith(b"TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\r\n")
    assert metadata.read_tags(meta_dir) == metadata.MOODTHEME_TAGS
    sizes = [len(metadata.read_subset(meta_dir, 0, s)) for s in metadata.SUBSETS]
    assert sizes == [60, 56, 10]
    subset = metadata.read_subset(meta_dir, 0, "train")
    for path, track_id, duration in zip(subset.melspec_paths, subset.track_ids, subset.durations_s):
        number = int(track_id.split("_")[1])
        assert path == f"{number % 100:02d}/{number}.npy"
        array = np.load(data_dir / path)
        assert array.dtype == np.float32 and array.shape[0] == 96 and array.shape[1] > 1280
        assert duration == pytest.approx(array.shape[1] / demo.FRAMES_PER_SECOND, abs=0.05)
    assert (
        scan_melspecs(data_dir, subset)
        == [np.load(data_dir / p).shape[1] for p in subset.melspec_paths]
    ).all()


def test_every_tag_appears_in_a_subset_of_56_or_more(small_demo):
    _, meta_dir = demo.demo_paths(small_demo)
    assert metadata.read_subset(meta_dir, 0, "validation").labels.any(axis=0).all()


def test_each_tag_plants_its_band_and_shape(small_demo):
    data_dir, meta_dir = demo.demo_paths(small_demo)
    subset = metadata.read_subset(meta_dir, 0, "train")
    for tag in (0, 20, 55):
        centre, _ = demo.tag_pattern(tag)
        band = int(round(centre))
        energy = np.array([np.load(data_dir / p)[band].mean() for p in subset.melspec_paths])
        with_tag, without = energy[subset.labels[:, tag]], energy[~subset.labels[:, tag]]
        assert with_tag.min() > np.median(without), f"tag {tag} is visible in band {band}"
    patterns = {demo.tag_pattern(t) for t in range(56)}
    assert len(patterns) == 56, "every tag has its own pattern"


def test_same_seed_same_data_and_existing_folders_are_protected(tmp_path):
    a = demo.write_demo_dataset(tmp_path / "a", n_train=3, n_validation=2, n_test=2)
    b = demo.write_demo_dataset(tmp_path / "b", n_train=3, n_validation=2, n_test=2)
    np.testing.assert_array_equal(
        np.load(a / "melspecs" / "01" / "1.npy"), np.load(b / "melspecs" / "01" / "1.npy")
    )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match=r"mine: exists and is not a demo dataset"):
        demo.write_demo_dataset(tmp_path / "mine", n_train=3, n_validation=2, n_test=2)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_demo_data_command(tmp_path, capsys):
    assert (
        main(["demo-data", str(tmp_path / "d"), "--train", "2", "--validation", "2", "--test", "2"])
        == 0
    )
    assert "--data-dir" in capsys.readouterr().out
    assert main(["demo-data", str(tmp_path / "e"), "--train", "0"]) == 2
    assert "--train 0: must be at least 1" in capsys.readouterr().err
