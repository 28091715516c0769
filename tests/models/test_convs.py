"""`convs`, the 2021 winner's frequency-collapse VGG, and global time pooling for the paper's
models: parameter counts, shapes at several crop lengths, window averaging, accepted sizes.

Forward passes run on small inputs (a few dozen frames); building alone is cheap at any size.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.errors import ConfigError, ModelError
from emotion_keras.models import (
    MODELS,
    build_model,
    check_crop,
    input_sizes,
    model_summary,
    whole_track_model,
)


def conv2d(c_in, c_out, kh, kw):
    return c_in * c_out * kh * kw + c_out  # PyTorch Conv2d: weight + bias


def trainable(model) -> int:
    return sum(math.prod(w.shape) for w in model.trainable_weights)


#: The trainable parameters of vibour/emotion-theme-recognition's `Convs(n_mels=96, n_class=56)`
#: (models/convs.py, models/modules.py), layer by layer: every `Conv` is Conv2d + BatchNorm2d
#: (weight and bias: 2 x channels), `Collapse` a (96 // 32) x 1 `Conv`, `FC` and `Output` 1x1
#: Conv1d layers. Their unused `self.dropout` and the pools hold none, and none depends on the
#: crop length.
ORIGINAL_TRAINABLE = sum(
    [
        conv2d(1, 64, 3, 3) + 2 * 64,  # conv1
        conv2d(64, 64, 3, 3) + 2 * 64,  # conv2
        conv2d(64, 128, 3, 3) + 2 * 128,  # conv3
        conv2d(128, 256, 3, 3) + 2 * 256,  # filter1
        3 * (conv2d(256, 256, 3, 3) + 2 * 256),  # filter2, filter3, filter4
        conv2d(256, 512, 96 // 32, 1) + 2 * 512,  # collapse
        512 * 1024 + 1024,  # fco
        1024 * 56 + 56,  # output
    ]
)


def test_trainable_parameters_match_the_original_at_every_crop_length():
    assert ORIGINAL_TRAINABLE == 3_156_856 == MODELS["convs"].trainable_params
    for frames in (128, 224, 256, 1280):
        model = build_model("convs", (96, frames, 1))
        assert trainable(model) == ORIGINAL_TRAINABLE
        assert model.count_params() == ORIGINAL_TRAINABLE + 2 * (64 + 64 + 128 + 4 * 256 + 512)
    assert model_summary("convs")["conv_layers"] == 8
    assert not model_summary("convs")["residual"]


def test_feature_maps_follow_the_original_at_a_224_frame_crop():
    model = build_model("convs", (96, 224, 1))
    shape = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shape["conv1_relu"] == (48, 112, 64)
    assert shape["conv3_relu"] == (48, 112, 128)
    assert shape["pool"] == (24, 56, 128)
    assert [shape[f"filter{i}_relu"] for i in range(1, 5)] == [
        (12, 28, 256),
        (6, 14, 256),
        (6, 14, 256),
        (3, 7, 256),
    ]
    assert model.get_layer("collapse_conv").kernel_size == (3, 1)
    assert shape["collapse_relu"] == (1, 7, 512)
    assert model.get_layer("collapse_pool").pool_size == (1, 7)  # crop // 32
    assert shape["collapse_pool"] == (1, 1, 512) and shape["tags"] == (56,)
    # PyTorch's padding=1 everywhere, explicit, so stride-2 convolutions sample as theirs do.
    for name in ("conv1", "conv2", "conv3", "filter1", "filter2", "filter3", "filter4"):
        assert model.get_layer(f"{name}_pad").padding == ((1, 1), (1, 1))
        assert model.get_layer(f"{name}_conv").padding == "valid"
    strides = [model.get_layer(f"{n}_conv").strides for n in ("conv1", "filter1", "filter2")]
    assert strides == [(2, 2)] * 3 and model.get_layer("filter3_conv").strides == (1, 1)
    # Channel dropout (Dropout2d) before the 256-channel units and the collapse, 0.5 in the head.
    spatial = [
        layer.name for layer in model.layers if isinstance(layer, keras.layers.SpatialDropout2D)
    ]
    assert spatial == [f"filter{i}_dropout" for i in range(1, 5)] + ["collapse_dropout"]
    assert {model.get_layer(n).rate for n in spatial} == {0.2}
    assert model.get_layer("fc_dropout").rate == model.get_layer("dropout").rate == 0.5


@pytest.mark.parametrize(
    "frames, windows", [(32, 1), (50, 2), (128, 1), (200, 1), (224, 1), (256, 1), (1366, 1)]
)
def test_any_crop_from_32_frames_builds_and_pools_time_in_windows_of_crop_over_32(frames, windows):
    model = build_model("convs", (96, frames, 1), num_tags=5)
    assert model.output.shape == (None, 5)
    assert model.get_layer("collapse_pool").pool_size == (1, frames // 32)
    assert model.get_layer("collapse_pool").output.shape[1:3] == (1, windows)


def test_output_is_the_average_of_the_windows_sigmoids():
    # 50 frames: 2 steps after the five halvings, windows of 50 // 32 = 1 step: two windows.
    model = build_model("convs", (96, 50, 1), num_tags=4)
    per_window = keras.Model(model.input, model.get_layer("logits").output)
    x = np.random.default_rng(0).normal(-30, 20, (3, 96, 50, 1)).astype("float32")
    logits = np.asarray(per_window(x, training=False))
    assert logits.shape == (3, 1, 2, 4)
    expected = (1 / (1 + np.exp(-logits.astype(np.float64)))).mean(axis=(1, 2))
    got = np.asarray(model(x, training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(logits[:, 0, 0], logits[:, 0, 1])  # the windows do differ


def test_a_whole_track_goes_through_the_same_layers_in_one_pass():
    # The original's test pass: the whole track at once, windows of (training crop) // 32 steps.
    model = build_model("convs", (32, 64, 1), num_tags=3)  # windows of 2 steps
    track = whole_track_model(model)
    assert track.input.shape == (None, 32, None, 1) and track.output.shape == (None, 3)
    assert [w.path for w in track.weights] == [w.path for w in model.weights]  # shared
    rng = np.random.default_rng(3)
    crop = rng.normal(-30, 20, (2, 32, 64, 1)).astype("float32")
    np.testing.assert_allclose(track(crop), model(crop), rtol=1e-6)
    whole = rng.normal(-30, 20, (1, 32, 200, 1)).astype("float32")  # 7 steps: 3 windows
    logits = whole
    for layer in model.layers[1:]:  # the chain up to the logits, by hand
        logits = layer(logits, training=False) if "dropout" in layer.name else layer(logits)
        if layer.name == "logits":
            break
    logits = np.asarray(logits)
    assert logits.shape == (1, 1, 3, 3)
    expected = (1 / (1 + np.exp(-logits.astype(np.float64)))).mean(axis=(1, 2))
    np.testing.assert_allclose(track(whole).numpy(), expected, rtol=1e-5, atol=1e-6)
    # A 1,366-frame track through a model trained on 224-frame crops: ceil(1366 / 32) = 43
    # steps, windows of 7, so 6 windows (the last step is dropped, as their AvgPool1d drops it).
    x = keras.Input((96, 1366, 1))
    for layer in build_model("convs", (96, 224, 1)).layers[1:]:
        x = layer(x)
        if layer.name == "collapse_pool":
            break
    assert tuple(x.shape[1:]) == (1, 6, 512)
    with pytest.raises(ModelError, match=r"^model vgg6: cannot take a whole track in one pass"):
        whole_track_model(build_model("vgg6"))


def test_input_is_standardised_with_the_training_splits_statistics():
    model = build_model("convs", (32, 32, 1))
    standardize = keras.Model(model.input, model.get_layer("standardize").output)
    mean, std = MTG_JAMENDO.mean_db, MTG_JAMENDO.std_db
    x = np.full((1, 32, 32, 1), mean, "float32")
    x[0, 0, 0, 0] = mean + std
    y = np.asarray(standardize(x))
    assert abs(y[0, 0, 0, 0] - 1) < 1e-5 and np.abs(y.reshape(-1)[1:]).max() < 1e-5


def test_kernels_start_as_the_originals_he_normal_over_the_fan_out():
    keras.utils.set_random_seed(0)
    model = build_model("convs", (96, 64, 1))
    kernel = model.get_layer("filter2_conv").kernel.numpy()
    assert abs(kernel.std() / math.sqrt(2 / (3 * 3 * 256)) - 1) < 0.01  # untruncated
    fc = model.get_layer("fc").kernel.numpy()
    assert abs(fc.std() / math.sqrt(2 / 1024) - 1) < 0.02
    logits = model.get_layer("logits").kernel.numpy()
    assert abs(logits.std() / math.sqrt(2 / (1024 + 56)) - 1) < 0.05  # Xavier normal
    a, b = (model.get_layer(f"filter{i}_conv").kernel.numpy() for i in (2, 3))
    assert not np.array_equal(a, b)  # one initializer per layer, not one shared seed


def test_one_training_step_on_a_short_crop_updates_every_weight():
    model = build_model("convs", (96, 64, 1), num_tags=6)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy", run_eagerly=True)
    rng = np.random.default_rng(1)
    x = rng.normal(-30, 20, (4, 96, 64, 1)).astype("float32")
    y = (rng.random((4, 6)) < 0.3).astype("float32")
    before = [w.numpy().copy() for w in model.trainable_weights]
    assert np.isfinite(model.train_on_batch(x, y))
    unchanged = [
        w.path for w, old in zip(model.trainable_weights, before) if np.array_equal(w.numpy(), old)
    ]
    assert unchanged == []


def test_convs_refuses_short_inputs_and_other_time_pooling():
    assert input_sizes("convs") == {"bands": (32, None), "frames": (32, None)}
    with pytest.raises(ModelError, match=r"^model convs: input of 96 bands x 31 frames: it takes "):
        build_model("convs", (96, 31, 1))
    with pytest.raises(ModelError, match=r"^model convs: time_pooling 'max': it averages over"):
        build_model("convs", (96, 224, 1), time_pooling="max")
    with pytest.raises(ModelError, match=r"^model convs: dropout 1 must be in \[0, 1\)"):
        build_model("convs", dropout=1)


# --- global time pooling for the paper's models ---------------------------------------------


@pytest.mark.parametrize("name", ["baseline5", "vgg6", "res16", "res18", "vgg25"])
@pytest.mark.parametrize("frames", [128, 256, 3000])
def test_time_pooling_lets_every_paper_model_take_any_crop_length(name, frames):
    model = build_model(name, (96, frames, 1), num_tags=7, time_pooling="mean")
    assert model.output.shape == (None, 7)
    assert model.get_layer("flatten").input.shape[1:3] == (1, 1)
    assert trainable(model) == trainable(build_model(name, num_tags=7))  # no new parameter
    assert input_sizes(name, "mean")["frames"] == (1, None)


def copy_weights(source, target):
    for s, t in zip(source.weights, target.weights):
        assert s.path == t.path
        t.assign(s)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_time_pooling_changes_nothing_where_the_table_pools_to_one_step(pooling):
    plain = build_model("baseline5", num_tags=5)
    pooled = build_model("baseline5", num_tags=5, time_pooling=pooling)
    assert pooled.get_layer("time_pool").pool_size == (1, 1)
    copy_weights(plain, pooled)
    x = np.random.default_rng(0).normal(-30, 20, (2, 96, 1280, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(plain(x)), np.asarray(pooled(x)))


def test_mean_and_max_pool_over_what_is_left_of_the_time_axis():
    # 2,560 frames leave baseline5 two time steps; a 128-frame crop shrinks its later windows.
    mean = build_model("baseline5", (96, 2560, 1), num_tags=5, time_pooling="mean")
    maximum = build_model("baseline5", (96, 2560, 1), num_tags=5, time_pooling="max")
    assert mean.get_layer("time_pool").pool_size == (1, 2)
    assert isinstance(mean.get_layer("time_pool"), keras.layers.AveragePooling2D)
    assert isinstance(maximum.get_layer("time_pool"), keras.layers.MaxPooling2D)
    copy_weights(mean, maximum)
    x = np.random.default_rng(1).normal(-30, 20, (1, 96, 2560, 1)).astype("float32")
    features = [
        keras.Model(m.input, m.get_layer("flatten").input)(x).numpy() for m in (mean, maximum)
    ]
    steps = keras.Model(mean.input, mean.get_layer("time_pool").input)(x).numpy()
    np.testing.assert_allclose(features[0][:, 0, 0], steps.mean(axis=2)[:, 0], rtol=1e-5)
    np.testing.assert_allclose(features[1][:, 0, 0], steps.max(axis=2)[:, 0], rtol=1e-6)
    short = build_model("baseline5", (96, 128, 1), time_pooling="max")
    pools = [short.get_layer(f"block{i}_pool").pool_size for i in range(1, 6)]
    assert pools == [(2, 4), (2, 4), (2, 4), (3, 2), (4, 1)]  # 128 -> 32 -> 8 -> 2 -> 1 -> 1


def test_a_crop_a_model_cannot_take_is_a_one_line_config_error():
    check_crop("vgg6", 96, 1280)
    check_crop("vgg6", 96, 128, "mean")
    check_crop("convs", 96, 128)
    with pytest.raises(ConfigError) as caught:
        check_crop("vgg6", 96, 128)
    assert str(caught.value) == (
        "crop_frames 128: model vgg6 takes 1280-2559 frames with time_pooling model; set "
        "time_pooling to mean or max for shorter or longer crops"
    )
    assert caught.value.arguments == ("crop_frames", "time_pooling")
    with pytest.raises(ConfigError, match=r"^crop_frames 16: model convs takes 32 or more frames"):
        check_crop("convs", 96, 16)
    with pytest.raises(ConfigError, match=r"^time_pooling 'mean': model convs averages over"):
        check_crop("convs", 96, 224, "mean")
    with pytest.raises(ConfigError, match=r"^n_bands 64: model vgg6 takes 96-191 bands$"):
        check_crop("vgg6", 64, 1280, "max")
    check_crop("convs", 96, 224, eval_mode="track")
    with pytest.raises(ConfigError, match=r"^eval_mode track: model vgg6 cannot take a whole"):
        check_crop("vgg6", 96, 128, "mean", eval_mode="track")
