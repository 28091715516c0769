"""A training process for the distribution tests.

`python -m tests.training.distributed.worker OUT ...`:

Trains through `emotion_keras.training.train` as the CLI does, then writes what the tests compare
and the run directory does not hold for every process: this process's final weights and the
`logs` each epoch gave to the callbacks (`OUT/worker-<index>.npz`, `OUT/logs-<index>.json`).

Optionally (`--cpu-devices N`) splits the CPU into N logical devices first, so that
`--strategy mirrored` has N replicas on a machine without GPUs; `--no-keras-workarounds` trains
without `emotion_keras.training.keras_workarounds` (to show that Keras still needs them);
`--die-in-epoch N` makes worker `--index` 1 SIGKILL itself after its first step of (1-based)
epoch N. The library's log lines are printed to stderr, as the command line prints them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--meta-dir", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--strategy", required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--index", default="0")
    parser.add_argument("--cpu-devices", type=int, default=0)
    parser.add_argument("--no-keras-workarounds", action="store_true")
    parser.add_argument("--die-in-epoch", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import tensorflow as tf

    if args.cpu_devices:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpu_devices
        )

    import keras
    import numpy as np

    from emotion_keras.config import Config
    from emotion_keras.training import keras_workarounds, train

    if args.no_keras_workarounds:
        keras_workarounds.prepare_fit = lambda *args, **kwargs: None

    out = Path(args.out)
    epoch_logs = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if args.index == "1" and self.epoch + 1 == args.die_in_epoch:
                os.kill(os.getpid(), signal.SIGKILL)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            epoch_logs.append({k: float(v) for k, v in (logs or {}).items()})

        def on_train_end(self, logs=None):
            np.savez(out / f"worker-{args.index}.npz", *self.model.get_weights())

    config = Config(
        model="baseline5",
        data_dir=args.data_dir,
        meta_dir=args.meta_dir,
        epochs=args.epochs,
        batch_size=8,
        val_crops=2,
        dropout=0.0,
        seed=1,
        strategy=args.strategy,
    )
    summary = train(config, args.run_dir, verbose=0, callbacks=[Record()])
    (out / f"logs-{args.index}.json").write_text(
        json.dumps({"epochs": epoch_logs, "summary": summary})
    )


if __name__ == "__main__":
    main()
