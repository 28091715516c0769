"""Building blocks shared by every architecture, each written once.

A block is a function `apply_<block>(x, ..., name)` that takes and returns a tensor and names
every layer from its prefix. BatchNormalization follows the original PyTorch implementation:
epsilon 1e-5 and momentum 0.1 in PyTorch's convention, which is 0.9 in Keras's.
"""

from __future__ import annotations

import keras
from keras import layers

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def batch_norm(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def apply_conv_bn(x, filters: int, kernel_size, name: str, strides=1):
    """Convolution ("same" padding) followed by BatchNormalization."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", name=f"{name}_conv")(x)
    return batch_norm(f"{name}_bn")(x)


def apply_conv_bn_elu(x, filters: int, kernel_size, name: str, strides=1):
    """Convolution, BatchNormalization, ELU: the unit of every plain network in the paper."""
    x = apply_conv_bn(x, filters, kernel_size, name, strides)
    return layers.ELU(name=f"{name}_elu")(x)


def apply_bottleneck_block(x, filters: int, name: str, stride: int = 1):
    """The residual bottleneck block of the paper's Fig. 2.

    1x1 conv -> 3x3 conv (carrying the stride) -> 1x1 conv, each with BatchNormalization and ELU
    after the first two, added to the shortcut, then ELU. The bottleneck width is `filters`
    throughout, as in the original implementation. When the block changes the width or
    downsamples, the shortcut is a 1x1 convolution (with the same stride) plus BatchNormalization.

    Args:
        x: input tensor `[batch, height, width, channels]`.
        filters: output channels of the block.
        name: prefix of the block's layer names.
        stride: 2 to halve both spatial dimensions in the 3x3 convolution.
    """
    shortcut = x
    if x.shape[-1] != filters or stride != 1:
        shortcut = apply_conv_bn(x, filters, 1, f"{name}_proj", strides=stride)
    y = apply_conv_bn_elu(x, filters, 1, f"{name}_a")
    y = apply_conv_bn_elu(y, filters, 3, f"{name}_b", strides=stride)
    y = apply_conv_bn(y, filters, 1, f"{name}_c")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ELU(name=f"{name}_elu")(y)


def apply_head(x, num_tags: int, name: str = "tags"):
    """Flatten the 1x1 map, Dropout(0.5), Dense(num_tags) with a float32 sigmoid output.

    The output layer is float32 whatever the global precision policy, so mixed-precision models
    still return float32 probabilities.
    """
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    return layers.Dense(num_tags, activation="sigmoid", dtype="float32", name=name)(x)


