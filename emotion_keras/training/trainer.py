"""Training a model through `model.fit`, in a self-describing run directory that resumes.

`train(config, run_dir)` is a sequence of small steps, each a function below:

1. `_start_strategy`: the `tf.distribute` strategy (first: a multi-worker strategy must exist
   before any other TensorFlow operation) and this process's place in it.
2. `open_run_dir`: create the run directory or check that it holds this run, repair its records
   after a crash (`callbacks.repair_run_records`), and read how many epochs are done.
3. `_read_data`: the training and validation subsets and their tracks' frame counts (a start-up
   scan that reports every unusable file at once).
4. `_build_model`, `_training_input`, `_validation_predictor`: the model, its input pipeline
   and the validation predictions the AUC callback scores.
5. `_recipe`, `_callbacks`: the recipe's loss, steps per epoch and weight averaging (options
   beyond the paper, README "Beyond the paper"); validation AUCs, records, checkpoint,
   TensorBoard, early stopping.
6. `_fit_phases`: `model.fit` once per optimiser phase of the schedule, resuming mid-schedule.

What is in a run directory: `emotion_keras.rundir`. A run killed at any instant (SIGKILL
included) loses at most the epoch in progress, and running the same command again resumes after
the last completed epoch as the uninterrupted run would have gone on: weights, optimizer state,
dropout's random generators and the callbacks' state come back from the commit, and every
epoch's input is a pure function of `(seed, epoch)`.

Progress goes to the `emotion_keras` logger (the command line prints it); Keras prints its own
progress bar according to `verbose`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

from emotion_keras.config import Config
from emotion_keras.data import metadata
from emotion_keras.errors import ConfigError
from emotion_keras.fileio import atomic_write_text
from emotion_keras.progress import Progress, log
from emotion_keras.rundir import RunDir
from emotion_keras.training.optimization import compile_model, precision, schedule_phases

#: Where the demo dataset is written on first use (relative to the working directory).
DEFAULT_DEMO_DIR = Path(os.environ.get("EMOTION_KERAS_DEMO_DIR", "data/demo"))


def resolve_data(config: Config, progress: Progress | None = None) -> Config:
    """The configuration with absolute data folders; the demo dataset's (written on first use)
    when it names none."""
    if not config.uses_demo_data:
        return config.with_absolute_paths()
    from emotion_keras.data.demo import ensure_demo_dataset

    data_dir, meta_dir = ensure_demo_dataset(DEFAULT_DEMO_DIR, progress=progress)
    return config.replace(data_dir=str(data_dir.resolve()), meta_dir=str(meta_dir.resolve()))


def default_run_dir(config_name: str, config: Config) -> Path:
    return Path("runs") / f"{Path(config_name).stem}-{config.model}-split{config.split}"


def open_run_dir(run: RunDir, config: Config, write: bool = True) -> int:
    """Creates the run directory or checks it belongs to `config`; returns completed epochs.

    With `write` (the chief) it also saves the configuration and repairs the records after a
    crash; `write=False` (another worker) only checks and reads.

    Raises:
        ConfigError: the folder is a file or cannot be written, or holds another run.
    """
    if run.path.exists() and not run.path.is_dir():
        raise ConfigError(
            f"run_dir {run.path}: is a file, expected a folder for the run", arguments=("run_dir",)
        )
    if run.config_file.is_file():
        saved = Config.from_json(run.config_file)
        differing = _differing_fields(saved, config)
        if differing:
            raise ConfigError(
                f"run_dir {run.path}: holds a run with another configuration "
                f"({'; '.join(differing)}); give a new run directory, or repeat "
                f"the original settings to resume it",
                arguments=("run_dir",),
            )
    if not write:
        return int(run.read_state().get("epoch", 0))
    try:
        run.path.mkdir(parents=True, exist_ok=True)
        config.to_json(run.config_file)
    except OSError as error:
        raise ConfigError(
            f"run_dir {run.path}: cannot be written ({error.strerror or error})",
            arguments=("run_dir",),
        ) from None
    # A crash may have come between two writes of the last epoch: make the records agree with
    # the checkpoint state (the source of truth) before training on.
    from emotion_keras.training.callbacks import repair_run_records

    return repair_run_records(run)


def _differing_fields(saved: Config, config: Config) -> list[str]:
    # Only the epoch count may change between a run and its resumption (to train longer); data
    # folders are compared as the folders they name.
    differing = []
    for name, value in saved.to_dict().items():
        new = getattr(config, name)
        if name == "epochs":
            continue
        if name in ("data_dir", "meta_dir") and value is not None and new is not None:
            if Path(value).resolve() == Path(new).resolve():
                continue
        if value != new:
            differing.append(f"{name}: {value!r} -> {new!r}")
    return differing


def train(
    config: Config,
    run_dir: str | Path,
    *,
    verbose: int | None = None,
    callbacks=(),
    progress: Progress | None = None,
) -> dict:
    """Trains `config.model` as `config` says, resuming `run_dir` if it holds this run.

    Under a multi-replica strategy (`config.strategy`, see `training.distribute`) only the
    chief writes `run_dir`; every worker calls `train` with the same configuration.

    Args:
        config: the run's configuration (demo data is used when it names no data).
        run_dir: the run directory (created, or resumed).
        verbose: Keras progress output (default: a bar on a terminal, a line per epoch otherwise).
        callbacks: more Keras callbacks, run after the run's own (they see the validation AUCs
            in `logs`).
        progress: told about long work outside Keras's own progress bar: writing the demo data,
            scanning headers, validating after an epoch.

    Returns:
        A summary: run directory, epochs done, best monitored value and epoch, last logs.
    """
    with precision(config.mixed_precision):
        return _train(config, RunDir(run_dir), verbose, callbacks, progress)


@dataclasses.dataclass(frozen=True)
class _RunData:
    """The subsets a run trains and validates on, and their tracks' frame counts."""

    train_set: metadata.Subset
    val_set: metadata.Subset
    train_frames: np.ndarray
    val_frames: np.ndarray


def _train(
    config: Config, run: RunDir, verbose: int | None, callbacks, progress: Progress | None
) -> dict:
    from emotion_keras.models import check_crop

    check_crop(
        config.model, config.n_bands, config.crop_frames, config.time_pooling, config.eval_mode
    )
    strategy, workers = _start_strategy(config)
    config = resolve_data(config, progress)
    completed = _open_shared_run_dir(run, config, strategy, workers)
    if run.read_state().get("stopped"):
        log.info(
            "%s: stopped early after epoch %d (early_stopping_patience %d); nothing to do",
            run,
            completed,
            config.early_stopping_patience,
        )
        return _summary(run, completed, {})
    if completed >= config.epochs:
        log.info(
            "%s: already trained for %d epochs; nothing to do (raise epochs above %d to "
            "train longer)",
            run,
            completed,
            completed,
        )
        return _summary(run, completed, {})
    data = _read_data(config, run, workers.is_chief, progress)
    model = _build_model(config, strategy, n_tags=len(data.train_set.tags))
    train_input = _training_input(config, data, strategy, workers)
    recipe = _recipe(config, run, data, workers)
    run_callbacks, reports, resumables = _callbacks(
        config,
        run,
        data,
        completed,
        workers,
        _validation_predictor(config, data, strategy, workers, progress, spill_dir=run.path),
        recipe.averaging,
    )
    run_callbacks += list(callbacks)
    if recipe.averaging is not None:
        run_callbacks.append(recipe.averaging.swap_out)  # last: training weights back
    _log_start(config, run, data, workers, completed)
    started = time.monotonic()
    from emotion_keras.training.distribute import lost_workers

    with lost_workers(workers, lambda: int(run.read_state().get("epoch", 0))):
        history = _fit_phases(
            model,
            config,
            run,
            train_input,
            run_callbacks,
            resumables,
            strategy,
            workers,
            completed,
            verbose,
            recipe,
        )
    if reports is not None:
        reports.close()
    if workers.count > 1:
        from emotion_keras.training import distribute

        distribute.barrier(strategy)  # no worker leaves while others still need it
    last_logs = {k: float(v[-1]) for k, v in history.history.items()} if history else {}
    summary = _summary(run, int(run.read_state().get("epoch", completed)), last_logs)
    _log_done(config, run, summary, time.monotonic() - started)
    return summary


def _start_strategy(config: Config):
    from emotion_keras.training import distribute

    strategy = distribute.make_strategy(config.strategy)
    workers = distribute.workers_of(strategy)
    distribute.per_replica_batch(config.batch_size, workers)  # checks that the batch splits
    return strategy, workers


def _open_shared_run_dir(run: RunDir, config: Config, strategy, workers) -> int:
    completed = open_run_dir(run, config, write=workers.is_chief)
    if workers.count > 1:
        from emotion_keras.training import distribute

        lowest, highest = distribute.agree(strategy, completed)
        if lowest != highest:
            raise ConfigError(
                f"run_dir {run.path}: workers see different checkpoints (epochs "
                f"{lowest} to {highest}); the run directory must be one folder "
                f"that every worker sees (a shared file system)",
                arguments=("run_dir",),
            )
    return completed


def _read_data(config: Config, run: RunDir, chief: bool, progress: Progress | None) -> _RunData:
    from emotion_keras.data.melspec_files import scan_melspecs

    train_set = metadata.read_subset(config.meta_dir, config.split, "train")
    val_set = metadata.read_subset(config.meta_dir, config.split, "validation", tags=train_set.tags)
    if chief:
        atomic_write_text(run.tags_file, "\n".join(train_set.tags) + "\n")
    if config.train_tracks:
        train_set = train_set.head(config.train_tracks)
    if config.val_tracks:
        val_set = val_set.head(config.val_tracks)
    log.info("Scanning %d melspec headers...", len(train_set) + len(val_set))
    return _RunData(
        train_set,
        val_set,
        scan_melspecs(config.data_dir, train_set, config.n_bands, progress),
        scan_melspecs(config.data_dir, val_set, config.n_bands, progress),
    )


def _build_model(config: Config, strategy, n_tags: int):
    import keras

    from emotion_keras.models import build_model

    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = build_model(
            config.model,
            input_shape=_input_shape(config),
            num_tags=n_tags,
            dropout=config.dropout,
            time_pooling=config.time_pooling,
        )
        if config.time_masks or config.freq_masks:
            from emotion_keras.models.augment import SpecAugment, with_spec_augment

            masking = SpecAugment(
                config.time_masks,
                config.time_mask_frames,
                config.freq_masks,
                config.freq_mask_bands,
                seed=config.seed,
                name="spec_augment",
            )
            model = with_spec_augment(model, masking)
        return model


def _input_shape(config: Config) -> tuple[int, int, int]:
    return (config.n_bands, config.crop_frames, 1)


def _data_settings(config: Config) -> dict:
    return dict(
        crop_frames=config.crop_frames,
        n_bands=config.n_bands,
        seed=config.seed,
        dtype=_crop_dtype(config),
    )


def _crop_dtype(config: Config) -> str:
    """float16 crops for a float16 compute dtype (mixed precision on a GPU), else float32."""
    from emotion_keras.training.optimization import precision_policy

    return "float16" if precision_policy(config.mixed_precision) == "mixed_float16" else "float32"


def _training_input(config: Config, data: _RunData, strategy, workers):
    """`(first_epoch, stop) -> (batches, steps per epoch)`: the training input of epochs
    `first_epoch` to `stop - 1` in one pass, from one pipeline or one per worker feeding its
    replicas."""
    from emotion_keras.data import pipeline
    from emotion_keras.training import distribute

    def epochs(first_epoch: int, stop: int):
        epoch_range = dict(first_epoch=first_epoch, n_epochs=stop - first_epoch)
        if not workers.distributed:
            steps = pipeline.steps_per_epoch(len(data.train_set), config.batch_size)
            return pipeline.train_dataset(
                config.data_dir,
                data.train_set,
                data.train_frames,
                batch_size=config.batch_size,
                **epoch_range,
                mixup_alpha=config.mixup_alpha,
                **_data_settings(config),
            ), steps
        replica_batch = distribute.per_replica_batch(config.batch_size, workers)
        steps = pipeline.steps_per_epoch(
            len(data.train_set), replica_batch, global_batch=config.batch_size
        )
        return distribute.distributed_dataset(
            strategy,
            lambda shard: pipeline.train_dataset(
                config.data_dir,
                data.train_set,
                data.train_frames,
                batch_size=replica_batch,
                shard=shard,
                global_batch=config.batch_size,
                **epoch_range,
                mixup_alpha=config.mixup_alpha,
                **_data_settings(config),
            ),
        ), steps

    return epochs


@dataclasses.dataclass(frozen=True)
class _Recipe:
    """What the recipe options add to a run: its loss, steps per epoch, weight averaging."""

    loss: object
    steps_per_epoch: int
    averaging: object | None  # averaging.WeightAveraging


def _recipe(config: Config, run: RunDir, data: _RunData, workers) -> _Recipe:
    """The loss (`weighted_bce`'s weights from the training tracks, written to the run), the
    steps of an epoch (for the cosine schedule) and the weight averaging of the run."""
    from emotion_keras.training import averaging, losses

    pos_weight = None
    if config.loss == "weighted_bce":
        pos_weight = losses.positive_weights(data.train_set.labels)
        if workers.is_chief:
            _write_loss_weights(run, data.train_set, pos_weight)
    from emotion_keras.data import pipeline

    # The steps `_training_input` gives `fit` (a distributed epoch is cut to full global batches).
    steps = pipeline.steps_per_epoch(
        len(data.train_set),
        config.batch_size,
        global_batch=config.batch_size if workers.distributed else None,
    )
    weight_averaging = None
    if config.weight_averaging != "none":
        if workers.distributed:
            raise ConfigError(
                f"weight_averaging {config.weight_averaging}: not supported under a "
                f"multi-replica strategy yet ({workers.describe()}); use strategy default",
                arguments=("weight_averaging", "strategy"),
            )

        def refresh_input():
            from emotion_keras.data import pipeline

            return pipeline.train_dataset(
                config.data_dir,
                data.train_set,
                data.train_frames,
                batch_size=config.batch_size,
                **_data_settings(config),
            )

        weight_averaging = averaging.WeightAveraging(
            config, run, refresh_input, write=workers.is_chief
        )
    return _Recipe(losses.make_loss(config, pos_weight), max(steps, 1), weight_averaging)


def _write_loss_weights(run: RunDir, train_set: metadata.Subset, pos_weight) -> None:
    import pandas as pd

    from emotion_keras.fileio import atomic_path

    positives = train_set.labels.sum(axis=0)
    table = pd.DataFrame(
        {
            "tag": train_set.tags,
            "positive_tracks": positives,
            "frequency": positives / len(train_set),
            "pos_weight": pos_weight,
        }
    )
    with atomic_path(run.loss_weights_file) as tmp:
        table.to_csv(tmp, index=False)


def _validation_predictor(
    config: Config,
    data: _RunData,
    strategy,
    workers,
    progress: Progress | None = None,
    spill_dir: Path | None = None,
):
    """`model -> [n_validation_tracks, n_tags]` probabilities averaged as `config.eval_mode`
    says (`evaluation.evaluate.predict_averaged`), on every worker; `progress` is told after
    every batch. Validation crops that do not fit in `config.val_cache_mb` of RAM are cached in
    a temporary file in `spill_dir` (`pipeline.CropCache`)."""
    from emotion_keras.evaluation.evaluate import predict_averaged
    from emotion_keras.training import distribute

    settings = dict(dtype=_crop_dtype(config), progress=progress)
    val_set, val_frames = data.val_set, data.val_frames
    if config.val_cache_mb:  # the regular crops are the same every epoch: read them once
        from emotion_keras.data import pipeline

        settings["cache"] = pipeline.CropCache(config.val_cache_mb * 2**20, spill_dir=spill_dir)

    def predict_validation(model):
        if workers.count == 1:  # model.predict splits batches over this machine's replicas
            return predict_averaged(
                model, config, val_set, val_frames, config.val_crops, **settings
            )
        share = distribute.contiguous_share(len(val_set), workers)
        mine = predict_averaged(
            model,
            config,
            val_set.take(share),
            val_frames[share.start : share.stop],
            config.val_crops,
            wrap=distribute.LocalPredictor,
            **settings,
        )
        return distribute.gather_rows(
            strategy, mine, np.arange(share.start, share.stop), n_rows=len(val_set)
        ).astype(np.float32)

    return predict_validation


def _callbacks(
    config: Config,
    run: RunDir,
    data: _RunData,
    completed: int,
    workers,
    predict_validation,
    weight_averaging=None,
):
    """The run's callbacks in the order they must run, its TensorBoard reports (chief), and
    the callbacks whose state the checkpoint commits, by name."""
    import keras

    from emotion_keras.training.callbacks import (
        HistoryRecord,
        ResumableCheckpoint,
        ResumableEarlyStopping,
        StopOnNaN,
        ValidationAUC,
    )

    chief = workers.is_chief
    validation = ValidationAUC(
        predict_validation,
        data.val_set.labels,
        data.val_set.tags,
        every=config.validate_every,
        per_tag_csv=run.per_tag_history_file if chief else None,
    )
    # First of all, StopOnNaN: a NaN loss stops the run before any callback ends the epoch.
    # Then ValidationAUC: the callbacks after it read the figures it adds to `logs`.
    # Every worker stops alike (they compute the same AUCs); it runs before the checkpoint,
    # which commits its state with the epoch.
    resumables = {}
    if config.early_stopping_patience:
        resumables["early_stopping"] = ResumableEarlyStopping(
            monitor=config.monitor, mode="max", patience=config.early_stopping_patience
        )
    # With weight averaging, the averaged weights go in before validation (and are what the
    # checkpoint saves); `weight_averaging.swap_out`, the last callback, takes them out.
    averaged = [] if weight_averaging is None else [weight_averaging.swap_in]
    run_callbacks = [StopOnNaN(), *averaged, validation]
    reports = None
    if chief:
        from emotion_keras.data import pipeline
        from emotion_keras.training.reports import RunReports

        reports = RunReports(
            run.logs, config, data.train_set.tags, data.val_set.labels, monitor=config.monitor
        )
        validation.on_scores = reports.on_validation
        if completed == 0:
            reports.write_examples(
                pipeline.train_dataset(
                    config.data_dir,
                    data.train_set,
                    data.train_frames,
                    batch_size=config.batch_size,
                    **_data_settings(config),
                )
            )
        reports.best = run.read_state().get("best")  # the best so far, on a resume
        run_callbacks += [
            # The records first, then the checkpoint's commit (see training.callbacks).
            HistoryRecord(run.history_file),
            *resumables.values(),
            ResumableCheckpoint(
                run,
                monitor=config.monitor,
                resumables=resumables,
                restart_best_at=None if weight_averaging is None else weight_averaging.start,
            ),
            keras.callbacks.TensorBoard(log_dir=str(run.logs), write_graph=False),
        ]
    else:
        run_callbacks += list(resumables.values())
    return run_callbacks, reports, resumables


def _fit_phases(
    model,
    config: Config,
    run: RunDir,
    train_input,
    run_callbacks,
    resumables: dict,
    strategy,
    workers,
    completed: int,
    verbose: int | None,
    recipe: _Recipe,
):
    """`model.fit` for each phase of the schedule not yet done; returns the last History."""
    from emotion_keras.data import pipeline
    from emotion_keras.models import synchronized_batch_norm
    from emotion_keras.training import distribute
    from emotion_keras.training.keras_workarounds import prepare_fit

    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    history = None
    for phase in schedule_phases(config):
        if completed >= phase.stop:
            continue
        first_epoch = max(completed, phase.start)
        with strategy.scope():
            compile_model(
                model,
                phase,
                config.jit_compile,
                config=config,
                steps_per_epoch=recipe.steps_per_epoch,
                loss=recipe.loss,
            )
            prepare_fit(model, strategy, workers, _input_shape(config), model.output.shape[-1])
            if completed > phase.start:
                restore_last(model, run)
                if recipe.averaging is not None:
                    recipe.averaging.restore(model)  # the training weights, the SWA average
            elif phase.reload_best and run.best_checkpoint.is_file():
                restore_best_weights(model, run.best_checkpoint)
                log.info(
                    "Epoch %d: switching to %s at learning rate %g from the best weights so far",
                    phase.start,
                    phase.optimizer,
                    phase.learning_rate,
                )
            elif completed:  # a resume at a phase change without a best model: the last weights
                restore_last(model, run, optimizer=False)
            restore_run_state(model, run, resumables, resume_phase=completed > phase.start)
        batches, steps = train_input(first_epoch, phase.stop)
        # A file that broke after the start-up scan (NaN values, deleted, truncated) fails inside
        # the pipeline's numpy call: data_errors surfaces our one-line message, not TF's trace.
        # One pass over `batches` is every epoch of the phase, `steps` batches each: Keras keeps
        # one iterator across the epochs when it is given `steps_per_epoch`.
        with pipeline.data_errors(), synchronized_batch_norm(model, workers.replicas > 1):
            history = model.fit(
                batches,
                epochs=phase.stop,
                initial_epoch=first_epoch,
                steps_per_epoch=steps,
                callbacks=run_callbacks,
                verbose=verbose,
                shuffle=False,
            )  # the dataset shuffles itself, per epoch
        if workers.count > 1:
            distribute.barrier(strategy)  # the chief's checkpoint of the last epoch is written
        completed = int(run.read_state().get("epoch", completed))
        if model.stop_training:
            break
    return history


def restore_last(model, run: RunDir, optimizer: bool = True) -> None:
    """Loads the last epoch's weights, and optimizer state, into a compiled `model`."""
    state = run.read_state()
    path = run.checkpoints / state["checkpoint"]
    if optimizer:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(path)
    else:
        restore_best_weights(model, path)


def restore_run_state(model, run: RunDir, resumables: dict, resume_phase: bool) -> None:
    """Puts back what the commit recorded besides the model file: the random generators'
    state, and (resuming within a phase; `fit` starts each phase afresh) the callbacks'."""
    from emotion_keras.training.callbacks import set_random_state

    state = run.read_state()
    if state.get("random_state") is not None:
        set_random_state(model, state["random_state"])
    saved = state.get("callbacks", {}) if resume_phase else {}
    for name, callback in resumables.items():
        callback.resume_from = saved.get(name)


def restore_best_weights(model, path: Path) -> None:
    from emotion_keras.models import load_model

    model.set_weights(load_model(path).get_weights())


def _log_start(config: Config, run: RunDir, data: _RunData, workers, completed: int) -> None:
    log.info(
        "Training %s on %d tracks (%s), validating on %d with %d crops each; run directory %s",
        config.model,
        len(data.train_set),
        data.train_set.name,
        len(data.val_set),
        config.val_crops,
        run,
    )
    if config.data_dir is not None:
        from emotion_keras.data.packed import describe_source

        log.info("Reading crops from the %s", describe_source(config.data_dir))
    if workers.distributed:
        log.info(
            "Distributed: %s; global batch %d, %d per replica; synchronised BatchNormalization%s",
            workers.describe(),
            config.batch_size,
            config.batch_size // workers.replicas,
            "" if workers.is_chief else "; this worker writes nothing (the chief does)",
        )
    if completed:
        log.info("Resuming after epoch %d from %s", completed, run.checkpoints)


def _log_done(config: Config, run: RunDir, summary: dict, seconds: float) -> None:
    if summary["best"] is None:
        best = (
            f"No epoch gave a {config.monitor} figure (every validation tag had a single "
            f"class?), so there is no best model."
        )
        best_model = "none"
    else:
        best = f"Best {config.monitor} {summary['best']:.4f} at epoch {summary['best_epoch']}."
        best_model = str(run.best_checkpoint)
    log.info(
        "\nDone in %.0f s. %s\n  run directory:  %s\n  best model:     %s\n"
        "  TensorBoard:    tensorboard --logdir %s   (or: make tensorboard)",
        seconds,
        best,
        run,
        best_model,
        run.logs,
    )


def _summary(run: RunDir, completed: int, last_logs: dict) -> dict:
    state = run.read_state()
    return {
        "run_dir": str(run),
        "epochs": completed,
        "best": state.get("best"),
        "best_epoch": state.get("best_epoch"),
        "last_logs": last_logs,
    }
