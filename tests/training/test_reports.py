"""TensorBoard reviews: each summary is written with the right plugin and read back with its
values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from emotion_keras.config import Config
from emotion_keras.data.metadata import MOODTHEME_TAGS
from emotion_keras.training import reports

TAGS = MOODTHEME_TAGS[:6]


def test_tag_groups_keep_56_curves_in_four_alphabetical_groups():
    groups = reports.tag_groups(MOODTHEME_TAGS)
    assert len(groups) == 56 and len(set(groups.values())) == 4
    assert groups["action"] == groups["documentary"] == "action-documentary"
    assert groups["uplifting"].endswith("-uplifting")


def test_per_tag_scalars_are_grouped_and_skip_nan(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    roc = np.array([0.5, 0.6, np.nan, 0.8, 0.9, 1.0])
    reports.write_tag_aucs(writer, 3, TAGS, roc, roc / 2)
    writer.flush()
    found = reports.read_summaries(tmp_path)
    groups = reports.tag_groups(TAGS)
    entry = found[f"./tag_roc_auc_{groups['action']}/action"]
    assert entry["plugin"] == "scalars" and entry["steps"] == [3]
    assert entry["values"] == [pytest.approx(0.5)]
    assert groups["background"] == "advertising-background"
    assert found["./tag_pr_auc_advertising-background/background"]["values"] == [pytest.approx(0.4)]
    assert not any(key.endswith("/advertising") for key in found), "NaN AUCs are not written"


def test_pr_curves_hold_the_precision_and_recall_of_each_threshold(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.random((50, len(TAGS))) < 0.3
    scores = np.clip(truth * 0.4 + rng.random(truth.shape) * 0.6, 0, 1)
    writer = tf.summary.create_file_writer(str(tmp_path))
    reports.write_pr_curves(writer, 2, truth, scores, TAGS)
    writer.flush()
    entry = reports.read_summaries(tmp_path)["./pr_curve/ballad/pr_curves"]
    assert entry["plugin"] == "pr_curves"
    data = entry["values"][0]  # rows: TP, FP, TN, FN, precision, recall; one column per threshold
    assert data.shape == (6, reports.PR_THRESHOLDS)
    column = 50  # threshold 0.5
    predicted, actual = scores[:, 4] >= 0.5, truth[:, 4]
    tp = (predicted & actual).sum()
    assert data[0, column] == tp and data[1, column] == (predicted & ~actual).sum()
    assert data[4, column] == pytest.approx(tp / predicted.sum())
    assert data[5, column] == pytest.approx(tp / actual.sum())


def test_auc_table_is_markdown_text_ranked_by_pr_auc(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    pr = np.array([0.1, 0.9, 0.5, np.nan, 0.3, 0.2])
    reports.write_auc_table(writer, 1, TAGS, pr, pr)
    writer.flush()
    entry = reports.read_summaries(tmp_path)["./per_tag_auc"]
    assert entry["plugin"] == "text"
    text = entry["values"][0].item().decode()
    lines = text.splitlines()
    assert lines[2].startswith("| 1 | adventure | 0.9000")
    assert lines[-1].startswith("| 6 | background | nan")


def test_example_melspecs_become_images_low_frequencies_at_the_bottom(tmp_path):
    melspecs = np.zeros((2, 96, 1280), np.float32)
    melspecs[:, 0, :] = 50.0  # lowest band loud
    writer = tf.summary.create_file_writer(str(tmp_path))
    reports.write_melspec_images(writer, 0, melspecs)
    writer.flush()
    entry = reports.read_summaries(tmp_path)["./inputs/melspec"]
    assert entry["plugin"] == "images"
    width, height = (int(v) for v in entry["values"][0][:2])
    assert (width, height) == (320, 96) and len(entry["values"][0]) == 2 + 2
    image = reports.melspec_images(melspecs)[0, :, :, 0]
    assert (image[-1] == 1.0).all() and (image[:-1] == 0.0).all()


def test_hparams_session_names_the_run_settings(tmp_path):
    config = Config(model="res16", learning_rate=1e-4, weight_averaging="swa")
    truth = np.eye(8, len(TAGS), dtype=bool)
    run_reports = reports.RunReports(tmp_path / "logs", config, TAGS, truth)
    per_tag = pd.DataFrame(
        {"tag": TAGS, "roc_auc": np.linspace(0.5, 1, 6), "pr_auc": np.linspace(0.1, 0.6, 6)}
    )
    run_reports.on_validation(
        0, {"pr_auc_macro": 0.3, "roc_auc_macro": 0.7}, per_tag, np.full(truth.shape, 0.5)
    )
    run_reports.close()
    found = reports.read_summaries(tmp_path / "logs")
    plugins = {entry["plugin"] for entry in found.values()}
    assert {"hparams", "scalars", "pr_curves", "text"} <= plugins
    from tensorboard.plugins.hparams import plugin_data_pb2

    session = plugin_data_pb2.HParamsPluginData.FromString(
        found["./_hparams_/session_start_info"]["contents"][0]
    ).session_start_info
    assert session.hparams["model"].string_value == "res16"
    assert session.hparams["learning_rate"].number_value == pytest.approx(1e-4)
    assert session.hparams["weight_averaging"].string_value == "swa"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        found["./_hparams_/experiment"]["contents"][0]
    ).experiment
    assert {m.name.tag for m in experiment.metric_infos} >= {
        "epoch_pr_auc_macro",
        "best_val_pr_auc_macro",
    }
    assert found["reports/best_val_pr_auc_macro"]["values"] == [pytest.approx(0.3)]
