"""The Keras work-arounds (keras-team/keras#20585): still needed, and still applicable.

When a Keras upgrade renames what `keras_workarounds` patches, the first test fails; when it fixes
the bug, the second one does, and says the module can go.
"""

from __future__ import annotations

import inspect

import pytest

from emotion_keras.training import keras_workarounds
from tests.training.distributed.processes import two_workers


def test_the_keras_methods_patched_still_exist_with_the_arguments_relied_on():
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    for name, arguments in keras_workarounds.PATCHED_METHODS.items():
        method = getattr(TensorFlowTrainer, name, None)
        assert method is not None, (
            f"Keras no longer has TensorFlowTrainer.{name}: "
            f"revisit emotion_keras/training/keras_workarounds.py"
        )
        parameters = inspect.signature(method).parameters
        assert set(arguments) <= set(parameters), (name, list(parameters))
    source = inspect.getsource(TensorFlowTrainer._maybe_symbolic_build)
    assert "distribute_strategy.reduce" in source, (
        "Keras's _maybe_symbolic_build no longer averages the first batch across replicas: "
        "check whether keras_workarounds.prepare_fit is still needed"
    )


@pytest.mark.slow
def test_two_worker_training_still_fails_without_the_workarounds(small_demo, tmp_path):
    results = two_workers(*small_demo, tmp_path, tmp_path / "run", "--no-keras-workarounds")
    codes = [code for code, _, _ in results]
    errors = "\n".join(err for _, _, err in results)
    assert any(codes), (
        "two-worker training succeeded without keras_workarounds: Keras has "
        "fixed keras-team/keras#20585; remove the work-arounds"
    )
    assert "PerReplica" in errors, errors[-3000:]
