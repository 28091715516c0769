"""How a model is optimised: the schedule's phases, their optimisers, the precision policy.

Shared by training (`emotion_keras.training.trainer`) and the training benchmark
(`benchmarks/train.py`), so that the benchmark measures the step that training runs.

Two schedules (`Config.schedule`):
- `paper`: Adam at `learning_rate` throughout (Yi et al. 2019, §3.3).
- `original`: the original implementation's solver, `config.ORIGINAL_SCHEDULE`.

This module holds no hyper-parameters of its own: they come from the `Config`.
"""

from __future__ import annotations

import contextlib
import dataclasses

from emotion_keras.config import ORIGINAL_SCHEDULE, Config, Phase


def schedule_phases(config: Config) -> list[Phase]:
    """The optimiser phases of a run, cut at `config.epochs`."""
    if config.schedule == "paper":
        phases = [Phase(0, config.epochs, "adam", config.learning_rate)]
    else:
        phases = list(ORIGINAL_SCHEDULE)
        phases[-1] = dataclasses.replace(phases[-1], stop=max(phases[-1].stop, config.epochs))
    return [
        dataclasses.replace(p, stop=min(p.stop, config.epochs))
        for p in phases
        if p.start < config.epochs
    ]


def make_optimizer(phase: Phase):
    """A fresh Keras optimiser for `phase`."""
    import keras

    if phase.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=phase.learning_rate)
    return keras.optimizers.SGD(
        learning_rate=phase.learning_rate,
        momentum=phase.momentum,
        nesterov=True,
        weight_decay=phase.weight_decay or None,
    )


def compile_model(model, phase: Phase, jit_compile: bool = False) -> None:
    """Compiles `model` to train in `phase`: its optimiser, binary cross-entropy."""
    model.compile(
        optimizer=make_optimizer(phase), loss="binary_crossentropy", jit_compile=jit_compile
    )


def on_gpu() -> bool:
    """Whether the Keras backend sees a GPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    return False


def precision_policy(mixed_precision: bool, gpu: bool | None = None) -> str:
    """Keras's policy name: float32, or mixed_float16 on a GPU and mixed_bfloat16 elsewhere."""
    if not mixed_precision:
        return "float32"
    return "mixed_float16" if (on_gpu() if gpu is None else gpu) else "mixed_bfloat16"


@contextlib.contextmanager
def precision(mixed_precision: bool):
    """Within the block, Keras's global dtype policy is `precision_policy(mixed_precision)`.

    The policy is global in Keras: the caller's is put back on leaving the block.
    """
    import keras

    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision_policy(mixed_precision))
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)
