"""The paper's architectures: exact parameter counts, Table 1 shapes, training, save/load."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from emotion_keras.cli import main
from emotion_keras.errors import ModelError
from emotion_keras.models import MODELS, build_model, load_model, model_summary

# Trainable parameters of the original PyTorch implementation (BN scale/offset included).
ORIGINAL_TRAINABLE = {"baseline5": 448_122, "vgg6": 2_764_794, "res16": 1_872_122,
                      "res18": 1_912_186, "vgg25": 17_301_690}


def trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("name", list(ORIGINAL_TRAINABLE))
def test_trainable_parameters_match_the_original(name):
    model = build_model(name)
    assert trainable(model) == ORIGINAL_TRAINABLE[name]
    assert model.input.shape == (None, 96, 1280, 1) and model.output.shape == (None, 56)
    assert model.get_layer("tags").dtype_policy.name == "float32"


def test_vgg6_feature_maps_follow_table_1():
    model = build_model("vgg6")
    shapes = [tuple(model.get_layer(f"stage{i}_pool").output.shape[1:]) for i in range(1, 7)]
    assert shapes == [(48, 640, 32), (24, 160, 64), (12, 80, 128), (6, 20, 256), (2, 4, 512),
                      (1, 1, 256)]


def test_residual_block_has_three_convs_and_projection_only_when_needed():
    model = build_model("res16")
    convs = [l.name for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert len([c for c in convs if "_proj" not in c]) == 16
    assert sorted(c for c in convs if "_proj" in c) == ["block2_proj_conv", "block4_proj_conv"]
    assert model.get_layer("block2_b_conv").strides == (2, 2)
    assert model.get_layer("block2_proj_conv").strides == (2, 2)
    res18 = build_model("res18")
    assert [l.name for l in res18.layers if l.name.endswith("_proj_conv")] == [
        "block1_proj_conv", "block3_proj_conv", "block5_proj_conv"]


@pytest.mark.parametrize("name", list(MODELS))
def test_one_training_step_reduces_nothing_to_nan(name):
    model = build_model(name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 96, 1280, 1)).astype("float32")
    y = (rng.random((2, 56)) < 0.1).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    out = model.predict(x, verbose=0)
    assert out.shape == (2, 56) and ((out > 0) & (out < 1)).all()


def test_mixed_precision_keeps_float32_output():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model("vgg6")
        assert model.get_layer("stage1_conv").compute_dtype == "bfloat16"
        out = model(np.zeros((1, 96, 1280, 1), "float32"))
        assert out.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_save_and_safe_load_give_identical_outputs(tmp_path):
    model = build_model("res18")
    x = np.random.default_rng(1).normal(size=(2, 96, 1280, 1)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_bad_model_file_is_a_one_line_error(tmp_path):
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match=r"bad\.keras: not a loadable \.keras model"):
        load_model(tmp_path / "bad.keras")
    with pytest.raises(ModelError, match=r"missing\.keras: model file not found"):
        load_model(tmp_path / "missing.keras")


def test_input_that_does_not_pool_to_1x1_is_refused_with_working_sizes():
    with pytest.raises(ModelError, match=r"model vgg6: input of 96 bands x 1000 frames does not "
                                         r"pool down to 1x1; it works for 96-191 bands and "
                                         r"1280-2559 frames"):
        build_model("vgg6", (96, 1000, 1))


def test_unknown_model_lists_valid_names():
    with pytest.raises(ModelError, match=r"unknown model 'vgg7'; valid models: baseline5, vgg6"):
        build_model("vgg7")


def test_models_command_prints_json_counts(capsys):
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert list(listing) == list(MODELS)
    for name, figures in listing.items():
        assert figures["trainable_params"] == ORIGINAL_TRAINABLE[name]
        assert figures["input_shape"] == [96, 1280, 1]
        assert figures["total_params"] > figures["trainable_params"]
    assert model_summary("res16")["residual"] is True
