"""The tf.data pipeline and melspec reading: crops, labels, padding, seeds, averaging, bad files."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from emotion_keras import melspec_io, pipeline
from emotion_keras.errors import DataFileError
from emotion_keras.metadata import Subset

BANDS, T = 4, 16


def make_corpus(root: Path, frames: list[int], n_tags: int = 3, bands: int = BANDS,
                dtype=np.float32) -> Subset:
    """Tracks whose value at (band b, frame f) is `1000 * track + 10 * b + f / 1000`.

    Every crop then tells which track, band and start frame it came from.
    """
    paths, labels = [], []
    for i, n in enumerate(frames):
        rel = f"{i % 100:02d}/{i}.npy"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        values = 1000.0 * i + 10.0 * np.arange(bands)[:, None] + np.arange(n)[None, :] / 1000
        np.save(root / rel, values.astype(dtype))
        paths.append(rel)
        labels.append(np.arange(n_tags) == i % n_tags)
    return Subset(name="split-0/train", track_ids=np.array([f"track_{i}" for i in
                                                              range(len(frames))]),
                  melspec_paths=np.array(paths), durations_s=np.zeros(len(frames)),
                  labels=np.array(labels), tags=tuple(f"t{j}" for j in range(n_tags)))


def decode(crop: np.ndarray) -> tuple[int, int]:
    """(track, start frame) of a crop made by `make_corpus`."""
    first = float(crop[0, 0])
    track = int(first // 1000)
    return track, int(round((first - 1000 * track) * 1000))


def test_regular_crops_cover_track_start_and_end():
    starts = pipeline.regular_crop_starts(1000, 100, 10)
    assert starts[0] == 0 and starts[-1] == 900
    np.testing.assert_array_equal(starts, [i * 900 // 9 for i in range(10)])
    assert list(pipeline.regular_crop_starts(100, 100, 3)) == [0, 0, 0]
    assert list(pipeline.regular_crop_starts(50, 100, 2)) == [0, 0]
    assert list(pipeline.regular_crop_starts(300, 100, 1)) == [100]


def test_training_crops_have_the_right_shape_labels_and_positions(tmp_path):
    frames = [16, 20, 40, 100, 33, 17]
    subset = make_corpus(tmp_path, frames)
    dataset = pipeline.train_dataset(tmp_path, subset, crop_frames=T, batch_size=4,
                                     n_bands=BANDS, seed=1)
    seen = []
    for x, y in dataset:
        assert x.shape[1:] == (BANDS, T, 1) and x.dtype == "float32" and y.dtype == "float32"
        for crop, label in zip(x.numpy()[..., 0], y.numpy()):
            track, start = decode(crop)
            assert 0 <= start <= frames[track] - T
            expected = 1000 * track + 10 * np.arange(BANDS)[:, None] + \
                (start + np.arange(T))[None, :] / 1000
            np.testing.assert_allclose(crop, expected, atol=1e-3)
            np.testing.assert_array_equal(label, subset.labels[track])
            seen.append(track)
    assert sorted(seen) == list(range(len(frames))), "one crop of every track per epoch"


def test_seed_reproduces_order_and_crops_and_epochs_differ(tmp_path):
    subset = make_corpus(tmp_path, [200] * 8)

    def epochs(seed, n=2):
        dataset = pipeline.train_dataset(tmp_path, subset, crop_frames=T, batch_size=8,
                                         n_bands=BANDS, seed=seed)
        return [[decode(c) for c in x.numpy()[..., 0]] for _ in range(n) for x, _ in dataset]

    first = epochs(5)
    assert first == epochs(5)
    assert first[0] != first[1], "each epoch has a new order and new crops"
    assert first != epochs(6)


def test_short_track_is_padded_with_silence_and_exact_length_works(tmp_path):
    subset = make_corpus(tmp_path, [10, T])
    x, _ = next(iter(pipeline.train_dataset(tmp_path, subset, crop_frames=T, batch_size=2,
                                            n_bands=BANDS, shuffle=False)))
    short, exact = x.numpy()[..., 0]
    np.testing.assert_allclose(short[:, :10], np.load(tmp_path / "00/0.npy"))
    assert (short[:, 10:] == melspec_io.SILENCE_DB).all()
    np.testing.assert_allclose(exact, np.load(tmp_path / "01/1.npy"))


class MeanModel(keras.Model):
    """Outputs, per crop, the sigmoid of the crop mean times a per-tag weight."""

    def call(self, x):
        mean = keras.ops.mean(x, axis=(1, 2, 3))[:, None] / 1000.0
        return keras.ops.sigmoid(mean * keras.ops.convert_to_tensor([[1.0, -0.5, 0.25]]))


def test_multi_crop_average_equals_numpy_reference(tmp_path):
    frames = [16, 50, 77, 20, 130]
    subset = make_corpus(tmp_path, frames)
    got = pipeline.predict_tracks(MeanModel(), tmp_path, subset, n_crops=4, crop_frames=T,
                                  batch_size=3, n_bands=BANDS)
    expected = []
    for i, n in enumerate(frames):
        track = np.load(tmp_path / subset.melspec_paths[i])
        outputs = []
        for start in [k * (n - T) // 3 for k in range(4)]:
            mean = track[:, start:start + T].mean() / 1000.0
            outputs.append(1 / (1 + np.exp(-mean * np.array([1.0, -0.5, 0.25]))))
        expected.append(np.mean(outputs, axis=0))
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-5)


def test_eval_crops_come_in_track_order_across_batches(tmp_path):
    subset = make_corpus(tmp_path, [40, 17, 64])
    crops = np.concatenate([x.numpy()[..., 0] for x in pipeline.eval_dataset(
        tmp_path, subset, n_crops=3, crop_frames=T, batch_size=4, n_bands=BANDS)])
    assert [decode(c) for c in crops] == [(0, 0), (0, 12), (0, 24), (1, 0), (1, 0), (1, 1),
                                          (2, 0), (2, 24), (2, 48)]


def test_sharding_reads_every_track_once_across_workers(tmp_path):
    subset = make_corpus(tmp_path, [20] * 7)
    tracks = []
    for index in range(2):
        dataset = pipeline.train_dataset(tmp_path, subset, crop_frames=T, batch_size=2,
                                         n_bands=BANDS, num_shards=2, shard_index=index)
        tracks += [decode(c)[0] for x, _ in dataset for c in x.numpy()[..., 0]]
    assert sorted(tracks) == list(range(7))


def test_float16_and_float64_files_are_cast(tmp_path):
    for dtype in (np.float16, np.float64):
        subset = make_corpus(tmp_path / np.dtype(dtype).name, [20], dtype=dtype)
        crop = melspec_io.read_crop(tmp_path / np.dtype(dtype).name / "00/0.npy", 0, T)
        assert crop.dtype == np.float32 and crop.shape == (BANDS, T)
        assert melspec_io.scan_melspecs(tmp_path / np.dtype(dtype).name, subset, BANDS)[0] == 20


@pytest.mark.parametrize("breaker, message", [
    (lambda p: p.unlink(), r"00/0\.npy: file not found"),
    (lambda p: p.write_bytes(p.read_bytes()[:200]), r"truncated"),
    (lambda p: p.write_bytes(b"hello, not numpy at all"), r"not a valid \.npy file"),
    (lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
     r"pickled object array"),
    (lambda p: np.save(p, np.zeros((5, 30), np.float32)), r"shape \(5, 30\), expected \[4, "),
    (lambda p: np.save(p, np.zeros((BANDS, 30), np.int16)), r"dtype int16, expected float32"),
])
def test_scan_reports_each_bad_file_with_its_problem(tmp_path, breaker, message):
    subset = make_corpus(tmp_path, [30, 30])
    breaker(tmp_path / "00/0.npy")
    with pytest.raises(DataFileError, match=r"1 of 2 melspec files of split-0/train are "
                                            r"unusable: .*" + message):
        melspec_io.scan_melspecs(tmp_path, subset, BANDS)


def test_scan_lists_all_problems_at_once(tmp_path):
    subset = make_corpus(tmp_path, [30] * 9)
    for i in range(8):
        (tmp_path / subset.melspec_paths[i]).unlink()
    with pytest.raises(DataFileError, match=r"8 of 9 .*00/0\.npy: file not found; .*and 3 more"):
        melspec_io.scan_melspecs(tmp_path, subset, BANDS)


def test_nan_in_a_crop_names_the_file(tmp_path):
    values = np.zeros((BANDS, 40), np.float32)
    values[2, 5] = np.nan
    np.save(tmp_path / "bad.npy", values)
    with pytest.raises(DataFileError, match=r"bad\.npy: holds NaN or infinite values in "
                                            r"frames 0-16"):
        melspec_io.read_crop(tmp_path / "bad.npy", 0, T)
    assert melspec_io.read_crop(tmp_path / "bad.npy", 10, T).shape == (BANDS, T)


def test_nan_during_training_surfaces_as_one_line_error(tmp_path):
    from emotion_keras.training import _data_error

    subset = make_corpus(tmp_path, [T, T])
    values = np.full((BANDS, T), np.inf, np.float32)
    np.save(tmp_path / "01/1.npy", values)
    dataset = pipeline.train_dataset(tmp_path, subset, crop_frames=T, batch_size=2,
                                     n_bands=BANDS)
    import tensorflow as tf
    with pytest.raises(tf.errors.OpError) as caught:
        list(dataset)
    error = _data_error(caught.value)
    assert isinstance(error, DataFileError)
    assert str(error).startswith(str(tmp_path / "01/1.npy") + ": holds NaN or infinite")


def test_crop_reads_only_the_crops_bytes(tmp_path):
    # A sparse 96 MB track (96 x 250,000 float32). /proc/self/io's `rchar` counts the bytes
    # this process reads through read() calls: loading the file adds all 96 MB, a crop read
    # through the memory map adds only the header.
    path = tmp_path / "big.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (96, 250_000)})
        handle.truncate(handle.tell() + 96 * 250_000 * 4)

    def bytes_read():
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])

    before = bytes_read()
    crop = melspec_io.read_crop(path, 125_000, 1280)
    by_crop = bytes_read() - before
    before = bytes_read()
    np.load(path)
    by_load = bytes_read() - before
    assert crop.shape == (96, 1280) and (crop == 0).all()
    assert by_load >= 96 * 250_000 * 4, "the reference (a plain np.load) reads every byte"
    assert by_crop < 100_000, f"reading one crop read {by_crop} bytes"
