"""Reading melspec headers and crops: exact crops, padding, casting, and every bad-input case."""

from __future__ import annotations

import pickle
import re
import resource

import numpy as np
import pytest
from numpy.lib import format as npy_format

from emotion_keras.data.melspec_files import (
    PAD_VALUE,
    MelspecFile,
    read_crop,
    read_header,
    read_npy_header,
    relayout_melspecs,
    scan_melspecs,
)
from emotion_keras.data.metadata import Subset
from emotion_keras.errors import ConfigError, DataFileError


def save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array, **kwargs)
    return path


def test_read_header_gives_shape_and_dtype_without_the_data(tmp_path):
    path = save(tmp_path / "a.npy", np.zeros((96, 1500), dtype=np.float32))
    with open(path, "r+b") as handle:  # cut the data: the header alone must still be readable
        handle.truncate(200)
    shape, dtype = read_header(path)
    assert shape == (96, 1500) and dtype == np.float32
    header = read_npy_header(path)
    assert header.data_offset == 128 and header.file_size == 200 and not header.fortran_order


def test_crop_is_exactly_the_requested_frames_of_every_band(tmp_path):
    array = np.random.default_rng(0).normal(size=(96, 3000)).astype(np.float32)
    path = save(tmp_path / "a.npy", array)
    crop = read_crop(path, 1234, 1280)
    assert crop.dtype == np.float32 and crop.shape == (96, 1280)
    np.testing.assert_array_equal(crop, array[:, 1234 : 1234 + 1280])
    np.testing.assert_array_equal(read_crop(path, 3000 - 1280, 1280), array[:, -1280:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, ">f4"])
def test_frames_major_files_give_the_same_crops(tmp_path, dtype):
    array = np.random.default_rng(1).normal(size=(8, 50)).astype(dtype)
    path = save(tmp_path / "f.npy", np.asfortranarray(array))
    assert read_npy_header(path).fortran_order
    np.testing.assert_array_equal(
        read_crop(path, 7, 20, n_bands=8), array[:, 7:27].astype(np.float32)
    )
    padded = read_crop(path, 40, 20, n_bands=8)
    np.testing.assert_array_equal(padded[:, :10], array[:, 40:].astype(np.float32))
    np.testing.assert_array_equal(padded[:, 10:], PAD_VALUE)


def test_file_shrinking_after_it_was_opened_is_an_error_not_a_crash(tmp_path):
    for name, array in (
        ("c.npy", np.zeros((8, 1000), np.float32)),
        ("f.npy", np.asfortranarray(np.zeros((8, 1000), np.float32))),
    ):
        path = save(tmp_path / name, array)
        with MelspecFile(path, n_bands=8) as melspec:
            with open(path, "r+b") as handle:
                handle.truncate(200)
            if name == "f.npy":
                with pytest.raises(DataFileError, match=r"f\.npy: truncated while reading"):
                    melspec.read_into(900, np.empty((8, 50), np.float32))
        with pytest.raises(DataFileError, match=r"truncated: its header promises"):
            read_crop(path, 900, 50, n_bands=8)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, ">f4"])
def test_float16_float64_and_big_endian_are_cast_to_float32(tmp_path, dtype):
    array = (np.arange(8 * 40).reshape(8, 40) / 4).astype(dtype)
    path = save(tmp_path / "a.npy", array)
    crop = read_crop(path, 5, 10, n_bands=8)
    assert crop.dtype == np.float32
    np.testing.assert_array_equal(crop, array[:, 5:15].astype(np.float32))


def test_short_track_is_padded_at_its_end_with_pad_value(tmp_path):
    array = np.ones((8, 30), dtype=np.float32)
    path = save(tmp_path / "short.npy", array)
    crop = read_crop(path, 0, 50, n_bands=8)
    np.testing.assert_array_equal(crop[:, :30], 1.0)
    np.testing.assert_array_equal(crop[:, 30:], PAD_VALUE)
    assert PAD_VALUE == -200.0


def test_track_of_exactly_the_crop_length_needs_no_padding(tmp_path):
    array = np.arange(8 * 50, dtype=np.float32).reshape(8, 50)
    path = save(tmp_path / "exact.npy", array)
    np.testing.assert_array_equal(read_crop(path, 0, 50, n_bands=8), array)


def test_crop_of_a_4_gb_file_reads_only_the_crop(tmp_path):
    # A sparse file whose header promises 96 x 10,000,000 float32 values (3.8 GB): reading a
    # crop must neither take long nor make the process hold anything like the file.
    path = tmp_path / "huge.npy"
    with open(path, "wb") as handle:
        npy_format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (96, 10_000_000)}
        )
        offset = handle.tell()
        handle.truncate(offset + 96 * 10_000_000 * 4)
        handle.seek(offset + (5 * 10_000_000 + 9_000_000) * 4)  # band 5, frame 9,000,000
        handle.write(np.float32(7.5).tobytes())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    crop = read_crop(path, 9_000_000, 1280)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert crop[5, 0] == 7.5 and crop.sum() == 7.5
    assert grown_mb < 50


def test_nan_outside_the_crop_is_not_read(tmp_path):
    array = np.zeros((8, 100), dtype=np.float32)
    array[:, 90:] = np.nan
    path = save(tmp_path / "a.npy", array)
    np.testing.assert_array_equal(read_crop(path, 10, 50, n_bands=8), 0.0)


# --- bad input: each case names the file and the problem ---------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_a_crop_is_an_error_naming_file_and_frames(tmp_path, value):
    array = np.zeros((8, 100), dtype=np.float32)
    array[3, 40] = value
    path = save(tmp_path / "bad.npy", array)
    with pytest.raises(
        DataFileError,
        match=r"bad\.npy: holds NaN or infinite values in frames "
        r"30-59",
    ):
        read_crop(path, 30, 30, n_bands=8)


def write_bad_files(root):
    """One file per bad-input case; returns {relative path: expected message fragment}."""
    save(root / "00/wrong_bands.npy", np.zeros((64, 100), dtype=np.float32))
    save(root / "00/one_d.npy", np.zeros(100, dtype=np.float32))
    save(root / "00/integers.npy", np.zeros((8, 100), dtype=np.int16))
    save(root / "00/pickled.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    save(root / "00/truncated.npy", np.zeros((8, 100), dtype=np.float32))
    with open(root / "00/truncated.npy", "r+b") as handle:
        handle.truncate(128 + 8 * 100 * 4 - 10)
    (root / "00/not_npy.npy").write_bytes(pickle.dumps({"not": "an array"}))
    (root / "00/empty.npy").write_bytes(b"")
    (root / "00/a_folder.npy").mkdir()
    return {
        "00/wrong_bands.npy": r"expected 8 mel bands \(shape \[8, frames\]\), found shape "
        r"\[64, 100\]",
        "00/one_d.npy": r"expected a 2-D \[8, frames\] array, found shape \[100\]",
        "00/integers.npy": r"dtype int16 is not a float type",
        "00/pickled.npy": r"pickled object array; refusing to unpickle it",
        "00/truncated.npy": r"truncated: its header promises 3,328 bytes, the file has 3,318",
        "00/not_npy.npy": r"not a valid \.npy file",
        "00/empty.npy": r"not a valid \.npy file",
        "00/a_folder.npy": r"is a directory",
        "00/missing.npy": r"melspec file not found",
    }


@pytest.fixture
def bad_corpus(tmp_path, melspec_corpus):
    root, subset = melspec_corpus([60] * 11)
    cases = write_bad_files(root)
    paths = np.array(list(cases) + list(subset.melspec_paths[:2]))
    labels = np.zeros((len(paths), subset.labels.shape[1]), dtype=bool)
    return (
        root,
        cases,
        Subset(
            name="test/bad",
            track_ids=np.array([f"t{i}" for i in range(len(paths))]),
            melspec_paths=paths,
            durations_s=np.ones(len(paths)),
            labels=labels,
            tags=subset.tags,
        ),
    )


def test_each_bad_file_is_refused_with_its_own_reason(bad_corpus):
    root, cases, _ = bad_corpus
    for relative, message in cases.items():
        with pytest.raises(
            DataFileError, match=str(root / relative).replace(".", r"\.") + ": .*" + message
        ):
            read_crop(root / relative, 0, 10, n_bands=8)


def test_scan_reports_every_bad_file_at_once(bad_corpus):
    root, cases, subset = bad_corpus
    with pytest.raises(DataFileError) as caught:
        scan_melspecs(root, subset, n_bands=8)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{root}: 9 of 11 melspec files of test/bad are unusable: ")
    listed = list(cases.items())[:5]
    for relative, fragment in listed:
        assert re.search(f"{relative} \\([^)]*{fragment}", message), relative
    assert message.endswith("and 4 more")


def test_scan_returns_frame_counts_in_subset_order(melspec_corpus):
    root, subset = melspec_corpus([30, 1280, 7, 2000], n_bands=96)
    np.testing.assert_array_equal(scan_melspecs(root, subset), [30, 1280, 7, 2000])
    assert scan_melspecs(root, subset).dtype == np.int64


def test_scan_of_a_missing_data_dir_names_the_argument(tmp_path, melspec_corpus):
    from emotion_keras.cli import render_error

    _, subset = melspec_corpus([10])
    with pytest.raises(DataFileError, match=r"^data_dir .*nowhere: not a directory") as raised:
        scan_melspecs(tmp_path / "nowhere", subset, n_bands=8)
    assert render_error(raised.value).startswith("--data-dir ")


def test_relayout_writes_the_same_arrays_frames_major_and_resumes(tmp_path, melspec_corpus):
    root, subset = melspec_corpus([30, 1, 200, 75], values="random")
    counts = relayout_melspecs(root, tmp_path / "fm", n_bands=8)
    assert counts["converted"] == 4 and counts["skipped"] == 0
    for path in subset.melspec_paths:
        copy = tmp_path / "fm" / path
        np.testing.assert_array_equal(np.load(copy), np.load(root / path))
        header = read_npy_header(copy)
        assert header.fortran_order or header.shape[1] == 1
    again = relayout_melspecs(root, tmp_path / "fm", n_bands=8)
    assert again["skipped"] == 3  # the 1-frame track is both orders; rewriting it is harmless


def test_relayout_converts_the_good_files_and_lists_the_bad(tmp_path, melspec_corpus):
    root, subset = melspec_corpus([30, 40])
    save(root / "07/bad.npy", np.zeros((3, 10), np.float32))
    with pytest.raises(
        DataFileError,
        match=r"1 of 3 files are unusable and were not converted: "
        r"07/bad\.npy \(expected 8 mel bands",
    ):
        relayout_melspecs(root, tmp_path / "fm", n_bands=8)
    assert all((tmp_path / "fm" / p).is_file() for p in subset.melspec_paths)
    with pytest.raises(ConfigError, match="must be outside the source folder"):
        relayout_melspecs(root, root / "inside", n_bands=8)
