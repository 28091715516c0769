"""Training: the AUC callback, crash-safe checkpoints, resumption, schedules and run directories.

Killing a run and resuming it: `test_resume.py`."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from emotion_keras import training
from emotion_keras.config import Config
from emotion_keras.data import demo
from emotion_keras.errors import ConfigError
from emotion_keras.rundir import RunDir
from emotion_keras.training import optimization, trainer
from emotion_keras.training.callbacks import ResumableCheckpoint, ValidationAUC

ROOT = Path(__file__).resolve().parents[2]


def tiny_model():
    inputs = keras.Input((4,), name="melspec")
    outputs = keras.layers.Dense(3, activation="sigmoid", name="tags")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def test_validation_auc_puts_sklearn_figures_into_logs_for_later_callbacks(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.random((40, 3)) < 0.4
    predictions = np.clip(truth * 0.3 + rng.random((40, 3)) * 0.7, 0, 1)
    seen = {}

    class Reader(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.update(logs)

    model = tiny_model()
    auc = ValidationAUC(
        lambda m: predictions, truth, ["a", "b", "c"], per_tag_csv=tmp_path / "per_tag.csv"
    )
    checkpoint = ResumableCheckpoint(RunDir(tmp_path))
    model.fit(
        np.zeros((8, 4)),
        np.zeros((8, 3)),
        epochs=1,
        verbose=0,
        callbacks=[auc, checkpoint, Reader()],
    )
    assert seen["val_roc_auc_macro"] == pytest.approx(roc_auc_score(truth, predictions), abs=1e-12)
    assert seen["val_pr_auc_macro"] == pytest.approx(
        average_precision_score(truth, predictions), abs=1e-12
    )
    assert seen["val_roc_auc_micro"] == pytest.approx(
        roc_auc_score(truth, predictions, average="micro"), abs=1e-12
    )
    per_tag = pd.read_csv(tmp_path / "per_tag.csv")
    assert len(per_tag) == 3 and set(per_tag["epoch"]) == {1}
    state = RunDir(tmp_path).read_state()
    assert state["best"] == pytest.approx(seen["val_pr_auc_macro"])
    assert (tmp_path / "checkpoints" / "best.keras").is_file()
    assert (tmp_path / "checkpoints" / "epoch-0001.keras").is_file()


def test_validation_every_n_epochs_and_after_the_last(tmp_path):
    calls = []
    auc = ValidationAUC(
        lambda m: calls.append(1) or np.full((4, 3), 0.5),
        np.eye(4, 3, dtype=bool) | np.eye(4, 3, k=-1, dtype=bool),
        "abc",
        every=2,
    )
    tiny_model().fit(np.zeros((4, 4)), np.zeros((4, 3)), epochs=5, verbose=0, callbacks=[auc])
    assert len(calls) == 3  # epochs 2, 4 and the last, 5


def test_checkpoint_keeps_only_the_last_epoch_and_the_best(tmp_path):
    model = tiny_model()
    values = iter([0.3, 0.5, 0.4])

    class Fake(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_pr_auc_macro"] = next(values)

    model.fit(
        np.zeros((4, 4)),
        np.zeros((4, 3)),
        epochs=3,
        verbose=0,
        callbacks=[Fake(), ResumableCheckpoint(RunDir(tmp_path))],
    )
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.keras")) == [
        "best.keras",
        "epoch-0003.keras",
    ]
    state = RunDir(tmp_path).read_state()
    assert (state["epoch"], state["best"], state["best_epoch"]) == (3, 0.5, 2)
    assert not list(tmp_path.glob(".*tmp*")), "no temporary files are left behind"


def test_restore_last_brings_back_weights_and_optimizer_state(tmp_path):
    model = tiny_model()
    model.fit(
        np.ones((8, 4)),
        np.ones((8, 3)),
        epochs=2,
        batch_size=4,
        verbose=0,
        callbacks=[ResumableCheckpoint(RunDir(tmp_path))],
    )
    fresh = tiny_model()
    trainer.restore_last(fresh, RunDir(tmp_path))
    for saved, restored in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(saved, restored)
    assert int(fresh.optimizer.iterations.numpy()) == 4
    for a, b in zip(model.optimizer.variables, fresh.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_commit_restores_dropout_masks_and_early_stopping_where_they_were(tmp_path):
    """What a `.keras` file does not keep: dropout's generator state (the next masks) and early
    stopping's patience count. Both go into state.json with each commit and come back."""
    from emotion_keras.training.callbacks import ResumableEarlyStopping

    def dropout_model():
        keras.utils.set_random_seed(7)
        inputs = keras.Input((4,), name="melspec")
        hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(16)(inputs))
        model = keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid")(hidden))
        model.compile(optimizer="adam", loss="binary_crossentropy")
        return model

    scores = iter([0.5, 0.4, 0.3, 0.2])

    class Scores(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_pr_auc_macro"] = next(scores)

    x, y = np.random.default_rng(0).normal(size=(8, 4)), np.ones((8, 3))
    stopping = ResumableEarlyStopping(monitor="val_pr_auc_macro", mode="max", patience=2)
    run = RunDir(tmp_path)
    model = dropout_model()
    checkpoint = ResumableCheckpoint(run, resumables={"early_stopping": stopping})
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[Scores(), stopping, checkpoint])
    state = run.read_state()
    assert state["callbacks"]["early_stopping"] == {"wait": 1, "best": 0.5, "best_epoch": 0}
    assert not state["stopped"]

    resumed = dropout_model()
    trainer.restore_last(resumed, run)
    resumed_stopping = ResumableEarlyStopping(monitor="val_pr_auc_macro", mode="max", patience=2)
    trainer.restore_run_state(resumed, run, {"early_stopping": resumed_stopping}, True)
    # The next training step draws the same dropout masks in both: the same update.
    model.train_on_batch(x[:4], y[:4])
    resumed.train_on_batch(x[:4], y[:4])
    for a, b in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Patience carries on: one more epoch without improvement stops the run, for good.
    resumed.fit(
        x,
        y,
        epochs=4,
        initial_epoch=2,
        batch_size=4,
        verbose=0,
        callbacks=[Scores(), resumed_stopping, ResumableCheckpoint(run, resumables={})],
    )
    assert run.read_state()["epoch"] == 3 and run.read_state()["stopped"]


def test_a_run_that_stopped_early_stays_stopped(tmp_path, caplog):
    config = Config(data_dir=str(tmp_path), meta_dir=str(tmp_path), epochs=10,
                    early_stopping_patience=2)  # fmt: skip
    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    config.to_json(run.config_file)
    run.state_file.write_text('{"epoch": 4, "checkpoint": "epoch-0004.keras", "stopped": true}')
    with caplog.at_level("INFO", logger="emotion_keras"):
        summary = training.train(config, run.path, verbose=0)
    assert summary["epochs"] == 4
    assert "stopped early after epoch 4 (early_stopping_patience 2); nothing to do" in caplog.text


def test_original_schedule_phases():
    phases = optimization.schedule_phases(Config(schedule="original", epochs=120))
    assert [(p.start, p.stop, p.optimizer, p.learning_rate) for p in phases] == [
        (0, 60, "adam", 1e-4),
        (60, 80, "sgd", 1e-3),
        (80, 100, "sgd", 1e-4),
        (100, 120, "sgd", 1e-5),
    ]
    assert [p.reload_best for p in phases] == [False, True, True, True]
    short = optimization.schedule_phases(Config(schedule="original", epochs=70))
    assert [(p.start, p.stop) for p in short] == [(0, 60), (60, 70)]
    assert [(p.start, p.stop) for p in optimization.schedule_phases(Config(epochs=7))] == [(0, 7)]


def test_run_dir_refuses_another_configuration(tmp_path):
    config = Config(data_dir="/d", meta_dir="/m", epochs=2)
    assert trainer.open_run_dir(RunDir(tmp_path), config) == 0
    assert Config.from_json(tmp_path / "config.json") == config
    trainer.open_run_dir(RunDir(tmp_path), config.replace(epochs=5))  # training longer is allowed
    with pytest.raises(ConfigError, match=r"another configuration \(model: 'vgg6' -> 'res16'"):
        trainer.open_run_dir(RunDir(tmp_path), config.replace(model="res16"))


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    demo.write_demo_dataset(root / "demo", n_train=12, n_validation=8, n_test=8)
    return demo.demo_paths(root / "demo")


def tiny_config(tiny_demo, **overrides):
    data_dir, meta_dir = tiny_demo
    values = dict(
        model="vgg6",
        data_dir=str(data_dir),
        meta_dir=str(meta_dir),
        epochs=2,
        batch_size=6,
        val_crops=2,
        seed=1,
    )
    values.update(overrides)
    return Config(**values)


@pytest.mark.slow
def test_train_writes_a_self_describing_run_and_resumes(tiny_demo, tmp_path):
    run = tmp_path / "run"
    summary = training.train(tiny_config(tiny_demo, epochs=1), run, verbose=0)
    assert summary["epochs"] == 1
    saved = keras.saving.load_model(run / "checkpoints" / "epoch-0001.keras")

    summary = training.train(tiny_config(tiny_demo, epochs=2), run, verbose=0)
    assert summary["epochs"] == 2
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [0, 1]
    assert {"loss", "val_pr_auc_macro", "val_roc_auc_macro"} <= set(history.columns)
    assert (run / "checkpoints" / "best.keras").is_file()
    assert len(pd.read_csv(run / "val_per_tag.csv")) == 2 * 56
    assert Config.from_json(run / "config.json") == tiny_config(tiny_demo, epochs=2)
    from emotion_keras.training.reports import read_summaries

    summaries = read_summaries(run / "logs")
    assert {"scalars", "pr_curves", "text", "images", "hparams"} <= {
        entry["plugin"] for entry in summaries.values()
    }
    assert "validation/epoch_pr_auc_macro" in summaries
    # The resumed epoch started from the saved weights: its optimizer kept counting steps.
    resumed = keras.saving.load_model(run / "checkpoints" / "epoch-0002.keras")
    assert int(resumed.optimizer.iterations.numpy()) == 2 * int(saved.optimizer.iterations.numpy())


@pytest.mark.slow
def test_mixed_precision_and_xla_train_and_leave_the_global_policy_alone(tiny_demo, tmp_path):
    run = tmp_path / "run"
    before = keras.mixed_precision.global_policy().name
    config = tiny_config(
        tiny_demo,
        model="baseline5",
        epochs=1,
        batch_size=4,
        train_tracks=8,
        mixed_precision=True,
        jit_compile=True,
    )
    summary = training.train(config, run, verbose=0)
    assert summary["epochs"] == 1 and np.isfinite(summary["last_logs"]["loss"])
    assert keras.mixed_precision.global_policy().name == before
    saved = keras.saving.load_model(run / "checkpoints" / "epoch-0001.keras")
    # On a CPU mixed precision is bfloat16; the output layer stays float32.
    assert saved.get_layer("block1_conv").dtype_policy.name == "mixed_bfloat16"
    assert saved.get_layer("tags").dtype_policy.name == "float32"
    assert saved.get_layer("block1_conv").compute_dtype == "bfloat16"


def test_a_nan_loss_stops_training_before_the_epoch_is_committed(tmp_path):
    from emotion_keras.errors import TrainingError
    from emotion_keras.training.callbacks import StopOnNaN

    model = tiny_model()
    labels = np.full((8, 3), np.nan)  # a NaN loss from the first step on
    with pytest.raises(
        TrainingError,
        match=r"loss became nan at epoch 1, step 1: training "
        r"diverged.*keeps its last completed epoch \(0\)",
    ):
        model.fit(
            np.ones((8, 4)),
            labels,
            epochs=2,
            batch_size=4,
            verbose=0,
            callbacks=[StopOnNaN(), ResumableCheckpoint(RunDir(tmp_path))],
        )
    assert RunDir(tmp_path).read_state() == {} and not list(tmp_path.rglob("*.keras"))


def test_records_are_written_before_the_commit_and_repaired_after_a_crash(tmp_path):
    """A crash between the records' write and the checkpoint's commit leaves rows of an
    uncommitted epoch, and one between the commit and the copy to best.keras leaves an old best:
    the repair on resume makes everything agree with state.json again."""
    from emotion_keras.training.callbacks import HistoryRecord, repair_run_records

    run, checkpoints = tmp_path / "run", tmp_path / "run" / "checkpoints"
    values = iter([0.3, 0.5, 0.6])

    class Scores(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_pr_auc_macro"] = next(values)

    class CrashAfterRecords(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt  # the process dies between records and commit

    model = tiny_model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            np.zeros((4, 4)),
            np.zeros((4, 3)),
            epochs=3,
            verbose=0,
            callbacks=[
                Scores(),
                HistoryRecord(run / "history.csv"),
                CrashAfterRecords(),
                ResumableCheckpoint(RunDir(run)),
            ],
        )
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [0, 1, 2]
    assert RunDir(run).read_state()["epoch"] == 2
    # Leftovers of interrupted writes, and an interrupted copy to best.keras (state says the
    # best is epoch 2, best.keras holds epoch 1's model).
    (checkpoints / ".epoch-0003.keras.abc123.tmp.keras").write_bytes(b"half")
    (run / ".history.csv.xyz.tmp.csv").write_bytes(b"half")
    best_before = (checkpoints / "best.keras").read_bytes()
    (checkpoints / "best.keras").write_bytes(b"an older best model")
    # And the previous epoch's checkpoint, which a crash right after the commit leaves.
    (checkpoints / "epoch-0001.keras").write_bytes(b"the epoch before the commit")

    assert repair_run_records(RunDir(run)) == 2
    assert list(pd.read_csv(run / "history.csv")["epoch"]) == [0, 1]
    assert (checkpoints / "best.keras").read_bytes() == best_before
    assert (checkpoints / "best.keras").read_bytes() == (
        checkpoints / "epoch-0002.keras"
    ).read_bytes()
    assert not list(run.rglob(".*.tmp*")), "temporary files are removed"
    assert [p.name for p in RunDir(run).epoch_checkpoints()] == ["epoch-0002.keras"]


def test_an_empty_history_file_from_a_crashed_first_epoch_does_not_wedge_the_run(tmp_path):
    config = Config(data_dir="/d", meta_dir="/m", epochs=2)
    (tmp_path / "history.csv").write_bytes(b"")  # what a kill -9 in epoch 1 used to leave
    (tmp_path / "val_per_tag.csv").write_bytes(b"")
    assert trainer.open_run_dir(RunDir(tmp_path), config) == 0
    assert not (tmp_path / "history.csv").exists()
    assert not (tmp_path / "val_per_tag.csv").exists()


def test_a_crop_the_model_cannot_take_is_refused_before_the_run_starts(tmp_path):
    config = Config(model="vgg6", crop_frames=128)
    with pytest.raises(ConfigError, match=r"^crop_frames 128: model vgg6 takes 1280-2559 frames"):
        training.train(config, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()
