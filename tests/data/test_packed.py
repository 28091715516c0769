"""The packed corpus: round trips, integrity checks, resumable packing, and crops identical to the
`.npy` files' for the same seed (training, evaluation, shards, the validation crop cache).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from emotion_keras.cli import main
from emotion_keras.data import packed, pipeline
from emotion_keras.data.melspec_files import PAD_VALUE, scan_melspecs
from emotion_keras.errors import DataFileError

ROOT = Path(__file__).resolve().parents[2]
T = 16  # crop length: the size is not the point
BANDS = 8
FRAMES = [40, 25, 10, 60, 33, 16, 47, 29, 18, 52]  # track 2 is shorter than a crop


def pack(root, subset, tmp_path, dtype="float32", name=None):
    out = tmp_path / (name or f"corpus-{dtype}.h5")
    packed.pack_melspecs(root, [subset], out, dtype=dtype, n_bands=BANDS)
    return out


def batches(dataset):
    return [
        tuple(np.asarray(part) for part in batch) if isinstance(batch, tuple) else np.asarray(batch)
        for batch in dataset
    ]


def test_round_trip_is_exact_in_float32_and_float16_rounding_in_float16(melspec_corpus, tmp_path):
    root, subset = melspec_corpus(FRAMES, n_bands=BANDS, values="random")
    for dtype in ("float32", "float16"):
        corpus = packed.open_packed(pack(root, subset, tmp_path, dtype))
        assert corpus.dtype == np.dtype(dtype) and corpus.n_bands == BANDS
        assert corpus.paths.tolist() == subset.melspec_paths.tolist()
        assert corpus.track_ids.tolist() == subset.track_ids.tolist()
        assert corpus.frames.tolist() == FRAMES
        for row, path in enumerate(subset.melspec_paths):
            source = np.load(root / path).T
            stored = corpus.track(row)
            assert np.array_equal(stored, source.astype(dtype))
            if dtype == "float16":  # within half a unit in the last place of float16
                assert np.allclose(stored, source, rtol=2**-11, atol=0)
        assert corpus.attrs["source"] == str(root.resolve())
        assert corpus.attrs["dtype"] == dtype
        assert packed.verify_packed(corpus.path, root, n_tracks=len(FRAMES))["checked"] == 10


def test_truncated_tampered_unfinished_or_foreign_files_get_an_error_naming_them(
    melspec_corpus, tmp_path
):
    root, subset = melspec_corpus(FRAMES, n_bands=BANDS)
    good = pack(root, subset, tmp_path)
    data = good.read_bytes()

    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[:-100])  # the dataset is written last: only its end is lost
    with pytest.raises(DataFileError, match=rf"{truncated}: truncated"):
        packed.open_packed(truncated)
    halved = tmp_path / "halved.h5"
    halved.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataFileError, match=rf"{halved}: "):
        packed.open_packed(halved)

    tampered = tmp_path / "tampered.h5"
    tampered.write_bytes(data)
    with h5py.File(tampered, "r+") as handle:
        handle["index/offset"][3] += 1
    with pytest.raises(DataFileError, match=rf"{tampered}: damaged packed file: index offsets"):
        packed.open_packed(tampered)
    with h5py.File(tampered, "r+") as handle:
        handle["index/offset"][3] -= 1
        handle["index/frames"][0] += 1
    with pytest.raises(DataFileError, match=rf"{tampered}: damaged"):
        scan_melspecs(tampered, subset, n_bands=BANDS)

    altered = tmp_path / "altered.h5"
    altered.write_bytes(data)
    corpus = packed.open_packed(altered)
    with open(altered, "r+b") as handle:  # one value of the last track changed
        handle.seek(corpus.data_offset + corpus.data_bytes - 4)
        handle.write(np.float32(1.5).tobytes())
    with pytest.raises(DataFileError, match=rf"{altered}: track .* checksum"):
        packed.verify_packed(altered, n_tracks=len(FRAMES))

    unfinished = tmp_path / "unfinished.h5"
    unfinished.write_bytes(data)
    with h5py.File(unfinished, "r+") as handle:
        handle.attrs["complete"] = False
    with pytest.raises(DataFileError, match=rf"{unfinished}: an unfinished pack"):
        packed.open_packed(unfinished)

    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle["x"] = np.zeros(3)
    with pytest.raises(DataFileError, match=rf"{foreign}: an HDF5 file but not a packed"):
        pipeline.train_dataset(foreign, subset, crop_frames=T, n_bands=BANDS)

    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(DataFileError, match=rf"{text}: not a readable packed melspec file"):
        packed.open_packed(text)


def test_a_killed_pack_leaves_no_complete_looking_file_and_resumes(melspec_corpus, tmp_path):
    root, subset = melspec_corpus(FRAMES, n_bands=BANDS, values="random")
    out = tmp_path / "corpus.h5"
    # SIGKILL after the 4th track, in a process of its own, progress recorded after every track.
    script = f"""
import os, signal
import numpy as np
from emotion_keras.data import packed
from emotion_keras.data.metadata import Subset

packed._RECORD_BYTES = 1
paths = {subset.melspec_paths.tolist()!r}
subset = Subset("test/corpus", np.array({subset.track_ids.tolist()!r}), np.array(paths),
                np.zeros(len(paths)), np.zeros((len(paths), 0), bool), ())

def killed_after_four(done, total, note):
    if note.startswith("MB (4/"):
        os.kill(os.getpid(), signal.SIGKILL)

packed.pack_melspecs({str(root)!r}, [subset], {str(out)!r}, n_bands={BANDS},
                     progress=killed_after_four)
"""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    killed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    partial = tmp_path / "corpus.h5.partial"
    assert not out.exists() and partial.is_file()
    with pytest.raises(DataFileError, match="an unfinished pack"):
        packed.open_packed(partial)

    reports = []
    result = packed.pack_melspecs(
        root, [subset], out, n_bands=BANDS, progress=lambda *a: reports.append(a)
    )
    assert result["resumed_tracks"] == 4 and result["tracks"] == len(FRAMES)
    assert not partial.exists() and not (tmp_path / "corpus.h5.partial.json").exists()
    assert reports[-1][0] == reports[-1][1] and "MB/s" in reports[-1][2]
    fresh = pack(root, subset, tmp_path, "float16", name="fresh.h5")
    resumed = packed.open_packed(out)
    for row in range(len(FRAMES)):
        assert np.array_equal(resumed.track(row), packed.open_packed(fresh).track(row))
    assert packed.verify_packed(out, root, n_tracks=len(FRAMES))["checked"] == len(FRAMES)


def test_packed_crops_equal_npy_crops_for_the_same_seed(melspec_corpus, tmp_path):
    root, subset = melspec_corpus(FRAMES, n_bands=BANDS)  # coded values: exact in float32
    packed_file = pack(root, subset, tmp_path, "float32")
    assert scan_melspecs(packed_file, subset, n_bands=BANDS).tolist() == FRAMES

    def training(data_dir, **settings):
        dataset = pipeline.train_dataset(
            data_dir, subset, crop_frames=T, batch_size=4, n_bands=BANDS, seed=7, **settings
        )
        return batches(dataset) + batches(dataset)  # two epochs

    for settings in ({}, {"shard": (3, 1)}, {"shard": (2, 0), "global_batch": 4}):
        from_npy, from_packed = training(root, **settings), training(packed_file, **settings)
        assert len(from_npy) == len(from_packed) > 0
        for (x_npy, y_npy), (x_packed, y_packed) in zip(from_npy, from_packed):
            assert x_packed.dtype == np.float32
            assert np.array_equal(x_npy, x_packed) and np.array_equal(y_npy, y_packed)

    def evaluation(data_dir):
        return np.concatenate(
            batches(
                pipeline.eval_dataset(
                    data_dir, subset, n_crops=3, crop_frames=T, batch_size=4, n_bands=BANDS
                )
            )
        )

    short = evaluation(packed_file)[6:9]  # track 2's crops: 10 frames, then padding
    assert (short[:, :, 10:] == PAD_VALUE).all() and (short[:, :, :10] != PAD_VALUE).all()
    assert np.array_equal(evaluation(root), evaluation(packed_file))


def test_the_reader_preads_frames_major_crops_that_bands_major_turns_into_the_npy_crops(
    melspec_corpus, tmp_path
):
    """The packed reader hands on crops as the file holds them (frames-major); the pipeline's
    TensorFlow transposition and NumPy's (`crops.bands_major`, for callers without TensorFlow)
    both give the `.npy` reader's batch."""
    import tensorflow as tf

    from emotion_keras.data.crops import CropReader, bands_major, open_reader

    root, subset = melspec_corpus(FRAMES, n_bands=BANDS)
    packed_file = pack(root, subset, tmp_path, "float32")
    n_frames = np.array(FRAMES)
    settings = dict(crop_frames=T, n_bands=BANDS)
    reader = open_reader(packed_file, subset, n_frames, **settings)
    assert isinstance(reader, packed.PackedCropReader) and reader.frames_major
    tracks = np.array([0, 2, 3, 2, 9])
    starts = np.array([24, 0, 44, 9, 0])  # track 2 (10 frames) is padded; 44 + 16 = 60 ends 3
    crops = reader.read(tracks, starts)
    assert crops.shape == (5, T, BANDS) and crops.dtype == np.float32
    corpus = packed.open_packed(packed_file)
    assert np.array_equal(crops[0], corpus.track(0)[24 : 24 + T])
    assert np.array_equal(crops[2], corpus.track(3)[44:60])
    assert (crops[3, 1:] == PAD_VALUE).all() and np.array_equal(crops[3, 0], corpus.track(2)[9])
    expected = CropReader(root, subset, n_frames, **settings).read(tracks, starts)
    assert np.array_equal(bands_major(crops), expected)
    assert np.array_equal(pipeline.bands_major(tf.constant(crops)).numpy(), expected)


def test_the_transposition_keeps_every_16_bit_pattern():
    """float16 crops are moved as bfloat16 (faster in TensorFlow): a bitcast both ways, so every
    value comes out with its own bits, NaN payloads and signed zeros included."""
    import tensorflow as tf

    patterns = np.arange(2**16, dtype=np.uint16).reshape(16, 64, 64)  # [batch, frames, bands]
    moved = pipeline.bands_major(tf.constant(patterns.view(np.float16))).numpy()
    assert moved.dtype == np.float16
    assert np.array_equal(moved.view(np.uint16), patterns.transpose(0, 2, 1))


def test_a_packed_file_cut_short_during_a_run_is_named(melspec_corpus, tmp_path):
    root, subset = melspec_corpus(FRAMES, n_bands=BANDS)
    packed_file = pack(root, subset, tmp_path)
    n_frames = scan_melspecs(packed_file, subset, n_bands=BANDS)
    dataset = pipeline.train_dataset(
        packed_file, subset, n_frames, crop_frames=T, batch_size=4, n_bands=BANDS
    )
    corpus = packed.open_packed(packed_file)
    os.truncate(packed_file, corpus.data_offset + corpus.data_bytes // 2)
    with pytest.raises(DataFileError, match=rf"{packed_file}: truncated"):
        with pipeline.data_errors():
            batches(dataset)


def test_whole_tracks_and_sliding_windows_read_from_a_packed_file_as_from_npy(
    melspec_corpus, tmp_path
):
    """`eval_mode` "track" and "windows" (short-crop models) work on a packed corpus too."""
    root, subset = melspec_corpus(FRAMES, n_bands=BANDS)
    packed_file = pack(root, subset, tmp_path, "float32")

    def whole_tracks(data_dir):
        return batches(pipeline.whole_track_dataset(data_dir, subset, min_frames=T, n_bands=BANDS))

    from_npy, from_packed = whole_tracks(root), whole_tracks(packed_file)
    assert [x.shape[2] for x in from_packed] == [max(f, T) for f in FRAMES]
    for x_npy, x_packed in zip(from_npy, from_packed):
        assert x_packed.dtype == np.float32 and np.array_equal(x_npy, x_packed)

    def windows(data_dir):
        return np.concatenate(
            batches(
                pipeline.eval_dataset(
                    data_dir, subset, crop_frames=T, batch_size=4, n_bands=BANDS, hop_frames=8
                )
            )
        )

    assert np.array_equal(windows(root), windows(packed_file))


def test_float16_packed_crops_are_the_npy_crops_rounded(melspec_corpus, tmp_path):
    root, subset = melspec_corpus(FRAMES, n_bands=BANDS, values="random")
    packed_file = pack(root, subset, tmp_path, "float16")
    for shard in (None, (2, 1)):
        settings = dict(crop_frames=T, batch_size=3, n_bands=BANDS, seed=2, shard=shard)
        from_npy = batches(pipeline.train_dataset(root, subset, **settings))
        from_packed = batches(pipeline.train_dataset(packed_file, subset, **settings))
        for (x_npy, _), (x_packed, _) in zip(from_npy, from_packed, strict=True):
            assert x_packed.dtype == np.float32
            assert np.array_equal(x_npy.astype(np.float16).astype(np.float32), x_packed)
    # For a float16 compute dtype the stored values pass through uncast.
    settings = dict(crop_frames=T, batch_size=3, n_bands=BANDS, seed=2)
    as_stored = batches(pipeline.train_dataset(packed_file, subset, dtype="float16", **settings))
    as_float32 = batches(pipeline.train_dataset(packed_file, subset, **settings))
    for (x16, _), (x32, _) in zip(as_stored, as_float32, strict=True):
        assert x16.dtype == np.float16 and np.array_equal(x16.astype(np.float32), x32)


def test_shards_over_a_packed_file_cover_each_epoch_once(melspec_corpus, tmp_path):
    root, subset = melspec_corpus(FRAMES, n_bands=BANDS)
    packed_file = pack(root, subset, tmp_path)
    seen = []
    for index in range(3):
        dataset = pipeline.train_dataset(
            packed_file,
            subset,
            crop_frames=T,
            batch_size=2,
            n_bands=BANDS,
            seed=5,
            shard=(3, index),
        )
        for x, _ in batches(dataset):
            seen += (x[:, 0, 0, 0].astype(np.int64) // 100_000).tolist()  # coded track index
    assert sorted(seen) == list(range(len(FRAMES)))


def test_a_subset_not_in_the_packed_file_is_named(melspec_corpus, tmp_path):
    root, subset = melspec_corpus(FRAMES, n_bands=BANDS)
    packed_file = pack(root, subset.head(4), tmp_path)
    with pytest.raises(DataFileError, match=r"6 of 10 tracks of test/corpus are not in"):
        scan_melspecs(packed_file, subset, n_bands=BANDS)
    with pytest.raises(DataFileError, match=r"holds 8 mel bands, the run expects 96"):
        scan_melspecs(packed_file, subset.head(4))


@pytest.mark.parametrize("where", ["ram", "disk"])
@pytest.mark.parametrize("source", ["npy", "packed"])
def test_validation_crop_cache_serves_later_passes_from_memory_or_disk(
    melspec_corpus, tmp_path, source, where
):
    root, subset = melspec_corpus(FRAMES, n_bands=BANDS, values="random")
    data_dir = root if source == "npy" else pack(root, subset, tmp_path, "float16")
    n_frames = scan_melspecs(data_dir, subset, n_bands=BANDS)
    settings = dict(n_crops=3, crop_frames=T, batch_size=4, n_bands=BANDS)
    expected = batches(pipeline.eval_dataset(data_dir, subset, n_frames, **settings))
    spill_dir = tmp_path / "run"
    spill_dir.mkdir()
    # On disk: less RAM than the crops need, and a folder to keep them in instead.
    cache = pipeline.CropCache(max_bytes=2**20 if where == "ram" else 1000, spill_dir=spill_dir)
    first = batches(pipeline.eval_dataset(data_dir, subset, n_frames, cache=cache, **settings))
    assert cache.complete and cache.nbytes == 8 * 4 * BANDS * T * (4 if source == "npy" else 2)
    assert cache.on_disk == (where == "disk")
    assert list(spill_dir.iterdir()) == []  # the file is unlinked from the start
    # The values are gone (files deleted, packed data zeroed): a later pass can only come from
    # the cache.
    for path in subset.melspec_paths:
        (root / path).unlink()
    if source == "packed":
        corpus = packed.open_packed(data_dir)
        with open(data_dir, "r+b") as handle:
            handle.seek(corpus.data_offset)
            handle.write(bytes(corpus.data_bytes))
    later = batches(pipeline.eval_dataset(data_dir, subset, n_frames, cache=cache, **settings))
    for a, b, c in zip(expected, first, later, strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, c)
        assert a.dtype == b.dtype == c.dtype == np.float32
    if source == "packed":  # and without the cache the zeroed data is read
        uncached = batches(pipeline.eval_dataset(data_dir, subset, n_frames, **settings))
        assert not np.array_equal(uncached[0], expected[0])


def test_crops_that_fit_neither_ram_nor_the_disk_are_read_every_time(
    melspec_corpus, tmp_path, monkeypatch, caplog
):
    root, subset = melspec_corpus(FRAMES, n_bands=BANDS)
    settings = dict(n_crops=2, crop_frames=T, batch_size=4, n_bands=BANDS)
    monkeypatch.setattr(pipeline.CropCache, "SPILL_MARGIN_BYTES", 2**62)  # no disk is that big
    cache = pipeline.CropCache(max_bytes=1000, spill_dir=tmp_path)
    expected = batches(pipeline.eval_dataset(root, subset, **settings))
    with caplog.at_level("INFO", logger="emotion_keras"):
        for _ in range(2):
            got = batches(pipeline.eval_dataset(root, subset, cache=cache, **settings))
            assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))
    assert not cache.complete and cache.nbytes == 0
    said = [r.getMessage() for r in caplog.records if "cannot be kept" in r.getMessage()]
    assert len(said) == 1 and str(tmp_path) in said[0] and "MB free" in said[0]


def test_crops_that_do_not_fit_the_cache_are_read_every_time(melspec_corpus):
    root, subset = melspec_corpus(FRAMES, n_bands=BANDS)
    settings = dict(n_crops=2, crop_frames=T, batch_size=4, n_bands=BANDS)
    small = pipeline.CropCache(max_bytes=1000)
    expected = batches(pipeline.eval_dataset(root, subset, **settings))
    for _ in range(2):
        got = batches(pipeline.eval_dataset(root, subset, cache=small, **settings))
        assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))
    assert not small.complete and small.nbytes == 0


def test_pack_command_prints_size_rate_and_verification(tmp_path, capsys):
    from emotion_keras.data import demo

    demo.write_demo_dataset(tmp_path / "demo", n_train=4, n_validation=3, n_test=2)
    data_dir, meta_dir = demo.demo_paths(tmp_path / "demo")
    out = tmp_path / "corpus.h5"
    args = ["melspecs", "pack", str(data_dir), "--meta-dir", str(meta_dir), "--out", str(out)]
    assert main([*args, "--subset", "split-0/validation", "--verify", "2"]) == 0
    printed = capsys.readouterr().out
    assert "3 tracks" in printed and "MB/s" in printed
    assert "verified 2 random tracks" in printed and "equal to float16 rounding" in printed
    assert main(args + ["--dtype", "float32", "--verify", "9"]) == 0
    assert "9 tracks" in capsys.readouterr().out
    assert main(args + ["--subset", "split-0/dev"]) == 2
    assert "--subset 'split-0/dev'" in capsys.readouterr().err
    missing = ["melspecs", "pack", str(tmp_path / "nowhere"), "--meta-dir", str(meta_dir)]
    assert main([*missing, "--out", str(out)]) == 2
    assert "SRC_DIR" in capsys.readouterr().err


@pytest.mark.slow
def test_a_model_validates_the_same_from_float16_packed_and_float32_npy_crops(tmp_path):
    """Same trained model, same seed, same regular crops: ROC-AUC-macro within 0.005.

    The input precision is compared on one trained model. Two training runs (one per source)
    are not: float16 rounding perturbs every gradient a little, and on a demo this small (a
    few steps, 24 validation tracks, near-tied predictions) the runs' AUCs differ by more than
    0.005 from that divergence alone (see the report of issue 15).
    """
    from emotion_keras import training
    from emotion_keras.config import Config
    from emotion_keras.data import demo, metadata
    from emotion_keras.evaluation.metrics import auc_scores
    from emotion_keras.rundir import load_run

    demo.write_demo_dataset(tmp_path / "demo", n_train=48, n_validation=48, n_test=2)
    data_dir, meta_dir = demo.demo_paths(tmp_path / "demo")
    corpus = tmp_path / "corpus.h5"
    packed.pack_melspecs(data_dir, packed.pack_subsets(meta_dir, ["split-0/validation"]), corpus)
    config = Config(
        model="vgg6",
        data_dir=str(data_dir),
        meta_dir=str(meta_dir),
        epochs=3,
        batch_size=8,
        val_crops=2,
        seed=3,
    )
    training.train(config, tmp_path / "run", verbose=0)
    model = load_run(tmp_path / "run").model
    val_set = metadata.read_subset(meta_dir, 0, "validation")

    def roc_auc_macro(source):
        predictions = pipeline.predict_tracks(model, source, val_set, n_crops=4, batch_size=8)
        return predictions, auc_scores(val_set.labels, predictions)[0]["roc_auc_macro"]

    from_npy, auc_npy = roc_auc_macro(data_dir)
    from_packed, auc_packed = roc_auc_macro(corpus)
    print(
        f"validation ROC-AUC-macro: float32 .npy {auc_npy:.4f}, float16 packed {auc_packed:.4f}; "
        f"largest prediction difference {np.abs(from_npy - from_packed).max():.2e}"
    )
    assert not np.array_equal(from_npy, from_packed)  # the rounding is there ...
    assert abs(auc_npy - auc_packed) <= 0.005  # ... and does not change the figure
