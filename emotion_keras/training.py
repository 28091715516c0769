"""Training a model through `model.fit`, in a self-describing run directory that resumes.

A run directory holds everything needed to understand and reproduce a run:

    RUN/config.json        the resolved configuration (emotion_keras.config.Config)
    RUN/tags.txt           the tag names, in output order
    RUN/history.csv        per-epoch loss and validation AUCs (keras.callbacks.CSVLogger)
    RUN/val_per_tag.csv    per-tag validation ROC-AUC/PR-AUC of every validated epoch
    RUN/checkpoints/       epoch-NNNN.keras (last epoch, optimizer included), best.keras, state.json
    RUN/logs/              TensorBoard: train/, validation/, reports/ (per-tag AUCs, PR curves,
                           AUC table, example inputs, HParams)

Running the same command again resumes after the last completed epoch with optimizer state
intact (a run killed at any instant, SIGKILL included, loses at most the epoch in progress).

Two optimiser schedules:
- `paper`: Adam at `learning_rate` throughout (Yi et al. 2019, §3.3).
- `original`: the original implementation's solver: Adam at 1e-4 for 60 epochs, then SGD with
  Nesterov momentum 0.9 and weight decay 1e-4 at 1e-3, 1e-4 and 1e-5 for 20 epochs each,
  reloading the best weights at each switch.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from emotion_keras import metadata
from emotion_keras.callbacks import (BEST_FILE, HISTORY_FILE, PER_TAG_FILE, HistoryRecord,
                                     ResumableCheckpoint, StopOnNaN, ValidationAUC,
                                     repair_run_records, read_state)
from emotion_keras.config import Config
from emotion_keras.errors import ConfigError
from emotion_keras.fileio import atomic_write_text

#: Where the demo dataset is written on first use (relative to the working directory).
DEFAULT_DEMO_DIR = Path(os.environ.get("EMOTION_KERAS_DEMO_DIR", "data/demo"))
CHECKPOINTS = "checkpoints"
LOGS = "logs"


@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of epochs trained with one optimiser: epochs [start, stop)."""

    start: int
    stop: int
    optimizer: str
    learning_rate: float
    reload_best: bool = False


def schedule_phases(config: Config) -> list[Phase]:
    """The optimiser phases of a run, cut at `config.epochs`."""
    if config.schedule == "paper":
        phases = [Phase(0, config.epochs, "adam", config.learning_rate)]
    else:  # original implementation's solver
        phases = [Phase(0, 60, "adam", 1e-4)] + [
            Phase(start, start + 20, "sgd", lr, reload_best=True)
            for start, lr in ((60, 1e-3), (80, 1e-4), (100, 1e-5))]
        phases[-1] = dataclasses.replace(phases[-1], stop=max(120, config.epochs))
    return [dataclasses.replace(p, stop=min(p.stop, config.epochs))
            for p in phases if p.start < config.epochs]


def make_optimizer(phase: Phase):
    import keras

    if phase.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=phase.learning_rate)
    return keras.optimizers.SGD(learning_rate=phase.learning_rate, momentum=0.9, nesterov=True,
                                weight_decay=1e-4)


def resolve_data(config: Config) -> Config:
    """Fills in the demo dataset's folders (writing it on first use) when no data is given."""
    if not config.uses_demo_data:
        return config
    from emotion_keras.demo import ensure_demo_dataset

    data_dir, meta_dir = ensure_demo_dataset(DEFAULT_DEMO_DIR)
    return config.replace(data_dir=str(data_dir.resolve()), meta_dir=str(meta_dir.resolve()))


def default_run_dir(config_name: str, config: Config) -> Path:
    return Path("runs") / f"{Path(config_name).stem}-{config.model}-split{config.split}"


def prepare_run_dir(run_dir: Path, config: Config, write: bool = True) -> int:
    """Creates the run directory or checks it belongs to `config`; returns completed epochs.

    `write=False` (a worker other than the chief) only checks and reads.
    """
    saved_path = run_dir / "config.json"
    if saved_path.is_file():
        saved = Config.from_json(saved_path)
        # Only the epoch count may change between a run and its resumption (to train longer).
        differing = [f"{k}: {v!r} -> {getattr(config, k)!r}" for k, v in saved.to_dict().items()
                     if k != "epochs" and v != getattr(config, k)]
        if differing:
            raise ConfigError(f"--run-dir {run_dir}: holds a run with another configuration "
                              f"({'; '.join(differing)}); give a new --run-dir, or repeat the "
                              f"original flags to resume it")
    if not write:
        return int(read_state(run_dir / CHECKPOINTS).get("epoch", 0))
    run_dir.mkdir(parents=True, exist_ok=True)
    config.to_json(saved_path)
    # A crash may have come between two writes of the last epoch: make the records agree with
    # the checkpoint state (the source of truth) before training on.
    return repair_run_records(run_dir, run_dir / CHECKPOINTS)


def set_precision_policy(config: Config) -> None:
    import keras
    import tensorflow as tf

    if config.mixed_precision:
        policy = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    else:
        policy = "float32"
    keras.mixed_precision.set_global_policy(policy)


def train(config: Config, run_dir: str | Path, *, verbose: int | None = None,
          callbacks=()) -> dict:
    """Trains `config.model` as `config` says, resuming `run_dir` if it holds this run.

    Under a multi-replica strategy (`config.strategy`, see `emotion_keras.distribute`) only the
    chief writes `run_dir`; every worker calls `train` with the same configuration.

    Args:
        config: the run's configuration (demo data is used when it names no data).
        run_dir: the run directory (created, or resumed).
        verbose: Keras progress output (default: a bar on a terminal, a line per epoch otherwise).
        callbacks: more Keras callbacks, run after the run's own (they see the validation AUCs
            in `logs`).

    Returns:
        A summary: run directory, epochs done, best monitored value and epoch, last logs.
    """
    import keras

    # The precision policy is global in Keras: put back whatever the caller had.
    policy = keras.mixed_precision.global_policy()
    try:
        return _train(config, Path(run_dir), verbose, callbacks)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _train(config: Config, run_dir: Path, verbose: int | None, callbacks) -> dict:
    import keras

    from emotion_keras import distribute, pipeline
    from emotion_keras.melspec_io import scan_melspecs
    from emotion_keras.models import build_model, synchronized_batch_norm
    from emotion_keras.reports import RunReports

    # First: a multi-worker strategy must exist before any other TensorFlow operation.
    strategy = distribute.make_strategy(config.strategy)
    workers = distribute.workers_of(strategy)
    chief = workers.is_chief
    replica_batch = distribute.per_replica_batch(config.batch_size, workers)
    config = resolve_data(config)
    completed = prepare_run_dir(run_dir, config, write=chief)
    if workers.count > 1:
        lowest, highest = distribute.agree(strategy, completed)
        if lowest != highest:
            raise ConfigError(f"--run-dir {run_dir}: workers see different checkpoints (epochs "
                              f"{lowest} to {highest}); the run directory must be one folder "
                              f"that every worker sees (a shared file system)")
    if completed >= config.epochs:
        print(f"{run_dir}: already trained for {completed} epochs; nothing to do "
              f"(give --epochs above {completed} to train longer)", file=sys.stderr)
        return _summary(run_dir, completed, {})

    train_set = metadata.read_subset(config.meta_dir, config.split, "train")
    val_set = metadata.read_subset(config.meta_dir, config.split, "validation",
                                   tags=train_set.tags)
    if chief:
        atomic_write_text(run_dir / "tags.txt", "\n".join(train_set.tags) + "\n")
    if config.train_tracks:
        train_set = train_set.head(config.train_tracks)
    if config.val_tracks:
        val_set = val_set.head(config.val_tracks)
    for subset in (train_set, val_set):
        metadata.check_melspecs_exist(config.data_dir, subset)
    print(f"Scanning {len(train_set) + len(val_set)} melspec headers...", file=sys.stderr)
    train_frames = scan_melspecs(config.data_dir, train_set, n_bands=config.n_bands)
    val_frames = scan_melspecs(config.data_dir, val_set, n_bands=config.n_bands)

    keras.utils.set_random_seed(config.seed)
    set_precision_policy(config)
    input_shape = (config.n_bands, config.crop_frames, 1)
    with strategy.scope():
        model = build_model(config.model, input_shape=input_shape, num_tags=len(train_set.tags),
                            dropout=config.dropout)

    data_settings = dict(crop_frames=config.crop_frames, n_bands=config.n_bands,
                         seed=config.seed)
    if workers.distributed:
        train_data = distribute.distributed_dataset(strategy, lambda shard: pipeline.train_dataset(
            config.data_dir, train_set, train_frames, batch_size=replica_batch, shard=shard,
            global_batch=config.batch_size, **data_settings))
    else:
        train_data = pipeline.train_dataset(config.data_dir, train_set, train_frames,
                                            batch_size=config.batch_size, **data_settings)
    eval_settings = dict(n_crops=config.val_crops, crop_frames=config.crop_frames,
                         batch_size=config.batch_size, n_bands=config.n_bands)

    def predict_validation(m):
        if workers.count == 1:  # model.predict splits batches over this machine's replicas
            return pipeline.predict_tracks(m, config.data_dir, val_set, val_frames,
                                           **eval_settings)
        share = distribute.contiguous_share(len(val_set), workers)
        mine = pipeline.predict_tracks(distribute.LocalPredictor(m), config.data_dir,
                                       val_set.take(share), val_frames[share.start:share.stop],
                                       **eval_settings)
        return distribute.gather_rows(strategy, mine, np.arange(share.start, share.stop),
                                      n_rows=len(val_set)).astype(np.float32)

    reports = checkpoint = None
    run_callbacks = [
        # ValidationAUC first: the callbacks after it read the figures it adds to `logs`.
        ValidationAUC(predict_validation, val_set.labels, val_set.tags,
                      every=config.validate_every,
                      per_tag_csv=run_dir / PER_TAG_FILE if chief else None),
    ]
    if chief:
        reports = RunReports(run_dir / LOGS, config, train_set.tags, val_set.labels,
                             monitor=config.monitor)
        run_callbacks[0].on_scores = reports.on_validation
        if completed == 0:
            reports.write_examples(pipeline.train_dataset(
                config.data_dir, train_set, train_frames, batch_size=config.batch_size,
                **data_settings))
        checkpoint = ResumableCheckpoint(run_dir / CHECKPOINTS, monitor=config.monitor)
        run_callbacks += [
            # The records first, then the checkpoint's commit (see emotion_keras.callbacks).
            HistoryRecord(run_dir / HISTORY_FILE),
            checkpoint,
            keras.callbacks.TensorBoard(log_dir=str(run_dir / LOGS), write_graph=False),
        ]
    # First of all: a NaN loss stops the run before any callback ends the epoch.
    run_callbacks.insert(0, StopOnNaN())
    if config.early_stopping_patience:
        run_callbacks.append(keras.callbacks.EarlyStopping(
            monitor=config.monitor, mode="max", patience=config.early_stopping_patience))
    run_callbacks += list(callbacks)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2

    print(f"Training {config.model} on {len(train_set)} tracks ({train_set.name}), validating "
          f"on {len(val_set)} with {config.val_crops} crops each; run directory {run_dir}",
          file=sys.stderr)
    if workers.distributed:
        print(f"Distributed: {workers.describe()}; global batch {config.batch_size}, "
              f"{replica_batch} per replica; synchronised BatchNormalization"
              + ("" if chief else "; this worker writes nothing (the chief does)"),
              file=sys.stderr)
    if completed:
        print(f"Resuming after epoch {completed} from {run_dir / CHECKPOINTS}", file=sys.stderr)
    started = time.monotonic()
    history = None
    for phase in schedule_phases(config):
        if completed >= phase.stop:
            continue
        with strategy.scope():
            model.compile(optimizer=make_optimizer(phase), loss="binary_crossentropy",
                          jit_compile=config.jit_compile)
            distribute.prepare_fit(model, strategy, workers, input_shape, len(train_set.tags))
            if completed > phase.start:
                _restore_last(model, run_dir / CHECKPOINTS)
            elif phase.reload_best and (run_dir / CHECKPOINTS / BEST_FILE).is_file():
                _restore_best_weights(model, run_dir / CHECKPOINTS / BEST_FILE)
                print(f"Epoch {phase.start}: switching to {phase.optimizer} at learning rate "
                      f"{phase.learning_rate:g} from the best weights so far", file=sys.stderr)
        # A file that broke after the start-up scan (NaN values, deleted, truncated) fails inside
        # the pipeline's numpy call: data_errors surfaces our one-line message, not TF's trace.
        with pipeline.data_errors(), synchronized_batch_norm(model, workers.replicas > 1), \
                warnings.catch_warnings():
            # A distributed epoch's step count is unknown until its input ends, and Keras warns
            # that the input "ran out of data" when it does: that is the end of the epoch.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            history = model.fit(train_data, epochs=phase.stop,
                                initial_epoch=max(completed, phase.start),
                                callbacks=run_callbacks, verbose=verbose,
                                shuffle=False)  # the dataset shuffles itself, per epoch
        if workers.count > 1:
            distribute.barrier(strategy)  # the chief's checkpoint of the last epoch is written
        completed = int(read_state(run_dir / CHECKPOINTS).get("epoch", completed))
        if model.stop_training:
            break
    if reports is not None:
        reports.close(best=checkpoint.best)
    if workers.count > 1:
        distribute.barrier(strategy)  # no worker leaves while others still need it
    last_logs = {k: float(v[-1]) for k, v in history.history.items()} if history else {}
    summary = _summary(run_dir, completed, last_logs)
    if summary["best"] is None:
        best = (f"No epoch gave a {config.monitor} figure (every validation tag had a single "
                f"class?), so there is no best model.")
        best_model = "none"
    else:
        best = f"Best {config.monitor} {summary['best']:.4f} at epoch {summary['best_epoch']}."
        best_model = str(run_dir / CHECKPOINTS / BEST_FILE)
    print(f"\nDone in {time.monotonic() - started:.0f} s. {best}\n"
          f"  run directory:  {run_dir}\n  best model:     {best_model}\n"
          f"  TensorBoard:    tensorboard --logdir {run_dir / LOGS}   (or: make tensorboard)",
          file=sys.stderr)
    return summary


def _restore_last(model, checkpoints: Path) -> None:
    """Loads the last epoch's weights and optimizer state into a compiled `model`."""
    state = read_state(checkpoints)
    model.optimizer.build(model.trainable_variables)
    model.load_weights(checkpoints / state["checkpoint"])


def _restore_best_weights(model, path: Path) -> None:
    import keras

    best = keras.saving.load_model(path, compile=False)
    model.set_weights(best.get_weights())


def _summary(run_dir: Path, completed: int, last_logs: dict) -> dict:
    state = read_state(run_dir / CHECKPOINTS)
    return {"run_dir": str(run_dir), "epochs": completed, "best": state.get("best"),
            "best_epoch": state.get("best_epoch"), "last_logs": last_logs}


def load_best_model(run_dir: str | Path):
    """The best checkpoint of a run (safe mode)."""
    from emotion_keras.models import load_model

    path = Path(run_dir) / CHECKPOINTS / BEST_FILE
    return load_model(path)

