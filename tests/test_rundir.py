"""The run directory: one type owns every path, and loading a run names what is missing."""

from __future__ import annotations

import pytest

from emotion_keras.config import Config
from emotion_keras.errors import ModelError
from emotion_keras.rundir import RunDir, load_run


def test_every_file_of_a_run_has_one_path(tmp_path):
    run = RunDir(tmp_path)
    assert run.config_file == tmp_path / "config.json"
    assert run.best_checkpoint == tmp_path / "checkpoints" / "best.keras"
    assert run.epoch_checkpoint(7) == tmp_path / "checkpoints" / "epoch-0007.keras"
    assert run.state_file == tmp_path / "checkpoints" / "state.json"
    assert (run.history_file.name, run.per_tag_history_file.name) == (
        "history.csv",
        "val_per_tag.csv",
    )
    assert run.metrics_file.name == "metrics.json" and run.default_export == tmp_path / "export"
    assert run.evaluation_dir(1, "validation").path == tmp_path / "eval-split-1-validation"
    assert run.read_state() == {} and not run.is_run()


def test_loading_a_folder_that_is_not_a_run_or_has_no_best_model_is_one_clear_error(tmp_path):
    with pytest.raises(ModelError, match=r"not a run directory \(no config\.json\)"):
        load_run(tmp_path)
    Config().to_json(tmp_path / "config.json")
    with pytest.raises(ModelError, match=r"best\.keras: no best checkpoint yet"):
        load_run(tmp_path)


def test_tags_come_from_tags_txt(tmp_path):
    run = RunDir(tmp_path)
    run.tags_file.write_text("mood/theme---a\nmood/theme---b\n")
    assert run.read_tags(Config()) == ("mood/theme---a", "mood/theme---b")
