"""Building blocks shared by every architecture, each written once.

A block is a function `apply_<block>(x, ..., name)` that takes and returns a tensor and names
every layer from its prefix (`f"{name}_conv"`, `f"{name}_bn"`, ...). Blocks use `keras.layers`
only, never `tf.*`, so the same models build on Keras's JAX backend.

Details follow the original PyTorch implementation (see `architectures`):
- BatchNormalization with epsilon 1e-5 and momentum 0.1 in PyTorch's convention, which is
  momentum 0.9 in Keras's (the weight of the old moving average).
- Convolutions keep the spatial size ("same" padding). With a stride of 2, PyTorch's
  `padding=kernel_size // 2` pads both sides equally, whereas Keras's `padding="same"` pads only the
  bottom/right of an even-sized input and so samples the odd rows and columns; a strided
  convolution here therefore pads explicitly, which keeps the 3x3 path of a downsampling block
  aligned with its 1x1 projection shortcut as in the original.
- Weight initialisers are Keras's defaults (the original used PyTorch's); this changes no shape or
  parameter count.

This module must not know about particular architectures: those are tables in `architectures`.
"""

from __future__ import annotations

from keras import initializers, layers

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def he_normal_fan_out() -> initializers.Initializer:
    """PyTorch's `kaiming_normal_(w, nonlinearity="relu", mode="fan_out")`: an untruncated normal
    of variance 2 / fan-out (Keras's `HeNormal` is truncated and uses the fan-in).

    A new instance per layer: an unseeded Keras initializer fixes its seed when created, so one
    instance shared by several layers would give them the same draws.
    """
    return initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")


def batch_norm(name: str) -> layers.BatchNormalization:
    """BatchNormalization with the original's epsilon and momentum."""
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def apply_conv_bn(
    x, filters: int, kernel_size: int, name: str, strides: int = 1, padding: int | None = None
):
    """Convolution that keeps the spatial size (divided by `strides`), then BatchNormalization.

    Args:
        x: input tensor `[batch, height, width, channels]`.
        filters: output channels.
        kernel_size: odd side of the square kernel.
        name: prefix of the layer names (`{name}_conv`, `{name}_bn`, and `{name}_pad` when
            strided or explicitly padded).
        strides: 1, or 2 to halve height and width (rounding up, as PyTorch does).
        padding: None keeps the size ("same", or PyTorch's `kernel_size // 2` when strided);
            an integer p pads p zeros on every side, as PyTorch's `padding=p`, and the
            convolution keeps only full windows (each side changes by `2 p - kernel_size + 1`).

    Returns:
        The normalised feature map `[batch, ceil(height / strides), ceil(width / strides),
        filters]` (with `padding` None).
    """
    if strides == 1 and padding is None:
        x = layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_conv")(x)
    else:
        # PyTorch's symmetric padding (see the module docstring).
        pad = kernel_size // 2 if padding is None else padding
        if pad:
            x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
        x = layers.Conv2D(
            filters, kernel_size, strides=strides, padding="valid", name=f"{name}_conv"
        )(x)
    return batch_norm(f"{name}_bn")(x)


def apply_conv_bn_elu(
    x, filters: int, kernel_size: int, name: str, strides: int = 1, padding: int | None = None
):
    """Convolution, BatchNormalization, ELU: the unit of every network in the paper.

    Args:
        x: input tensor `[batch, height, width, channels]`.
        filters: output channels.
        kernel_size: odd side of the square kernel.
        name: prefix of the layer names (`{name}_conv`, `{name}_bn`, `{name}_elu`).
        strides: 1, or 2 to halve height and width.
        padding: as `apply_conv_bn`.

    Returns:
        The activated feature map.
    """
    x = apply_conv_bn(x, filters, kernel_size, name, strides, padding)
    return layers.ELU(name=f"{name}_elu")(x)


def apply_bottleneck_block(x, filters: int, stride: int, name: str):
    """The residual bottleneck block of the paper's Fig. 2.

    1x1 conv -> 3x3 conv (carrying the stride) -> 1x1 conv, each followed by BatchNormalization
    and the first two by ELU; the result is added to the shortcut, then ELU. The inner width is
    `filters` throughout (not `filters / 4` as in ResNet-50): only that reproduces the original's
    parameter counts. When the block changes the width or downsamples, the shortcut is a 1x1
    convolution with the same stride plus BatchNormalization (a projection); otherwise it is the
    identity.

    Args:
        x: input tensor `[batch, height, width, channels]`.
        filters: output channels of the block (and of each of its convolutions).
        stride: 1, or 2 to halve height and width in the 3x3 convolution and the projection.
        name: prefix of the layer names (`{name}_a_conv` ... `{name}_c_bn`, `{name}_proj_conv`,
            `{name}_add`, `{name}_elu`).

    Returns:
        The block's output `[batch, ceil(height / stride), ceil(width / stride), filters]`.
    """
    shortcut = x
    if x.shape[-1] != filters or stride != 1:
        shortcut = apply_conv_bn(x, filters, 1, f"{name}_proj", strides=stride)
    y = apply_conv_bn_elu(x, filters, 1, f"{name}_a")
    y = apply_conv_bn_elu(y, filters, 3, f"{name}_b", strides=stride)
    y = apply_conv_bn(y, filters, 1, f"{name}_c")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ELU(name=f"{name}_elu")(y)


def apply_head(x, num_tags: int, name: str = "tags", dropout: float = 0.5):
    """Flatten the 1x1 map, Dropout (the paper's 0.5), then Dense(num_tags) with sigmoid in float32.

    The output layer is float32 whatever the global precision policy, so a mixed-precision model
    still returns float32 probabilities (and its loss is computed in float32).

    Args:
        x: the last feature map, `[batch, 1, 1, channels]`.
        num_tags: output size.
        name: name of the output layer.
        dropout: the Dropout rate; 0 leaves the layer out.

    Returns:
        Tag probabilities `[batch, num_tags]`.
    """
    x = layers.Flatten(name="flatten")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_tags, activation="sigmoid", dtype="float32", name=name)(x)


def apply_conv_bn_relu(
    x,
    filters: int,
    kernel_size,
    name: str,
    strides: int = 1,
    padding: int = 1,
    dropout: float = 0.0,
):
    """SpatialDropout2D, convolution, BatchNormalization, ReLU: the 2021 winner's `Conv` unit.

    Their `models/modules.py` (vibour/emotion-theme-recognition) drops whole channels
    (`Dropout2d`) before the convolution, pads `padding` zeros on every side as PyTorch does
    (explicitly here, so a stride of 2 samples the pixels PyTorch samples; see the module
    docstring), and initialises the kernel with He's normal initialiser over the fan-out
    (`kaiming_normal_(..., mode="fan_out")`).

    Args:
        x: input tensor `[batch, height, width, channels]`.
        filters: output channels.
        kernel_size: an int (square) or `(height, width)`.
        name: prefix of the layer names (`{name}_dropout`, `{name}_pad`, `{name}_conv`,
            `{name}_bn`, `{name}_relu`).
        strides: 1, or 2 to halve height and width (rounding up).
        padding: zeros on every side (0: keep only full windows).
        dropout: rate of the channel dropout before the convolution; 0 leaves it out.

    Returns:
        The activated feature map.
    """
    if dropout:
        x = layers.SpatialDropout2D(dropout, name=f"{name}_dropout")(x)
    if padding:
        x = layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="valid",
        kernel_initializer=he_normal_fan_out(),
        name=f"{name}_conv",
    )(x)
    x = batch_norm(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)
