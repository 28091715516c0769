"""Work-arounds for Keras 3's `model.fit` under a multi-replica `tf.distribute` strategy.

The only module that touches Keras internals. What it patches, and why (Keras 3.15, TensorFlow
backend, keras-team/keras#20585):

1. `Model._maybe_symbolic_build`: before the first step, `fit` builds the model's state from a
   first batch that it reads from a throw-away iterator of the input and averages across
   replicas with `strategy.reduce`. Reading that batch starts the input's first epoch, so a
   multi-replica run would train its first epoch on the input's *second* shuffle (not the one a
   single device sees with the same seed), and `MultiWorkerMirroredStrategy` cannot average an
   `(x, y)` batch at all ("Attempt to convert a value (PerReplica...) ... to a Tensor"). The build
   needs only shapes and dtypes: `prepare_fit` builds from a local batch of zeros instead, inside
   the strategy's scope, as Keras's own `_symbolic_build` would.
2. `Model.train_step`: under `MultiWorkerMirroredStrategy` each step's logs (scalars) are averaged
   across workers with `strategy.reduce("MEAN", value, axis=0)`, which needs an axis to average
   over: the wrapped step gives every log value one.

Both are instance attributes set on the model being trained (the model's class is untouched), and
only under a multi-replica strategy. `tests/training/test_keras_workarounds.py` checks that the
patched Keras methods still exist with the signatures relied on, and that a two-worker `fit`
still fails without the work-arounds: when a Keras upgrade fixes the bug, that test fails and
says this module can go.
"""

from __future__ import annotations

import numpy as np

#: The Keras methods `prepare_fit` replaces on a model instance, with the arguments it relies on.
PATCHED_METHODS = {
    "_maybe_symbolic_build": ("iterator", "data_batch"),
    "_symbolic_build": ("iterator", "data_batch"),
    "train_step": ("data",),
}


def prepare_fit(model, strategy, workers, input_shape, num_tags: int) -> None:
    """Adapts a compiled `model` so that `model.fit` trains it under `strategy` as intended.

    Does nothing on a single device. Call after `compile`, for every compile.

    Args:
        model: the compiled Keras model.
        strategy: the run's `tf.distribute` strategy.
        workers: `distribute.Workers` of this process.
        input_shape: one sample's input shape (without the batch axis).
        num_tags: the model's outputs.
    """
    if not workers.distributed:
        return
    import keras

    example = (
        np.zeros((1, *input_shape), dtype=np.float32),
        np.zeros((1, num_tags), dtype=np.float32),
    )

    def symbolic_build(iterator=None, data_batch=None):
        with strategy.scope():
            model._symbolic_build(data_batch=example)

    model._maybe_symbolic_build = symbolic_build
    if workers.count > 1 and "train_step" not in vars(model):  # once per model
        train_step = model.train_step

        def train_step_with_axis(data):
            return {key: keras.ops.reshape(value, (1,)) for key, value in train_step(data).items()}

        model.train_step = train_step_with_axis
