"""The paper's five architectures (Yi et al. 2019, Table 2), as data fed to two builders.

A plain network is a table of stages `(filters, kernel, pool)`: convolution + BatchNormalization
+ ELU, then max-pooling. A residual network is a stem and a table of steps, each a bottleneck
block `(filters, stride)` or a max-pool. Details the paper leaves out follow the original
implementation (PyTorch): a BatchNormalization over the input, "same" padding, pooling that
rounds down, and a head of Flatten, Dropout(0.5) and Dense(56, sigmoid) on the 1x1 map.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from emotion_keras.models.blocks import (apply_bottleneck_block, apply_conv_bn_elu, apply_head,
                                         batch_norm)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One plain stage: `convs` convolutions of `filters` x `kernel`, then `pool`."""

    filters: int
    kernel: int
    pool: tuple[int, int] | None
    convs: int = 1
    average: bool = False


@dataclasses.dataclass(frozen=True)
class Block:
    """One residual bottleneck block of `filters` output channels."""

    filters: int
    stride: int = 1


@dataclasses.dataclass(frozen=True)
class Pool:
    size: tuple[int, int]


# The organisers' baseline (MediaEval 2019 task repository), 5 convolutions.
BASELINE5 = (Stage(64, 3, (2, 4)), Stage(128, 3, (2, 4)), Stage(128, 3, (2, 4)),
             Stage(128, 3, (3, 5)), Stage(64, 3, (4, 4)))

# The paper's best model, Table 1: 48x640x32, 24x160x64, 12x80x128, 6x20x256, 2x4x512, 1x1x256.
VGG6 = (Stage(32, 3, (2, 2)), Stage(64, 3, (2, 4)), Stage(128, 3, (2, 2)),
        Stage(256, 3, (2, 4)), Stage(512, 3, (3, 5)), Stage(256, 3, (2, 4)))

# 25 plain convolutions: a 7x7 stem, then four groups of six 3x3 convolutions.
VGG25 = (Stage(64, 7, (2, 4)), Stage(64, 3, (2, 4), convs=6), Stage(128, 3, (2, 4), convs=6),
         Stage(256, 3, (3, 5), convs=6), Stage(512, 3, (4, 4), convs=6, average=True))

# Residual, 16 convolutions: a 5x5 stem (+ max-pool (3, 5)) and five bottleneck blocks.
RES16_STEM = Stage(64, 5, (3, 5))
RES16 = (Block(64), Block(128, stride=2), Pool((2, 4)), Block(128), Block(256, stride=2),
         Pool((2, 4)), Block(256), Pool((2, 4)))

# Residual, 18 convolutions: six bottleneck blocks straight on the input, no stem.
RES18 = (Block(64), Pool((2, 2)), Block(64), Pool((2, 4)), Block(128), Pool((2, 2)),
         Block(128), Pool((2, 4)), Block(256), Pool((3, 5)), Block(256), Pool((2, 4)))


def _input(input_shape):
    inputs = keras.Input(shape=tuple(input_shape), name="melspec")
    return inputs, batch_norm("input_bn")(inputs)


def _apply_stage(x, stage: Stage, name: str):
    for i in range(stage.convs):
        suffix = f"_{i + 1}" if stage.convs > 1 else ""
        x = apply_conv_bn_elu(x, stage.filters, stage.kernel, f"{name}{suffix}")
    if stage.pool is not None:
        pool = layers.AveragePooling2D if stage.average else layers.MaxPooling2D
        x = pool(stage.pool, name=f"{name}_pool")(x)
    return x


def build_plain(stages, input_shape, num_tags: int, name: str) -> keras.Model:
    """A plain network: every stage of `stages` in turn, then the head."""
    inputs, x = _input(input_shape)
    for i, stage in enumerate(stages, start=1):
        x = _apply_stage(x, stage, f"stage{i}")
    return keras.Model(inputs, apply_head(x, num_tags), name=name)


def build_residual(steps, input_shape, num_tags: int, name: str,
                   stem: Stage | None = None) -> keras.Model:
    """A residual network: an optional stem, then bottleneck blocks and max-pools in turn."""
    inputs, x = _input(input_shape)
    if stem is not None:
        x = _apply_stage(x, stem, "stem")
    blocks = pools = 0
    for step in steps:
        if isinstance(step, Block):
            blocks += 1
            x = apply_bottleneck_block(x, step.filters, f"block{blocks}", stride=step.stride)
        else:
            pools += 1
            x = layers.MaxPooling2D(step.size, name=f"pool{pools}")(x)
    return keras.Model(inputs, apply_head(x, num_tags), name=name)


def build_baseline5(input_shape=(96, 1280, 1), num_tags: int = 56) -> keras.Model:
    """The organisers' 5-convolution baseline (paper Table 2, row 1)."""
    return build_plain(BASELINE5, input_shape, num_tags, "baseline5")


def build_vgg6(input_shape=(96, 1280, 1), num_tags: int = 56) -> keras.Model:
    """The paper's 6-convolution VGG-like network with ELU (Table 1; best single model)."""
    return build_plain(VGG6, input_shape, num_tags, "vgg6")


def build_vgg25(input_shape=(96, 1280, 1), num_tags: int = 56) -> keras.Model:
    """25 plain convolutions, no residual connections (Table 2)."""
    return build_plain(VGG25, input_shape, num_tags, "vgg25")


def build_res16(input_shape=(96, 1280, 1), num_tags: int = 56) -> keras.Model:
    """Residual network of 16 convolutions (Table 2)."""
    return build_residual(RES16, input_shape, num_tags, "res16", stem=RES16_STEM)


def build_res18(input_shape=(96, 1280, 1), num_tags: int = 56) -> keras.Model:
    """Residual network of 18 convolutions (Table 2)."""
    return build_residual(RES18, input_shape, num_tags, "res18")
