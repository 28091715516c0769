"""SpecAugment-style time and frequency masking as a Keras layer active only in training.

`SpecAugment` (Park et al. 2019, without time warping) sets `time_masks` stretches of up to
`time_mask_frames` consecutive frames and `freq_masks` stretches of up to `freq_mask_bands`
consecutive mel bands of each crop to that crop's mean (what zero is after the model's input
normalisation), widths and positions drawn uniformly per crop. With `training=False` it returns
its input unchanged, so validation, evaluation and predictions are unaffected.

`with_spec_augment` puts the layer right behind a functional model's input (the layers keep
their weights); `without_spec_augment` takes it out again, so that an export holds built-in
layers only. Only `keras.layers`/`keras.ops`/`keras.random`: the layer runs on Keras's JAX
backend too. It is registered, so a checkpoint that holds it loads in safe mode once this module
is imported (`emotion_keras.models` imports it).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="emotion_keras")
class SpecAugment(keras.layers.Layer):
    """Time and frequency masks on `[batch, bands, frames, channels]` input, in training only.

    Args:
        time_masks, time_mask_frames: masks per crop over frames and the most frames of each.
        freq_masks, freq_mask_bands: the same over bands.
        seed: seeds the layer's random stream.
    """

    def __init__(
        self,
        time_masks: int = 0,
        time_mask_frames: int = 0,
        freq_masks: int = 0,
        freq_mask_bands: int = 0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.time_masks = int(time_masks)
        self.time_mask_frames = int(time_mask_frames)
        self.freq_masks = int(freq_masks)
        self.freq_mask_bands = int(freq_mask_bands)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def masks(self, shape) -> tuple:
        """Bool masks `[batch, bands]` and `[batch, frames]` (True: masked) for input `shape`."""
        batch, bands, frames = shape[0], shape[1], shape[2]
        return (
            self._stretches(batch, bands, self.freq_masks, self.freq_mask_bands),
            self._stretches(batch, frames, self.time_masks, self.time_mask_frames),
        )

    def _stretches(self, batch, size: int, count: int, most: int):
        if not count or not most:
            return ops.zeros((batch, size), dtype="bool")
        draws = keras.random.uniform((batch, count, 2), seed=self.seed_generator)
        widths = ops.floor(draws[..., 0] * (most + 1))  # 0 to `most`
        starts = ops.floor(draws[..., 1] * (size - widths + 1))  # 0 to size - width
        index = ops.cast(ops.arange(size), "float32")[None, None, :]
        inside = (index >= starts[..., None]) & (index < (starts + widths)[..., None])
        return ops.any(inside, axis=1)

    def call(self, inputs, training=None):
        if not training or not (self.time_masks or self.freq_masks):
            return inputs
        band_mask, frame_mask = self.masks(ops.shape(inputs))
        masked = band_mask[:, :, None, None] | frame_mask[:, None, :, None]
        fill = ops.mean(inputs, axis=(1, 2, 3), keepdims=True)
        return ops.where(masked, ops.cast(fill, inputs.dtype), inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "time_masks": self.time_masks,
            "time_mask_frames": self.time_mask_frames,
            "freq_masks": self.freq_masks,
            "freq_mask_bands": self.freq_mask_bands,
            "seed": self.seed,
        }


def with_spec_augment(model: keras.Model, layer: SpecAugment) -> keras.Model:
    """`model` (functional, one input) with `layer` applied to its input first; same layers,
    same weights, same input and output names."""
    new_input = keras.Input(batch_shape=model.inputs[0].shape, name=model.inputs[0].name)
    augmented = layer(new_input)

    def call(inner, *args, **kwargs):
        args = tuple(augmented if arg is new_input else arg for arg in args)
        return inner(*args, **kwargs)

    return keras.models.clone_model(
        model, input_tensors=new_input, clone_function=lambda inner: inner, call_function=call
    )


def without_spec_augment(model: keras.Model) -> keras.Model:
    """`model` without its `SpecAugment` layers (the same other layers and weights); `model`
    itself when it has none."""
    if not any(isinstance(layer, SpecAugment) for layer in model.layers):
        return model

    def call(inner, *args, **kwargs):
        return args[0] if isinstance(inner, SpecAugment) else inner(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda inner: inner, call_function=call)
