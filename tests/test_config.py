"""The run configuration: defaults, overrides by name, JSON round trip, named experiments."""

import json
import re
from pathlib import Path

import pytest

from emotion_keras.config import Config, load_experiment
from emotion_keras.errors import ConfigError


def test_defaults_are_the_papers():
    config = Config()
    assert (config.crop_frames, config.batch_size, config.learning_rate) == (1280, 64, 1e-3)
    assert (config.val_crops, config.test_crops, config.n_bands) == (10, 20, 96)


def test_short_crop_fields_default_to_the_papers_evaluation():
    config = Config()
    assert (config.time_pooling, config.eval_mode) == ("model", "crops")
    assert config.window_hop_frames == 0
    assert config.eval_hop_frames is None
    windows = Config(model="convs", crop_frames=224, eval_mode="windows")
    assert windows.eval_hop_frames == 224
    assert windows.replace(window_hop_frames=112).eval_hop_frames == 112


def test_json_round_trip(tmp_path):
    config = Config(model="res16", data_dir="/d", meta_dir="/m", epochs=3, mixed_precision=True)
    config.to_json(tmp_path / "config.json")
    assert Config.from_json(tmp_path / "config.json") == config


def test_string_overrides_are_coerced_to_field_types():
    config = Config().replace(epochs="7", learning_rate="1e-4", jit_compile="true")
    assert (config.epochs, config.learning_rate, config.jit_compile) == (7, 1e-4, True)


@pytest.mark.parametrize(
    "overrides, message, flag_message",
    [
        ({"epochs": "many"}, r"^epochs 'many': expected int", r"^--epochs 'many': expected int"),
        ({"batch_size": 0}, r"^batch_size 0: must be at least 1", r"^--batch-size 0: must be at"),
        ({"split": 5}, r"^split 5: MTG-Jamendo has splits 0 to 4", r"^--split 5"),
        ({"schedule": "fast"}, r"^schedule 'fast'", r"^--schedule 'fast'"),
        ({"dropout": 1}, r"^dropout 1.0: must be at least 0 and below 1", r"^--dropout 1.0"),
        ({"strategy": "tpu"}, r"^strategy 'tpu': expected one of", r"^--strategy 'tpu'"),
        (
            {"time_pooling": "median"},
            r"^time_pooling 'median': expected one of model, mean, max$",
            r"^--time-pooling 'median'",
        ),
        (
            {"eval_mode": "all"},
            r"^eval_mode 'all': expected one of crops, windows, track$",
            r"^--eval",
        ),
        (
            {"crop_frames": 128, "window_hop_frames": 129},
            r"^window_hop_frames 129: must be 0 \(= crop_frames\) to crop_frames \(128\)",
            r"^--window-hop-frames 129",
        ),
        ({"window_hop_frames": -1}, r"^window_hop_frames -1: must be 0", r"^--window-hop-frames"),
        (
            {"monitor": "val_loss"},
            r"^monitor 'val_loss': expected one of val_pr_auc_macro",
            r"^--monitor 'val_loss'",
        ),
        (
            {"data_dir": "/d"},
            r"^data_dir and meta_dir go together",
            r"^--data-dir and --meta-dir go together",
        ),
        ({"colour": "red"}, r"unknown field 'colour'", r"unknown field 'colour'"),
    ],
)
def test_bad_overrides_name_the_field_and_the_cli_names_the_flag(overrides, message, flag_message):
    from emotion_keras.cli import render_error

    with pytest.raises(ConfigError, match=message) as raised:
        Config().replace(**overrides)
    assert re.search(flag_message, render_error(raised.value))


def test_every_shipped_experiment_loads_from_the_package():
    from emotion_keras.config import EXPERIMENTS, experiment_names

    names = experiment_names()
    assert {"demo", "vgg6", "baseline5", "res16", "res18", "vgg25"} <= set(names)
    # Package data, inside the package folder (so it travels in a wheel); the repository's
    # top-level `experiments` is a link to it.
    package = Path(__file__).resolve().parents[1] / "emotion_keras"
    assert Path(str(EXPERIMENTS)).resolve() == (package / "experiments").resolve()
    assert (package.parent / "experiments").resolve() == (package / "experiments").resolve()
    for name in names:
        assert isinstance(load_experiment(name), Config)


def test_data_folders_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = Config(data_dir="mel", meta_dir="~/meta").with_absolute_paths()
    assert config.data_dir == str(tmp_path / "mel")
    assert config.meta_dir == str(Path.home() / "meta")


def test_unknown_experiment_lists_known_ones():
    with pytest.raises(ConfigError, match=r"no such experiment \(known: .*vgg6"):
        load_experiment("vgg7")


def test_unknown_field_in_json_is_named(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"modle": "vgg6"}))
    with pytest.raises(ConfigError, match=r"x\.json: unknown field\(s\) modle"):
        Config.from_json(path)
