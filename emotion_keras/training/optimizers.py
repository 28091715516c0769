"""SGD with weight decay added to the gradient (`Config.coupled_weight_decay`), as PyTorch does.

Keras's `weight_decay` is decoupled: after each step `w -= lr * weight_decay * w`. PyTorch's
`SGD(weight_decay=...)`, which published recipes such as the 2021 MediaEval winner's use, adds
`weight_decay * w` to the gradient *before* the momentum update, so the decay is carried by the
momentum too (about `1 / (1 - momentum)` times stronger at a steady state: ten times at 0.9).
`CoupledWeightDecaySGD` does the latter: gradient-norm clipping (`global_clipnorm`) still applies
to the loss gradient alone, as `clip_grad_norm_` before `optimizer.step()` does in PyTorch.

Registered, so a checkpoint whose optimizer it is loads with `compile=True` in safe mode once
this module is imported.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="emotion_keras")
class CoupledWeightDecaySGD(keras.optimizers.SGD):
    """Keras's SGD with `l2 * w` added to each gradient before the update (no decoupled decay).

    Args:
        l2: the coefficient (PyTorch's `weight_decay`).
        **kwargs: `keras.optimizers.SGD`'s arguments, without `weight_decay`.
    """

    def __init__(self, l2: float = 0.0, **kwargs):
        kwargs.pop("weight_decay", None)
        super().__init__(**kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = keras.ops.add(
                keras.ops.cast(gradient, variable.dtype),
                keras.ops.multiply(keras.ops.cast(self.l2, variable.dtype), variable),
            )
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}
