"""The paper's architectures: exact parameter counts, Table 1 shapes, training, save/load, errors.

Building a model is cheap (no forward pass), so the counts and shapes are checked at the full
96 x 1280 input. Every model needs at least about that input to pool down to 1x1, so the training
step runs at full size too, eagerly: tracing and optimising a training graph would cost several
times the step itself on a CPU.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest

from emotion_keras.cli import main
from emotion_keras.errors import ModelError
from emotion_keras.evaluation.tables import PAPER_TABLE2
from emotion_keras.models import (
    MODELS,
    architectures,
    blocks,
    build_model,
    count_conv_layers,
    input_sizes,
    load_model,
    model_summary,
)

#: Trainable parameters of the original PyTorch implementation (BN scale/offset included), from
#: issue 3. Every convolution has a bias, as PyTorch's do by default.
ORIGINAL_TRAINABLE = {
    "baseline5": 448_122,
    "vgg6": 2_764_794,
    "res16": 1_872_122,
    "res18": 1_912_186,
    "vgg25": 17_301_690,
}
#: The paper's Table 2; `convs` (the 2021 winner's model) has tests of its own (test_convs.py).
PAPER_MODELS = list(ORIGINAL_TRAINABLE)
FULL = (96, 1280, 1)


def trainable(model) -> int:
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def random_batch(seed=0, batch=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(-40, 20, size=(batch, *FULL)).astype("float32")  # log-mel-like dB values
    y = (rng.random((batch, 56)) < 0.2).astype("float32")
    return x, y


@pytest.fixture
def policy():
    """Sets a global dtype policy for one test and restores float32 afterwards."""
    yield keras.mixed_precision.set_global_policy
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", list(ORIGINAL_TRAINABLE))
def test_trainable_parameters_match_the_original(name):
    model = build_model(name)
    assert trainable(model) == ORIGINAL_TRAINABLE[name]
    assert model.input.shape == (None, *FULL) and model.output.shape == (None, 56)
    assert model.inputs[0].name == "melspec" and model.layers[-1].name == "tags"
    assert model.get_layer("tags").activation is keras.activations.sigmoid
    assert model.get_layer("tags").dtype_policy.name == "float32"


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_batch_norms_use_the_originals_settings_and_the_map_ends_at_1x1(name):
    model = build_model(name)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert model.layers[1].name == "input_bn"
    assert {(bn.epsilon, bn.momentum) for bn in norms} == {(1e-5, 0.9)}
    # The only non-trainable weights are the BN moving mean and variance.
    moving = sum(2 * bn.moving_mean.shape[0] for bn in norms)
    assert model.count_params() == ORIGINAL_TRAINABLE[name] + moving
    assert model.get_layer("flatten").input.shape[1:3] == (1, 1)
    assert model.get_layer("dropout").rate == 0.5


def test_vgg6_feature_maps_follow_table_1():
    model = build_model("vgg6")
    shapes = [tuple(model.get_layer(f"block{i}_pool").output.shape[1:]) for i in range(1, 7)]
    assert shapes == [
        (48, 640, 32),
        (24, 160, 64),
        (12, 80, 128),
        (6, 20, 256),
        (2, 4, 512),
        (1, 1, 256),
    ]
    assert [model.get_layer(f"block{i}_conv").kernel_size for i in range(1, 7)] == [(3, 3)] * 6


def test_vgg25_has_a_7x7_stem_then_groups_of_six_and_ends_with_average_pooling():
    model = build_model("vgg25")
    assert model.get_layer("block1_conv").kernel_size == (7, 7)
    assert [model.get_layer(f"block{i}_6_conv").filters for i in range(2, 6)] == [64, 128, 256, 512]
    assert isinstance(model.get_layer("block5_pool"), keras.layers.AveragePooling2D)
    assert tuple(model.get_layer("block4_pool").output.shape[1:]) == (4, 4, 256)


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_conv_layers_and_residual_agree_with_the_papers_table_2(name):
    summary = model_summary(name)
    conv_layers, residual = PAPER_TABLE2[name][:2]
    assert (summary["conv_layers"], summary["residual"]) == (conv_layers, residual)
    assert summary["trainable_params"] == ORIGINAL_TRAINABLE[name]


def test_residual_blocks_project_only_when_the_width_or_stride_changes():
    res16 = build_model("res16")
    projections = [layer.name for layer in res16.layers if layer.name.endswith("_proj_conv")]
    assert projections == ["block3_proj_conv", "block5_proj_conv"]  # 64->128, 128->256, stride 2
    for block in ("block3", "block5"):
        assert res16.get_layer(f"{block}_b_conv").strides == (2, 2)
        assert res16.get_layer(f"{block}_proj_conv").strides == (2, 2)
    assert tuple(res16.get_layer("block3_add").output.shape[1:]) == (16, 128, 128)
    res18 = build_model("res18")
    assert [layer.name for layer in res18.layers if layer.name.endswith("_proj_conv")] == [
        "block1_proj_conv",
        "block3_proj_conv",
        "block5_proj_conv",
    ]
    assert {layer.strides for layer in res18.layers if isinstance(layer, keras.layers.Conv2D)} == {
        (1, 1)
    }
    assert count_conv_layers(res16) + 2 == sum(
        isinstance(layer, keras.layers.Conv2D) for layer in res16.layers
    )


def test_strided_convolutions_sample_the_same_pixels_as_pytorch_and_the_shortcut():
    # A 3x3 kernel that copies its centre pixel shows which input pixel each output is centred
    # on. PyTorch's `padding=1, stride=2` centres output (i, j) on input (2i, 2j), like the 1x1
    # stride-2 projection; Keras's own "same" padding would centre it on (2i + 1, 2j + 1).
    inputs = keras.Input((8, 10, 1))
    main_path = blocks.apply_conv_bn(inputs, 1, 3, "b", strides=2)
    shortcut = blocks.apply_conv_bn(inputs, 1, 1, "proj", strides=2)
    model = keras.Model(inputs, [main_path, shortcut])
    centre = np.zeros((3, 3, 1, 1), "float32")
    centre[1, 1] = 1.0
    model.get_layer("b_conv").set_weights([centre, np.zeros(1, "float32")])
    model.get_layer("proj_conv").set_weights(
        [np.ones((1, 1, 1, 1), "float32"), np.zeros(1, "float32")]
    )
    x = np.arange(80, dtype="float32").reshape(1, 8, 10, 1)
    got_main, got_shortcut = (np.asarray(t) for t in model(x, training=False))
    expected = x[:, ::2, ::2] / np.sqrt(1 + blocks.BN_EPSILON)  # BN at its initial statistics
    np.testing.assert_allclose(got_main, expected, rtol=1e-6)
    np.testing.assert_allclose(got_shortcut, expected, rtol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_one_training_step_updates_every_weight(name):
    model = build_model(name)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", run_eagerly=True
    )
    x, y = random_batch()
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss) and loss > 0
    unchanged = [
        w.path for w, old in zip(model.trainable_weights, before) if np.array_equal(w.numpy(), old)
    ]
    assert unchanged == []  # the gradient reaches every layer, shortcuts included
    out = np.asarray(model(x, training=False))
    assert out.shape == (2, 56) and out.dtype == np.float32
    assert ((out > 0) & (out < 1)).all()


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_computes_in_half_and_outputs_float32(precision, policy, tmp_path):
    policy(precision)
    model = build_model("baseline5")
    assert model.get_layer("block1_conv").compute_dtype == precision.split("_")[1]
    assert model.get_layer("block1_conv").variable_dtype == "float32"
    x, _ = random_batch()
    assert model(x, training=False).dtype == "float32"
    model.save(tmp_path / "mixed.keras")
    policy("float32")
    loaded = load_model(tmp_path / "mixed.keras")
    assert loaded.get_layer("block1_conv").compute_dtype == precision.split("_")[1]
    assert loaded.get_layer("tags").compute_dtype == "float32"


def test_save_and_safe_load_give_identical_outputs(tmp_path):
    # res16 has every kind of layer but average pooling: input BN, stem, identity and strided
    # projection blocks (padding, add). Weights and BN statistics are set away from their
    # initial values so that a block not restored would show.
    model = build_model("res16")
    rng = np.random.default_rng(2)
    for weight in model.weights:
        weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32") / 10)
    x, _ = random_batch(seed=1)
    model.save(tmp_path / "res16.keras")
    loaded = load_model(tmp_path / "res16.keras")
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for original, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(original.numpy(), restored.numpy())
    np.testing.assert_array_equal(
        np.asarray(model(x, training=False)), np.asarray(loaded(x, training=False))
    )


@pytest.mark.parametrize("name", list(MODELS))
def test_config_round_trip_rebuilds_the_same_architecture(name):
    model = build_model(name)
    rebuilt = keras.models.model_from_json(model.to_json())
    assert rebuilt.to_json() == model.to_json()
    assert trainable(rebuilt) == MODELS[name].trainable_params


def test_unusable_model_files_are_one_line_errors(tmp_path):
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match=r"bad\.keras: not a loadable \.keras model \("):
        load_model(tmp_path / "bad.keras")
    build_model("baseline5").save(tmp_path / "good.keras")
    data = (tmp_path / "good.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"cut\.keras: not a loadable \.keras model"):
        load_model(tmp_path / "cut.keras")
    with pytest.raises(ModelError, match=r"missing\.keras: model file not found"):
        load_model(tmp_path / "missing.keras")
    (tmp_path / "dir.keras").mkdir()
    with pytest.raises(ModelError, match=r"dir\.keras: model file not found"):
        load_model(tmp_path / "dir.keras")
    with pytest.raises(ModelError, match=r"model\.h5: expected a \.keras model file"):
        load_model(tmp_path / "model.h5")
    for error in ("bad", "cut"):
        with pytest.raises(ModelError) as caught:
            load_model(tmp_path / f"{error}.keras")
        assert "\n" not in str(caught.value)


def test_input_that_does_not_pool_to_1x1_is_refused_before_any_layer(monkeypatch):
    def no_layers(*args, **kwargs):
        raise AssertionError("a layer was built before the shape was checked")

    monkeypatch.setattr(architectures.keras, "Input", no_layers)
    message = (
        r"^model vgg6: input of 96 bands x 1000 frames pools down to 1x0, not 1x1; it "
        r"takes 96-191 bands and 1280-2559 frames \(e\.g\. 96x1280x1\)$"
    )
    with pytest.raises(ModelError, match=message):
        build_model("vgg6", (96, 1000, 1))
    with pytest.raises(
        ModelError,
        match=r"model res16: input of 200 bands x 1280 frames pools "
        r"down to 2x1, not 1x1; it takes 79-174 bands",
    ):
        architectures.build_from_table(
            "res16", architectures.RES16, (200, 1280, 1)
        )  # the builder checks too


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_the_input_sizes_reported_are_exactly_those_that_build(name):
    sizes = input_sizes(name)
    (b0, b1), (f0, f1) = sizes["bands"], sizes["frames"]
    assert b0 <= 96 <= b1 and f0 <= 1280 <= f1
    for shape in ((b0, f0, 1), (b1, f1, 1)):
        model = build_model(name, shape, num_tags=3)
        assert model.output.shape == (None, 3)
        assert model.get_layer("flatten").input.shape[1:3] == (1, 1)
    for shape in ((b0 - 1, f0, 1), (b0, f0 - 1, 1), (b1 + 1, f1, 1), (b1, f1 + 1, 1)):
        with pytest.raises(
            ModelError,
            match=rf"model {name}: input of .* not 1x1; it takes "
            rf"{b0}-{b1} bands and {f0}-{f1} frames",
        ):
            build_model(name, shape)


@pytest.mark.parametrize(
    "shape, num_tags, message",
    [
        ((96, 1280), 56, r"input shape \(96, 1280\) must be \(bands, frames, 1\)"),
        ((96, 1280, 3), 56, r"input shape \(96, 1280, 3\) must be \(bands, frames, 1\)"),
        ((0, 1280, 1), 56, r"input shape \(0, 1280, 1\) must be \(bands, frames, 1\)"),
        ((96.0, 1280, 1), 56, r"input shape \(96\.0, 1280, 1\) must be three integers"),
        ("96x1280", 56, r"input shape '96x1280' must be three integers"),
        (FULL, 0, r"num_tags 0 must be a positive integer"),
        (FULL, "56", r"num_tags '56' must be a positive integer"),
    ],
)
def test_bad_shapes_and_tag_counts_name_the_argument(shape, num_tags, message):
    with pytest.raises(ModelError, match=r"^model vgg6: " + message):
        build_model("vgg6", shape, num_tags)


def test_unknown_model_lists_the_valid_names():
    valid = r"valid models: baseline5, vgg6, res16, res18, vgg25, convs$"
    with pytest.raises(ModelError, match=r"^model 'vgg7': unknown; " + valid):
        build_model("vgg7")
    with pytest.raises(ModelError, match=valid):
        input_sizes("resnet50")


def test_models_command_prints_each_models_figures(capsys):
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert list(listing) == list(MODELS)
    for name, figures in listing.items():
        assert figures == model_summary(name)
        assert figures["trainable_params"] == MODELS[name].trainable_params
        assert figures["input_shape"] == [96, 1280, 1]
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "input", "convs", "residual", "total", "trainable"]
    assert lines[3].split() == ["res16", "96x1280x1", "16", "yes", "1,878,012", "1,872,122"]


def test_model_code_uses_keras_only_so_it_runs_on_any_backend():
    package = Path(architectures.__file__).parent
    for source in sorted(package.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not imported & {"tensorflow", "tf_keras", "torch", "jax"}, source.name


def test_dropout_rate_is_an_argument_and_zero_leaves_the_layer_out():
    assert build_model("baseline5").get_layer("dropout").rate == 0.5
    assert build_model("baseline5", dropout=0.2).get_layer("dropout").rate == 0.2
    without = build_model("baseline5", dropout=0.0)
    assert "dropout" not in [layer.name for layer in without.layers]
    assert without.count_params() == build_model("baseline5").count_params()
    with pytest.raises(ModelError, match=r"model baseline5: dropout 1.0 must be in \[0, 1\)"):
        build_model("baseline5", dropout=1.0)


def test_synchronized_batch_norm_is_set_inside_the_block_only():
    from emotion_keras.models import synchronized_batch_norm

    model = build_model("baseline5")
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    with synchronized_batch_norm(model):
        assert all(layer.synchronized for layer in norms)
        with synchronized_batch_norm(model, False):
            assert not any(layer.synchronized for layer in norms)
        assert all(layer.synchronized for layer in norms)
    assert not any(layer.synchronized for layer in norms)


def test_res16_stem_pads_by_three_as_the_original():
    """The original's first layer is `Conv2d(1, 64, 5, padding=3)` (model.py, class AudioNet):
    98 x 1282 after it, then the (3, 5) max-pool sees the original's windows."""
    model = build_model("res16")
    assert model.get_layer("block1_pad").padding == ((3, 3), (3, 3))
    assert model.get_layer("block1_conv").padding == "valid"
    assert tuple(model.get_layer("block1_bn").output.shape[1:]) == (98, 1282, 64)
    assert tuple(model.get_layer("block1_pool").output.shape[1:]) == (32, 256, 64)
    assert input_sizes("res16") == {"bands": (79, 174), "frames": (1233, 2512)}


def test_res16_stem_computes_what_a_pad_3_convolution_computes():
    # One channel, a kernel that copies the top-left of its window: with padding 3 the first
    # output row and column read the padding (zeros), then the input from its first sample on.
    model = build_model("res16")
    conv = model.get_layer("block1_conv")
    kernel = np.zeros(conv.kernel.shape, np.float32)
    kernel[0, 0, 0, :] = 1.0
    conv.kernel.assign(kernel)
    conv.bias.assign(np.zeros(conv.bias.shape, np.float32))
    stem = keras.Model(model.get_layer("block1_pad").input, conv.output)
    x = np.arange(1, 96 * 1280 + 1, dtype=np.float32).reshape(1, 96, 1280, 1)
    y = stem.predict(x, verbose=0)[0, :, :, 0]
    assert y.shape == (98, 1282)
    np.testing.assert_array_equal(y[:3, :], 0)
    np.testing.assert_array_equal(y[:, :3], 0)
    np.testing.assert_array_equal(y[3:, 3:], x[0, :95, :1279, 0])
