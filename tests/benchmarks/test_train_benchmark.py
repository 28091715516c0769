"""The training benchmark: the FLOP counter against hand and TensorFlow counts, and a smoke run
of one step per input source on a tiny corpus (seconds), not a timed test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import train as train_bench
from emotion_keras.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _tiny_model():
    """Every counted layer type once: the hand count is in the test below."""
    import keras
    from keras import layers

    inputs = keras.Input((8, 16, 1))
    x = layers.BatchNormalization()(inputs)
    x = layers.Conv2D(4, 3, padding="same")(x)  # 8 x 16 x 4
    x = layers.ELU()(x)
    x = layers.MaxPooling2D((2, 2))(x)  # 4 x 8 x 4
    a = layers.Conv2D(4, 3, padding="same")(x)
    b = layers.Conv2D(4, 1, use_bias=False)(x)
    x = layers.Add()([a, b])
    x = layers.Conv2D(2, 3, strides=2, padding="valid")(x)  # 1 x 3 x 2
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, layers.Dense(3, activation="sigmoid")(x))


def test_flop_counter_matches_a_hand_count_of_a_tiny_model():
    by_hand = {
        "batch_norm": 2 * 8 * 16,  # scale and shift per element
        "conv": (
            2 * 9 * 1 * 8 * 16 * 4  # 2 x kernel volume per output
            + 2 * 9 * 4 * 4 * 8 * 4
            + 2 * 1 * 4 * 4 * 8 * 4
            + 2 * 9 * 4 * 1 * 3 * 2
        ),  # strided: only 1 x 3 outputs
        "bias": 8 * 16 * 4 + 4 * 8 * 4 + 1 * 3 * 2 + 3,  # the 1x1 conv has none
        "activation": 8 * 16 * 4 + 3,  # ELU, sigmoid
        "pooling": 4 * (4 * 8 * 4),  # 2 x 2 window per output
        "add": 4 * 8 * 4,
        "dense": 2 * 6 * 3,
    }
    model = _tiny_model()
    assert train_bench.flop_breakdown(model) == by_hand
    assert train_bench.model_flops(model) == sum(by_hand.values()) == 21_984


def test_flop_counter_refuses_a_layer_it_has_no_rule_for():
    import keras

    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.DepthwiseConv2D(3)(inputs))
    with pytest.raises(ValueError, match="no FLOP rule for layer .* DepthwiseConv2D"):
        train_bench.model_flops(model)


def _tensorflow_float_ops_by_op(model) -> dict[str, int]:
    """TensorFlow's own count of the forward graph's float operations, per op type, batch 1.

    The profiler's float-operation view, walked node by node (its "op" view does not split the
    total by type) and summed by each node's op type.
    """
    tf = pytest.importorskip("tensorflow")
    if train_bench._backend() != "tensorflow":
        pytest.skip("needs Keras's TensorFlow backend")
    spec = tf.TensorSpec((1, *model.input.shape[1:]), tf.float32)
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    profile = tf.compat.v1.profiler.profile(graph, cmd="scope", options=options)
    by_op: dict[str, int] = {}
    nodes = [profile]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.children)
        if node.float_ops:
            op_type = graph.get_operation_by_name(node.name).type
            by_op[op_type] = by_op.get(op_type, 0) + node.float_ops
    assert sum(by_op.values()) == profile.total_float_ops
    return by_op


def test_flop_counter_agrees_with_tensorflow_on_vgg6():
    from emotion_keras.models import build_model

    model = build_model("vgg6")
    ours = train_bench.flop_breakdown(model)
    theirs = _tensorflow_float_ops_by_op(model)
    # Convolutions, the dense layer, biases and pooling: exactly the same counts.
    assert theirs["Conv2D"] == ours["conv"] == 2_637_692_928
    assert theirs["MatMul"] == ours["dense"]
    assert theirs["BiasAdd"] == ours["bias"]
    assert theirs["MaxPool"] == ours["pooling"]
    # Batch norms: TensorFlow also counts the per-channel factors (rsqrt(variance + epsilon) x
    # gamma, beta - mean x factor), a few thousand FLOPs we leave out.
    batch_norm = sum(theirs[op] for op in ("AddV2", "Mul", "Rsqrt", "Sub"))
    assert 0 < batch_norm - ours["batch_norm"] < 1e-3 * ours["batch_norm"]
    # TensorFlow registers no FLOPs for Elu and Sigmoid; we count 1 per element. That is the
    # whole difference: 0.25 % of the total.
    assert "Elu" not in theirs and "Sigmoid" not in theirs
    assert train_bench.model_flops(model) - sum(theirs.values()) == (
        ours["activation"] - (batch_norm - ours["batch_norm"])
    )
    assert sum(theirs.values()) == pytest.approx(train_bench.model_flops(model), rel=0.005)


def test_variants_compare_precision_and_xla_on_tensorflow_and_precision_on_jax():
    assert train_bench._variants("tensorflow", False, None, sweep=False) == [(False, False)]
    assert train_bench._variants("jax", False, None, sweep=False) == [(False, True)]
    assert train_bench._variants("tensorflow", True, True, sweep=False) == [(True, True)]
    assert train_bench._variants("tensorflow", False, None, sweep=True) == [
        (False, False),
        (True, False),
        (False, True),
        (True, True),
    ]
    assert train_bench._variants("jax", False, None, sweep=True) == [(False, True), (True, True)]
    with pytest.raises(ConfigError, match="--sweep"):
        train_bench._variants("tensorflow", True, None, sweep=True)
    assert train_bench.precision_policy(True, gpu=True) == "mixed_float16"
    assert train_bench.precision_policy(True, gpu=False) == "mixed_bfloat16"
    assert train_bench.precision_policy(False, gpu=True) == "float32"


def test_numpy_reader_dataset_reads_shuffled_random_crops_epoch_after_epoch(tmp_path):
    from benchmarks import corpus
    from emotion_keras.data.melspec_files import scan_melspecs

    info, _ = corpus.ensure_corpus(tmp_path / "c", 4, meta_dir=None, progress=False)
    subset = corpus.corpus_subset(tmp_path / "c", info)
    data_dir = tmp_path / "c" / "melspecs"
    n_frames = scan_melspecs(data_dir, subset, n_bands=96)
    data = train_bench._numpy_reader_dataset(
        data_dir, subset, n_frames, batch_size=2, steps=5, seed=0
    )
    assert len(data) == 5
    x, y = data[0]
    assert x.shape == (2, 96, 1280, 1) and x.dtype == np.float32
    assert y.shape == (2, 56) and y.any(axis=1).all()
    epoch = np.concatenate([data[0][1], data[1][1]])  # every track once per epoch of 2 batches
    assert sorted(map(tuple, epoch)) == sorted(map(tuple, subset.labels.astype(np.float32)))
    np.testing.assert_array_equal(data[3][0], data[3][0])  # an index always reads the same


def test_numpy_reader_dataset_over_the_packed_copy_gives_the_npy_crops_rounded(tmp_path):
    from benchmarks import corpus
    from emotion_keras.data.melspec_files import scan_melspecs

    info, _ = corpus.ensure_corpus(tmp_path / "c", 4, meta_dir=None, progress=False)
    subset = corpus.corpus_subset(tmp_path / "c", info)
    packed = corpus.ensure_packed(tmp_path / "c", info, progress=False)
    assert corpus.ensure_packed(tmp_path / "c", info, progress=False) == packed  # reused
    n_frames = scan_melspecs(packed, subset, n_bands=96)
    settings = dict(batch_size=2, steps=3, seed=0)
    from_npy = train_bench._numpy_reader_dataset(
        tmp_path / "c" / "melspecs", subset, n_frames, **settings
    )
    from_packed = train_bench._numpy_reader_dataset(packed, subset, n_frames, **settings)
    x16, y = from_packed[2]
    assert x16.dtype == np.float16 and np.array_equal(y, from_npy[2][1])
    assert np.array_equal(x16, from_npy[2][0].astype(np.float16))


def test_benchmark_reports_consistent_figures_on_a_tiny_corpus(tmp_path):
    result = train_bench.run_train_benchmark(
        "baseline5",
        batch_size=2,
        steps=1,
        warmup_steps=1,
        tracks=4,
        corpus_dir=tmp_path / "c",
        meta_dir=None,
        progress=False,
    )
    for key in (
        "model",
        "batch_size",
        "precision",
        "jit_compile",
        "streaming_samples_per_s",
        "in_memory_samples_per_s",
        "input_bound_ratio",
        "train_gflop_per_sample",
        "achieved_gflop_per_s",
        "steps",
        "backend",
        "device",
        "machine",
    ):
        assert key in result, key
    assert (result["model"], result["batch_size"], result["steps"]) == ("baseline5", 2, 1)
    # XLA: off by default on TensorFlow (as training), always on on JAX.
    assert result["precision"] == "float32"
    assert result["jit_compile"] == (result["backend"] == "jax")
    assert result["streaming_samples_per_s"] > 0 and result["in_memory_samples_per_s"] > 0
    assert result["input_bound_ratio"] == pytest.approx(
        result["streaming_samples_per_s"] / result["in_memory_samples_per_s"]
    )
    assert result["input_bound_target_met"] == (result["input_bound_ratio"] >= 0.95)
    assert result["train_gflop_per_sample"] == pytest.approx(3 * result["forward_gflop_per_sample"])
    assert result["achieved_gflop_per_s"] == pytest.approx(
        result["in_memory_samples_per_s"] * result["train_gflop_per_sample"]
    )
    assert result["backend"] == train_bench._backend()
    assert result["streaming_source"].startswith(
        "tf.data pipeline" if result["backend"] == "tensorflow" else "keras.utils.PyDataset"
    )
    assert len(result["variants"]) == 1 and result["machine"]["nproc"] >= 1
    json.dumps(result)  # the --json output
    report = train_bench.format_report(result)
    assert "streaming/s" in report and "target input_bound_ratio >= 0.95" in report
    assert result["streaming_format"] == "npy float32"
    packed = train_bench.run_train_benchmark(
        "baseline5",
        batch_size=2,
        steps=1,
        warmup_steps=1,
        tracks=4,
        corpus_dir=tmp_path / "c",
        meta_dir=None,
        progress=False,
        packed=True,
    )
    assert packed["streaming_format"] == "packed float16"
    assert packed["streaming_samples_per_s"] > 0


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--model", "vgg7"], "--model 'vgg7': unknown model; valid models: baseline5, vgg6"),
        (["--batch-size", "0"], "--batch-size 0: must be at least 1"),
        (["--steps", "0"], "--steps 0: must be at least 1"),
        (["--warmup-steps", "0"], "--warmup-steps 0: must be at least 1"),
        (["--tracks", "8"], "--tracks 8: must be at least the batch size (64)"),
        (["--sweep", "--mixed-precision"], "--sweep measures every precision"),
    ],
)
def test_bench_train_command_names_the_bad_flag_in_one_line(flags, message, capsys, tmp_path):
    from benchmarks.__main__ import main

    status = main(["train", "--corpus-dir", str(tmp_path / "c"), *flags])
    error = capsys.readouterr().err
    assert status == 2
    assert error.startswith(f"benchmarks train: error: {message}")
    assert error.count("\n") == 1
    assert not (tmp_path / "c").exists()  # refused before any corpus is written


def test_bench_train_module_and_command_line_start_without_tensorflow():
    code = (
        "import sys; import benchmarks.train; from benchmarks.__main__ import "
        "build_parser; build_parser().parse_args(['train']); "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "False"
