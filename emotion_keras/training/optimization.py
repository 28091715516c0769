"""How a model is optimised: the schedule's phases, their optimisers, the precision policy.

Shared by training (`emotion_keras.training.trainer`) and the training benchmark
(`benchmarks/train.py`), so that the benchmark measures the step that training runs.

Three schedules (`Config.schedule`):
- `paper`: Adam at `learning_rate` throughout (Yi et al. 2019, §3.3); `optimizer` may pick SGD.
- `original`: the original implementation's solver, `config.ORIGINAL_SCHEDULE`.
- `cosine`: `optimizer` with a linear warm-up over `warmup_epochs` to `learning_rate`, then a
  cosine decay to 0 at `epochs` (Keras's `CosineDecay`, per step).

Beyond the paper, the optimiser may also clip the global gradient norm (`clipnorm`) and keep an
exponential moving average of the weights (`weight_averaging="ema"`, Keras's `use_ema`); the
loss is `training.losses.make_loss`'s.

This module holds no hyper-parameters of its own: they come from the `Config`.
"""

from __future__ import annotations

import contextlib
import dataclasses

from emotion_keras.config import ORIGINAL_SCHEDULE, Config, Phase


def schedule_phases(config: Config) -> list[Phase]:
    """The optimiser phases of a run, cut at `config.epochs`."""
    if config.schedule in ("paper", "cosine"):
        sgd = config.optimizer == "sgd"
        phases = [
            Phase(
                0,
                config.epochs,
                config.optimizer,
                config.learning_rate,
                momentum=config.momentum if sgd else 0.0,
                weight_decay=config.weight_decay,
            )
        ]
    else:
        phases = list(ORIGINAL_SCHEDULE)
        phases[-1] = dataclasses.replace(phases[-1], stop=max(phases[-1].stop, config.epochs))
    return [
        dataclasses.replace(p, stop=min(p.stop, config.epochs))
        for p in phases
        if p.start < config.epochs
    ]


def learning_rate(phase: Phase, config: Config | None = None, steps_per_epoch: int = 1):
    """`phase`'s learning rate: a constant, or schedule `cosine`'s per-step `CosineDecay`.

    Cosine: 0 rising linearly to `learning_rate` over `warmup_epochs * steps_per_epoch` steps,
    then `learning_rate * (1 + cos(pi * t)) / 2` with t going from 0 to 1 at `epochs`.
    """
    if config is None or config.schedule != "cosine":
        return phase.learning_rate
    import keras

    warmup = config.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else phase.learning_rate,
        decay_steps=max(config.epochs * steps_per_epoch - warmup, 1),
        alpha=0.0,
        warmup_target=phase.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def make_optimizer(phase: Phase, config: Config | None = None, steps_per_epoch: int = 1):
    """A fresh Keras optimiser for `phase`; `config` adds the recipe options (clipping, EMA,
    the cosine schedule, which needs `steps_per_epoch`)."""
    import keras

    options = dict(learning_rate=learning_rate(phase, config, steps_per_epoch))
    coupled = config is not None and config.coupled_weight_decay
    if phase.weight_decay and not coupled:
        options["weight_decay"] = phase.weight_decay
    if config is not None and config.clipnorm:
        options["global_clipnorm"] = config.clipnorm
    if config is not None and config.weight_averaging == "ema":
        options.update(use_ema=True, ema_momentum=config.ema_momentum)
    if phase.optimizer == "adam":
        return keras.optimizers.Adam(**options)
    if coupled:
        from emotion_keras.training.optimizers import CoupledWeightDecaySGD

        return CoupledWeightDecaySGD(
            l2=phase.weight_decay, momentum=phase.momentum, nesterov=True, **options
        )
    return keras.optimizers.SGD(momentum=phase.momentum, nesterov=True, **options)


def compile_model(
    model,
    phase: Phase,
    jit_compile: bool = False,
    *,
    config: Config | None = None,
    steps_per_epoch: int = 1,
    loss=None,
) -> None:
    """Compiles `model` to train in `phase`: its optimiser (with `config`'s recipe options) and
    `loss` (default: binary cross-entropy, the paper's)."""
    model.compile(
        optimizer=make_optimizer(phase, config, steps_per_epoch),
        loss=loss or "binary_crossentropy",
        jit_compile=jit_compile,
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
