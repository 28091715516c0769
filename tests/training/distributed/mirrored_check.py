"""One SGD epoch of baseline5 on one device and mirrored over two logical CPUs, compared.

`python -m tests.training.distributed.mirrored_check DATA_DIR META_DIR` prints JSON: how far apart
the two runs moved the weights (the norm of the difference of their updates over the norm of the
one-device update), with synchronised BatchNormalization (as training uses it) and without, and
the training steps each took. Both feed the model with the project's pipeline,
batched as `training.train` batches it (global batch 16: one device gets batches of 16, each of
the two replicas gets 8 of the same 16 tracks). SGD rather than the paper's Adam: Adam's first
steps move every weight by about the learning rate whatever the size of its gradient, so float
noise in a gradient that is mathematically zero (a convolution bias before BatchNormalization)
would move the two runs' weights apart by a full step.
"""

from __future__ import annotations

import json
import sys


def main(data_dir: str, meta_dir: str) -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import numpy as np

    from emotion_keras.data import metadata, pipeline
    from emotion_keras.models import build_model, synchronized_batch_norm
    from emotion_keras.training import distribute, keras_workarounds

    subset = metadata.read_subset(meta_dir, 0, "train").head(32)
    batch = 16

    def run(strategy, synchronized: bool):
        keras.utils.set_random_seed(3)
        workers = distribute.workers_of(strategy)
        with strategy.scope():
            model = build_model("baseline5", num_tags=subset.labels.shape[1], dropout=0.0)
            model.compile(optimizer=keras.optimizers.SGD(0.01), loss="binary_crossentropy")
            keras_workarounds.prepare_fit(
                model, strategy, workers, model.input.shape[1:], subset.labels.shape[1]
            )
        settings = dict(seed=5)
        if workers.replicas > 1:
            data = distribute.distributed_dataset(
                strategy,
                lambda shard: pipeline.train_dataset(
                    data_dir,
                    subset,
                    batch_size=distribute.per_replica_batch(batch, workers),
                    shard=shard,
                    global_batch=batch,
                    **settings,
                ),
            )
        else:
            data = pipeline.train_dataset(data_dir, subset, batch_size=batch, **settings)
        initial = [w.copy() for w in model.get_weights()]
        steps = []
        record = keras.callbacks.LambdaCallback(on_batch_end=lambda b, logs: steps.append(b))
        with synchronized_batch_norm(model, synchronized):
            model.fit(data, epochs=1, verbose=0, callbacks=[record])
        return (
            [w - w0 for w, w0 in zip(model.get_weights(), initial)],
            len(steps),
            workers.replicas,
        )

    one, one_steps, _ = run(tf.distribute.get_strategy(), False)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    synced, synced_steps, replicas = run(mirrored, True)
    unsynced, _, _ = run(mirrored, False)

    def difference(updates):
        # How far apart the two runs moved the weights, relative to how far they moved them.
        return float(
            np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(one, updates)))
            / np.sqrt(sum(np.sum(a**2) for a in one))
        )

    print(
        json.dumps(
            {
                "replicas": replicas,
                "steps": [one_steps, synced_steps],
                "synchronized": difference(synced),
                "unsynchronized": difference(unsynced),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
