"""The tf.data pipelines: crop positions, labels, padding, seeds, crop averaging, bad files.

The `melspec_corpus` fixture (conftest.py) writes tracks whose values encode
`track * 100_000 + band * 10_000 + frame`, so every crop says where it came from.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from emotion_keras.data import pipeline
from emotion_keras.data.melspec_files import PAD_VALUE, scan_melspecs
from emotion_keras.errors import ConfigError, DataFileError

T = 16  # crop length in these tests: the size is not the point
BANDS = 8


def decode(x):
    """(track, band, frame) of every value of coded crops `[batch, bands, T, 1]`."""
    v = np.asarray(x)[..., 0].astype(np.int64)
    return v // 100_000, v % 100_000 // 10_000, v % 10_000


def one_epoch(dataset):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(xs), np.concatenate(ys)


def crop_origin(crops):
    """(track, start) of each coded crop, after checking it is one contiguous window."""
    track, band, frame = decode(crops)
    assert (track == track[:, :1, :1]).all(), "a crop mixes tracks"
    np.testing.assert_array_equal(
        band, np.broadcast_to(np.arange(crops.shape[1])[None, :, None], band.shape)
    )
    starts = frame[:, 0, 0]
    np.testing.assert_array_equal(
        frame, np.broadcast_to(starts[:, None, None] + np.arange(crops.shape[2]), frame.shape)
    )
    return track[:, 0, 0], starts


# --- crop positions -----------------------------------------------------------------------------


def test_regular_crops_cover_track_start_and_end():
    np.testing.assert_array_equal(pipeline.regular_crop_starts(100, 10, 4), [0, 30, 60, 90])
    n_frames = np.array([1280, 1408, 9511, 184_281])
    starts = pipeline.regular_crop_starts(n_frames, 1280, 10)
    assert starts.shape == (4, 10) and starts.dtype == np.int64
    np.testing.assert_array_equal(starts[:, 0], 0)
    np.testing.assert_array_equal(starts[:, -1] + 1280, n_frames)
    for n, row in zip(n_frames, starts):
        np.testing.assert_array_equal(row, [i * (n - 1280) // 9 for i in range(10)])


def test_single_regular_crop_is_centred_and_short_tracks_start_at_zero():
    np.testing.assert_array_equal(pipeline.regular_crop_starts([100, 101], 10, 1), [[45], [45]])
    np.testing.assert_array_equal(pipeline.regular_crop_starts([3, 10], 10, 5), np.zeros((2, 5)))
    with pytest.raises(ConfigError, match="n_crops 0: must be at least 1"):
        pipeline.regular_crop_starts(100, 10, 0)


def test_random_crop_starts_are_uniform_over_every_valid_position():
    starts = pipeline.random_crop_start(np.full(10_000, 20), 16, np.arange(-5_000, 5_000))
    assert starts.min() == 0 and starts.max() == 4  # 20 - 16, both ends included
    np.testing.assert_array_equal(np.bincount(starts), [2000] * 5)
    np.testing.assert_array_equal(pipeline.random_crop_start([5, 16], 16, [123, 456]), [0, 0])


# --- training -----------------------------------------------------------------------------------


def test_training_batches_have_static_crop_shape_and_float_multi_hot_labels(melspec_corpus):
    root, subset = melspec_corpus([40] * 5)
    dataset = pipeline.train_dataset(root, subset, crop_frames=T, batch_size=2, n_bands=BANDS)
    x_spec, y_spec = dataset.element_spec
    assert x_spec.shape.as_list() == [None, BANDS, T, 1] and x_spec.dtype == "float32"
    assert y_spec.shape.as_list() == [None, 6] and y_spec.dtype == "float32"
    static = pipeline.train_dataset(
        root, subset, crop_frames=T, batch_size=2, n_bands=BANDS, drop_remainder=True
    )
    assert static.element_spec[0].shape.as_list() == [2, BANDS, T, 1]
    assert sum(int(x.shape[0]) for x, _ in static) == 4


def test_an_epoch_reads_one_crop_of_every_track_with_its_labels(melspec_corpus):
    frames = [16, 17, 30, 55, 100, 16, 400, 21, 64, 90, 33]
    root, subset = melspec_corpus(frames)
    dataset = pipeline.train_dataset(root, subset, crop_frames=T, batch_size=4, n_bands=BANDS)
    x, y = one_epoch(dataset)
    tracks, starts = crop_origin(x)
    assert sorted(tracks) == list(range(len(frames)))
    assert (starts >= 0).all() and (starts + T <= np.array(frames)[tracks]).all()
    np.testing.assert_array_equal(y, subset.labels[tracks].astype(np.float32))


def test_every_epoch_reshuffles_and_draws_new_crops(melspec_corpus):
    root, subset = melspec_corpus([500] * 24)
    dataset = pipeline.train_dataset(
        root, subset, crop_frames=T, batch_size=8, n_bands=BANDS, n_epochs=2
    )
    tracks, starts = crop_origin(one_epoch(dataset)[0])
    (tracks1, tracks2), (starts1, starts2) = np.split(tracks, 2), np.split(starts, 2)
    assert sorted(tracks1) == sorted(tracks2) == list(range(24))
    assert list(tracks1) != list(tracks2)
    by_track1, by_track2 = dict(zip(tracks1, starts1)), dict(zip(tracks2, starts2))
    assert sum(by_track1[t] != by_track2[t] for t in range(24)) > 20


def test_an_epoch_is_a_pure_function_of_seed_and_epoch(melspec_corpus):
    """What a resumed run relies on: epoch e is the same crops in the same order whether it is
    read after e earlier epochs in one pass, alone, or again; another seed changes it."""
    root, subset = melspec_corpus([300] * 12)

    def epochs(seed, first_epoch, n_epochs):
        dataset = pipeline.train_dataset(
            root,
            subset,
            crop_frames=T,
            batch_size=5,
            n_bands=BANDS,
            seed=seed,
            first_epoch=first_epoch,
            n_epochs=n_epochs,
        )
        tracks, starts = crop_origin(one_epoch(dataset)[0])
        return list(zip(np.split(tracks, n_epochs), np.split(starts, n_epochs)))

    in_one_pass = epochs(3, 0, 3)
    for epoch in range(3):
        for again in (epochs(3, epoch, 1)[0], epochs(3, epoch, 1)[0]):
            np.testing.assert_array_equal(again[0], in_one_pass[epoch][0])
            np.testing.assert_array_equal(again[1], in_one_pass[epoch][1])
    np.testing.assert_array_equal(epochs(3, 1, 2)[1][1], in_one_pass[2][1])
    other = epochs(4, 0, 1)[0]
    assert not np.array_equal(other[0], in_one_pass[0][0]) or not np.array_equal(
        other[1], in_one_pass[0][1]
    )
    # Batches never span two epochs: 12 tracks in batches of 5 are 5, 5, 2 per epoch.
    dataset = pipeline.train_dataset(
        root, subset, crop_frames=T, batch_size=5, n_bands=BANDS, n_epochs=2
    )
    assert [int(x.shape[0]) for x, _ in dataset] == [5, 5, 2] * 2
    assert pipeline.steps_per_epoch(12, 5) == 3


def test_without_shuffle_tracks_come_in_subset_order(melspec_corpus):
    root, subset = melspec_corpus([50] * 7)
    dataset = pipeline.train_dataset(
        root, subset, crop_frames=T, batch_size=3, n_bands=BANDS, shuffle=False
    )
    tracks, _ = crop_origin(one_epoch(dataset)[0])
    np.testing.assert_array_equal(tracks, range(7))


def test_short_track_is_padded_and_exact_length_track_is_not(melspec_corpus):
    root, subset = melspec_corpus([5, T])
    x, _ = one_epoch(
        pipeline.train_dataset(
            root, subset, crop_frames=T, batch_size=2, n_bands=BANDS, shuffle=False
        )
    )
    short, exact = x[0, ..., 0], x[1, ..., 0]
    track, band, frame = decode(x[:1, :, :5])
    np.testing.assert_array_equal(frame[0], np.broadcast_to(np.arange(5), (BANDS, 5)))
    np.testing.assert_array_equal(short[:, 5:], PAD_VALUE)
    np.testing.assert_array_equal(crop_origin(x[1:])[1], [0])
    assert (exact != PAD_VALUE).all()


def test_shards_split_each_shuffled_epoch_between_workers(melspec_corpus):
    root, subset = melspec_corpus([40] * 10)

    def shard(index, **settings):
        dataset = pipeline.train_dataset(
            root, subset, crop_frames=T, batch_size=4, n_bands=BANDS, shard=(3, index), **settings
        )
        return list(crop_origin(one_epoch(dataset)[0])[0])

    assert shard(1, shuffle=False) == [1, 4, 7]
    shards = [shard(index, seed=3) for index in range(3)]
    assert sorted(sum(shards, [])) == list(range(10))
    assert shards[1] != [1, 4, 7]  # positions in the shuffled epoch, not fixed tracks
    with pytest.raises(ConfigError, match=r"shard=\(2, 2\)"):
        pipeline.train_dataset(root, subset, crop_frames=T, n_bands=BANDS, shard=(2, 2))


# --- evaluation ---------------------------------------------------------------------------------


def test_eval_crops_are_regular_in_track_order_in_full_batches(melspec_corpus):
    frames = [16, 40, 100, 7, 61]
    root, subset = melspec_corpus(frames)
    dataset = pipeline.eval_dataset(
        root, subset, n_crops=3, crop_frames=T, batch_size=4, n_bands=BANDS
    )
    assert dataset.element_spec.shape.as_list() == [4, BANDS, T, 1]
    x = np.concatenate([batch.numpy() for batch in dataset])
    assert len(x) == 16  # 15 crops, the last batch filled up with a repeat of the last crop
    np.testing.assert_array_equal(x[15], x[14])
    real = x[:15]
    tracks = decode(real)[0][:, 0, 0]
    np.testing.assert_array_equal(tracks, np.repeat(range(5), 3))
    expected = [i * max(n - T, 0) // 2 for n in frames for i in range(3)]
    np.testing.assert_array_equal(decode(real)[2][:, 0, 0], expected)
    np.testing.assert_array_equal(real[9:12, :, 7:, 0], PAD_VALUE)  # track 3 has 7 frames


def crop_model(n_tags, seed=0):
    inputs = keras.Input((BANDS, T, 1), name="melspec")
    flat = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(n_tags, activation="sigmoid", name="tags")(flat)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.02, (BANDS * T, n_tags)), rng.normal(0, 0.1, n_tags)])
    return model


def numpy_reference(model, root, subset, n_crops):
    """Crop-averaged predictions computed the plain way: load whole files, pad, slice."""
    weights, bias = model.get_weights()
    predictions = []
    for path in subset.melspec_paths:
        melspec = np.load(root / path).astype(np.float64)
        n = melspec.shape[1]
        padded = np.pad(melspec, [(0, 0), (0, max(T - n, 0))], constant_values=-200.0)
        starts = [0] * n_crops if n <= T else [i * (n - T) // (n_crops - 1) for i in range(n_crops)]
        crops = np.stack([padded[:, s : s + T].reshape(-1) for s in starts])
        predictions.append((1 / (1 + np.exp(-(crops @ weights + bias)))).mean(axis=0))
    return np.array(predictions)


def test_crop_averaged_predictions_equal_a_plain_numpy_reference(melspec_corpus):
    root, subset = melspec_corpus([16, 90, 5, 300, 41, 17, 250], values="random")
    model = crop_model(n_tags=6)
    predicted = pipeline.predict_tracks(
        model, root, subset, n_crops=4, crop_frames=T, batch_size=5, n_bands=BANDS
    )
    assert predicted.shape == (7, 6) and predicted.dtype == np.float32
    np.testing.assert_allclose(
        predicted, numpy_reference(model, root, subset, 4), rtol=1e-5, atol=1e-6
    )


# --- sliding windows (eval_mode "windows") ------------------------------------------------------


def test_sliding_windows_cover_the_whole_track_and_end_at_its_end():
    np.testing.assert_array_equal(pipeline.sliding_window_starts(100, 10, 10), np.arange(0, 91, 10))
    np.testing.assert_array_equal(
        pipeline.sliding_window_starts(105, 10, 10), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95]
    )
    np.testing.assert_array_equal(pipeline.sliding_window_starts(30, 10, 5), [0, 5, 10, 15, 20])
    np.testing.assert_array_equal(pipeline.sliding_window_starts(10, 10, 4), [0])
    np.testing.assert_array_equal(pipeline.sliding_window_starts(3, 10, 4), [0])  # padded
    for n, hop in [(1366, 128), (1280, 64), (9511, 100), (129, 128)]:
        starts = pipeline.sliding_window_starts(n, 128, hop)
        covered = np.zeros(n, bool)
        for start in starts:
            covered[start : start + 128] = True
        assert covered.all() and starts[-1] == n - 128 and (np.diff(starts) <= hop).all()


def windows_reference(model, root, subset, hop):
    """Per-track mean of the model's outputs on each sliding window, computed window by window."""
    predictions = []
    for path in subset.melspec_paths:
        melspec = np.load(root / path).astype(np.float32)
        n = melspec.shape[1]
        padded = np.pad(melspec, [(0, 0), (0, max(T - n, 0))], constant_values=-200.0)
        starts = pipeline.sliding_window_starts(n, T, hop)
        outputs = [
            np.asarray(model(padded[None, :, s : s + T, None], training=False))[0] for s in starts
        ]
        predictions.append(np.mean(outputs, axis=0))
    return np.array(predictions)


def test_eval_windows_are_read_track_by_track_in_full_batches(melspec_corpus):
    frames = [16, 40, 7, 61]
    root, subset = melspec_corpus(frames)
    dataset = pipeline.eval_dataset(
        root, subset, crop_frames=T, batch_size=4, n_bands=BANDS, hop_frames=10
    )
    x = np.concatenate([batch.numpy() for batch in dataset])
    windows = [pipeline.sliding_window_starts(n, T, 10) for n in frames]
    n_windows = sum(map(len, windows))  # 1 + 4 + 1 + 6
    assert len(x) == 12 and n_windows == 12
    tracks, band, frame = decode(x)
    np.testing.assert_array_equal(tracks[:, 0, 0], np.repeat(range(4), list(map(len, windows))))
    np.testing.assert_array_equal(frame[:, 0, 0], np.concatenate(windows))
    np.testing.assert_array_equal(x[5, :, 7:, 0], PAD_VALUE)  # track 2 has 7 frames


@pytest.mark.parametrize("hop", [T, 5])
def test_window_averaged_predictions_are_the_mean_of_per_window_predictions(melspec_corpus, hop):
    root, subset = melspec_corpus([16, 90, 5, 300, 41], values="random")
    model = crop_model(n_tags=6)
    predicted = pipeline.predict_tracks(
        model, root, subset, crop_frames=T, batch_size=7, n_bands=BANDS, hop_frames=hop
    )
    assert predicted.shape == (5, 6) and predicted.dtype == np.float32
    np.testing.assert_allclose(
        predicted, windows_reference(model, root, subset, hop), rtol=1e-5, atol=1e-6
    )


def any_length_model(n_tags=6):
    inputs = keras.Input((BANDS, None, 1), name="melspec")
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(n_tags, activation="sigmoid", name="tags")(x))


def test_whole_tracks_are_read_one_per_batch_padded_to_the_crop(melspec_corpus):
    frames = [16, 40, 7]
    root, subset = melspec_corpus(frames)
    dataset = pipeline.whole_track_dataset(root, subset, min_frames=T, n_bands=BANDS)
    batches = [batch.numpy() for batch in dataset]
    assert [b.shape for b in batches] == [(1, BANDS, 16, 1), (1, BANDS, 40, 1), (1, BANDS, 16, 1)]
    track, _, frame = decode(batches[1])
    assert (track == 1).all() and (frame[0, 0] == np.arange(40)).all()
    np.testing.assert_array_equal(batches[2][0, :, 7:, 0], PAD_VALUE)


def test_whole_track_predictions_are_one_pass_per_track(melspec_corpus):
    root, subset = melspec_corpus([16, 90, 5, 300], values="random")
    model = any_length_model()
    predicted = pipeline.predict_whole_tracks(model, root, subset, min_frames=T, n_bands=BANDS)
    expected = []
    for path in subset.melspec_paths:
        melspec = np.load(root / path)
        padded = np.pad(
            melspec, [(0, 0), (0, max(T - melspec.shape[1], 0))], constant_values=-200.0
        )
        expected.append(np.asarray(model(padded[None, ..., None], training=False))[0])
    assert predicted.shape == (4, 6) and predicted.dtype == np.float32
    np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-6)


def test_predict_tracks_works_from_a_callback_during_fit(melspec_corpus):
    root, subset = melspec_corpus([40, 60, 80, 33, 20], values="random")
    model = crop_model(n_tags=6)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    seen = []

    class Validate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(
                pipeline.predict_tracks(
                    self.model, root, subset, n_crops=3, crop_frames=T, batch_size=4, n_bands=BANDS
                )
            )

    # As the trainer does: one dataset over consecutive epochs, its step count given to fit.
    train = pipeline.train_dataset(
        root, subset, crop_frames=T, batch_size=2, n_bands=BANDS, n_epochs=None
    )
    steps = pipeline.steps_per_epoch(len(subset), 2)
    model.fit(
        train, epochs=2, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=[Validate()]
    )
    assert len(seen) == 2 and not np.allclose(seen[0], seen[1])
    np.testing.assert_allclose(
        seen[-1], numpy_reference(model, root, subset, 3), rtol=1e-5, atol=1e-6
    )


# --- bad input ----------------------------------------------------------------------------------


def test_start_up_scan_reports_all_bad_files_before_the_first_epoch(melspec_corpus):
    root, subset = melspec_corpus([40] * 4)
    (root / subset.melspec_paths[1]).unlink()
    np.save(root / subset.melspec_paths[3], np.zeros((3, 40), dtype=np.float32))
    with pytest.raises(
        DataFileError,
        match=r"2 of 4 melspec files of test/corpus are unusable: "
        r"01/1\.npy \(melspec file not found\); 03/3\.npy "
        r"\(expected 8 mel bands",
    ):
        pipeline.train_dataset(root, subset, crop_frames=T, n_bands=BANDS)


def truncate(path):
    with open(path, "r+b") as handle:
        handle.truncate(300)


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda path: np.save(path, np.full((BANDS, 40), np.nan, dtype=np.float32)),
            r"holds NaN or infinite values",
        ),
        (truncate, r"truncated: its header promises"),
        (
            lambda path: np.save(path, np.zeros((BANDS, 41), dtype=np.float32)),
            r"now has 41 frames, the start-up scan found 40",
        ),
    ],
)
def test_file_damaged_after_the_scan_raises_an_error_naming_it(melspec_corpus, damage, message):
    root, subset = melspec_corpus([40] * 3)
    n_frames = scan_melspecs(root, subset, n_bands=BANDS)
    dataset = pipeline.train_dataset(
        root, subset, n_frames, crop_frames=T, batch_size=2, n_bands=BANDS
    )
    damaged = root / subset.melspec_paths[2]
    damage(damaged)
    with pytest.raises(DataFileError, match=str(damaged).replace(".", r"\.") + ": " + message):
        with pipeline.data_errors():
            one_epoch(dataset)
    with pytest.raises(DataFileError, match=message):
        pipeline.predict_tracks(
            crop_model(6),
            root,
            subset,
            n_frames,
            n_crops=2,
            crop_frames=T,
            batch_size=2,
            n_bands=BANDS,
        )


def test_argument_mistakes_name_the_argument(melspec_corpus):
    root, subset = melspec_corpus([40] * 3)
    with pytest.raises(ConfigError, match="batch_size 0: must be at least 1"):
        pipeline.train_dataset(root, subset, crop_frames=T, batch_size=0, n_bands=BANDS)
    with pytest.raises(ValueError, match=r"n_frames has shape \(2,\), expected \(3,\)"):
        pipeline.eval_dataset(root, subset, [40, 40], crop_frames=T, n_bands=BANDS)


def test_batches_kept_by_the_caller_are_never_overwritten(melspec_corpus):
    # Batch buffers are recycled once TensorFlow drops them; batches still referenced must keep
    # their contents (more batches than the recycler keeps, all held until the end).
    root, subset = melspec_corpus([50] * 40)
    dataset = pipeline.train_dataset(root, subset, crop_frames=T, batch_size=3, n_bands=BANDS)
    for _ in range(2):
        held = list(dataset)
        tracks, _ = crop_origin(np.concatenate([x.numpy() for x, _ in held]))
        assert sorted(tracks) == list(range(40))


def test_frames_major_copy_gives_exactly_the_same_batches(tmp_path, melspec_corpus):
    from emotion_keras.data.melspec_files import relayout_melspecs

    root, subset = melspec_corpus([16, 40, 5, 300, 77] * 3)
    relayout_melspecs(root, tmp_path / "frames-major", n_bands=BANDS)
    for make in (
        lambda d: pipeline.train_dataset(
            d, subset, crop_frames=T, batch_size=4, n_bands=BANDS, seed=7
        ),
        lambda d: pipeline.eval_dataset(
            d, subset, n_crops=3, crop_frames=T, batch_size=4, n_bands=BANDS
        ),
    ):
        for a, b in zip(make(root), make(tmp_path / "frames-major"), strict=True):
            for x, y in zip(
                a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)
            ):
                np.testing.assert_array_equal(x.numpy(), y.numpy())
