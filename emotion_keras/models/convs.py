"""`convs`: the 2021 MediaEval winner's frequency-collapse VGG for 96-band input.

Read from `models/convs.py` and `models/modules.py` of vibour/emotion-theme-recognition (team
lileonardo; best single model on the official melspecs `convs-m96-i224-wbce`, PR-AUC-macro
0.1447 published). Top to bottom, for a crop of B bands x T frames:

- the input standardised with the training split's mean and standard deviation (their
  `parameters.json` `stats`; `emotion_keras.data.dataset.MTG_JAMENDO`), no BatchNormalization;
- seven 3x3 Conv-BN-ReLU units (`CONVS`), each padded by 1 as PyTorch pads, four of them with
  stride 2, a 3x3 max-pool of stride 2 after the third, and channel dropout (`Dropout2d`, 0.2)
  before the four 256-channel ones: B/32 x T/32 x 256 (each halving rounds up);
- the "collapse": channel dropout, then a convolution whose kernel spans all remaining frequency
  bins (B // 32 = 3 for 96 bands) + BN + ReLU: 1 x T/32 x 512;
- average pooling over time in windows of T // 32 steps (one window at the training length),
  then per window Dropout(0.5), a 1x1 layer to 1024 (ReLU), Dropout(0.5), a 1x1 layer to the
  tags; the sigmoid of each window, averaged over the windows (their `averaged_sigmoid`).

Their 1x1 `Conv1d` layers over a `[batch, channels, windows]` map are `Dense` layers over
the last axis here; their `MaxPool2d(3, 2, padding=1)` pads with minus infinity, and zeros
are the same after a ReLU (nothing is below 0). Kernels are initialised as theirs
(`kaiming_normal_` over the fan-out, Xavier-normal for the output layer); biases start at 0
(PyTorch draws them uniformly). The model's parameters do not depend on T, and at 96 bands and
56 tags it has 3,156,856 trainable ones, the original's count (`ORIGINAL_TRAINABLE` in
`tests/models/test_convs.py` derives it layer by layer).

Their test pass runs each whole track through the network at once (batch 1), which gives
floor(ceil(frames / 32) / (T // 32)) windows; `emotion_keras.models.whole_track_model` applies
these layers to inputs of any length for that (`eval_mode` "track").

It takes at least 32 bands and 32 frames. The collapse kernel spans ceil(B / 32) bins, which is
their `n_mels // 32` when B is a multiple of 32 (their code runs only those).
"""

from __future__ import annotations

import dataclasses

import keras
from keras import initializers, layers

from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.errors import ModelError
from emotion_keras.models.architectures import Architecture, check_dropout, parse_input
from emotion_keras.models.blocks import apply_conv_bn_relu, he_normal_fan_out

#: Every stride-2 stage (4 strided units and the max-pool) halves both axes: 2 ** 5.
REDUCTION = 32
#: Their `dropout` parameter (0.2 in every published configuration): the channel dropout before
#: the 256-channel units and the collapse.
CONV_DROPOUT = 0.2
COLLAPSE_FILTERS = 512
FC_UNITS = 1024


@dataclasses.dataclass(frozen=True)
class ConvUnit:
    """A 3x3 Conv-BN-ReLU unit named as in the original (`conv1`, `filter1`, ...)."""

    name: str
    filters: int
    stride: int = 1
    dropout: float = 0.0
    pool: bool = False  # a 3x3 max-pool of stride 2 after it


# The comments are the output sizes for a 96 x 224 crop (bands x frames x channels).
CONVS = (
    ConvUnit("conv1", 64, stride=2),  # 48 x 112 x 64
    ConvUnit("conv2", 64),  # 48 x 112 x 64
    ConvUnit("conv3", 128, pool=True),  # 48 x 112 x 128, pooled to 24 x 56
    ConvUnit("filter1", 256, stride=2, dropout=CONV_DROPOUT),  # 12 x 28 x 256
    ConvUnit("filter2", 256, stride=2, dropout=CONV_DROPOUT),  # 6 x 14 x 256
    ConvUnit("filter3", 256, dropout=CONV_DROPOUT),  # 6 x 14 x 256
    ConvUnit("filter4", 256, stride=2, dropout=CONV_DROPOUT),  # 3 x 7 x 256
)


def convs_input_sizes(table=CONVS, time_pooling: str = "model") -> dict:
    """At least 32 bands and 32 frames, no upper limit."""
    return {"bands": (REDUCTION, None), "frames": (REDUCTION, None)}


def build_convs(
    name: str = "convs",
    table=CONVS,
    input_shape=(96, 224, 1),
    num_tags: int = 56,
    dropout: float = 0.5,
    time_pooling: str = "model",
) -> keras.Model:
    """Builds the frequency-collapse VGG, uncompiled.

    Args:
        name: the model's name.
        table: the Conv-BN-ReLU units before the collapse.
        input_shape: `(bands, frames, 1)` of a training crop; T = frames sets the averaging
            window (T // 32 steps).
        num_tags: number of outputs.
        dropout: rate of the two Dropouts in the head (theirs: 0.5; 0 leaves them out).
        time_pooling: must be "model": the model averages over time windows of its own.

    Returns:
        A `keras.Model` from `melspec` `[batch, bands, frames, 1]` to `tags` `[batch, num_tags]`
        (float32 probabilities averaged over the time windows).

    Raises:
        ModelError: a malformed shape, fewer than 32 bands or frames, another time pooling, or
            a dropout rate outside [0, 1).
    """
    (bands, frames, _), num_tags = parse_input(name, input_shape, num_tags)
    if time_pooling != "model":
        raise ModelError(
            f"model {name}: time_pooling {time_pooling!r}: it averages over time windows of "
            f"its own (frames // {REDUCTION} steps); leave time_pooling at 'model'"
        )
    if min(bands, frames) < REDUCTION:
        raise ModelError(
            f"model {name}: input of {bands} bands x {frames} frames: it takes at least "
            f"{REDUCTION} bands and {REDUCTION} frames (e.g. 96x224x1)"
        )
    check_dropout(name, dropout)
    inputs = keras.Input(shape=(bands, frames, 1), name="melspec")
    x = layers.Rescaling(
        1 / MTG_JAMENDO.std_db, offset=-MTG_JAMENDO.mean_db / MTG_JAMENDO.std_db, name="standardize"
    )(inputs)
    for unit in table:
        x = apply_conv_bn_relu(
            x, unit.filters, 3, unit.name, strides=unit.stride, dropout=unit.dropout
        )
        if unit.pool:
            # Zeros pad like PyTorch's minus infinity here: the ReLU left nothing below 0.
            x = layers.ZeroPadding2D(1, name="pool_pad")(x)
            x = layers.MaxPooling2D(3, strides=2, name="pool")(x)
    x = apply_conv_bn_relu(
        x, COLLAPSE_FILTERS, (x.shape[1], 1), "collapse", padding=0, dropout=CONV_DROPOUT
    )
    # [batch, 1, windows, 512]: average pooling over windows of T // 32 steps, the rest dropped.
    x = layers.AveragePooling2D((1, frames // REDUCTION), name="collapse_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="fc_dropout")(x)
    x = layers.Dense(
        FC_UNITS, activation="relu", kernel_initializer=he_normal_fan_out(), name="fc"
    )(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(
        num_tags,
        kernel_initializer=initializers.VarianceScaling(1.0, "fan_avg", "untruncated_normal"),
        dtype="float32",
        name="logits",
    )(x)
    x = layers.Activation("sigmoid", dtype="float32", name="window_tags")(x)
    outputs = layers.GlobalAveragePooling2D(dtype="float32", name="tags")(x)
    return keras.Model(inputs, outputs, name=name)


#: The registry entry (`emotion_keras.models.MODELS["convs"]`).
CONVS_ARCHITECTURE = Architecture(
    "convs",
    CONVS,
    "the 2021 winner's frequency-collapse VGG: 3x3 Conv-BN-ReLU, time-window averaging",
    3_156_856,
    builder=build_convs,
    sizes=convs_input_sizes,
    whole_tracks=True,
)
